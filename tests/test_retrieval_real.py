"""Retrieval among look-alike documents: contextual headers, document-aware matching, recency and document spread.

Three "quarterly reports" of two companies whose passages read the same: only the file name (company, period) and
the company name in the text tell them apart, as in real filings. Real indexing, real MiniLM, real SQLite/Chroma.
"""

from __future__ import annotations

import pytest

import rag_ft.retrieval.context as context
from rag_ft.index.documents import document_chunks, document_id, index_files
from rag_ft.index.vectors import VectorIndex
from rag_ft.records import content_hash
from rag_ft.retrieval.context import (
    contextual_text,
    embedded_text,
    header,
    indexed_text,
    name_words,
    vector_key,
)
from rag_ft.retrieval.hybrid import HybridRetriever
from rag_ft.retrieval.metadata import DocumentMatcher, name_period, period_terms


def report(company: str, growth: int, margin: int) -> bytes:
    return (
        f"# {company} quarterly report\n\n"
        f"## Revenue\n\nTotal revenue grew {growth} percent compared with the same quarter a year ago, driven by "
        f"subscriptions and services. {company} expects demand for its cloud products to stay strong.\n\n"
        f"## Gross margin\n\nGross margin was {margin} percent, as component costs fell and the product mix "
        f"shifted towards services.\n\n"
        f"## Risk factors\n\nSupply chain disruptions, currency movements and new regulation could affect "
        f"results. {company} depends on a small number of manufacturing partners.\n"
    ).encode()


FILES = [
    ("2023 Q2 Orbix.md", report("Orbix", 9, 41)),
    ("2023 Q3 Orbix.md", report("Orbix", 12, 43)),
    ("2023 Q3 Zentra.md", report("Zentra", 7, 38)),
]


@pytest.fixture
def reports(settings, local_embeddings) -> HybridRetriever:
    outs = index_files(settings, local_embeddings, FILES)
    assert [o.status for o in outs] == ["indexed"] * 3, outs
    return HybridRetriever(settings, local_embeddings, threshold=0.0)


def documents(retriever: HybridRetriever, question: str, k: int = 4) -> list[str]:
    return [p.document for p in retriever.search(question, k=k)]


# ---------------------------------------------------------------- the pieces


def test_headers_name_the_document_and_section_and_key_the_vector(monkeypatch):
    assert name_words("reports/2023_Q3-Orbix.v2.pdf") == "2023 Q3 Orbix v2"
    assert header("2023 Q3 Orbix.pdf", "Gross margin") == "2023 Q3 Orbix | Gross margin"
    assert header("notes.txt") == "notes"
    text = contextual_text("Margin was 43 percent.", "2023 Q3 Orbix.pdf", "Gross margin")
    assert text == "2023 Q3 Orbix | Gross margin\n\nMargin was 43 percent."
    assert contextual_text("Margin was 43 percent.", "x.pdf", enabled=False) == "Margin was 43 percent."
    # headers in BM25 only (the default): the vector key is the chunk's content hash, as before headers
    assert indexed_text("Same text.", "a.md") == "a\n\nSame text." and embedded_text("Same text.", "a.md") == "Same text."
    assert vector_key("Same text.", "a.md") == vector_key("Same text.", "b.md") == content_hash("Same text.")
    # headers embedded: the same passage under another document is another embedded text, so another vector
    monkeypatch.setattr(context, "EMBED_HEADERS", True)
    assert vector_key("Same text.", "a.md") != vector_key("Same text.", "b.md")


def test_periods_are_read_from_names_and_quarter_words():
    assert name_period("2023 Q3 Orbix.pdf") == (2023, 3)
    assert name_period("Benefits guide 2024.pdf") == (2024, 0)
    assert name_period("handbook.pdf") is None
    assert "q1" in period_terms("In the first quarter of 2023").split()
    assert "q3" in period_terms("during the third fiscal quarter").split()


def test_matcher_prefers_named_documents_and_stays_neutral_otherwise():
    texts = {"orbix": ["Orbix revenue grew. Orbix margin rose."] * 30, "zentra": ["Zentra revenue grew."] * 30}
    m = DocumentMatcher([("a", "2023 Q2 Orbix.md", texts["orbix"]), ("b", "2023 Q3 Orbix.md", texts["orbix"]),
                         ("c", "2023 Q3 Zentra.md", texts["zentra"])])
    rel = m.match("How did Orbix revenue change in Q3 2023?")
    assert rel is not None and rel.argmax() == 1 and rel[1] == 1.0
    assert rel[0] < 1.0 and rel[2] < rel[0]  # same company, other quarter; other company, same quarter
    latest = m.match("What was Orbix's revenue in the latest report?")
    assert latest is not None and latest[1] == 1.0 and latest[0] < 0.9  # the newer Orbix report wins
    assert m.match("How did revenue grow?") is None  # nothing tells the documents apart: no preference
    assert DocumentMatcher([("a", "one.md", ["Orbix"])]).match("Orbix") is None  # one document: nothing to prefer


# ---------------------------------------------------------------- retrieval on look-alike documents


def test_the_question_naming_company_and_period_gets_that_report_first(reports):
    assert documents(reports, "What was Orbix's gross margin in Q3 2023?")[0] == "2023 Q3 Orbix.md"
    assert documents(reports, "What was Orbix's gross margin in the second quarter of 2023?")[0] == "2023 Q2 Orbix.md"
    assert documents(reports, "What was Zentra's gross margin?")[0] == "2023 Q3 Zentra.md"
    assert documents(reports, "How much did Orbix's revenue grow according to its latest report?")[0] == \
        "2023 Q3 Orbix.md"


def test_a_question_about_several_reports_gets_passages_from_each(reports):
    top = documents(reports, "How has Orbix's gross margin changed over the quarters?")
    assert {"2023 Q2 Orbix.md", "2023 Q3 Orbix.md"} <= set(top)


def test_shown_passages_keep_their_own_text_and_vectors_follow_the_header(settings, local_embeddings, reports):
    hit = reports.search("What was Zentra's gross margin?", k=1)[0]
    stored = {c.chunk_index: c for c in document_chunks(settings, "2023 Q3 Zentra.md")}
    assert hit.document == "2023 Q3 Zentra.md" and hit.text == stored[hit.chunk_index].text  # the passage as stored
    assert not hit.text.startswith("2023 Q3 Zentra") and "Gross margin was 38 percent" in hit.text  # no header
    assert set(hit.scores) == {"vector", "bm25"} and 0 <= hit.score <= 1  # matching reorders, scores unchanged
    # headers are not embedded by default: an equal passage in another document reuses its vector, as before
    before = local_embeddings.calls
    index_files(settings, local_embeddings, [("copy of Orbix.md", FILES[1][1])])
    assert local_embeddings.calls == before
    assert len(VectorIndex(settings).ids_of_document(document_id("default", "copy of Orbix.md"))) == \
        len(document_chunks(settings, "copy of Orbix.md"))


def test_embedded_headers_give_equal_passages_of_two_documents_their_own_vectors(settings, local_embeddings,
                                                                                monkeypatch):
    monkeypatch.setattr(context, "EMBED_HEADERS", True)
    index_files(settings, local_embeddings, FILES[1:2])
    before = local_embeddings.calls
    index_files(settings, local_embeddings, [("copy of Orbix.md", FILES[1][1])])
    assert local_embeddings.calls - before == len(document_chunks(settings, "copy of Orbix.md")) > 0
