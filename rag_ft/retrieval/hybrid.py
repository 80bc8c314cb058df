"""Hybrid retrieval as a LangChain retriever: BM25 + vector similarity from Chroma, fused into one 0..1 score.

Why hybrid: embeddings miss exact tokens (error codes, API names, version numbers, plan names) that users
type; BM25 catches them, while vectors catch paraphrases. Both are normalised to 0..1 and combined linearly
(``score = VECTOR_WEIGHT * vector + (1 - VECTOR_WEIGHT) * bm25``), so the relevance threshold means the same
thing for every query:
- vector: cosine similarity of query and chunk, clipped to 0..1;
- bm25: normalised as explained in ``rag_ft.retrieval.bm25`` (a long question matching one rare word is not 1).

``HybridRetriever`` is a ``BaseRetriever``: ``invoke``/``batch``/``ainvoke`` return ``Document``s (document, pages,
section, chunk ids and scores in the metadata) and it composes in any LCEL chain. ``search()`` returns the same
hits as ``Passage`` records for the code that works with them (CLI, evaluation, Documents page, benches); the
LangChain entry point is built on it, so both always agree. Only chunks of documents marked 'indexed' are ever
returned (SQLite is the source of truth; Chroma may hold vectors of an interrupted run).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

import numpy as np
from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables.config import run_in_executor
from pydantic import SkipValidation

from rag_ft.db import open_db
from rag_ft.index import chunks as chunk_rows
from rag_ft.index.documents import collection_version
from rag_ft.index.vectors import VectorIndex
from rag_ft.models.providers import embedding_id
from rag_ft.records import Passage
from rag_ft.retrieval import bm25 as _bm25
from rag_ft.retrieval.bm25 import K1, B, BM25Index, bm25_index, tokenize
from rag_ft.retrieval.metadata import PREFERRED
from rag_ft.settings import Settings

VECTOR_WEIGHT = 0.6
CANDIDATES = 30  # per method, before fusion
# Document-aware matching (rag_ft.retrieval.metadata): a chunk's rank score is its fused score less DOCUMENT_BOOST
# times how much less its document matches the question than the best-matching document does; 0 turns it off.
# Documents matching at least PREFERRED of the best also contribute their best keyword hits as candidates.
# 0.3: the largest value measured that keeps sample_docs' hit@1 at 1.00 (0.5 costs one question there); on the
# SEC 10-Q dev set it puts the right filing first 0.76 of the time (0.2: 0.71, 0.5: 0.80; bench/retrieval_real.py).
DOCUMENT_BOOST = 0.3
# Document spread: when choosing the k passages, each passage already taken from a document lowers that document's
# next ones by DIVERSITY (ranking only; the scores shown stay as fused). Near-identical passages of look-alike
# documents then come from several of them instead of one; 0 turns it off.
DIVERSITY = 0.05

_VINDEX: dict[tuple, tuple[int, VectorIndex]] = {}


@dataclass
class _Candidate:
    chunk_id: str
    vector: float = 0.0
    bm25: float = 0.0
    document: float = 1.0  # how well the question matches the chunk's document, relative to the best (metadata)


def _preferred_hits(bm25: BM25Index, raw: np.ndarray, normed: np.ndarray, prefer: np.ndarray, n: int,
                    seen: set[str]) -> list[_Candidate]:
    """The ``n`` best keyword hits among the chunks of the documents the question matches best."""
    rows = np.nonzero((prefer[bm25.document_rows] >= PREFERRED) & (raw > 0))[0]
    rows = rows[np.argsort(-raw[rows], kind="stable")]
    out = [_Candidate(bm25.ids[i], bm25=float(normed[i])) for i in rows[: n + len(seen)] if bm25.ids[i] not in seen]
    return out[:n]


def _spread(ranked: list[_Candidate], fused: Any, bm25: BM25Index, k: int) -> list[_Candidate]:
    """The k best by fused score minus DIVERSITY per passage already chosen from the same document (greedy)."""
    left, chosen, taken = list(ranked), [], {}
    doc = {c.chunk_id: bm25.document_ids[bm25.row[c.chunk_id]] if bm25.document_ids else "" for c in ranked}
    while left and len(chosen) < k:
        best = max(range(len(left)), key=lambda i: fused(left[i]) - DIVERSITY * taken.get(doc[left[i].chunk_id], 0))
        c = left.pop(best)
        chosen.append(c)
        taken[doc[c.chunk_id]] = taken.get(doc[c.chunk_id], 0) + 1
    return chosen


class HybridRetriever(BaseRetriever):
    """Passages of one collection for a query, best first, scores in 0..1.

    ``k``, ``hybrid`` and ``threshold`` left at None follow the settings. Each can also be given per call,
    to ``search()`` or as keyword arguments of ``invoke()`` (``retriever.invoke(q, k=2, threshold=0)``).
    """

    # SkipValidation: Settings is a frozen dataclass pydantic would rebuild, and benches pass objects that only
    # have ``embed_query``; both are used as given.
    settings: SkipValidation[Any]  # a rag_ft.settings.Settings: pydantic need not understand its fields
    embeddings: SkipValidation[Embeddings]
    collection: str = "default"
    k: int | None = None
    hybrid: bool | None = None
    threshold: float | None = None

    def __init__(self, settings: Settings, embeddings: Embeddings, **fields: Any) -> None:
        # positional, as before it was a LangChain retriever: Retriever(settings, embeddings)
        super().__init__(settings=settings, embeddings=embeddings, **fields)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        return [p.to_document() for p in self.search(query, **kwargs)]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        # BaseRetriever's default async path drops per-call arguments (k, threshold...): run ours in a thread
        return await run_in_executor(None, self._get_relevant_documents, query, run_manager=run_manager.get_sync(),
                                     **kwargs)

    def search(
        self, query: str, k: int | None = None, collection: str | None = None, hybrid: bool | None = None,
        threshold: float | None = None,
    ) -> list[Passage]:
        s = self.settings
        k = int(next(v for v in (k, self.k, s.retrieval_k) if v is not None))
        collection = collection or self.collection
        hybrid = bool(next(v for v in (hybrid, self.hybrid, s.hybrid) if v is not None))
        threshold = float(next(v for v in (threshold, self.threshold, s.relevance_threshold) if v is not None))
        if not query.strip() or k <= 0:
            return []
        conn = open_db(s)  # one connection for the whole search
        try:
            vindex = self._vector_index(collection, collection_version(s, collection, conn))
            bm25 = bm25_index(s, collection, conn)  # also the set of live chunk ids
            if not len(bm25):
                return []
            return self._search(conn, vindex, bm25, query, k, hybrid, threshold)
        finally:
            conn.close()

    def _vector_index(self, collection: str, version: int) -> VectorIndex:
        """An open, model-checked VectorIndex, shared by every retriever until the collection changes."""
        s = self.settings
        key = (str(s.db_path.resolve()), s.chroma_host, s.chroma_port, collection, embedding_id(s))
        hit = _VINDEX.get(key)
        if hit and hit[0] == version:
            return hit[1]
        vindex = VectorIndex(s, collection)
        vindex.check(embedding_id(s))  # raises EmbeddingMismatch
        _VINDEX[key] = (version, vindex)
        return vindex

    def _search(self, conn: sqlite3.Connection, vindex: VectorIndex, bm25: BM25Index, query: str, k: int,
                hybrid: bool, threshold: float) -> list[Passage]:
        qvec = np.asarray(self.embeddings.embed_query(query), dtype=np.float32)
        pool = max(CANDIDATES, 3 * k)
        cands: dict[str, _Candidate] = {}
        hits = vindex.query(qvec.tolist(), pool)
        for cid, sim in hits:
            if cid in bm25.row:  # drop vectors of documents that are not (or no longer) indexed
                cands[cid] = _Candidate(cid, vector=sim)
        prefer = bm25.matcher.match(query) if DOCUMENT_BOOST > 0 and bm25.matcher is not None else None
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
                if prefer is None:  # with document preferences the bound no longer holds: keep every extra
                    extra = [c for c in extra
                             if VECTOR_WEIGHT * floor + (1 - VECTOR_WEIGHT) * c.bm25 >= max(kth, threshold)]
                else:  # also the best keyword hits inside the preferred documents, which the pools may miss
                    extra += _preferred_hits(bm25, raw, normed, prefer, pool, cands.keys() | {c.chunk_id for c in extra})
                if extra:  # their vector similarity from the stored vectors
                    qn = qvec / (np.linalg.norm(qvec) or 1.0)
                    for cid, vec in vindex.vectors_by_id([c.chunk_id for c in extra]).items():
                        v = np.asarray(vec, dtype=np.float32)
                        sim = float(max(0.0, min(1.0, qn @ (v / (np.linalg.norm(v) or 1.0)))))
                        cands[cid] = _Candidate(cid, vector=sim, bm25=float(normed[bm25.row[cid]]))
        if prefer is not None:
            for c in cands.values():
                c.document = float(prefer[bm25.document_rows[bm25.row[c.chunk_id]]])

        def fused(c: _Candidate) -> float:
            return VECTOR_WEIGHT * c.vector + (1 - VECTOR_WEIGHT) * c.bm25 if hybrid else c.vector

        def rank(c: _Candidate) -> float:
            # a document the question matches less than the best one is pushed down, never up. Ranking only:
            # the threshold and the score shown stay the passage's own relevance, so matching never refuses more
            return fused(c) - DOCUMENT_BOOST * (1.0 - c.document) if prefer is not None else fused(c)

        ranked = [c for c in sorted(cands.values(), key=rank, reverse=True) if fused(c) >= threshold]
        chosen = _spread(ranked, rank, bm25, k) if DIVERSITY > 0 else ranked[:k]
        return self._passages(conn, chosen, fused, hybrid)

    def _passages(self, conn: sqlite3.Connection, chosen: list[_Candidate], fused: Any, hybrid: bool) -> list[Passage]:
        if not chosen:
            return []
        rows = chunk_rows.by_ids(conn, [c.chunk_id for c in chosen])
        out = []
        for c in chosen:
            r = rows.get(c.chunk_id)
            if r is None:  # deleted between the index snapshot and now
                continue
            scores = {"vector": round(c.vector, 4)}
            if hybrid:
                scores["bm25"] = round(c.bm25, 4)
            out.append(Passage(
                text=r.text, document=r.document, pages=list(r.pages), section=r.section, chunk_index=r.chunk_index,
                score=round(float(fused(c)), 4), chunk_id=c.chunk_id, document_id=r.document_id, scores=scores,
            ))
        return out


Retriever = HybridRetriever  # the name the CLI, evaluation, benches and tests have always imported


def clear_cache() -> None:
    """Forget the BM25 indexes and the open vector indexes (a test that deletes a data folder)."""
    _bm25.clear_cache()
    _VINDEX.clear()


__all__ = ["B", "K1", "BM25Index", "HybridRetriever", "Retriever", "bm25_index", "clear_cache", "tokenize"]
