"""The grounding adapter: its training data (made by the chat chain's own prompt builder), its corpus (kept apart
from sample_docs/), and the committed adapter itself (loads, answers from the passages with a valid [n])."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from rag_ft.chat.citations import MARKER, markers_in, support
from rag_ft.chat.prompt import NOT_COVERED, SYSTEM_PROMPT, build_messages
from rag_ft.models.grounding import ADAPTER_DIR, MODEL_LABEL, adapter_available
from rag_ft.records import Passage

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "grounding"))

import make_data  # noqa: E402


@pytest.fixture(scope="module")
def examples() -> list[make_data.GroundingExample]:
    return make_data.build_examples()


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_files_are_openai_chat_jsonl_and_match_the_generator(examples):
    """The committed files are exactly what make_data.py writes today: no hand edits, no drift."""
    for split, path in (("train", make_data.TRAIN_FILE), ("validation", make_data.VALIDATION_FILE)):
        rows = read_jsonl(path)
        expected = [e.record() for e in examples if e.split == split]
        assert rows == expected, f"{path.name} is stale: run `.venv/bin/python grounding/make_data.py`"
        for n, row in enumerate(rows, 1):
            assert set(row) == {"messages"}, f"{path.name} line {n}"
            roles = [m["role"] for m in row["messages"]]
            assert roles == ["system", "user", "assistant"], f"{path.name} line {n}: {roles}"
            assert all(isinstance(m["content"], str) and m["content"].strip() for m in row["messages"])
    assert 700 <= len(examples) <= 1000


def test_prompt_is_build_messages_for_the_same_passages(examples):
    """Training prompts are the serving prompt: the data cannot drift from rag_ft.chat.prompt."""
    for e in examples:
        assert e.messages[:2] == build_messages(e.question, e.passages)
        assert e.messages[0]["content"] == SYSTEM_PROMPT
        assert f"Question: {e.question}" in e.messages[1]["content"]


def test_all_kinds_are_present_and_answers_cite_only_the_right_passages(examples):
    kinds = {k: [e for e in examples if e.kind == k] for k in ("single", "two", "unanswerable")}
    assert sum(1 for e in examples if e.answer_positions and max(e.answer_positions) >= 2) >= 0.5 * len(examples)
    assert {p for e in kinds["single"] for p in e.answer_positions} == {1, 2, 3, 4}
    assert len(kinds["two"]) >= 30
    share = len(kinds["unanswerable"]) / len(examples)
    assert 0.2 <= share <= 0.3, share
    for e in kinds["unanswerable"]:
        assert e.answer == NOT_COVERED and not MARKER.search(e.answer)
    for e in kinds["single"] + kinds["two"]:
        cited = markers_in(e.answer)
        assert set(cited) == set(e.answer_positions), e.answer
        assert all(1 <= n <= len(e.passages) for n in cited)
        for sentence in re.split(r"(?<=[.!?])\s+", e.answer):  # every claim is taken from the passage it cites
            (n,) = set(markers_in(sentence))
            assert support(sentence, e.passages[n - 1].text) >= 0.5, (sentence, e.passages[n - 1].text)
    for e in kinds["two"]:
        assert len(set(e.answer_positions)) == 2


def test_passages_of_one_prompt_never_overlap(examples):
    """Retrieved chunks do not repeat each other, so no section text shows twice in one prompt."""
    docs = make_data.load_corpus()
    texts = [s.text for d in docs for s in d.sections]
    for e in examples:
        shown = [t for p in e.passages for t in texts if t in p.text]
        assert len(shown) == len(set(shown)), e.question


def test_distractors_are_plausible(examples):
    """Wrong passages are mostly about the same topic elsewhere, or from the same document."""
    same_doc = sum(1 for e in examples for i, p in enumerate(e.passages, 1)
                   if i not in e.answer_positions and any(p.document == e.passages[j - 1].document
                                                          for j in e.answer_positions))
    assert same_doc > 0.3 * sum(len(e.passages) - len(e.answer_positions) for e in examples if e.answer_positions)


def test_validation_documents_never_appear_in_training(examples):
    train_docs = {p.document for e in examples if e.split == "train" for p in e.passages}
    assert not train_docs & set(make_data.VALIDATION_DOCS)
    assert {e.split for e in examples} == {"train", "validation"}


def test_corpus_is_disjoint_from_sample_docs():
    sample = ROOT / "sample_docs"
    docs = make_data.load_corpus()
    names = {d.document.lower() for d in docs} | {p.stem.lower() for p in make_data.CORPUS.glob("*.txt")}
    if not sample.is_dir() or not any(sample.iterdir()):
        pytest.skip("sample_docs/ is not there yet")
    sample_names = {p.name.lower() for p in sample.rglob("*") if p.is_file()}
    assert not names & sample_names
    assert not {n.rsplit(".", 1)[0] for n in names} & {n.rsplit(".", 1)[0] for n in sample_names}

    def shingles(text: str, n: int = 8) -> set[tuple[str, ...]]:
        words = re.findall(r"\w+", text.lower())
        return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}

    corpus = set().union(*(shingles(s.text + " " + " ".join(q for f in s.facts for q in f.questions))
                           for d in docs for s in d.sections))
    checked = 0
    for path in sample.rglob("*"):
        text = plain_text(path) if path.is_file() else None
        if text is None:
            continue
        checked += 1
        shared = corpus & shingles(text)
        assert not shared, f"{path.name} shares text with grounding/corpus: {sorted(shared)[:3]}"
    assert checked >= 3


def plain_text(path: Path) -> str | None:
    """Text of a sample document, without the ingestion pipeline (None for formats read no other way)."""
    import shutil
    import subprocess
    import zipfile

    suffix = path.suffix.lower()
    if suffix in {".md", ".txt", ".html", ".htm", ".csv", ".jsonl", ".json"}:
        return path.read_text(encoding="utf-8", errors="replace")
    if suffix == ".docx":
        with zipfile.ZipFile(path) as z:
            return re.sub(r"<[^>]+>", " ", z.read("word/document.xml").decode("utf-8", "replace"))
    if suffix == ".pdf" and shutil.which("pdftotext"):
        return subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return None


def test_bad_corpus_file_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("document: x.pdf\ntitle: X\nkind: club\n\n## 1 Fees\ntopic: fees\nText.\nA: an answer\n")
    with pytest.raises(make_data.CorpusError, match=r"bad.txt line 8: an answer without a question"):
        make_data.parse_document(bad)


def test_generator_is_deterministic():
    a = [e.record() for e in make_data.build_examples()]
    b = [e.record() for e in make_data.build_examples()]
    assert a == b


def test_adapter_is_committed_with_its_card():
    assert adapter_available(), "models/grounding-adapter/ is missing: run `make grounding`"
    size = (ADAPTER_DIR / "adapter_model.safetensors").stat().st_size
    assert 1_000_000 < size < 20_000_000
    card = (ADAPTER_DIR / "README.md").read_text(encoding="utf-8")
    assert "grounding/train_adapter.py" in card and "seed" in card.lower()
    assert "SmolLM2" in MODEL_LABEL


# A prompt the adapter never saw: its documents are neither in grounding/corpus nor in sample_docs.
HELD_OUT = [
    Passage("Alderbrook Pool opens at 6:30 on weekdays and at 8:00 on weekends. Lanes are reserved for "
            "swim teams after 18:00.", "alderbrook_pool_rules.pdf", [2], "Opening times", 0, 0.6),
    Passage("A Alderbrook Pool season ticket costs 150 euros for adults and 70 euros for children under 16. "
            "Season tickets are sold from 1 May.", "alderbrook_pool_rules.pdf", [3], "Tickets", 1, 0.5),
    Passage("Swimming caps are required in the Alderbrook Pool. Glass bottles are not allowed on the deck.",
            "alderbrook_pool_rules.pdf", [4], "Pool rules", 2, 0.4),
]


def test_adapter_answers_a_held_out_prompt_from_the_passages_with_a_valid_marker(local_chat):
    """The committed adapter loads on the shared runtime and writes the taught shape: a claim from the
    passage it cites, with a valid [n]. (The base model writes no marker at all: 0% in the evaluation.)"""
    from langchain_core.messages import HumanMessage, SystemMessage

    from rag_ft.models.local_chat import LocalChatModel

    model = LocalChatModel(adapter_dir=str(ADAPTER_DIR), max_new_tokens=48)  # shares the session runtime
    msgs = build_messages("Are glass bottles allowed at Alderbrook Pool?", HELD_OUT)
    text = model.invoke([SystemMessage(msgs[0]["content"]), HumanMessage(msgs[1]["content"])]).content
    cited = markers_in(text)
    assert cited and set(cited) <= {1, 2, 3}, text
    assert support(MARKER.sub(" ", text), HELD_OUT[cited[0] - 1].text) >= 0.5, text


def test_the_adapter_is_served_without_repetition_penalty_and_with_its_decline_rule(tmp_path):
    """The adapter copies facts from the passages; its generation.json turns off the penalty that would
    make it alter them, and carries the decline threshold chosen on the validation split. A folder
    without that file keeps the defaults."""
    from rag_ft.models.local_chat import adapter_generation

    gen = adapter_generation(str(ADAPTER_DIR))
    assert gen["repetition_penalty"] == 1.0
    assert gen["decline"]["text"] == NOT_COVERED and 0.05 < gen["decline"]["min_probability"] < 0.95
    assert adapter_generation(str(tmp_path)) == {}
    assert adapter_generation(None) == {}


def test_threshold_is_the_best_balanced_cut_in_the_widest_gap():
    import calibrate

    assert calibrate.best_threshold([0.1, 0.2], [0.8, 0.9]) == (0.5, 1.0)
    # two cuts tie (one answerable wrong either way); the one in the wide gap wins, not a point between them
    cut, balanced = calibrate.best_threshold([0.01, 0.105, 0.2, 0.36], [0.104, 0.357, 0.5, 0.8])
    assert 0.2 < cut < 0.357 and balanced == pytest.approx((3 / 4 + 3 / 4) / 2)


def test_decline_rule_forces_the_sentence_or_bans_its_first_token():
    import torch

    from rag_ft.models.local_chat import DeclineRule

    ids, eos = [5, 6, 7], 0
    prompt = torch.zeros((1, 4), dtype=torch.long)
    sure = torch.full((1, 10), -5.0)
    sure[0, 5] = 5.0  # the decline token is the likeliest by far
    rule = DeclineRule(ids, 0.3, eos, prompt_len=4)
    assert int(rule(prompt, sure.clone()).argmax()) == 5 and rule.declining
    for step, want in enumerate([6, 7, eos], 1):  # then the exact sentence, then the end
        out = rule(torch.zeros((1, 4 + step), dtype=torch.long), torch.zeros((1, 10)))
        assert int(out.argmax()) == want and torch.isinf(out).sum() == 9
    unsure = torch.zeros((1, 10))
    unsure[0, 5] = 1.0  # likeliest single token, but only ~23% of the mass: answer instead
    rule = DeclineRule(ids, 0.3, eos, prompt_len=4)
    out = rule(prompt, unsure.clone())
    assert not rule.declining and out[0, 5] == -float("inf") and 0.2 < rule.probability < 0.3


def test_adapter_declines_when_the_passages_do_not_cover_the_question(local_chat):
    from langchain_core.messages import HumanMessage, SystemMessage

    from rag_ft.models.local_chat import LocalChatModel

    model = LocalChatModel(adapter_dir=str(ADAPTER_DIR), max_new_tokens=24)
    msgs = build_messages("Who is the head lifeguard at Alderbrook Pool?", HELD_OUT)
    text = model.invoke([SystemMessage(msgs[0]["content"]), HumanMessage(msgs[1]["content"])]).content
    assert text.strip() == NOT_COVERED
