"""Retrieval latency at 10k and 100k chunks, and retrieval quality on sample_docs/questions.jsonl.

Run: .venv/bin/python bench/retrieval.py [--sizes 10000 100000 --queries 100] [--skip-latency | --skip-quality]

Latency: synthetic chunks (support-style word soup) with RANDOM unit vectors in Chroma, because embedding
100k chunks with MiniLM on 2 shared cores would take hours; the QUERY is embedded for real (MiniLM) in every
timed search. Baselines in the same run: the query embedding alone, and plain vector search (embed + Chroma
query). Target: hybrid search p95 <= 30 ms at 100k chunks. BM25's index is precomputed (timed separately).

Quality: the sample documents indexed with real MiniLM embeddings; for each answerable question the rank of the
first passage from the right document whose pages overlap the expected pages (hit@1/3/5, MRR@5), plain vector
search and hybrid side by side; and how the relevance threshold treats the unanswerable questions.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

import numpy as np
from _common import ROOT, WORDS, summary, synthetic_text, temp_settings

import rag_ft.retrieval.hybrid as retrieval
from rag_ft.db import connect, transaction
from rag_ft.index import chunks as chunk_rows
from rag_ft.index.documents import load_sample_documents
from rag_ft.index.vectors import VectorIndex
from rag_ft.index.writer import bump
from rag_ft.models.local_embeddings import LocalEmbeddings, load_sentence_transformer
from rag_ft.models.providers import embedding_id
from rag_ft.records import Chunk
from rag_ft.retrieval.bm25 import bm25_index
from rag_ft.retrieval.hybrid import HybridRetriever

QUESTIONS = ROOT / "sample_docs" / "questions.jsonl"


class PrecomputedQueries:
    """Embeddings whose query vectors were computed before the timing starts (measures retrieval alone)."""

    def __init__(self, emb: LocalEmbeddings, queries: list[str]) -> None:
        self.vectors = dict(zip(queries, emb.embed_documents(queries), strict=True))

    def embed_query(self, text: str) -> list[float]:
        return self.vectors[text]


def build_synthetic(settings, n: int, dim: int = 384, per_doc: int = 100) -> None:
    """n chunks in SQLite (as indexed documents) and in Chroma with random unit vectors."""
    rng, nrng = random.Random(n), np.random.default_rng(n)
    vindex = VectorIndex(settings, "default")
    vindex.ensure(embedding_id(settings))
    conn = connect(settings.db_path)  # migrated: the tables exist
    for start in range(0, n, 1000):
        ids, texts, metas, per_document = [], [], [], {}
        for i in range(start, min(n, start + 1000)):
            doc = f"doc{i // per_doc:05d}"
            cid, text = f"{doc}-{i % per_doc}", synthetic_text(rng)
            ids.append(cid)
            texts.append(text)
            metas.append({"document_id": doc, "hash": cid})
            per_document.setdefault(doc, []).append(
                (cid, Chunk(text, f"{doc}.md", i % per_doc, pages=[1], section="Section", hash=cid)))
        vecs = nrng.standard_normal((len(ids), dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        vindex.add(ids, vecs, texts, metas)
        with transaction(conn):
            for doc, rows in per_document.items():  # 1000 is a multiple of per_doc: no document spans batches
                chunk_rows.replace_for_document(conn, doc, "default", [i for i, _ in rows], [c for _, c in rows])
    with transaction(conn):
        conn.executemany(
            "INSERT INTO documents VALUES(?, 'default', ?, 0, '', 1, ?, 'indexed', '', '', ?)",
            [(f"doc{d:05d}", f"doc{d:05d}.md", per_doc, embedding_id(settings)) for d in range((n + per_doc - 1) // per_doc)])
        bump(conn, "default", embedding_id(settings))
    conn.close()


def latency(sizes: list[int], n_queries: int, emb: LocalEmbeddings) -> None:
    rng = random.Random(7)
    queries = [f"how do I {rng.choice(WORDS)} the {rng.choice(WORDS)} {rng.choice(WORDS)} {rng.choice(WORDS)}?"
               for _ in range(n_queries)]
    for n in sizes:
        settings = temp_settings()
        t = time.perf_counter()
        build_synthetic(settings, n)
        build_s = time.perf_counter() - t
        print(f"{n:,} chunks written in {build_s:.0f} s", flush=True)
        t = time.perf_counter()
        bm25 = bm25_index(settings, "default")
        bm25_s = time.perf_counter() - t
        retriever = HybridRetriever(settings, emb)
        vindex = VectorIndex(settings, "default")
        # the same searches with the query vector computed beforehand: our retrieval cost alone, which
        # the shared machine's swings in model speed cannot blur
        pre = PrecomputedQueries(emb, queries)
        pre_retriever = HybridRetriever(settings, pre)
        retriever.search(queries[0], threshold=0)  # warm: HNSW loaded, embedding check cached
        timings: dict[str, list[float]] = {"query embedding alone": [], "plain vector (embed + Chroma)": [],
                                           "our vector-only search": [], "our hybrid search": [],
                                           "  hybrid, query vector precomputed": [],
                                           "  vector-only, query vector precomputed": [],
                                           "  BM25 scoring alone": []}
        for q in queries:  # interleaved, so load spikes hit every method alike
            t = time.perf_counter()
            qv = emb.embed_query(q)
            timings["query embedding alone"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            vindex.query(emb.embed_query(q), 4)
            timings["plain vector (embed + Chroma)"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            retriever.search(q, k=4, hybrid=False, threshold=0)
            timings["our vector-only search"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            hits = retriever.search(q, k=4, hybrid=True, threshold=0)
            timings["our hybrid search"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            pre_retriever.search(q, k=4, hybrid=True, threshold=0)
            timings["  hybrid, query vector precomputed"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            pre_retriever.search(q, k=4, hybrid=False, threshold=0)
            timings["  vector-only, query vector precomputed"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            bm25.scores(q)
            timings["  BM25 scoring alone"].append((time.perf_counter() - t) * 1000)
            assert len(hits) == 4 and qv
        print(f"\n{n:,} chunks (Chroma + SQLite written in {build_s:.0f} s; BM25 index precomputed in {bm25_s:.2f} s, "
              f"{len(bm25.vocab):,} terms); {n_queries} queries, k=4")
        for name, ms in timings.items():
            print(f"  {name:32s} {summary(ms)}")


def rank(passages, q) -> int | None:
    for i, p in enumerate(passages, 1):
        if p.document == q["document"] and (not q.get("pages") or not p.pages or set(p.pages) & set(q["pages"])):
            return i
    return None


def quality(emb: LocalEmbeddings) -> None:
    questions = [json.loads(line) for line in QUESTIONS.read_text().splitlines() if line.strip()]
    settings = temp_settings()
    outs = load_sample_documents(settings, emb)
    print(f"\nquality: {len(outs)} sample documents, {sum(o.chunks for o in outs)} chunks, "
          f"{len(questions)} questions ({sum(q['answerable'] for q in questions)} answerable)")
    retriever = HybridRetriever(settings, emb)
    answerable = [q for q in questions if q["answerable"]]
    others = [q for q in questions if not q["answerable"]]
    configs = [("plain vector", False, None)] + [(f"hybrid w={w}", True, w) for w in (0.4, 0.5, 0.6, 0.7)]
    default_w = retrieval.VECTOR_WEIGHT
    print(f"  {'method':22s} hit@1  hit@3  hit@5  MRR@5  doc-hit@1 | answerable kept | unanswerable refused "
          f"(threshold {settings.relevance_threshold})")
    for label, hybrid, w in configs:
        if w is not None:
            retrieval.VECTOR_WEIGHT = w
        ranks, doc1 = [], 0
        for q in answerable:
            ps = retriever.search(q["question"], k=5, hybrid=hybrid, threshold=0)
            ranks.append(rank(ps, q))
            doc1 += bool(ps) and ps[0].document == q["document"]
        kept = sum(bool(retriever.search(q["question"], k=1, hybrid=hybrid)) for q in answerable)
        refused = sum(not retriever.search(q["question"], k=1, hybrid=hybrid) for q in others)
        n = len(answerable)
        hit = {k: sum(r is not None and r <= k for r in ranks) / n for k in (1, 3, 5)}
        mrr = sum(1 / r for r in ranks if r) / n
        mark = " (default)" if w == default_w else ""
        print(f"  {label + mark:22s} {hit[1]:.3f}  {hit[3]:.3f}  {hit[5]:.3f}  {mrr:.3f}  {doc1 / n:.3f}     | "
              f"{kept}/{n}           | {refused}/{len(others)}")
    retrieval.VECTOR_WEIGHT = default_w
    for label, hybrid in (("plain vector", False), ("hybrid", True)):
        tops = {True: [], False: []}
        for q in questions:
            ps = retriever.search(q["question"], k=1, hybrid=hybrid, threshold=0)
            tops[q["answerable"]].append(ps[0].score if ps else 0.0)
        print(f"  top score, {label:12s}: answerable min {min(tops[True]):.2f} median {statistics.median(tops[True]):.2f}"
              f" | unanswerable median {statistics.median(tops[False]):.2f} max {max(tops[False]):.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--skip-quality", action="store_true")
    args = ap.parse_args()
    load_sentence_transformer()
    emb = LocalEmbeddings()
    emb.embed_query("warm-up")
    if not args.skip_quality:
        quality(emb)
    if not args.skip_latency:
        latency(args.sizes, args.queries, emb)


if __name__ == "__main__":
    main()
