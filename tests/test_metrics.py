"""Metric functions against hand-computed values."""

import math

import pytest

from rag_ft.evaluation.metrics import (
    Ref,
    citation_precision,
    citation_recall,
    cosine,
    estimate_cost,
    first_relevant_rank,
    hit_at_k,
    mean,
    normalize_answer,
    not_covered_correct,
    percentile,
    reciprocal_rank,
    strip_citations,
    style_match,
    token_f1,
)

# Three retrieved passages: a wrong document, then the right document twice (pages 7 and 4-5).
RETRIEVED = [Ref("faq.md", ()), Ref("Handbook.pdf", (7,)), Ref("handbook.pdf", (4, 5))]


def test_document_level_rank_hit_and_mrr():
    rank = first_relevant_rank(RETRIEVED, "handbook.pdf", [3], level="document")
    assert rank == 2  # names compare case-insensitively
    assert hit_at_k(rank, 1) == 0.0 and hit_at_k(rank, 2) == 1.0 and hit_at_k(rank, 3) == 1.0
    assert reciprocal_rank(rank) == 0.5


def test_page_level_exact_and_within_one_page():
    exact = first_relevant_rank(RETRIEVED, "handbook.pdf", [3], level="page")
    near = first_relevant_rank(RETRIEVED, "handbook.pdf", [3], level="page", tolerance=1)
    assert exact is None and hit_at_k(exact, 3) == 0.0 and reciprocal_rank(exact) == 0.0
    assert near == 3 and reciprocal_rank(near) == pytest.approx(1 / 3)  # page 4 is one away from 3
    # page 7 matches exactly at rank 2; the same page in another document never counts
    assert first_relevant_rank(RETRIEVED, "handbook.pdf", [7, 9], level="page") == 2
    assert first_relevant_rank([Ref("other.pdf", (7,))], "handbook.pdf", [7], level="page") is None


def test_mrr_over_questions_by_hand():
    # ranks 1, 3, none -> (1 + 1/3 + 0) / 3 = 0.4444
    ranks = [1, 3, None]
    assert mean(reciprocal_rank(r) for r in ranks) == pytest.approx(4 / 9)
    assert mean(hit_at_k(r, 2) for r in ranks) == pytest.approx(1 / 3)


def test_retrieval_metrics_do_not_apply_without_ground_truth():
    assert first_relevant_rank(RETRIEVED, "", [], level="document") is None
    assert first_relevant_rank(RETRIEVED, "handbook.pdf", [], level="page") is None


def test_citation_precision():
    # two model citations: one supported (best sentence 0.5), one not (0.1, 0.2); one attached by the app
    cited = [([0.5, 0.1], True), ([0.1, 0.2], True), ([0.9], False)]
    assert citation_precision(cited) == 0.5
    assert citation_precision(cited, dangling=2) == 0.25  # markers pointing at no passage are wrong
    assert citation_precision([([0.9], False)]) is None  # the model cited nothing itself
    assert citation_precision([([0.25], True)]) == 1.0  # the bar is inclusive


def test_citation_recall():
    cited = [Ref("handbook.pdf", (3, 4)), Ref("faq.md", (5,))]
    assert citation_recall(cited, "handbook.pdf", [3, 5]) == 0.5  # page 5 is cited, but in another document
    assert citation_recall(cited, "handbook.pdf", [3, 4]) == 1.0
    assert citation_recall(cited, "handbook.pdf", []) == 1.0
    assert citation_recall([Ref("faq.md", ())], "handbook.pdf", []) == 0.0
    assert citation_recall([], "handbook.pdf", [1]) == 0.0
    assert citation_recall(cited, "", []) is None


def test_token_f1_squad_style():
    assert normalize_answer("The  Cat, sat!") == "cat sat"
    # pred tokens: 20 days  | ref: 20 days of leave -> P=2/2, R=2/4, F1=2*1*.5/1.5=0.6667
    assert token_f1("20 days.", "20 days of leave") == pytest.approx(2 / 3)
    assert token_f1("An apple", "the APPLE") == 1.0
    assert token_f1("no", "yes") == 0.0
    assert token_f1("", "") == 1.0 and token_f1("", "x") == 0.0
    # a repeated token counts as often as both sides have it: pred "x b b", ref "b b b" -> overlap 2, P=R=2/3
    assert token_f1("x b b", "b b b") == pytest.approx(2 / 3)


def test_strip_citations_before_f1():
    assert strip_citations("Leave is 25 days [1, 2]. [Source: handbook.pdf, Section 3]") == "Leave is 25 days ."
    assert token_f1(strip_citations("25 days [1]."), "25 days") == 1.0


def test_cosine():
    assert cosine([1, 0], [0, 1]) == 0.0
    assert cosine([1, 1], [2, 2]) == pytest.approx(1.0)
    assert cosine([3, 4], [4, 3]) == pytest.approx(24 / 25)
    assert cosine([0, 0], [1, 2]) == 0.0
    with pytest.raises(ValueError):
        cosine([1], [1, 2])


def test_style_match():
    rule = r"\[Source: .+\]\s*$"
    assert style_match("Leave is 25 days. [Source: handbook.pdf, Section 3]\n", rule) is True
    assert style_match("[Source: handbook.pdf] Leave is 25 days.", rule) is False
    assert style_match("anything", "") is None
    with pytest.raises(ValueError, match="not a valid regular expression"):
        style_match("x", "[unclosed")


def test_not_covered_rate_and_cost_and_latency():
    assert not_covered_correct(answerable=False, said_not_covered=True) is True
    assert not_covered_correct(answerable=False, said_not_covered=False) is False
    assert not_covered_correct(answerable=True, said_not_covered=True) is None
    assert mean([True, False, None, True]) == pytest.approx(2 / 3)
    # 1,000 input at $0.40/M + 200 output at $1.60/M = 0.0004 + 0.00032
    assert estimate_cost(1000, 200, (0.40, 1.60)) == pytest.approx(0.00072)
    assert estimate_cost(1000, 200, None) == 0.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 95) == 5.0 and percentile([], 50) is None
    assert mean([]) is None and not math.isnan(mean([0.0]))
