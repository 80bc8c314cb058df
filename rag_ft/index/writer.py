"""Writing one parsed document: vectors first (reused by content hash, else embedded once per text), then
its chunk rows and its 'indexed' status in one SQLite transaction. Retrieval trusts only 'indexed' documents,
so a run killed between the two steps never serves half a document."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from langchain_core.embeddings import Embeddings

from rag_ft.db import transaction
from rag_ft.index import chunks as chunk_rows
from rag_ft.index.vectors import VectorIndex
from rag_ft.models.providers import embedding_id
from rag_ft.records import Chunk
from rag_ft.retrieval.context import embedded_text, vector_key
from rag_ft.settings import Settings

EMBED_BATCH = 32
Progress = Callable[[float, str], None]


def chunk_id(doc_id: str, chunk: Chunk) -> str:
    return f"{doc_id}-{chunk.chunk_index}-{chunk.hash[:12]}"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def bump(conn: sqlite3.Connection, collection: str, embedding: str | None = None) -> None:
    """Move the collection's version counter (retrieval rebuilds its BM25 index when it moves)."""
    conn.execute(
        "INSERT INTO collections(name, embedding, version) VALUES(?, ?, 1) ON CONFLICT(name) DO UPDATE SET "
        "version = version + 1, embedding = COALESCE(excluded.embedding, embedding)",
        (collection, embedding),
    )


def embed_missing(
    embeddings: Embeddings, vindex: VectorIndex, chunks: Sequence[Chunk], report: Progress | None
) -> tuple[dict[str, list[float]], int]:
    """A vector for every chunk's vector key: reused from the collection when present, else embedded (once per
    text). What is embedded is ``rag_ft.retrieval.context.embedded_text`` (the chunk's text, with its header
    when headers are embedded); the key is the hash of exactly that, so a vector is reused only for the same."""
    keys = [vector_key(c.text, c.document, c.section) for c in chunks]
    vectors = vindex.vectors_by_hash(keys)
    todo: dict[str, str] = {}
    for c, key in zip(chunks, keys, strict=True):
        if key not in vectors:
            todo.setdefault(key, embedded_text(c.text, c.document, c.section))
    items = list(todo.items())
    for i in range(0, len(items), EMBED_BATCH):
        batch = items[i : i + EMBED_BATCH]
        for (h, _), vec in zip(batch, embeddings.embed_documents([t for _, t in batch]), strict=True):
            vectors[h] = list(vec)
        if report:
            report(0.1 + 0.8 * min(1.0, (i + len(batch)) / len(items)),
                   f"embedded {i + len(batch)} of {len(items)} new chunks")
    return vectors, len(items)


def store(
    settings: Settings, embeddings: Embeddings, conn: sqlite3.Connection, vindex: VectorIndex, doc_id: str,
    chunks: Sequence[Chunk], pages: int, report: Progress | None = None,
) -> int:
    """Write a document's chunks (vectors first, then the SQLite rows + 'indexed' in one transaction)."""
    eid = embedding_id(settings)
    vindex.ensure(eid)
    vectors, embedded = embed_missing(embeddings, vindex, chunks, report)
    ids = [chunk_id(doc_id, c) for c in chunks]
    keys = [vector_key(c.text, c.document, c.section) for c in chunks]
    metas = [  # "hash" is the vector key (what was embedded), which reuse looks up
        {"document_id": doc_id, "document": c.document, "chunk_index": c.chunk_index, "hash": key,
         "section": c.section or "", "pages": json.dumps(c.pages)}
        for c, key in zip(chunks, keys, strict=True)
    ]
    vindex.upsert(ids, [vectors[key] for key in keys], [c.text for c in chunks], metas)
    # vectors of the previous version (or of an interrupted run) that the new version does not use
    vindex.delete_ids(set(vindex.ids_of_document(doc_id)) - set(ids))
    with transaction(conn):
        chunk_rows.replace_for_document(conn, doc_id, vindex.collection, ids, chunks)
        conn.execute(
            "UPDATE documents SET status='indexed', error='', chunk_count=?, pages=?, indexed_at=?, embedding=? "
            "WHERE id=?", (len(chunks), pages, now(), eid, doc_id),
        )
        bump(conn, vindex.collection, eid)
    if report:
        report(1.0, f"{len(chunks)} chunks stored")
    return embedded
