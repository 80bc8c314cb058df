"""Hybrid retrieval: BM25 over the chunk texts + vector similarity from Chroma, fused into one 0..1 score.

Why hybrid: embeddings miss exact tokens (error codes, API names, version numbers, plan names) that users
type; BM25 catches them, while vectors catch paraphrases. Both are normalised to 0..1 and combined linearly
(``score = VECTOR_WEIGHT * vector + (1 - VECTOR_WEIGHT) * bm25``), so the relevance threshold means the same
thing for every query:
- vector: cosine similarity of query and chunk, clipped to 0..1;
- bm25: the BM25 score divided by what a chunk of average length matching every query term once would get
  (the sum of the query terms' idf), clipped to 1. A chunk that shares one rare word with a long question
  gets a small value, not 1 (normalising by the best hit would make every query look answerable).

The BM25 index is a sparse matrix of precomputed term weights per collection, built from the SQLite chunk
rows of indexed documents and rebuilt when the collection's version counter moves; a query touches only the
columns of its terms. Only chunks of documents marked 'indexed' are ever returned (SQLite is the source of
truth; Chroma may hold vectors of an interrupted run).
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings
from scipy import sparse

from rag_ft.index.documents import _db, collection_version
from rag_ft.index.vectors import VectorIndex
from rag_ft.models.providers import embedding_id
from rag_ft.records import Passage
from rag_ft.settings import Settings

VECTOR_WEIGHT = 0.6
K1, B = 1.2, 0.75
CANDIDATES = 30  # per method, before fusion

STOPWORDS = frozenset(
    "a an and are as at be been but by can could do does did for from how i if in into is it its me my of on "
    "or our so than that the their them then there these they this to was we were what when where which who "
    "why will with would you your yours he she his her us am has have had not no any all".split()
)
_WORD = re.compile(r"\w+", re.UNICODE)


def _stem(word: str) -> str:
    """A deliberately light stemmer: plurals and a few verb endings (refunds -> refund, billing -> bill)."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 5 and word.endswith("ing"):
        return word[:-3]
    if len(word) > 4 and word.endswith("ed") and not word.endswith("eed"):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    return [_stem(w) for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


class BM25Index:
    """Okapi BM25 with every (chunk, term) weight precomputed in a CSC matrix: a query sums a few columns."""

    def __init__(self, ids: list[str], texts: list[str]) -> None:
        self.ids = ids
        self.row = {cid: i for i, cid in enumerate(ids)}
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
_VINDEX: dict[tuple, tuple[int, VectorIndex]] = {}


def bm25_index(settings: Settings, collection: str, conn: sqlite3.Connection | None = None) -> BM25Index:
    """The collection's BM25 index, rebuilt only when the collection changed since the last build."""
    own = conn is None
    if own:
        conn = _db(settings)
    try:
        key = (str(settings.db_path.resolve()), collection)
        version = collection_version(settings, collection, conn)
        with _CACHE_LOCK:
            hit = _CACHE.get(key)
            if hit and hit[0] == version:
                return hit[1]
        rows = conn.execute(
            "SELECT c.id, c.text FROM chunks c JOIN documents d ON d.id = c.document_id "
            "WHERE d.collection=? AND d.status='indexed'", (collection,)).fetchall()
    finally:
        if own:
            conn.close()
    index = BM25Index([r[0] for r in rows], [r[1] for r in rows])
    with _CACHE_LOCK:
        _CACHE[key] = (version, index)
    return index


@dataclass
class _Candidate:
    chunk_id: str
    vector: float = 0.0
    bm25: float = 0.0


class Retriever:
    """``search(query, k, collection, hybrid, threshold)`` -> passages, best first, scores in 0..1."""

    def __init__(self, settings: Settings, embeddings: Embeddings) -> None:
        self.settings = settings
        self.embeddings = embeddings

    def _vector_index(self, collection: str, version: int) -> VectorIndex:
        """An open, model-checked VectorIndex, shared by every Retriever until the collection changes."""
        s = self.settings
        key = (str(s.db_path.resolve()), s.chroma_host, s.chroma_port, collection, embedding_id(s))
        hit = _VINDEX.get(key)
        if hit and hit[0] == version:
            return hit[1]
        vindex = VectorIndex(s, collection)
        vindex.check(embedding_id(s))  # raises EmbeddingMismatch
        _VINDEX[key] = (version, vindex)
        return vindex

    def search(
        self, query: str, k: int | None = None, collection: str = "default", hybrid: bool | None = None,
        threshold: float | None = None,
    ) -> list[Passage]:
        k = self.settings.retrieval_k if k is None else int(k)
        hybrid = self.settings.hybrid if hybrid is None else bool(hybrid)
        threshold = self.settings.relevance_threshold if threshold is None else float(threshold)
        if not query.strip() or k <= 0:
            return []
        conn = _db(self.settings)  # one connection for the whole search
        try:
            vindex = self._vector_index(collection, collection_version(self.settings, collection, conn))
            bm25 = bm25_index(self.settings, collection, conn)  # also the set of live chunk ids
            if not len(bm25):
                return []
            return self._search(conn, vindex, bm25, query, k, hybrid, threshold)
        finally:
            conn.close()

    def _search(self, conn: sqlite3.Connection, vindex: VectorIndex, bm25: BM25Index, query: str, k: int,
                hybrid: bool, threshold: float) -> list[Passage]:
        qvec = np.asarray(self.embeddings.embed_query(query), dtype=np.float32)
        pool = max(CANDIDATES, 3 * k)
        cands: dict[str, _Candidate] = {}
        hits = vindex.query(qvec.tolist(), pool)
        for cid, sim in hits:
            if cid in bm25.row:  # drop vectors of documents that are not (or no longer) indexed
                cands[cid] = _Candidate(cid, vector=sim)
        if hybrid:
            raw, norm = bm25.scores(query)
            if norm > 0:
                normed = bm25.normalised(raw, norm)
                for c in cands.values():
                    c.bm25 = float(normed[bm25.row[c.chunk_id]])
                top = np.argpartition(-raw, min(pool, len(raw) - 1))[:pool] if len(raw) > pool else np.arange(len(raw))
                extra = [_Candidate(bm25.ids[r], bm25=float(normed[r])) for r in top
                         if raw[r] > 0 and bm25.ids[r] not in cands]
                # A BM25-only hit is not among the nearest vectors, so its similarity is at most the pool's
                # lowest: fetch its stored vector only when that bound could still put it in the top k.
                floor = min((sim for _, sim in hits), default=1.0) if len(hits) >= pool else 1.0
                known = sorted((VECTOR_WEIGHT * c.vector + (1 - VECTOR_WEIGHT) * c.bm25 for c in cands.values()),
                               reverse=True)
                kth = known[k - 1] if len(known) >= k else -1.0
                extra = [c for c in extra if VECTOR_WEIGHT * floor + (1 - VECTOR_WEIGHT) * c.bm25 >= max(kth, threshold)]
                if extra:  # their vector similarity from the stored vectors
                    qn = qvec / (np.linalg.norm(qvec) or 1.0)
                    for cid, vec in vindex.vectors_by_id([c.chunk_id for c in extra]).items():
                        v = np.asarray(vec, dtype=np.float32)
                        sim = float(max(0.0, min(1.0, qn @ (v / (np.linalg.norm(v) or 1.0)))))
                        cands[cid] = _Candidate(cid, vector=sim, bm25=float(normed[bm25.row[cid]]))

        def fused(c: _Candidate) -> float:
            return VECTOR_WEIGHT * c.vector + (1 - VECTOR_WEIGHT) * c.bm25 if hybrid else c.vector

        ranked = sorted(cands.values(), key=fused, reverse=True)
        chosen = [c for c in ranked if fused(c) >= threshold][:k]
        return self._passages(conn, chosen, fused, hybrid)

    def _passages(self, conn: sqlite3.Connection, chosen: list[_Candidate], fused: Any, hybrid: bool) -> list[Passage]:
        if not chosen:
            return []
        marks = ",".join("?" * len(chosen))
        rows = {r["id"]: r for r in conn.execute(
            f"SELECT id, document_id, document, chunk_index, text, pages, section FROM chunks WHERE id IN ({marks})",
            [c.chunk_id for c in chosen])}
        out = []
        for c in chosen:
            r = rows.get(c.chunk_id)
            if r is None:  # deleted between the index snapshot and now
                continue
            scores = {"vector": round(c.vector, 4)}
            if hybrid:
                scores["bm25"] = round(c.bm25, 4)
            out.append(Passage(
                text=r["text"], document=r["document"], pages=json.loads(r["pages"] or "[]"),
                section=r["section"] or "", chunk_index=r["chunk_index"], score=round(float(fused(c)), 4),
                chunk_id=c.chunk_id, document_id=r["document_id"], scores=scores,
            ))
        return out


def clear_cache() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()
        _VINDEX.clear()


__all__ = ["BM25Index", "Retriever", "bm25_index", "clear_cache", "tokenize"]
