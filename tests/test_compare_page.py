"""The Compare page: AppTest (sets, a real run with the local model, stop, results) and a real browser."""

import csv
import html
import io
import json
import re

import pytest
from fake_openai import GOOD_KEY
from playwright.sync_api import expect
from streamlit.testing.v1 import AppTest
from ui import goto_page, wait_idle

from rag_ft.evaluation import SAMPLE_QUESTIONS, EvalQuestion, EvalStore, RunConfig, RunOptions
from rag_ft.settings import load_settings

APP = "../app.py"
GUIDE = b"""# Billing guide

## Refunds

Refunds are issued within 14 days of a cancellation request. The refund goes back to the original card.
Customers on the annual plan get a pro-rated refund for the months they did not use.

## Invoices

Invoices are sent on the first working day of each month as PDF files. Invoices can be downloaded from the
billing page at any time, and a copy is kept for ten years.
"""
QUESTIONS = [
    EvalQuestion("How many days does a refund take?", "Refunds are issued within 14 days.", "billing-guide.md"),
    EvalQuestion("What is the boiling point of mercury?", answerable=False),
]


@pytest.fixture(autouse=True)
def clear_caches():
    import streamlit as st

    st.cache_resource.clear()
    st.cache_data.clear()
    yield


def open_compare() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=240).run()
    at.switch_page("pages/compare.py").run()
    assert not at.exception, at.exception
    return at


def texts(at: AppTest) -> str:
    """Every text the page shows, as the browser displays it (untrusted parts are sent as character references)."""
    return html.unescape(" ".join(str(e.value) for kind in ("markdown", "caption", "info", "warning", "error",
                                                            "success") for e in getattr(at, kind)))


def test_empty_page_offers_the_sample_set():
    at = open_compare()
    assert "No evaluation set yet" in texts(at)
    assert at.button(key="load_sample_set")
    if not SAMPLE_QUESTIONS.exists():
        pytest.skip("sample_docs/questions.jsonl is not there yet")
    at.button(key="load_sample_set").click().run()
    assert not at.exception, at.exception
    assert "Loaded the sample evaluation set" in texts(at)
    assert "Sample evaluation set" in at.selectbox(key="eval_set").format_func(at.selectbox(key="eval_set").value)


def test_import_names_bad_lines_and_keeps_the_good_ones():
    at = open_compare()
    good = json.dumps({"question": "How long do refunds take?", "answer": "14 days"})
    at.file_uploader(key="eval_upload").set_value(("mine.jsonl", f"{good}\n{{oops\n".encode(), "application/jsonl"))
    at.run()
    at.button(key="eval_import").click().run()
    assert not at.exception, at.exception
    assert any("mine.jsonl line 2: not valid JSON" in html.unescape(w.value) for w in at.warning)
    assert "Imported 1 questions from mine.jsonl (1 row(s) left out" in texts(at)
    assert EvalStore(load_settings().db_path).list_sets()[0].name == "mine"


def test_bad_format_regex_blocks_the_run():
    EvalStore(load_settings().db_path).create_set("Mine", QUESTIONS)
    at = open_compare()
    at.text_input(key="style_pattern").set_value("[unclosed").run()
    assert any("not a valid regular expression" in html.unescape(e.value) for e in at.error)
    assert at.button(key="run_eval").disabled


def test_first_run_is_short_and_estimated():
    """Questions default to 10 of a larger set, the Run button says how long, and Chat's default is named."""
    from rag_ft.evaluation import default_configs
    from rag_ft.evaluation.configs import chat_default
    from rag_ft.evaluation.estimate import DEFAULT_ANSWER_S
    from rag_ft.models.catalogue import available_models

    s = load_settings()
    store = EvalStore(s.db_path)
    set_id = store.create_set("Big", [EvalQuestion(f"Question {i}?") for i in range(30)])
    n = len(default_configs(available_models(s)))
    at = open_compare()
    assert at.number_input(key="eval_limit").value == 10
    assert at.button(key="run_eval").label == f"Run {n} configuration(s) on 10 question(s)"
    minutes = -(-int(10 * n * DEFAULT_ANSWER_S["local"]) // 60)
    assert f"about {minutes} min ({10 * n} answers; time per answer a first guess" in texts(at)
    chat = chat_default(default_configs(available_models(s)), available_models(s))
    assert f"and RAG by default: that is configuration {chat.label}." in texts(at)

    # answers timed on this machine (2 s each) replace the guess
    run_id = store.create_run(set_id, [RunConfig(c.label, c.model, c.rag) for c in
                                       default_configs(available_models(s))], RunOptions())
    for q in store.questions(set_id)[:3]:
        for i in range(n):
            store.save_result(run_id, ev_record(i, q.id))
    at.number_input(key="eval_limit").set_value(15).run()
    assert at.button(key="run_eval").label == f"Run {n} configuration(s) on 15 question(s)"
    assert f"about {-(-15 * n * 2 // 60)} min ({15 * n} answers; time per answer measured on this machine)" in texts(at)


def ev_record(config_index: int, question_id: int):
    from rag_ft.evaluation import AnswerRecord

    return AnswerRecord(config_index, question_id, "An answer.", total_s=2.0)


@pytest.mark.slow
def test_new_user_flow_sample_set_sample_documents_four_configurations(local_chat, local_embeddings):
    """The issue's "done when": pick the sample set, index the sample documents, run the four configurations."""
    from rag_ft.evaluation import default_configs
    from rag_ft.models.catalogue import available_models

    s = load_settings()
    expected = [c.label for c in default_configs(available_models(s))]  # 4 with the grounding adapter, else 2
    at = open_compare()
    at.button(key="load_sample_set").click().run()
    assert "Loaded the sample evaluation set" in texts(at)
    assert at.button(key="run_eval").disabled  # RAG configurations need documents first
    at.button(key="eval_index_samples").click().run()
    assert not at.exception, at.exception
    assert not any("has no indexed documents" in w.value for w in at.warning)
    at.number_input(key="eval_limit").set_value(1)
    at.number_input(key="eval_max_tokens").set_value(16)
    at.run()
    run = at.button(key="run_eval")
    assert run.label == f"Run {len(expected)} configuration(s) on 1 question(s)" and not run.disabled
    run.click().run()
    assert not at.exception, at.exception

    store = EvalStore(s.db_path)
    info = store.list_runs()[0]
    assert info.status == "done" and info.answered == len(expected)
    assert [c.label for c in info.configs] == expected
    q = store.questions(info.set_id)[0]
    records = store.results(info.id)
    for rec in records:
        assert not rec.error and rec.output_tokens > 0 and rec.total_s > 0
        if info.configs[rec.config_index].rag:
            assert rec.metrics["doc_rank"] == 1 and rec.passages[0]["document"] == q.document

    table = next(d.value for d in at.dataframe if "Setup" in d.value.columns)  # the summary table
    assert list(table["Configuration"]) == expected
    assert list(table["Document hit@k"].isna()) == [True, False, True, False][: len(expected)]
    for column in ("Page hit@k", "Page MRR (±1 page)", "Answer similarity", "Token F1", "Follows format",
                   "Time to first token (s)", "Total latency (s)", "Output tokens", "Cost per answer ($)"):
        assert column in table.columns, column
    summary = texts(at)
    assert "Base + RAG: retrieval put an expected page in the top 4" in summary
    assert "Answers that follow your format" in summary and "no per-token cost" in summary
    assert at.selectbox(key="eval_question").value == q.id
    assert any(d.label == "Export results as CSV" for d in at.get("download_button"))

def test_interrupted_run_is_marked_stopped_and_can_be_continued():
    s = load_settings()
    store = EvalStore(s.db_path)
    set_id = store.create_set("Billing", QUESTIONS)
    run_id = store.create_run(set_id, [RunConfig("Base", "SmolLM2-135M-Instruct")], RunOptions())
    store.set_status(run_id, "running")
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.session_state["eval_running"] = run_id  # what a click on Stop leaves behind mid-run
    at.switch_page("pages/compare.py").run()
    assert not at.exception, at.exception
    assert store.get_run(run_id).status == "stopped"
    assert any("Stopped after 0 answers" in i.value for i in at.info)
    assert at.button(key="continue_eval")


@pytest.mark.browser
@pytest.mark.slow
def test_compare_in_a_real_browser(page, app_server, tmp_path):
    """Import a set, run one configuration, stop it mid-way, continue it, read the results, export CSV."""
    base, data = app_server
    page.goto(base)
    wait_idle(page)
    goto_page(page, "Compare", "compare")
    expect(page.get_by_text("No evaluation set yet")).to_be_visible()
    lines = [json.dumps({"question": "Which format do invoices come in?", "answer": "PDF files"}),
             json.dumps({"question": "How long do refunds take?", "answer": "14 days"}),
             json.dumps({"question": "What is the boiling point of mercury?", "answerable": False})]
    page.get_by_text("Add an evaluation set").click()
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(
        files=[{"name": "browser-set.jsonl", "mimeType": "application/jsonl", "buffer": "\n".join(lines).encode()}])
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_text("Imported 3 questions from browser-set.jsonl")).to_be_visible()
    wait_idle(page)
    # one configuration without retrieval (no documents needed), short answers
    for i in (2, 3, 4):
        box = page.get_by_role("checkbox", name=f"Use #{i}")
        if box.is_checked():
            box.click(force=True)  # the input is visually hidden behind Streamlit's styled box
            expect(box).not_to_be_checked()
            wait_idle(page)
    tokens = page.get_by_label("Max answer tokens")
    tokens.fill("24")
    tokens.press("Enter")
    wait_idle(page)
    run = page.get_by_role("button", name="Run 1 configuration(s) on 3 question(s)")
    expect(run).to_be_enabled()
    run.click()
    # stop once the first answer is stored: the page reruns, the run is marked stopped, nothing is lost
    expect(page.get_by_test_id("stProgress").get_by_text(re.compile(r"^1/3 · "))).to_be_visible(timeout=180_000)
    page.get_by_role("button", name="Stop the run").click()
    expect(page.get_by_text(re.compile(r"Stopped after [12] answers"))).to_be_visible(timeout=60_000)
    wait_idle(page)
    store = EvalStore(data / "studio.sqlite3")
    stopped = store.list_runs()[0]
    assert stopped.status == "stopped" and 1 <= stopped.answered < 3
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_text("3/3 answers · status done")).to_be_visible(timeout=180_000)
    wait_idle(page, 180_000)
    expect(page.get_by_text("All answers came from local models")).to_be_visible()
    assert store.get_run(stopped.id).status == "done" and store.get_run(stopped.id).answered == 3
    expect(page.get_by_text("One question, side by side")).to_be_visible()
    with page.expect_download() as dl:
        page.get_by_role("button", name="Export results as CSV").click()
    rows = list(csv.DictReader(io.StringIO(open(dl.value.path()).read())))
    assert [r["question"] for r in rows] == [json.loads(x)["question"] for x in lines]
    assert all(r["configuration"] == "Base" and float(r["total (s)"]) > 0 for r in rows)
    page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)

def test_home_decision_helper_links_to_the_pages_that_do_it():
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception, at.exception
    assert "Put **your documents**" in at.markdown[0].value  # the explanation is still there
    assert "Tick what applies" in texts(at) and not at.get("page_link")
    at.checkbox(key="decide_cite").check().run()
    assert "Suggested: RAG (retrieval)" in texts(at)
    assert [p.proto.page for p in at.get("page_link")] == ["documents", "chat", "compare"]
    at.checkbox(key="decide_format").check().run()
    assert "Suggested: RAG now, fine-tuning later" in texts(at)  # no training budget ticked
    at.checkbox(key="decide_budget").check().run()
    assert "Suggested: Both: RAG + a fine-tuned model" in texts(at)
    assert [p.proto.page for p in at.get("page_link")] == ["documents", "training_data", "fine_tuning", "compare"]
    at.checkbox(key="decide_cite").uncheck().run()
    assert "Suggested: Fine-tuning." in texts(at)


@pytest.mark.browser
def test_home_checklist_link_opens_the_compare_page(page, app_server):
    base, _ = app_server
    page.goto(base)
    wait_idle(page)
    page.get_by_text("Do answers need to cite their sources").click()
    expect(page.get_by_text("Suggested: RAG (retrieval).")).to_be_visible()
    page.get_by_test_id("stPageLink").filter(has_text="Compare: measure it").click()
    expect(page).to_have_url(re.compile("compare"))
    expect(page.get_by_role("heading", name="Compare")).to_be_visible()


def test_openai_run_with_cost_and_judge(fake_openai):
    """With a key: OpenAI models (the fake server), token cost from the price table, the LLM judge labelled."""
    import fake_openai as fake_module

    from rag_ft.index.documents import index_files
    from rag_ft.models.providers import get_embeddings

    def chat(fake, req, match):  # the judge gets scores, the answering model gets an answer
        graded = "You grade an answer" in json.dumps(req.json.get("messages"))
        fake.reply_text = '{"groundedness": 4, "relevance": 5}' if graded else "Refunds take 14 days [1]."
        return fake_module._chat(fake, req, match)

    fake_openai.route("POST", "/chat/completions", chat)
    s = load_settings(env={"RAG_FT_DATA_DIR": str(load_settings().data_dir), "OPENAI_API_KEY": GOOD_KEY,
                           "OPENAI_BASE_URL": fake_openai.base_url})
    index_files(s, get_embeddings(s), [("billing-guide.md", GUIDE)])
    EvalStore(s.db_path).create_set("Billing", QUESTIONS[:1])
    at = AppTest.from_file(APP, default_timeout=120)
    at.secrets["OPENAI_API_KEY"] = GOOD_KEY
    at.secrets["OPENAI_BASE_URL"] = fake_openai.base_url
    at.run()
    at.switch_page("pages/compare.py").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="cfg_model_0").value == "gpt-4.1-mini"
    at.toggle(key="eval_judge").set_value(True).run()
    at.button(key="run_eval").click().run()
    assert not at.exception, at.exception
    store = EvalStore(s.db_path)
    records = store.results(store.list_runs()[0].id)
    assert len(records) == 2 and not [r.error for r in records if r.error]
    rag = next(r for r in records if r.config_index == 1)
    assert rag.citations and rag.citations[0]["document"] == "billing-guide.md" and not rag.citations[0]["attached"]
    assert rag.metrics["citation_precision"] == 1.0 and rag.metrics["judge_groundedness"] == 4
    # fake usage: prompt words in, 5 words out, at gpt-4.1-mini's $0.40 / $1.60 per 1M tokens
    assert rag.cost == pytest.approx(rag.input_tokens * 0.40e-6 + 5 * 1.60e-6)
    summary = texts(at)
    assert "Estimated cost per 1,000 answers" in summary and "an LLM's judgement, not a measurement" in summary
    table = next(d.value for d in at.dataframe if "Setup" in d.value.columns)
    assert table.loc[1, "LLM judgement: groundedness (1-5)"] == 4.0
