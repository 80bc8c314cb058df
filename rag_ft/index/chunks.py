"""The ``chunks`` table: the one module that issues SQL on it.

A chunk row is a ``rag_ft.records.Chunk`` of one document, stored with its id (also its Chroma id), the document's
id and its collection. Rows are written only by the indexer (``rag_ft.index.documents``), in the same transaction
that marks the document 'indexed'; readers that serve chunks to users (retrieval, training-data generation) take
only chunks of 'indexed' documents, because a document still 'indexing' may hold the rows of a half-finished run.
The functions take an open connection so the caller decides the transaction (``rag_ft.db.transaction``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rag_ft.records import Chunk

_COLUMNS = "id, document_id, collection, document, chunk_index, hash, text, pages, section, element_types"
_C_COLUMNS = ", ".join(f"c.{name}" for name in _COLUMNS.split(", "))  # the same, in a join with documents d


@dataclass
class StoredChunk:
    """A chunk row as stored: the chunk's fields plus its id, its document's id and its collection."""

    id: str
    document_id: str
    collection: str
    document: str
    chunk_index: int
    hash: str
    text: str
    section: str = ""
    pages: list[int] = field(default_factory=list)
    element_types: list[str] = field(default_factory=list)

    def to_chunk(self) -> Chunk:
        return Chunk(text=self.text, document=self.document, chunk_index=self.chunk_index, pages=list(self.pages),
                     section=self.section, element_types=list(self.element_types), hash=self.hash)


def _json_list(value: str | None) -> list:
    # the columns hold JSON lists; a damaged value reads as empty rather than hiding the whole document
    try:
        out = json.loads(value or "[]")
    except ValueError:
        return []
    return out if isinstance(out, list) else []


def _stored(row: sqlite3.Row) -> StoredChunk:
    return StoredChunk(
        id=row["id"], document_id=row["document_id"] or "", collection=row["collection"] or "",
        document=row["document"] or "", chunk_index=row["chunk_index"] or 0, hash=row["hash"] or "",
        text=row["text"] or "", section=row["section"] or "", pages=_json_list(row["pages"]),
        element_types=_json_list(row["element_types"]),
    )


# ---------------------------------------------------------------- writes (the indexer's)


def replace_for_document(
    conn: sqlite3.Connection, document_id: str, collection: str, ids: Sequence[str], chunks: Sequence[Chunk]
) -> None:
    """Make ``chunks`` (with their ``ids``) the document's only rows. Call inside the caller's transaction."""
    delete_for_document(conn, document_id)
    conn.executemany(
        f"INSERT INTO chunks({_COLUMNS}) VALUES(?,?,?,?,?,?,?,?,?,?)",
        [(cid, document_id, collection, c.document, c.chunk_index, c.hash, c.text, json.dumps(c.pages),
          c.section or "", json.dumps(c.element_types)) for cid, c in zip(ids, chunks, strict=True)],
    )


def delete_for_document(conn: sqlite3.Connection, document_id: str) -> None:
    conn.execute("DELETE FROM chunks WHERE document_id=?", (document_id,))


# ---------------------------------------------------------------- reads


def of_document(conn: sqlite3.Connection, document_id: str) -> list[Chunk]:
    """The document's chunks in order, whatever its status (the chunk viewer, re-embedding)."""
    rows = conn.execute(f"SELECT {_COLUMNS} FROM chunks WHERE document_id=? ORDER BY chunk_index", (document_id,))
    return [_stored(r).to_chunk() for r in rows]


def indexed_texts(conn: sqlite3.Connection, collection: str) -> list[tuple[str, str]]:
    """(chunk id, text) of every chunk of the collection's 'indexed' documents (the BM25 corpus)."""
    rows = conn.execute(
        "SELECT c.id, c.text FROM chunks c JOIN documents d ON d.id = c.document_id "
        "WHERE d.collection=? AND d.status='indexed'", (collection,))
    return [(r[0], r[1]) for r in rows]


def indexed_for_search(conn: sqlite3.Connection, collection: str) -> list[tuple[str, str, str, str, str]]:
    """(chunk id, document id, document, section, text) of the collection's 'indexed' chunks, in document order
    (retrieval's BM25 corpus with contextual headers, and its per-document term profiles)."""
    rows = conn.execute(
        "SELECT c.id, c.document_id, c.document, c.section, c.text FROM chunks c "
        "JOIN documents d ON d.id = c.document_id WHERE d.collection=? AND d.status='indexed' "
        "ORDER BY c.document_id, c.chunk_index", (collection,))
    return [(r[0], r[1] or "", r[2] or "", r[3] or "", r[4] or "") for r in rows]


def by_ids(conn: sqlite3.Connection, ids: Iterable[str]) -> dict[str, StoredChunk]:
    """The rows with these ids, by id (ids with no row, e.g. deleted since, are absent)."""
    ids = list(dict.fromkeys(ids))
    out: dict[str, StoredChunk] = {}
    for i in range(0, len(ids), 500):  # SQLite caps the number of ? per statement
        part = ids[i : i + 500]
        marks = ",".join("?" * len(part))
        out.update((r["id"], _stored(r)) for r in conn.execute(
            f"SELECT {_COLUMNS} FROM chunks WHERE id IN ({marks})", part))
    return out


def documents_with_counts(conn: sqlite3.Connection) -> list[tuple[str, str, int]]:
    """(collection, document, number of chunks) of every 'indexed' document, by collection then name."""
    rows = conn.execute(
        "SELECT c.collection, c.document, COUNT(*) FROM chunks c JOIN documents d ON d.id = c.document_id "
        "WHERE d.status='indexed' GROUP BY c.collection, c.document ORDER BY c.collection, c.document")
    return [(r[0], r[1], r[2]) for r in rows]


def source_chunks(
    conn: sqlite3.Connection, documents: Iterable[tuple[str, str]] | None = None
) -> list[StoredChunk]:
    """Chunks of 'indexed' documents to draft training examples from: of the given (collection, document)
    pairs, or of all when None; in collection, document, chunk order."""
    rows = conn.execute(
        f"SELECT {_C_COLUMNS} FROM chunks c "
        "JOIN documents d ON d.id = c.document_id WHERE d.status='indexed' "
        "ORDER BY c.collection, c.document, c.chunk_index")
    wanted = {tuple(d) for d in documents} if documents is not None else None
    return [s for s in map(_stored, rows) if wanted is None or (s.collection, s.document) in wanted]


def find_by_hash(
    conn: sqlite3.Connection, chunk_hash: str, chunk_id: str = "", document_id: str = "", document: str = ""
) -> StoredChunk | None:
    """A chunk with this content hash, preferring the same chunk id, then the same document id, then name.

    By hash because a chunk's id changes when its document is re-indexed, while equal text keeps its hash.
    """
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM chunks WHERE hash = ? ORDER BY (id = ?) DESC, (document_id = ?) DESC,"
        " (document = ?) DESC LIMIT 1", (chunk_hash, chunk_id, document_id, document)).fetchone()
    return _stored(row) if row else None


def exists(conn: sqlite3.Connection, chunk_hash: str, document_id: str, collection: str, document: str) -> bool:
    """Whether the document (by id, or by collection + name) still has a chunk with this content hash."""
    return conn.execute(
        "SELECT 1 FROM chunks WHERE hash = ? AND (document_id = ? OR (collection = ? AND document = ?)) LIMIT 1",
        (chunk_hash, document_id, collection, document)).fetchone() is not None
