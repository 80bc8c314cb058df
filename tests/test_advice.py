"""The Home page's recommendation rules (rag_ft.advice)."""

from __future__ import annotations

import pytest

from rag_ft.advice import QUESTIONS, STEPS, recommend


@pytest.mark.parametrize(("ticked", "verdict", "pages"), [
    ((), "The base model may be enough", ("chat", "compare")),
    (("changes",), "RAG (retrieval)", ("documents", "chat", "compare")),
    (("cite",), "RAG (retrieval)", ("documents", "chat", "compare")),
    (("format",), "Prompting first", ("training", "chat")),
    (("long_prompts", "budget"), "Fine-tuning", ("training", "fine_tuning", "compare")),
    (("cite", "format"), "RAG now, fine-tuning later", ("documents", "chat", "training", "compare")),
    (("both",), "RAG now, fine-tuning later", ("documents", "chat", "training", "compare")),
    (("cite", "format", "budget"), "Both: RAG + a fine-tuned model",
     ("documents", "training", "fine_tuning", "compare")),
    (("budget",), "The base model may be enough", ("chat", "compare")),  # a budget alone calls for nothing
])
def test_recommendation_for_ticked_boxes(ticked, verdict, pages):
    advice = recommend({k: k in ticked for k in QUESTIONS})
    assert (advice.verdict, advice.pages) == (verdict, pages)
    assert advice.why and set(advice.pages) <= set(STEPS)


def test_unticked_keys_may_be_missing():
    assert recommend({"changes": True}).verdict == "RAG (retrieval)"
