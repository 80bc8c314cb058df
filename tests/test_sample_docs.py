"""The sample documents parse cleanly, and every answerable question in questions.jsonl is really
answered in the chunk of the expected document, on the expected page, in the expected section."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rag_ft.ingest import ParseResult, parse, supported

SAMPLES = Path(__file__).resolve().parent.parent / "sample_docs"
QUESTIONS = [json.loads(line) for line in (SAMPLES / "questions.jsonl").read_text(encoding="utf-8").splitlines()
             if line.strip()]
DOC_NAMES = sorted(p.name for p in SAMPLES.iterdir() if supported(p.name) and p.name != "README.md")
ANSWERABLE = [q for q in QUESTIONS if q["answerable"]]
# Words that would answer an unanswerable question; none of them may appear in the sample set.
ABSENT = {"phone number": ["phone number", "call us", "telephone"], "Slack": ["Slack"], "CEO": ["CEO", "chief executive"],
          "dark mode": ["dark mode", "theme"], "maximum number of notes": ["notes per workspace"],
          "on-premises": ["on-prem", "self-host"], "languages": ["language"], "cursors": ["collaborative cursor", "real-time cursor"]}


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def results() -> dict[str, ParseResult]:
    return {name: parse(name, (SAMPLES / name).read_bytes()) for name in DOC_NAMES}


def test_the_set_covers_the_required_formats() -> None:
    assert {Path(n).suffix for n in DOC_NAMES} >= {".pdf", ".docx", ".html", ".md"}
    assert not supported("questions.jsonl")  # "Load sample documents" must skip the question files


@pytest.mark.parametrize("name", DOC_NAMES)
def test_every_sample_doc_parses_without_error(results, name: str) -> None:
    r = results[name]
    assert r.error is None and r.chunks and r.warnings == []
    assert all(c.section for c in r.chunks), "every chunk sits under a heading"


def test_pdfs_are_multi_page_and_a_section_spans_a_page_break(results) -> None:
    guide = results["account-management-guide.pdf"]
    assert guide.pages == 6 and results["security-and-data-policy.pdf"].pages == 3
    assert {p for c in guide.chunks for p in c.pages} == set(range(1, 7))
    assert any(c.pages == [4, 5] and c.section.startswith("Single sign-on") for c in guide.chunks)


def test_a_heading_stays_with_its_table(results) -> None:
    endpoints = [c for c in results["api-reference.html"].chunks if c.section == "Endpoints"]
    assert len(endpoints) == 1 and endpoints[0].element_types == ["Title", "Table"]
    assert "/v2/exports/{export_id}" in endpoints[0].text


def test_question_file_shape() -> None:
    keys = {"question", "answer", "document", "pages", "section", "answerable"}
    assert all(keys <= set(q) for q in QUESTIONS)
    assert 25 <= len(ANSWERABLE) <= 40
    unanswerable = [q for q in QUESTIONS if not q["answerable"]]
    assert len(unanswerable) >= 6
    assert all(q["document"] is None and q["pages"] == [] for q in unanswerable)
    assert {q["document"] for q in ANSWERABLE} == set(DOC_NAMES)  # every document is asked about
    assert len({q["question"] for q in QUESTIONS}) == len(QUESTIONS)


@pytest.mark.parametrize("q", ANSWERABLE, ids=[q["question"][:50] for q in ANSWERABLE])
def test_answer_is_in_the_expected_chunk_page_and_section(results, q: dict) -> None:
    r = results[q["document"]]
    holders = [c for c in r.chunks if flat(q["evidence"]) in flat(c.text)]
    assert holders, f"evidence not found in {q['document']}: {q['evidence']}"
    chunk = holders[0]
    if q["pages"]:
        assert set(q["pages"]) <= set(chunk.pages), (q["pages"], chunk.pages)
    else:
        assert chunk.pages == [] and r.pages == 0
    # The section is the heading the text sits under; a short section may share a chunk with its neighbour.
    assert chunk.section == q["section"] or flat(q["section"]) in flat(chunk.text), (chunk.section, q["section"])
    numbers = set(re.findall(r"\d+(?:[.,]\d+)*", q["answer"]))
    assert numbers <= set(re.findall(r"\d+(?:[.,]\d+)*", chunk.text)), "a figure of the answer is not in the chunk"


def test_unanswerable_questions_are_really_not_covered(results) -> None:
    corpus = " ".join(c.text for r in results.values() for c in r.chunks).lower()
    for q in (q for q in QUESTIONS if not q["answerable"]):
        words = next((v for k, v in ABSENT.items() if k in q["question"]), None)
        assert words, f"add the giveaway words of: {q['question']}"
        for word in words:
            assert word.lower() not in corpus, (q["question"], word)
