"""Evaluation metrics as pure functions: every number on the Compare page is computed here.

Each function takes plain values (document names, page lists, strings, floats) so it can be checked
against hand-computed cases. A metric that does not apply to a question (no ground truth, no
retrieval, no citation) is ``None`` and is left out of averages, never counted as 0.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rag_ft.chat.citations import SUPPORT_MIN  # a correct citation meets the chat's "supported" bar
from rag_ft.text import MARKER, normalize_answer


@dataclass(frozen=True)
class Ref:
    """Where a retrieved or cited passage comes from."""

    document: str
    pages: tuple[int, ...] = ()


def same_document(a: str, b: str) -> bool:
    """Document names compare by file name, case-insensitively ("Docs/Handbook.PDF" == "handbook.pdf")."""
    return bool(a) and bool(b) and a.replace("\\", "/").rsplit("/", 1)[-1].lower() == b.replace("\\", "/").rsplit(
        "/", 1
    )[-1].lower()


def is_relevant(ref: Ref, document: str, pages: Sequence[int] = (), level: str = "document", tolerance: int = 0) -> bool:
    """Does a passage match the ground truth? ``level`` is "document" or "page".

    At page level the passage must come from the expected document and one of its pages must lie within
    ``tolerance`` pages of an expected page (0 = exact, 1 = "within one page").
    """
    if not same_document(ref.document, document):
        return False
    if level == "document":
        return True
    return any(abs(p - q) <= tolerance for p in ref.pages for q in pages)


def first_relevant_rank(
    retrieved: Sequence[Ref], document: str, pages: Sequence[int] = (), level: str = "document", tolerance: int = 0
) -> int | None:
    """1-based rank of the first relevant passage; None when none is relevant (or no ground truth)."""
    if not applicable(document, pages, level):
        return None
    for rank, ref in enumerate(retrieved, 1):
        if is_relevant(ref, document, pages, level, tolerance):
            return rank
    return None


def applicable(document: str, pages: Sequence[int], level: str) -> bool:
    """Retrieval ground truth exists at this level (page level needs expected pages)."""
    return bool(document) and (level == "document" or bool(pages))


def hit_at_k(rank: int | None, k: int) -> float:
    """1.0 when the first relevant passage is within the top ``k``, else 0.0."""
    return 1.0 if rank is not None and rank <= k else 0.0


def reciprocal_rank(rank: int | None) -> float:
    """1/rank of the first relevant passage, 0.0 when none was retrieved (MRR is its mean)."""
    return 1.0 / rank if rank else 0.0


def citation_precision(cited: Sequence[tuple[Sequence[float], bool]], dangling: int = 0) -> float | None:
    """Share of the model's citations whose passage supports the sentence that cites it.

    ``cited``: per citation, the support scores (0..1, rag_ft.chat.citations.support) of its citing sentences
    and whether the model wrote the marker (False: the app attached it, which is supported by
    construction, so it is left out). ``dangling``: markers that pointed at no passage (always wrong).
    None when the model wrote no citation.
    """
    written = [scores for scores, by_model in cited if by_model]
    total = len(written) + dangling
    if total == 0:
        return None
    good = sum(1 for scores in written if scores and max(scores) >= SUPPORT_MIN)
    return good / total


def citation_recall(cited: Sequence[Ref], document: str, pages: Sequence[int] = ()) -> float | None:
    """Share of the expected pages that the answer's citations point at.

    With no expected pages, 1.0 when a citation points at the expected document, else 0.0.
    None when there is no ground truth (no expected document).
    """
    if not document:
        return None
    in_doc = [r for r in cited if same_document(r.document, document)]
    if not pages:
        return 1.0 if in_doc else 0.0
    got = {p for r in in_doc for p in r.pages}
    expected = set(pages)
    return len(expected & got) / len(expected)


# [n] markers and [Source: ...] tags
CITATION_TAGS = re.compile(MARKER.pattern + r"|\[(?:source|sources)\s*:[^\]]*\]", re.IGNORECASE)


def strip_citations(text: str) -> str:
    """The answer without [n] markers and [Source: ...] tags: F1 and similarity judge content, not format."""
    return " ".join(CITATION_TAGS.sub(" ", text).split())


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD token F1 between an answer and the reference answer (bag of normalised tokens)."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = Counter(pred) & Counter(ref)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(pred), overlap / len(ref)
    return 2 * precision * recall / (precision + recall)


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two vectors (0.0 when either is all zeros)."""
    if len(a) != len(b):
        raise ValueError(f"vectors differ in length ({len(a)} vs {len(b)})")
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


def compile_style(pattern: str) -> re.Pattern | None:
    """The user's format check as a regex (None when empty). Raises ValueError with the regex error in words."""
    if not pattern.strip():
        return None
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"The format check {pattern!r} is not a valid regular expression: {exc}") from exc


def style_match(text: str, pattern: str | re.Pattern | None) -> bool | None:
    """Does the answer follow the user's format (``re.search``)? None when no format is set."""
    if pattern is None or pattern == "":
        return None
    rx = compile_style(pattern) if isinstance(pattern, str) else pattern
    return bool(rx.search(text)) if rx else None


def not_covered_correct(answerable: bool, said_not_covered: bool) -> bool | None:
    """On an unanswerable question: did the answer say the documents do not cover it? None if answerable."""
    return None if answerable else said_not_covered


def estimate_cost(input_tokens: int, output_tokens: int, price: tuple[float, float] | None) -> float:
    """Dollars for one answer; ``price`` = (input, output) dollars per million tokens, None = free (local)."""
    if not price:
        return 0.0
    return input_tokens * price[0] / 1e6 + output_tokens * price[1] / 1e6


def mean(values: Iterable[float | bool | None]) -> float | None:
    """Average of the values that apply (None is skipped); None when nothing applies."""
    vals = [float(v) for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def percentile(values: Iterable[float | None], q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation; None when empty."""
    vals = sorted(float(v) for v in values if v is not None)
    if not vals:
        return None
    pos = (len(vals) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return vals[lo] + (vals[hi] - vals[lo]) * (pos - lo)
