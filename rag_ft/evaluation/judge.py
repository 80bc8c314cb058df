"""The optional LLM judge: an OpenAI model grades groundedness and relevance (a judgement, not a measurement)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

JUDGE_PROMPT = """You grade an answer to a question. Reply with JSON only, like {{"groundedness": 4, "relevance": 5}}.
groundedness (1-5): how far every claim in the answer is supported by the passages (5 = all supported;
if there are no passages, how far the answer avoids unsupported claims).
relevance (1-5): how directly the answer addresses the question (5 = fully).

Question: {question}

Passages:
{passages}

Answer: {answer}"""


def judge_answer(model: Any, question: str, answer: str, passages: Sequence[dict]) -> dict[str, Any]:
    """An LLM's judgement of groundedness and relevance (1-5): a judgement, not a measurement."""
    block = "\n\n".join(f"[{i}] {p['text'][:1500]}" for i, p in enumerate(passages, 1)) or "(none)"
    prompt = JUDGE_PROMPT.format(question=question, passages=block, answer=answer or "(empty)")
    try:
        reply = model.invoke(prompt).content
    except Exception as exc:
        from rag_ft.chat.chain import explain_error

        return {"judge_error": explain_error(exc)}
    scores = parse_judgement(reply if isinstance(reply, str) else str(reply))
    if scores is None:
        return {"judge_error": f"The judge's reply was not the JSON asked for: {str(reply)[:120]!r}"}
    return {"judge_groundedness": scores[0], "judge_relevance": scores[1]}


def parse_judgement(text: str) -> tuple[int, int] | None:
    """(groundedness, relevance) from the judge's reply, each 1-5; None when the reply has no valid pair."""
    match = re.search(r"\{.*?\}", text, re.S)
    if not match:
        return None
    try:
        data = json.loads(match.group(0))
        g, r = int(data["groundedness"]), int(data["relevance"])
    except (ValueError, KeyError, TypeError):
        return None
    if not (1 <= g <= 5 and 1 <= r <= 5):
        return None
    return g, r
