"""The document store: SQLite records + Chroma vectors, indexed incrementally.

A document is identified by its name within a collection. Re-uploading the same bytes does nothing
("unchanged"); changed bytes replace the document's chunks, and chunks whose content hash already has a vector
in the collection reuse it instead of being embedded again. The uploaded bytes are kept in the data folder so a
document can be re-indexed (and an interrupted run finished) without the user uploading it again.

Crash safety: a document is marked ``indexing`` before anything changes and only becomes ``indexed`` in the same
SQLite transaction that writes its chunk rows, after its vectors are in Chroma. Retrieval only trusts chunk rows
of ``indexed`` documents, so a killed run never serves half a document, and the next run (or the Documents page)
finishes every document it finds left ``indexing``. One indexing run at a time per data folder (a file lock,
released by the OS when a process dies).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from langchain_core.embeddings import Embeddings

from rag_ft.db import open_db, transaction
from rag_ft.index import chunks as chunk_rows
from rag_ft.index.files import file_path, sample_files, save_file
from rag_ft.index.lock import indexing_lock
from rag_ft.index.reading import failure, parse_file, shown_name
from rag_ft.index.vectors import EmbeddingMismatch, VectorIndex
from rag_ft.index.writer import bump
from rag_ft.index.writer import store as store_chunks
from rag_ft.ingest.limits import ParseLimits
from rag_ft.ingest.sandbox import submit
from rag_ft.models.providers import embedding_id, explain_error
from rag_ft.records import Chunk
from rag_ft.settings import Settings

Progress = Callable[[float, str], None]


@dataclass
class DocumentRecord:
    id: str
    collection: str
    name: str
    size: int
    hash: str
    pages: int
    chunk_count: int
    status: str  # 'indexing' | 'indexed' | 'failed'
    error: str
    indexed_at: str
    embedding: str


@dataclass
class FileOutcome:
    """What happened to one file, for the result table."""

    name: str
    status: str  # 'indexed' | 'unchanged' | 'updated' | 'failed'
    chunks: int = 0
    pages: int = 0
    embedded: int = 0  # texts sent to the embedding model for this file (0 when vectors were reused)
    error: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        """The outcome in plain words."""
        if self.status == "failed":
            return self.error
        if self.status == "unchanged":
            return "unchanged: already indexed, nothing to do"
        pages = f", {self.pages} page{'s' * (self.pages != 1)}" if self.pages else ""
        reused = self.chunks - self.embedded
        extra = f" ({reused} reused, {self.embedded} newly embedded)" if self.status == "updated" else ""
        return f"{self.status}: {self.chunks} chunk{'s' * (self.chunks != 1)}{pages}{extra}"


# ---------------------------------------------------------------- plumbing

@contextmanager
def _conn(settings: Settings) -> Iterator[sqlite3.Connection]:
    conn = open_db(settings)
    try:
        yield conn
    finally:
        conn.close()


def document_id(collection: str, name: str) -> str:
    return hashlib.sha256(f"{collection}\n{name}".encode()).hexdigest()[:24]


def _record(row: sqlite3.Row) -> DocumentRecord:
    d = dict(row)
    for key in ("size", "pages", "chunk_count"):
        d[key] = d[key] or 0
    for key in ("hash", "status", "error", "indexed_at", "embedding"):
        d[key] = d[key] or ""
    return DocumentRecord(**d)


def _get(conn: sqlite3.Connection, collection: str, name: str) -> DocumentRecord | None:
    row = conn.execute("SELECT * FROM documents WHERE collection=? AND name=?", (collection, name)).fetchone()
    return _record(row) if row else None


# ---------------------------------------------------------------- the indexing core

def _read_ahead(settings: Settings, collection: str, files: Sequence[tuple[str, bytes]], i: int) -> Future[Any] | None:
    """Start reading file ``i`` in the worker, lock-free (a read may take minutes; Delete must not wait): a Future
    of its ParseResult, or None when there is nothing to read (no such file or name, these bytes already indexed;
    a stale answer only means ``_index_one`` reads it). Never raises: an error is the Future's, for file i only."""
    if i >= len(files):
        return None
    try:
        name, data = (files[i][0] or "").strip(), files[i][1]
        if name and shown_name(name) == name:  # an invalid name is not looked up: parsing refuses it by name
            with _conn(settings) as conn:
                rec = _get(conn, collection, name)
            if rec and rec.status == "indexed" and rec.hash == hashlib.sha256(data).hexdigest() \
                    and rec.embedding == embedding_id(settings):
                return None
        return submit(name, data, ParseLimits.from_settings(settings)) if name else None
    except Exception as exc:
        (future := Future[Any]()).set_exception(exc)
        return future


def _index_one(
    settings: Settings, embeddings: Embeddings, conn: sqlite3.Connection, vindex: VectorIndex, name: str,
    data: bytes, report: Progress | None, force: bool = False, parsed: Any = None,
) -> FileOutcome:
    """Store one file; ``parsed`` is its ParseResult when it was read before the lock (else it is read here)."""
    name = (name or "").strip()
    if not name:
        return FileOutcome("(no name)", "failed", error="a file needs a name")
    if parsed is not None and failure(parsed):  # e.g. a name SQLite cannot take: refused before any lookup
        return FileOutcome(shown_name(name), "failed", error=failure(parsed) or "", warnings=list(parsed.warnings))
    collection, eid = vindex.collection, embedding_id(settings)
    digest = hashlib.sha256(data).hexdigest()
    rec = _get(conn, collection, name)
    if not force and rec and rec.status == "indexed" and rec.hash == digest and rec.embedding == eid:
        return FileOutcome(name, "unchanged", chunks=rec.chunk_count, pages=rec.pages)
    if report and parsed is None:
        report(0.02, "reading")
    result = parsed if parsed is not None else parse_file(settings, name, data)
    problem = failure(result)
    if problem:  # the previous version (if any) stays indexed: bad input loses nothing
        return FileOutcome(name, "failed", error=problem, warnings=list(result.warnings))
    for c in result.chunks:
        c.document = name  # identity = the name within the collection
    doc_id = document_id(collection, name)
    save_file(settings, doc_id, data)
    with transaction(conn):
        conn.execute(
            "INSERT INTO documents(id, collection, name, size, hash, pages, chunk_count, status, error, indexed_at, "
            "embedding) VALUES(?,?,?,?,?,?,?, 'indexing', '', ?, ?) ON CONFLICT(id) DO UPDATE SET "
            "size=excluded.size, hash=excluded.hash, status='indexing', error=''",
            (doc_id, collection, name, len(data), digest, result.pages, 0, "", eid),
        )
    if report:
        report(0.1, f"{len(result.chunks)} chunks")
    try:
        embedded = store_chunks(settings, embeddings, conn, vindex, doc_id, result.chunks, result.pages, report)
    except EmbeddingMismatch:
        raise
    except Exception as exc:  # a refused key, a server gone: say so, and leave nothing 'indexing' to redo forever
        reason = f"indexing failed: {explain_error(exc, 'embedding')}"
        with transaction(conn):
            conn.execute("UPDATE documents SET status='failed', error=? WHERE id=?", (reason, doc_id))
            bump(conn, collection)
        return FileOutcome(name, "failed", error=reason, warnings=list(result.warnings))
    status = "updated" if rec and rec.status == "indexed" else "indexed"
    return FileOutcome(name, status, chunks=len(result.chunks), pages=result.pages, embedded=embedded,
                       warnings=list(result.warnings))


def _recover(
    settings: Settings, embeddings: Embeddings, conn: sqlite3.Connection, vindex: VectorIndex
) -> list[FileOutcome]:
    """Finish documents a killed run left 'indexing' (caller holds the indexing lock, so no run is live)."""
    rows = conn.execute("SELECT * FROM documents WHERE collection=? AND status='indexing' ORDER BY name",
                        (vindex.collection,)).fetchall()
    out = []
    for rec in map(_record, rows):
        path = file_path(settings, rec.id)
        if not path.exists():  # nothing to finish it from: remove what was half written
            _remove(conn, vindex, rec)
            out.append(FileOutcome(rec.name, "failed", error="interrupted before its file was saved: upload it again"))
            continue
        try:
            out.append(_index_one(settings, embeddings, conn, vindex, rec.name, path.read_bytes(), None, force=True))
        except EmbeddingMismatch:
            raise
        except Exception as exc:  # keep the record visible with the reason instead of looping on it
            reason = f"indexing failed: {explain_error(exc, 'indexing')}"
            conn.execute("UPDATE documents SET status='failed', error=? WHERE id=?", (reason, rec.id))
            out.append(FileOutcome(rec.name, "failed", error=reason))
    return out


def _remove(conn: sqlite3.Connection, vindex: VectorIndex, rec: DocumentRecord) -> None:
    vindex.delete_ids(vindex.ids_of_document(rec.id))
    with transaction(conn):
        chunk_rows.delete_for_document(conn, rec.id)
        conn.execute("DELETE FROM documents WHERE id=?", (rec.id,))
        bump(conn, vindex.collection)


# ---------------------------------------------------------------- public API

def index_files(
    settings: Settings, embeddings: Embeddings, files: Sequence[tuple[str, bytes]], collection: str = "default",
    progress: Progress | None = None, on_outcome: Callable[[int, FileOutcome], None] | None = None,
) -> list[FileOutcome]:
    """Index files (name, bytes) into ``collection``; one outcome per file, in order. One bad file stops nothing.

    ``progress(fraction 0..1, message)`` is called as files advance, and ``on_outcome(i, outcome)`` as soon as
    file ``i`` is done, so a caller can show each result while the rest of the batch runs (one recovery of
    interrupted runs happens at the start). Each file is read (bounded, in a worker process) before the indexing
    lock is taken, file i+1 while file i is embedded; the lock is held only while a file is stored, so Delete
    never waits behind a slow read. Raises ``EmbeddingMismatch`` (before changing anything) when the
    collection was built with another embedding model.
    """
    outcomes: list[FileOutcome] = []
    total = max(1, len(files))
    with indexing_lock(settings), _conn(settings) as conn:
        vindex = VectorIndex(settings, collection)
        vindex.check(embedding_id(settings))
        _recover(settings, embeddings, conn, vindex)
    ahead = _read_ahead(settings, collection, files, 0)
    try:
        for i, (name, data) in enumerate(files):
            def report(frac: float, msg: str, i: int = i, name: str = shown_name(name)) -> None:
                if progress:
                    progress(min(1.0, (i + frac) / total), f"{name}: {msg}")

            report(0.0, "starting")
            # a pipeline: the worker reads the next file while this one is embedded and stored (under the lock)
            reading, ahead = ahead, _read_ahead(settings, collection, files, i + 1)
            try:
                if reading is not None:
                    report(0.02, "reading")
                parsed = reading.result() if reading is not None else None
                with indexing_lock(settings), _conn(settings) as conn:
                    outcome = _index_one(settings, embeddings, conn, vindex, name, data, report, parsed=parsed)
            except EmbeddingMismatch:
                raise
            except Exception as exc:  # e.g. Chroma unreachable before the record was written
                outcome = FileOutcome(shown_name(name), "failed", error=f"indexing failed: {explain_error(exc, 'indexing')}")
            outcomes.append(outcome)
            report(1.0, outcome.message)
            if on_outcome:
                on_outcome(i, outcome)
    finally:  # stopped early (a mismatch, a callback that raised): the next file is not read for nothing
        if ahead is not None:
            ahead.cancel()
    return outcomes


def recover_interrupted(
    settings: Settings, embeddings: Embeddings, collection: str = "default", blocking: bool = False
) -> list[FileOutcome] | None:
    """Finish documents left 'indexing' by a killed run; None when another run holds the lock right now."""
    with indexing_lock(settings, blocking=blocking) as got:
        if not got:
            return None
        with _conn(settings) as conn:
            vindex = VectorIndex(settings, collection)
            vindex.check(embedding_id(settings))
            return _recover(settings, embeddings, conn, vindex)


def list_documents(settings: Settings, collection: str = "default") -> list[DocumentRecord]:
    with _conn(settings) as conn:
        rows = conn.execute("SELECT * FROM documents WHERE collection=? ORDER BY name", (collection,)).fetchall()
    return [_record(r) for r in rows]


def get_document(settings: Settings, name: str, collection: str = "default") -> DocumentRecord | None:
    with _conn(settings) as conn:
        return _get(conn, collection, name)


def list_collections(settings: Settings) -> list[str]:
    with _conn(settings) as conn:
        rows = conn.execute(
            "SELECT collection AS c FROM documents UNION SELECT name AS c FROM collections ORDER BY c"
        ).fetchall()
    return [r["c"] for r in rows]


def collection_version(settings: Settings, collection: str = "default", conn: sqlite3.Connection | None = None) -> int:
    """A counter that moves on every change to the collection (caches key on it)."""
    if conn is None:
        with _conn(settings) as own:
            return collection_version(settings, collection, own)
    row = conn.execute("SELECT version FROM collections WHERE name=?", (collection,)).fetchone()
    return int(row["version"]) if row else 0


def collection_embedding(settings: Settings, collection: str = "default") -> str | None:
    """The embedding model the collection's vectors come from (Chroma's record), None when it has none yet."""
    return VectorIndex(settings, collection).built_with()


def check_embedding(settings: Settings, collection: str = "default") -> None:
    """Raise ``EmbeddingMismatch`` when the collection was built with another model than the current one."""
    VectorIndex(settings, collection).check(embedding_id(settings))


def delete_document(settings: Settings, name: str, collection: str = "default") -> bool:
    """Remove a document's vectors, chunk rows, record and stored file. False when there was no such document."""
    with indexing_lock(settings), _conn(settings) as conn:
        rec = _get(conn, collection, name)
        if rec is None:
            return False
        _remove(conn, VectorIndex(settings, collection), rec)
        file_path(settings, rec.id).unlink(missing_ok=True)
        return True


def reindex_document(
    settings: Settings, embeddings: Embeddings, name: str, collection: str = "default",
    progress: Progress | None = None,
) -> FileOutcome:
    """Parse and chunk the stored copy again (vectors of unchanged chunks are reused).

    The copy is read before the indexing lock is taken; under the lock the record is looked up again.
    """
    rec = get_document(settings, name, collection)
    path = file_path(settings, rec.id) if rec else None
    parsed = parse_file(settings, name, path.read_bytes()) if path and path.exists() else None
    with indexing_lock(settings), _conn(settings) as conn:
        rec = _get(conn, collection, name)
        if rec is None:
            return FileOutcome(name, "failed", error=f"no document named {name!r} in collection {collection!r}")
        path = file_path(settings, rec.id)
        if not path.exists():
            return FileOutcome(name, "failed", error="the stored copy of this file is missing: upload it again")
        vindex = VectorIndex(settings, collection)
        vindex.check(embedding_id(settings))
        data = path.read_bytes()
        if parsed is not None and hashlib.sha256(data).hexdigest() != rec.hash:
            parsed = None  # replaced meanwhile: read the new copy (under the lock, this once)
        try:
            return _index_one(settings, embeddings, conn, vindex, name, data, progress, force=True, parsed=parsed)
        except EmbeddingMismatch:
            raise
        except Exception as exc:
            return FileOutcome(name, "failed", error=f"indexing failed: {explain_error(exc, 'indexing')}")


def document_chunks(settings: Settings, name: str, collection: str = "default") -> list[Chunk]:
    """The chunks of an indexed document, in order (for the chunk viewer)."""
    with _conn(settings) as conn:
        rec = _get(conn, collection, name)
        return chunk_rows.of_document(conn, rec.id) if rec else []


def load_sample_documents(
    settings: Settings, embeddings: Embeddings, collection: str = "default", progress: Progress | None = None
) -> list[FileOutcome]:
    """Index sample_docs/ (unchanged files are skipped, as for any upload)."""
    return index_files(settings, embeddings, sample_files(), collection=collection, progress=progress)


def reembed(
    settings: Settings, embeddings: Embeddings, collection: str = "default", progress: Progress | None = None
) -> int:
    """Rebuild the collection's vectors with the current embedding model; returns the number of texts embedded.

    Chunks are taken from SQLite (no re-parsing). Every document is marked 'indexing' first, so a run killed
    half-way is finished by the next indexing run like any interrupted one.
    """
    with indexing_lock(settings), _conn(settings) as conn:
        docs = [_record(r) for r in conn.execute(
            "SELECT * FROM documents WHERE collection=? AND status IN ('indexed','indexing') ORDER BY name",
            (collection,)).fetchall()]
        with transaction(conn):
            conn.execute("UPDATE documents SET status='indexing' WHERE collection=? AND status='indexed'", (collection,))
        vindex = VectorIndex(settings, collection)
        vindex.drop()
        vindex.ensure(embedding_id(settings))
        embedded = 0
        for n, rec in enumerate(docs):
            chunks = chunk_rows.of_document(conn, rec.id)
            if chunks:
                embedded += store_chunks(settings, embeddings, conn, vindex, rec.id, chunks, rec.pages)
            if progress:
                progress((n + 1) / max(1, len(docs)), f"{rec.name}: re-embedded")
        # documents an earlier run left without chunk rows: finish them from their stored files
        _recover(settings, embeddings, conn, vindex)
        return embedded
