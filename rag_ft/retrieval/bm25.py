"""The keyword half of retrieval: Okapi BM25 over the chunk texts of a collection.

The index is a sparse matrix of precomputed term weights per collection, built from the SQLite chunk rows of
indexed documents and rebuilt when the collection's version counter moves; a query touches only the columns
of its terms. Scores are normalised to 0..1 by what a chunk of average length matching every query term once
would get (the sum of the query terms' idf), clipped to 1: a chunk that shares one rare word with a long
question gets a small value, not 1 (normalising by the best hit would make every query look answerable).
"""

from __future__ import annotations

import sqlite3
import threading

import numpy as np
from scipy import sparse

from rag_ft.db import open_db
from rag_ft.index import chunks as chunk_rows
from rag_ft.index.documents import collection_version
from rag_ft.retrieval.context import indexed_text
from rag_ft.retrieval.metadata import DocumentMatcher
from rag_ft.settings import Settings
from rag_ft.text import bm25_terms as tokenize  # retrieval's own tokenizer: see rag_ft.text why

K1, B = 1.2, 0.75


class BM25Index:
    """Okapi BM25 with every (chunk, term) weight precomputed in a CSC matrix: a query sums a few columns."""

    def __init__(self, ids: list[str], texts: list[str]) -> None:
        self.ids = ids
        self.row = {cid: i for i, cid in enumerate(ids)}
        # set by bm25_index for a collection: each row's document id, and the documents' term profiles
        self.document_ids: list[str] = []
        self.matcher: DocumentMatcher | None = None
        self.document_rows = np.zeros(0, dtype=np.int64)  # each chunk row's document row in the matcher
        vocab: dict[str, int] = {}
        indptr, indices, data = [0], [], []
        lengths = np.zeros(len(texts), dtype=np.float32)
        for d, text in enumerate(texts):
            counts: dict[int, int] = {}
            toks = tokenize(text)
            lengths[d] = len(toks)
            for t in toks:
                j = vocab.setdefault(t, len(vocab))
                counts[j] = counts.get(j, 0) + 1
            indices.extend(counts.keys())
            data.extend(counts.values())
            indptr.append(len(indices))
        self.vocab = vocab
        n = len(texts)
        tf = sparse.csr_matrix((np.asarray(data, dtype=np.float32), np.asarray(indices, dtype=np.int32),
                                np.asarray(indptr, dtype=np.int64)), shape=(n, max(1, len(vocab))))
        df = np.bincount(tf.indices, minlength=tf.shape[1]).astype(np.float32)
        self.idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
        avg = float(lengths.mean()) if n else 1.0
        norm = K1 * (1 - B + B * lengths / max(avg, 1e-9))  # per row
        rows = np.repeat(np.arange(n), np.diff(tf.indptr))
        tfv = tf.data
        tf.data = (self.idf[tf.indices] * tfv * (K1 + 1) / (tfv + norm[rows])).astype(np.float32)
        self.weights = tf.tocsc()

    def __len__(self) -> int:
        return len(self.ids)

    def scores(self, query: str) -> tuple[np.ndarray, float]:
        """Raw BM25 score of every chunk, and the normaliser (sum of the query terms' idf)."""
        cols = sorted({self.vocab[t] for t in tokenize(query) if t in self.vocab})
        if not cols or not len(self.ids):
            return np.zeros(len(self.ids), dtype=np.float32), 0.0
        sub = self.weights[:, cols]
        return np.asarray(sub.sum(axis=1)).ravel(), float(self.idf[cols].sum())

    def normalised(self, raw: np.ndarray, norm: float) -> np.ndarray:
        return np.minimum(1.0, raw / norm) if norm > 0 else raw


_CACHE: dict[tuple[str, str], tuple[int, BM25Index]] = {}
_CACHE_LOCK = threading.Lock()


def bm25_index(settings: Settings, collection: str, conn: sqlite3.Connection | None = None) -> BM25Index:
    """The collection's BM25 index, rebuilt only when the collection changed since the last build."""
    own = conn is None
    if own:
        conn = open_db(settings)
    try:
        key = (str(settings.db_path.resolve()), collection)
        version = collection_version(settings, collection, conn)
        with _CACHE_LOCK:
            hit = _CACHE.get(key)
            if hit and hit[0] == version:
                return hit[1]
        rows = chunk_rows.indexed_for_search(conn, collection)
    finally:
        if own:
            conn.close()
    # BM25 sees each chunk with its contextual header (document name, section): rag_ft.retrieval.context
    index = BM25Index([r[0] for r in rows], [indexed_text(r[4], r[2], r[3]) for r in rows])
    index.document_ids = [r[1] for r in rows]
    by_doc: dict[str, tuple[str, list[str]]] = {}
    for _, doc_id, name, _, text in rows:
        by_doc.setdefault(doc_id, (name, []))[1].append(text)
    index.matcher = DocumentMatcher((doc_id, name, texts) for doc_id, (name, texts) in by_doc.items())
    index.document_rows = np.asarray([index.matcher.row[d] for d in index.document_ids], dtype=np.int64)
    with _CACHE_LOCK:
        _CACHE[key] = (version, index)
    return index


def clear_cache() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()


__all__ = ["B", "K1", "BM25Index", "bm25_index", "clear_cache", "tokenize"]
