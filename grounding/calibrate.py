"""Choose the grounding adapter's decline threshold on its own validation data (never on sample_docs/).

Run: .venv/bin/python grounding/calibrate.py   (`make grounding` runs it after training)

For each validation prompt, the adapter's probability that its answer starts with the not-covered sentence
(rag_ft.models.local_chat.first_token_probability). The threshold is the cut that best separates unanswerable from
answerable prompts (balanced accuracy: the mean of both recalls, since unanswerable prompts are the minority;
ties go to the cut in the widest gap between scores). It is written to the adapter's generation.json, where
the chat model reads it (rag_ft.models.local_chat.DeclineRule). Deterministic for a given adapter: no sampling.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rag_ft.chat.prompt import NOT_COVERED  # noqa: E402
from rag_ft.models.grounding import ADAPTER_DIR  # noqa: E402
from rag_ft.models.local_chat import GENERATION_FILE, adapter_generation, first_token_probability  # noqa: E402

HERE = Path(__file__).resolve().parent


def best_threshold(answerable: list[float], unanswerable: list[float]) -> tuple[float, float]:
    """(threshold, balanced accuracy): decline when probability >= threshold.

    Candidate cuts lie midway between neighbouring scores; among the cuts with the best balanced accuracy
    the one in the widest gap wins (the largest margin on both sides, so small shifts change nothing)."""
    points = sorted(set(answerable) | set(unanswerable))
    gaps = [(points[0] / 2, points[0])] + [((a + b) / 2, b - a) for a, b in zip(points, points[1:], strict=False)]

    def balanced(t: float) -> float:
        return (sum(x < t for x in answerable) / len(answerable) + sum(x >= t for x in unanswerable) / len(unanswerable)) / 2

    best = max(balanced(t) for t, _ in gaps)
    cut = max((g for g in gaps if balanced(g[0]) == best), key=lambda g: g[1])[0]
    return round(cut, 3), best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adapter", type=Path, default=ADAPTER_DIR)
    args = ap.parse_args()
    rows = [json.loads(line) for line in (HERE / "validation.jsonl").read_text(encoding="utf-8").splitlines() if line]
    answerable, unanswerable = [], []
    for row in rows:
        p = first_token_probability(row["messages"][:2], NOT_COVERED, str(args.adapter))
        (unanswerable if row["messages"][2]["content"] == NOT_COVERED else answerable).append(p)
    threshold, balanced = best_threshold(answerable, unanswerable)
    path = args.adapter / GENERATION_FILE
    config = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    config["decline"] = {
        "text": NOT_COVERED, "min_probability": threshold,
        "validation": {"answerable": len(answerable), "unanswerable": len(unanswerable),
                       "answerable_declined": sum(x >= threshold for x in answerable),
                       "unanswerable_declined": sum(x >= threshold for x in unanswerable),
                       "balanced_accuracy": round(balanced, 3)},
        "note": "decline when the not-covered token is the likeliest (plain greedy) is what this replaces",
    }
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    adapter_generation.cache_clear()
    print(json.dumps(config["decline"]))


if __name__ == "__main__":
    main()
