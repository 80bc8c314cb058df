"""Retrieval-only evaluation of a question set against an indexed collection (the command line's ``eval``).

No model answers anything here: each question is searched, and the ranks of the passages from the expected
documents and pages are scored with the Compare page's definitions (``rag_ft.evaluation.metrics``):
hit@k and MRR at document level, at page level (exact, and within one page) where the question carries
pages, and, for questions naming several expected documents, recall@k = the share of those documents with a
passage in the top k. Unanswerable questions and questions with no expected document have no retrieval
ground truth and are left out (counted), as on the Compare page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rag_ft.evaluation import metrics as m

# search(question, k) -> the retrieved passages' (document, pages), best first
Search = Callable[[str, int], Sequence[m.Ref]]
# progress(done, total, message)
ProgressFn = Callable[[int, int, str], None]


def expected_refs(question: Any) -> list[m.Ref]:
    """Every (document, pages) the question expects: ``expected`` when the row named several, else its one document."""
    refs = list(getattr(question, "expected", None) or [])
    if refs:
        return refs
    if getattr(question, "document", ""):
        return [m.Ref(question.document, tuple(question.pages or ()))]
    return []


def expected_documents(refs: Iterable[m.Ref]) -> list[str]:
    """The distinct expected document names, in order (same_document decides what is the same)."""
    out: list[str] = []
    for r in refs:
        if not any(m.same_document(r.document, d) for d in out):
            out.append(r.document)
    return out


def first_rank(retrieved: Sequence[m.Ref], refs: Sequence[m.Ref], level: str, tolerance: int = 0) -> int | None:
    """Rank of the first passage relevant to ANY expected (document, pages); None when none is, or no ground truth."""
    ranks = [m.first_relevant_rank(retrieved, r.document, r.pages, level, tolerance) for r in refs]
    found = [r for r in ranks if r is not None]
    return min(found) if found else None


def page_level_applies(refs: Sequence[m.Ref]) -> bool:
    return any(m.applicable(r.document, r.pages, "page") for r in refs)


def recall_at_k(retrieved: Sequence[m.Ref], documents: Sequence[str], k: int) -> float | None:
    """Share of the expected documents with a passage in the top k; None with fewer than two expected documents."""
    if len(documents) < 2:
        return None
    top = list(retrieved[:k])
    return sum(m.hit_at_k(m.first_relevant_rank(top, d), k) for d in documents) / len(documents)


@dataclass
class QuestionResult:
    question: str
    documents: list[str]
    doc_rank: int | None
    page_rank: int | None = None  # None also when page level does not apply (see page_applies)
    page_rank_near: int | None = None
    page_applies: bool = False
    recall: float | None = None
    retrieved: list[dict[str, Any]] = field(default_factory=list)


def score_question(question: str, refs: Sequence[m.Ref], retrieved: Sequence[m.Ref], k: int) -> QuestionResult:
    documents = expected_documents(refs)
    pages = page_level_applies(refs)
    return QuestionResult(
        question=question,
        documents=documents,
        doc_rank=first_rank(retrieved, refs, "document"),
        page_rank=first_rank(retrieved, refs, "page") if pages else None,
        page_rank_near=first_rank(retrieved, refs, "page", tolerance=1) if pages else None,
        page_applies=pages,
        recall=recall_at_k(retrieved, documents, k),
        retrieved=[{"document": r.document, "pages": list(r.pages)} for r in retrieved],
    )


@dataclass
class RetrievalReport:
    k: int
    total: int  # questions in the file
    evaluated: int
    unanswerable: int  # left out: no retrieval ground truth
    no_document: int  # answerable but naming no expected document: left out
    skipped_not_indexed: int  # left out by only_indexed
    not_indexed: int  # evaluated although an expected document is not in the collection (counted as misses)
    results: list[QuestionResult] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The aggregated numbers; a level with no applicable question is None (n/a), never 0."""
        k = self.k
        docs = [r.doc_rank for r in self.results]
        pages = [r for r in self.results if r.page_applies]
        multi = [r.recall for r in self.results if r.recall is not None]

        def level(ranks: list[int | None]) -> dict[str, Any] | None:
            if not ranks:
                return None
            return {"questions": len(ranks), "hit@1": m.mean(m.hit_at_k(r, 1) for r in ranks),
                    f"hit@{k}": m.mean(m.hit_at_k(r, k) for r in ranks),
                    "mrr": m.mean(m.reciprocal_rank(r) for r in ranks)}

        return {
            "k": k,
            "questions": {"in_file": self.total, "evaluated": self.evaluated, "unanswerable": self.unanswerable,
                          "no_expected_document": self.no_document, "skipped_not_indexed": self.skipped_not_indexed,
                          "not_indexed_counted_as_misses": self.not_indexed},
            "document": level(docs),
            "page": level([r.page_rank for r in pages]),
            "page_within_one": level([r.page_rank_near for r in pages]),
            "multi_document": {"questions": len(multi), f"recall@{k}": m.mean(multi)} if multi else None,
        }

    def as_dict(self) -> dict[str, Any]:
        return {**self.summary(), "results": [asdict(r) for r in self.results]}


def evaluate_retrieval(
    questions: Sequence[Any],
    search: Search,
    k: int = 4,
    indexed: Iterable[str] | None = None,
    only_indexed: bool = False,
    progress: ProgressFn | None = None,
) -> RetrievalReport:
    """Search every question with ground truth and score the ranks.

    ``questions``: ``EvalQuestion``-like objects (question, answerable, document, pages, optional expected).
    ``indexed``: the collection's indexed document names; with ``only_indexed`` a question is skipped unless
    all its expected documents are among them (a subset of a corpus can then be evaluated fairly).
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    names = list(indexed) if indexed is not None else None
    report = RetrievalReport(k, len(questions), 0, 0, 0, 0, 0)
    todo: list[tuple[Any, list[m.Ref]]] = []
    for q in questions:
        refs = expected_refs(q)
        if not q.answerable:
            report.unanswerable += 1
        elif not refs:
            report.no_document += 1
        else:
            missing = names is not None and any(
                not any(m.same_document(d, n) for n in names) for d in expected_documents(refs))
            if missing and only_indexed:
                report.skipped_not_indexed += 1
                continue
            report.not_indexed += bool(missing)
            todo.append((q, refs))
    for i, (q, refs) in enumerate(todo):
        if progress:
            progress(i, len(todo), q.question)
        retrieved = list(search(q.question, k))
        report.results.append(score_question(q.question, refs, retrieved, k))
    if progress:
        progress(len(todo), len(todo), "done")
    report.evaluated = len(report.results)
    return report
