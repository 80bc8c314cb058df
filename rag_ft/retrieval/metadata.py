"""Document-aware matching: a question that names a company, product, plan or period prefers the documents that
carry that name.

Chunk-level search cannot do this on look-alike documents: the passage that answers "Apple's services revenue in
Q3 2023" reads the same in every quarter's report, and neither the company nor the quarter is in it. The document
as a whole does carry them: in its file name, on its first page, in the words it uses again and again. So each
document gets a term profile, and a question is scored against the profiles before its chunks are ranked:

- two fields: the document's name (file name as words: 1 when the term is in it) and its text (the term's count,
  log-scaled up to ``SATURATE``: a name the document repeats throughout counts fully, a passing mention little);
- a term's document idf, over the collection's documents, makes only the terms that tell documents apart count:
  a word every document uses ("revenue", "employees") weighs next to nothing, a name held by a few weighs much;
- a document's match is the idf-weighted sum of the question's terms it carries, relative to the best document.

Nothing here knows a company, a ticker or a calendar: names and periods are matched as they are written in the
documents and their file names. Quarter words are the one normalisation ("first quarter" -> "q1"), because a
period is written both ways in ordinary text and both ways mean the same.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
from scipy import sparse

from rag_ft.retrieval.context import name_words
from rag_ft.text import bm25_terms

PREFERRED = 0.9  # documents matching at least this share of the best are "the documents the question names"
SATURATE = 50.0  # occurrences of a term in a document's text for it to count fully (log scale below that)
_ORDINALS = {"first": "1", "second": "2", "third": "3", "fourth": "4", "1st": "1", "2nd": "2", "3rd": "3",
             "4th": "4"}
# "the latest report", "the most recent 10-Q": the question wants the newest of the documents it names
_RECENT = re.compile(r"\b(latest|most recent|newest|current)\b", re.I)
_YEAR = re.compile(r"\b(19\d\d|20\d\d)\b")
_NAME_QUARTER = re.compile(r"\bq([1-4])\b", re.I)
RECENCY = 0.85  # how much of its match an older document keeps when the question asks for the latest
_QUARTER = re.compile(r"\b(first|second|third|fourth|1st|2nd|3rd|4th)[\s-]+(?:fiscal\s+)?quarter\b", re.I)


def name_period(name: str) -> tuple[int, int] | None:
    """(year, quarter or 0) written in a document's name ("2023 Q3 report.pdf" -> (2023, 3)); None without a year."""
    words = name_words(name)
    years = [int(y) for y in _YEAR.findall(words)]
    if not years:
        return None
    quarter = _NAME_QUARTER.search(words)
    return max(years), int(quarter.group(1)) if quarter else 0


def period_terms(text: str) -> str:
    """Quarter periods spelt out also as "qN" ("the third quarter" -> "the third quarter q3")."""
    return _QUARTER.sub(lambda m: f"{m.group(0)} q{_ORDINALS[m.group(1).lower()]}", text)


def terms(text: str) -> list[str]:
    """Matching terms: retrieval's BM25 terms, with quarter words also written as qN."""
    return bm25_terms(period_terms(text))


class DocumentMatcher:
    """Per-document term profiles of a collection, and how well a question matches each document (0..1)."""

    def __init__(self, documents: Iterable[tuple[str, str, Iterable[str]]]) -> None:
        """``documents``: (document id, document name, its chunk texts)."""
        self.ids: list[str] = []
        self.vocab: dict[str, int] = {}
        text_cells: tuple[list, list, list] = ([], [], [])
        name_cells: tuple[list, list, list] = ([], [], [])
        names: list[str] = []
        for d, (doc_id, name, texts) in enumerate(documents):
            self.ids.append(doc_id)
            names.append(name)
            counts: dict[int, float] = {}
            for text in texts:
                for t in terms(text):
                    j = self.vocab.setdefault(t, len(self.vocab))
                    counts[j] = counts.get(j, 0.0) + 1.0
            for j, c in counts.items():  # log-saturated: a passing mention weighs little, a recurring name fully
                _cell(text_cells, d, j, min(1.0, float(np.log1p(c) / np.log1p(SATURATE))))
            for t in set(terms(name_words(name))):
                _cell(name_cells, d, self.vocab.setdefault(t, len(self.vocab)), 1.0)
        self.row = {doc_id: i for i, doc_id in enumerate(self.ids)}
        self.periods = [name_period(name) for name in names]
        # two fields, each with its own document idf: the name (a period in "2023 Q3 report" tells quarters
        # apart even when every report's text mentions every year) and the text
        self.text, self.text_idf = _field(text_cells, len(self.ids), len(self.vocab))
        self.name, self.name_idf = _field(name_cells, len(self.ids), len(self.vocab))

    def __len__(self) -> int:
        return len(self.ids)

    def match(self, query: str) -> np.ndarray | None:
        """Each document's match with the question relative to the best one (1.0), in ``ids`` order; None when
        no document stands out (fewer than two documents, or no question term tells them apart)."""
        if len(self.ids) < 2:
            return None
        cols = sorted({self.vocab[t] for t in terms(query) if t in self.vocab})
        if not cols:
            return None
        scores = (np.asarray(self.text[:, cols] @ self.text_idf[cols]).ravel()
                  + np.asarray(self.name[:, cols] @ self.name_idf[cols]).ravel())
        best = float(scores.max())
        if best <= 0 or float(scores.min()) >= best * 0.999:  # every document matches alike: no preference
            return None
        rel = scores / best
        if _RECENT.search(query):
            self._prefer_latest(rel)
        return rel

    def _prefer_latest(self, rel: np.ndarray) -> None:
        """Among the documents the question matches best, the older ones (by the period in their names) keep
        only RECENCY of their match."""
        group = [i for i in np.nonzero(rel >= PREFERRED)[0] if self.periods[i] is not None]
        if len(group) < 2:
            return
        newest = max(self.periods[i] for i in group)
        for i in group:
            if self.periods[i] != newest:
                rel[i] *= RECENCY


def _cell(cells: tuple[list, list, list], row: int, col: int, value: float) -> None:
    cells[0].append(row)
    cells[1].append(col)
    cells[2].append(value)


def _field(cells: tuple[list, list, list], n: int, width: int) -> tuple[sparse.csc_matrix, np.ndarray]:
    """A documents x terms weight matrix, and each term's idf over the documents (soft: weights, not presence)."""
    rows, cols, vals = cells
    matrix = sparse.csr_matrix((np.asarray(vals, dtype=np.float32), (rows, cols)), shape=(n, max(1, width)))
    df = np.asarray(matrix.sum(axis=0)).ravel()
    idf = np.log1p(np.maximum(0.0, n - df + 0.5) / (df + 0.5)).astype(np.float32)
    return matrix.tocsc(), idf


__all__ = ["PREFERRED", "RECENCY", "SATURATE", "DocumentMatcher", "name_period", "period_terms", "terms"]
