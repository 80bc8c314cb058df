"""The command line, end to end: every call is a real `python -m rag_ft` subprocess on its own data folder.

Real SQLite, Chroma and MiniLM (and SmolLM2 for `ask`), as the app uses them; nothing is patched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tomllib
from importlib import import_module
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_docs"
SAMPLE_FILES = [SAMPLE / n for n in ("account-management-guide.pdf", "security-and-data-policy.pdf",
                                     "billing-faq.docx", "api-reference.html", "release-notes.md")]
SEC = ROOT.parent / "shared" / "eval" / "sec-10q"
SEC_SUBSET = "2023 Q3 "  # one quarter: 5 filings, 253 pages, ~4 min to index on 2 busy cores (all 20: ~17 min)


def cli(*args: str, data: Path, cwd: Path | None = None, timeout: float = 300,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the CLI as a user would, isolated from the developer's settings: own HOME (no ~/.streamlit), own
    working folder (no .streamlit/secrets.toml), local provider, no key."""
    home = data.parent / "home"
    home.mkdir(parents=True, exist_ok=True)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RAG_FT_", "CHROMA_"))}
    clean.update(RAG_FT_DATA_DIR=str(data), RAG_FT_PROVIDER="local", PYTHONPATH=str(ROOT), HOME=str(home),
                 **(env or {}))
    return subprocess.run([sys.executable, "-m", "rag_ft", *args], cwd=cwd or home, env=clean, text=True,
                          capture_output=True, timeout=timeout)


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def sample_data(tmp_path_factory) -> Path:
    """A data folder with the five sample documents indexed through the CLI (shared by the read-only tests)."""
    data = tmp_path_factory.mktemp("cli") / "data"
    proc = ok(cli("index", *map(str, SAMPLE_FILES), data=data))
    lines = proc.stdout.strip().splitlines()
    assert lines[0].split() == ["status", "document", "result"] and len(lines) == 6
    assert all(line.startswith("indexed ") for line in lines[1:]), proc.stdout
    assert "account-management-guide.pdf" in proc.stdout and "6 pages" in proc.stdout
    assert "index" in proc.stderr and "5 ok, 0 failed" in proc.stderr  # progress goes to stderr
    return data


# ---------------------------------------------------------------- usage and errors


def test_help_usage_errors_and_exit_codes(tmp_path):
    data = tmp_path / "data"
    helped = ok(cli("--help", data=data))
    for command in ("index", "docs", "delete", "search", "ask", "eval", "examples", "jobs"):
        assert command in helped.stdout
    assert cli("bogus", data=data).returncode == 2
    no_query = cli("search", data=data)
    assert no_query.returncode == 2 and "QUERY" in no_query.stderr
    assert cli("search", "refund", "-k", "0", data=data).returncode == 2
    assert cli("examples", data=data).returncode == 2
    missing = cli("eval", str(tmp_path / "missing.jsonl"), data=data)
    assert missing.returncode == 1 and "no such file" in missing.stderr and missing.stdout == ""
    empty = cli("search", "refund", data=data)
    assert empty.returncode == 1 and "no documents are indexed in collection 'default'" in empty.stderr


def test_console_script_points_at_the_cli():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, func = scripts["rag-ft"].split(":")
    assert callable(getattr(import_module(module), func))
    # make test's set-up installs the project (editable): the script is on the venv's PATH
    script = Path(sys.executable).parent / "rag-ft"
    assert script.exists(), "scripts/setup.sh installs the project with pip install -e ."
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "index" in out.stdout and "eval" in out.stdout


# ---------------------------------------------------------------- documents


def test_index_again_is_unchanged_and_a_bad_file_fails_alone(sample_data, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    proc = cli("index", "--json", str(SAMPLE_FILES[2]), str(empty), str(tmp_path / "nope.pdf"), data=sample_data)
    assert proc.returncode == 1
    out = json.loads(proc.stdout)  # stdout is the JSON document and nothing else
    status = {f["name"]: f["status"] for f in out["files"]}
    assert status == {"billing-faq.docx": "unchanged", "empty.txt": "failed"}
    assert "nope.pdf: no such file" in proc.stderr and "empty.txt: empty file" in proc.stderr
    assert out["problems"] == [f"{tmp_path / 'nope.pdf'}: no such file"]


def test_docs_lists_the_collection(sample_data):
    text = ok(cli("docs", data=sample_data)).stdout
    assert [line.split()[0] for line in text.strip().splitlines()[1:]] == sorted(p.name for p in SAMPLE_FILES)
    out = json.loads(ok(cli("docs", "--json", data=sample_data)).stdout)
    assert out["collection"] == "default" and out["data_dir"] == str(sample_data)
    assert {d["name"]: (d["status"], d["pages"]) for d in out["documents"]}["account-management-guide.pdf"] == (
        "indexed", 6)
    other = json.loads(ok(cli("docs", "--json", "--collection", "other", data=sample_data)).stdout)
    assert other["documents"] == []


def test_search_prints_passages_and_json(sample_data):
    question = "How long is the email verification link valid after signing up?"
    out = json.loads(ok(cli("search", question, "-k", "3", "--json", data=sample_data)).stdout)
    assert out["k"] == 3 and 1 <= len(out["passages"]) <= 3
    top = out["passages"][0]
    assert top["document"] == "account-management-guide.pdf" and top["pages"] == [1] and "24 hours" in top["text"]
    assert 0 <= top["score"] <= 1 and set(top["scores"]) == {"vector", "bm25"}
    text = ok(cli("search", question, "-k", "2", data=sample_data)).stdout
    assert text.startswith("1. account-management-guide.pdf · p. 1") and "\n2. " in text
    off = json.loads(ok(cli("search", "best chocolate cake recipe with strawberries", "--json",
                            data=sample_data)).stdout)
    assert off["passages"] == []  # below the relevance threshold, as in the app


def test_index_a_folder_then_delete(tmp_path):
    data, folder = tmp_path / "data", tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "release-notes.md").write_bytes((SAMPLE / "release-notes.md").read_bytes())
    (folder / ".hidden.md").write_text("# hidden")
    (folder / "questions.jsonl").write_text("{}")
    indexed = json.loads(ok(cli("index", "--json", str(folder), data=data)).stdout)
    assert [(f["name"], f["status"]) for f in indexed["files"]] == [("release-notes.md", "indexed")]
    gone = ok(cli("delete", "release-notes.md", "--json", data=data))
    assert json.loads(gone.stdout) == {"collection": "default", "name": "release-notes.md", "deleted": True}
    assert json.loads(ok(cli("docs", "--json", data=data)).stdout)["documents"] == []
    again = cli("delete", "release-notes.md", data=data)
    assert again.returncode == 1 and "no document named 'release-notes.md'" in again.stderr


# ---------------------------------------------------------------- eval


def test_eval_on_the_sample_questions(sample_data):
    proc = ok(cli("eval", str(SAMPLE / "questions.jsonl"), "--json", data=sample_data))
    out = json.loads(proc.stdout)
    q = out["questions"]
    assert q["in_file"] == 48 and q["evaluated"] == 40 and q["unanswerable"] == 8 and q["skipped_not_indexed"] == 0
    doc, page = out["document"], out["page"]
    # README: hybrid retrieval finds every sample answer's document and page (hit@5 1.00, MRR 1.00)
    assert doc["questions"] == 40 and doc["hit@4"] >= 0.95 and doc["mrr"] >= 0.9 and doc["hit@1"] >= 0.85
    assert 0 < page["questions"] < 40  # only the PDFs have pages
    assert page["hit@4"] >= 0.9 and out["page_within_one"]["hit@4"] >= page["hit@4"]
    assert out["multi_document"] is None and len(out["results"]) == 40
    text = ok(cli("eval", str(SAMPLE / "questions.jsonl"), "-k", "2", data=sample_data)).stdout
    assert text.splitlines()[0] == "questions: 48 in the file, 40 evaluated (left out: 8 unanswerable)"
    assert "document level (40 questions): hit@1 " in text and "hit@2 " in text and "MRR " in text


def test_eval_reads_source_docs_and_citations(sample_data, tmp_path):
    rows = [
        {"question": "What is the API rate limit per token?", "source_docs": ["api-reference.html"]},
        {"question": "How long is the email verification link valid?",
         "citations": [{"doc": "account-management-guide.pdf", "page": 1}]},
        {"question": "How much does the Team plan cost, and how long are backups kept?",
         "source_docs": ["billing-faq.docx", "security-and-data-policy.pdf"]},
        {"question": "What does the quarterly report say about revenue?", "source_docs": ["annual-report.pdf"]},
        {"question": "Broken", "citations": [{"page": 2}]},
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = json.loads(ok(cli("eval", str(path), "--json", data=sample_data)).stdout)
    assert out["questions"]["evaluated"] == 4 and out["questions"]["not_indexed_counted_as_misses"] == 1
    by_q = {r["question"]: r for r in out["results"]}
    assert by_q[rows[0]["question"]]["doc_rank"] is not None
    assert by_q[rows[1]["question"]]["page_applies"] and by_q[rows[1]["question"]]["page_rank"] == 1
    assert by_q[rows[2]["question"]]["documents"] == ["billing-faq.docx", "security-and-data-policy.pdf"]
    assert by_q[rows[3]["question"]]["doc_rank"] is None
    multi = out["multi_document"]
    assert multi["questions"] == 1 and multi["recall@4"] in (0.0, 0.5, 1.0)
    assert out["page"]["questions"] == 1
    only = cli("eval", str(path), "--only-indexed", data=sample_data)
    assert only.returncode == 0 and "(left out: 1 not indexed (skipped))" in only.stdout
    assert "skipped 1 question(s)" in only.stderr and 'line 5: each citation needs a "doc"' in only.stderr
    assert "several expected documents (1 questions): recall@4" in only.stdout


def test_retrieval_scores_by_hand():
    """The eval command's arithmetic on a fixed ranking (the search is a plain function of the question)."""
    from rag_ft.evaluation import EvalQuestion
    from rag_ft.evaluation.metrics import Ref
    from rag_ft.evaluation.retrieval_eval import evaluate_retrieval

    ranking = {
        "one": [Ref("a.pdf", (3,)), Ref("b.pdf", (1,))],  # a.pdf at rank 1, but page 3 not 2
        "two": [Ref("x.md"), Ref("C.PDF", (7,)), Ref("b.pdf", (2,))],  # names compare case-insensitively
        "multi": [Ref("a.pdf", (1,)), Ref("a.pdf", (2,)), Ref("x.md")],  # 1 of the 2 expected documents
        "gone": [Ref("a.pdf", (1,))],
    }
    questions = [
        EvalQuestion("one", document="a.pdf", pages=[2]),
        EvalQuestion("two", document="c.pdf"),
        EvalQuestion("multi", expected=[Ref("b.pdf"), Ref("a.pdf")]),
        EvalQuestion("gone", document="z.pdf"),
        EvalQuestion("no truth"),
        EvalQuestion("nope", answerable=False),
    ]
    report = evaluate_retrieval(questions, lambda q, k: ranking[q][:k], k=2,
                                indexed=["a.pdf", "b.pdf", "c.pdf", "x.md"])
    out = report.summary()
    assert out["questions"] == {"in_file": 6, "evaluated": 4, "unanswerable": 1, "no_expected_document": 1,
                                "skipped_not_indexed": 0, "not_indexed_counted_as_misses": 1}
    # ranks 1, 2, 1, none
    assert out["document"] == {"questions": 4, "hit@1": 0.5, "hit@2": 0.75, "mrr": pytest.approx(2.5 / 4)}
    assert out["page"] == {"questions": 1, "hit@1": 0.0, "hit@2": 0.0, "mrr": 0.0}
    assert out["page_within_one"] == {"questions": 1, "hit@1": 1.0, "hit@2": 1.0, "mrr": 1.0}
    assert out["multi_document"] == {"questions": 1, "recall@2": 0.5}
    only = evaluate_retrieval(questions, lambda q, k: ranking[q][:k], k=2, indexed=["a.pdf", "b.pdf", "c.pdf"],
                              only_indexed=True)
    assert only.skipped_not_indexed == 1 and only.evaluated == 3
    with pytest.raises(ValueError):
        evaluate_retrieval(questions, lambda q, k: [], k=0)


@pytest.mark.slow
def test_eval_on_sec_10q_filings_at_document_level(tmp_path):
    """Real 10-Q filings: index one quarter (5 filings), evaluate the questions whose documents are all indexed."""
    if not (SEC / "questions.jsonl").is_file():
        pytest.skip(f"{SEC} is not beside this checkout (the shared evaluation data)")
    data = tmp_path / "data"
    filings = sorted((SEC / "docs").glob(f"{SEC_SUBSET}*.pdf"))
    assert len(filings) == 5
    t = time.perf_counter()
    indexed = ok(cli("index", "--json", *map(str, filings), data=data, timeout=1500))
    index_s = time.perf_counter() - t
    assert all(f["status"] == "indexed" and f["pages"] > 10 for f in json.loads(indexed.stdout)["files"])
    rows = [json.loads(line) for line in (SEC / "questions.jsonl").read_text().splitlines() if line.strip()]
    expected = sum(all(d.startswith(SEC_SUBSET) for d in r["source_docs"]) for r in rows)
    proc = ok(cli("eval", str(SEC / "questions.jsonl"), "--only-indexed", "--json", data=data))
    out = json.loads(proc.stdout)
    q = out["questions"]
    assert q["in_file"] == len(rows) and q["evaluated"] == expected > 0
    assert q["skipped_not_indexed"] == len(rows) - expected
    assert out["page"] is None and out["multi_document"] is None  # no pages; multi-quarter questions skipped
    doc = out["document"]
    # five look-alike filings: better than four random passages (1 - 0.8 ** 4 = 0.59); measured 0.97 (hit@1 0.60)
    assert 0.6 <= doc["hit@4"] <= 1.0 and 0.2 <= doc["hit@1"] <= doc["mrr"] <= doc["hit@4"]
    print(f"sec-10q 2023 Q3: indexed 5 filings in {index_s:.0f} s; {q['evaluated']} questions: "
          f"hit@1 {doc['hit@1']:.3f} hit@4 {doc['hit@4']:.3f} MRR {doc['mrr']:.3f}")


# ---------------------------------------------------------------- ask


@pytest.mark.slow
def test_ask_answers_with_citations_from_the_local_model(sample_data):
    proc = ok(cli("ask", "How long is the email verification link valid after signing up?", "--json",
                  "--max-tokens", "48", data=sample_data))
    out = json.loads(proc.stdout)
    assert out["covered"] and out["answer"].strip() and out["rag"]
    assert out["passages"][0]["document"] == "account-management-guide.pdf"
    assert all(c["document"] in {p.name for p in SAMPLE_FILES} for c in out["citations"])
    assert out["total_s"] > 0 and out["model"]


def test_ask_off_topic_says_not_covered_without_asking_the_model(sample_data):
    proc = ok(cli("ask", "What is the best chocolate cake recipe with strawberries?", data=sample_data))
    assert "do not cover" in proc.stdout.lower() and "Sources:" not in proc.stdout
    bad = cli("ask", "anything", "--model", "no-such-model", data=sample_data)
    assert bad.returncode == 2 and "unknown model 'no-such-model'" in bad.stderr


def test_secrets_file_wins_and_the_key_is_never_printed(tmp_path):
    data = tmp_path / "data"
    project = tmp_path / "project"
    (project / ".streamlit").mkdir(parents=True)
    key = "sk-test-do-not-print-1234567890"
    (project / ".streamlit" / "secrets.toml").write_text(
        f'RAG_FT_DATA_DIR = "{tmp_path / "from-secrets"}"\nOPENAI_API_KEY = "{key}"\n'
        'RAG_FT_PROVIDER = "openai"\nOPENAI_BASE_URL = "http://127.0.0.1:9/v1"\n[other]\nx = 1\n')
    out = json.loads(ok(cli("docs", "--json", data=data, cwd=project)).stdout)
    assert out["data_dir"] == str(tmp_path / "from-secrets")  # secrets > environment, as in the app
    proc = cli("ask", "--no-rag", "hello?", data=data, cwd=project, timeout=120)
    assert proc.returncode == 1 and "Cannot reach the model server" in proc.stderr
    assert key not in proc.stdout + proc.stderr and key[:12] not in proc.stdout + proc.stderr
    (project / ".streamlit" / "secrets.toml").write_text("this is = = not toml")
    broken = ok(cli("docs", "--json", data=data, cwd=project))
    assert "could not be read" in broken.stderr and json.loads(broken.stdout)["data_dir"] == str(data)


# ---------------------------------------------------------------- training data and jobs


def test_examples_import_export_round_trip(tmp_path):
    data = tmp_path / "data"
    source = SAMPLE / "sample_dataset.jsonl"
    lines = [json.loads(line) for line in source.read_text().splitlines() if line.strip()]
    added = json.loads(ok(cli("examples", "import", str(source), "--json", data=data)).stdout)
    assert added == {"file": str(source), "added": len(lines), "skipped_existing": 0, "problems": []}
    out = tmp_path / "out.jsonl"
    exported = json.loads(ok(cli("examples", "export", str(out), "--json", data=data)).stdout)
    assert exported["count"] == len(lines)
    assert [json.loads(x)["messages"] for x in out.read_text().splitlines()] == [r["messages"] for r in lines]
    again = ok(cli("examples", "import", str(out), "--skip-existing", data=data))
    assert again.stdout.strip() == f"imported 0 example(s) from out.jsonl as draft; {len(lines)} already in the store"
    assert ok(cli("examples", "export", "-", "--status", "approved", data=data)).stdout == ""
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(lines[0]) + "\n{not json\n" + json.dumps({"messages": [{"role": "user", "content": "x"}]})
                   + "\n")
    proc = cli("examples", "import", str(bad), "--status", "approved", data=data)
    assert proc.returncode == 1 and "imported 1 example(s)" in proc.stdout
    assert "bad.jsonl line 2: not valid JSON" in proc.stderr and "bad.jsonl line 3:" in proc.stderr
    approved = ok(cli("examples", "export", "-", "--status", "approved", data=data)).stdout.splitlines()
    assert [json.loads(x)["messages"] for x in approved] == [lines[0]["messages"]]


def test_jobs_lists_fine_tuning_jobs(tmp_path):
    from rag_ft.training.jobs import JobStore

    data = tmp_path / "data"
    empty = ok(cli("jobs", data=data))
    assert empty.stdout == "" and "no fine-tuning jobs yet" in empty.stderr
    assert json.loads(ok(cli("jobs", "--json", data=data)).stdout) == {"jobs": []}
    store = JobStore(data / "studio.sqlite3", data)
    job = store.create_job("openai", "gpt-4.1-mini", [{"messages": [{"role": "user", "content": "q"},
                                                                   {"role": "assistant", "content": "a"}]}] * 10)
    store.fail(job.id, "invalid_file", "Training file has too few examples.")
    store.close()
    listed = json.loads(ok(cli("jobs", "--json", data=data)).stdout)["jobs"]
    assert [(j["id"], j["status"], j["n_train"]) for j in listed] == [(job.id, "failed", 10)]
    assert listed[0]["error"]["message"] == "Training file has too few examples."
    text = ok(cli("jobs", data=data)).stdout
    assert job.id in text and "failed" in text and "too few examples" in text
    one = ok(cli("jobs", job.id, data=data)).stdout
    assert "Created openai fine-tuning job on gpt-4.1-mini." in one
    missing = cli("jobs", "ftjob-nope", data=data)
    assert missing.returncode == 1 and "no job 'ftjob-nope'" in missing.stderr
