"""Hybrid retrieval: BM25 maths, score ranges, k, threshold, hybrid vs vector, live-only results, pages,
and the retriever as a LangChain BaseRetriever."""

from __future__ import annotations

import math

import numpy as np
import pytest
from documents_fixtures import markdown
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from procs import run_async

from rag_ft.index.documents import delete_document, index_files
from rag_ft.records import Passage
from rag_ft.retrieval.bm25 import K1, B, BM25Index, bm25_index, tokenize
from rag_ft.retrieval.hybrid import HybridRetriever, Retriever

SUPPORT = [
    ("billing.md", b"# Billing FAQ\n\n## Refunds\n\nRefunds for annual plans are paid back within 14 days of the "
                   b"request, to the card used for the purchase.\n\n## Invoices\n\nInvoices are e-mailed on the "
                   b"first day of each month and can be downloaded as PDF from the Billing tab.\n"),
    ("api.md", b"# API reference\n\n## Rate limits\n\nThe API accepts 600 requests per minute per key. Above that "
               b"it answers HTTP 429 with the error code QX-4471 and a Retry-After header.\n\n## Tokens\n\n"
               b"Personal access tokens expire after 90 days; create them under Settings, then Developer.\n"),
    ("account.md", b"# Account guide\n\n## Two-factor authentication\n\nTurn on two-factor authentication under "
                   b"Security. Codes from the authenticator app change every 30 seconds.\n\n## Deleting an "
                   b"account\n\nAn owner can delete the workspace; data is kept for 30 days, then erased.\n"),
]


def test_tokenize_lowercases_drops_stopwords_and_stems_lightly():
    assert tokenize("How do I get my Refunds for the invoices?") == ["get", "refund", "invoice"]
    assert tokenize("QX-4471 policies billing") == ["qx", "4471", "policy", "bill"]
    assert tokenize("Überweisung señal") == ["überweisung", "señal"]


def test_bm25_matches_the_okapi_formula_and_normalises_to_0_1():
    texts = ["alpha beta beta", "beta gamma", "delta epsilon zeta eta"]
    index = BM25Index(["a", "b", "c"], texts)
    raw, norm = index.scores("beta")
    n, df, avg = 3, 2, (3 + 2 + 4) / 3
    idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
    expect_a = idf * 2 * (K1 + 1) / (2 + K1 * (1 - B + B * 3 / avg))
    expect_b = idf * 1 * (K1 + 1) / (1 + K1 * (1 - B + B * 2 / avg))
    assert raw == pytest.approx([expect_a, expect_b, 0.0], rel=1e-5)
    assert norm == pytest.approx(idf, rel=1e-5)
    normed = index.normalised(raw, norm)
    assert np.all((normed >= 0) & (normed <= 1)) and normed[0] == 1.0
    # one of three query words matched: far from 1; nothing matched: zeros
    part = index.normalised(*index.scores("epsilon omega kappa"))
    assert 0 < part[2] <= 1 and index.scores("omega kappa")[1] == 0.0
    # the rare term decides: "gamma" only in b
    assert int(np.argmax(index.scores("beta gamma")[0])) == 1


@pytest.fixture
def support(settings, local_embeddings):
    outs = index_files(settings, local_embeddings, SUPPORT)
    assert all(o.status == "indexed" for o in outs)
    return HybridRetriever(settings, local_embeddings)


def test_results_carry_scores_pages_sections_and_respect_k(support, settings):
    hits = support.search("how long until my refund is paid back", k=2, threshold=0)
    assert len(hits) == 2 and hits[0].document == "billing.md" and hits[0].section
    assert "14 days" in hits[0].text
    for p in hits:
        assert 0 <= p.score <= 1 and set(p.scores) == {"vector", "bm25"}
        assert p.chunk_id and p.document_id
    assert hits[0].score >= hits[1].score
    assert len(support.search("refund", threshold=0)) <= settings.retrieval_k  # k defaults to the setting


def test_it_is_a_langchain_retriever_returning_documents(support):
    assert isinstance(support, BaseRetriever) and Retriever is HybridRetriever
    query = "how long until my refund is paid back"
    docs = support.invoke(query, k=2, threshold=0)
    assert [type(d) for d in docs] == [Document, Document]
    meta = docs[0].metadata
    assert meta["document"] == "billing.md" and meta["section"] and "14 days" in docs[0].page_content
    assert set(meta) >= {"document", "pages", "section", "chunk_index", "chunk_id", "document_id", "score", "scores"}
    assert docs[0].id == meta["chunk_id"] and set(meta["scores"]) == {"vector", "bm25"}
    # the same hits as search(), through the one Document <-> Passage conversion
    assert [Passage.from_document(d) for d in docs] == support.search(query, k=2, threshold=0)
    # fields set on the retriever are the defaults of every call; batch and async work like any retriever's
    one = support.model_copy(update={"k": 1, "threshold": 0.0})
    batched = one.batch([query, "QX-4471"])
    assert [len(b) for b in batched] == [1, 1] and batched[1][0].metadata["document"] == "api.md"
    assert run_async(one.ainvoke("QX-4471", hybrid=False))[0].metadata["scores"].keys() == {"vector"}
    assert support.invoke("best chocolate cake recipe with strawberries") == []  # the settings' threshold


def test_exact_codes_are_found_by_the_keyword_half(support):
    [top, *_] = support.search("QX-4471", threshold=0)
    assert top.document == "api.md" and top.scores["bm25"] > 0.8 and "QX-4471" in top.text
    vector_only = support.search("QX-4471", hybrid=False, threshold=0)
    assert set(vector_only[0].scores) == {"vector"} and vector_only[0].score == vector_only[0].scores["vector"]
    assert top.score > vector_only[0].score  # the exact match is more certain in hybrid


def test_threshold_turns_off_topic_questions_into_no_passages(support, settings):
    assert settings.relevance_threshold == 0.25
    assert support.search("best chocolate cake recipe with strawberries") == []
    assert support.search("two-factor authentication codes")[0].document == "account.md"
    assert support.search("two-factor authentication codes", threshold=0.99) == []
    assert support.search("   ") == [] and support.search("refund", k=0) == []


def test_index_changes_reach_bm25_and_vectors(support, settings, local_embeddings):
    before = bm25_index(settings, "default")
    index_files(settings, local_embeddings, [("status.md", b"# Status\n\nThe status page lives at status.example.test "
                                                           b"and reports incidents of the Zanzibar cluster.")])
    after = bm25_index(settings, "default")
    assert after is not before and len(after) == len(before) + 1
    assert support.search("Zanzibar cluster incidents")[0].document == "status.md"
    assert bm25_index(settings, "default") is after  # unchanged collection: cached index
    delete_document(settings, "status.md")
    assert all(p.document != "status.md" for p in support.search("Zanzibar cluster incidents", threshold=0))


def test_passages_cite_every_page_of_a_pdf(settings, local_embeddings, shared_docs):
    data = (shared_docs / "layout-parser-paper-fast.pdf").read_bytes()
    [out] = index_files(settings, local_embeddings, [("paper.pdf", data)])
    assert out.status == "indexed" and out.pages >= 2
    hits = Retriever(settings, local_embeddings).search("layout detection models", k=5, threshold=0)
    assert hits and all(p.document == "paper.pdf" and p.pages and p.page_label.startswith("p") for p in hits)
    assert all(1 <= pg <= out.pages for p in hits for pg in p.pages)


def test_many_sections_rank_the_right_one_first(settings, local_embeddings):
    index_files(settings, local_embeddings, [("guide.md", markdown(12, overrides={7: "Ask for the lighthouse badge."}))])
    top = Retriever(settings, local_embeddings).search("lighthouse badge", k=3)[0]
    assert top.section == "Topic 7" and "lighthouse" in top.text
