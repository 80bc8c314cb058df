"""The vector index: one Chroma collection per document collection, embedded or on a Chroma server.

Chroma is reached through the same code either way: ``chromadb.PersistentClient`` in the data folder, or
``chromadb.HttpClient`` when ``settings.chroma_host`` is set. Vectors always come from OUR embeddings (Chroma's
default embedding function downloads a model, which fails offline). Each collection records the embedding model
it was built with in its metadata; using it with another model raises ``EmbeddingMismatch``.

SQLite (``rag_ft.index.documents``) is the source of truth for which chunks are live; Chroma holds their vectors.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rag_ft import offline  # noqa: F401  (SQLite swap before chromadb)
from rag_ft.settings import Settings

# Chroma rejects larger batches (max ~5,461 on this build); stay well below.
WRITE_BATCH = 1000
READ_BATCH = 500

_CLIENTS: dict[tuple, Any] = {}
_CLIENTS_LOCK = threading.Lock()


class IndexProblem(RuntimeError):
    """The vector store cannot be used; the message says why."""


class EmbeddingMismatch(IndexProblem):
    """A collection built with one embedding model was asked to work with another."""

    def __init__(self, collection: str, built_with: str, current: str) -> None:
        self.collection, self.built_with, self.current = collection, built_with, current
        super().__init__(
            f"Collection '{collection}' was built with the embedding model '{built_with}', but the current "
            f"embedding model is '{current}'. Vectors from different models cannot be compared: re-embed the "
            f"collection with the current model (Documents page, 'Re-embed with the current model'), or switch "
            f"back to '{built_with}'."
        )


def chroma_name(collection: str) -> str:
    """Our collection name -> a valid Chroma name (3-512 chars of [A-Za-z0-9._-], alphanumeric ends)."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", collection).strip("-_")[:40] or "c"
    digest = hashlib.sha256(collection.encode("utf-8")).hexdigest()[:8]
    return f"ragft-{slug}-{digest}"


def chroma_client(settings: Settings) -> Any:
    """One client per target per process (PersistentClient is not safe to open twice on one path)."""
    if settings.chroma_host:
        key: tuple = ("http", settings.chroma_host, int(settings.chroma_port))
    else:
        key = ("path", str(settings.chroma_dir.resolve()))
    client = _CLIENTS.get(key)  # fast path: no lock, no settings object (every query passes here)
    if client is not None:
        return client
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            if settings.chroma_host:
                try:
                    client = chromadb.HttpClient(
                        host=settings.chroma_host, port=int(settings.chroma_port), settings=chroma_settings
                    )
                except Exception as exc:  # chromadb raises ValueError/ConnectError when the server is down
                    raise IndexProblem(
                        f"Cannot reach the Chroma server at {settings.chroma_host}:{settings.chroma_port} "
                        f"({exc}). Start it (`chroma run --path <folder> --port {settings.chroma_port}`) "
                        "or unset CHROMA_HOST to use the embedded store."
                    ) from exc
            else:
                settings.chroma_dir.mkdir(parents=True, exist_ok=True)
                client = chromadb.PersistentClient(path=str(settings.chroma_dir), settings=chroma_settings)
            _CLIENTS[key] = client
        return client


def forget_clients() -> None:
    """Drop cached clients (tests that stop a server or delete a data folder)."""
    with _CLIENTS_LOCK:
        _CLIENTS.clear()


@dataclass
class StoredVector:
    id: str
    hash: str
    vector: list[float]


class VectorIndex:
    """The Chroma collection behind one document collection."""

    def __init__(self, settings: Settings, collection: str = "default") -> None:
        self.settings = settings
        self.collection = collection
        self.name = chroma_name(collection)
        self.client = chroma_client(settings)
        self._col: Any = None
        self._n: int | None = None  # chunks in the collection, counted at the first query

    # ---- the collection and the embedding model it was built with ----
    def exists(self) -> bool:
        return self.name in {getattr(c, "name", c) for c in self.client.list_collections()}

    def _collection(self, create_for: str | None = None) -> Any:
        """The chromadb collection; ``create_for`` = embedding id to create it with when missing."""
        if self._col is None:
            if create_for is not None:
                # embedding_function=None: Chroma must never embed (its default model is a download)
                self._col = self.client.get_or_create_collection(
                    self.name,
                    embedding_function=None,
                    metadata={"embedding": create_for, "collection": self.collection},
                    configuration={"hnsw": {"space": "cosine"}},
                )
            else:
                self._col = self.client.get_collection(self.name, embedding_function=None)
        return self._col

    def built_with(self) -> str | None:
        """The embedding id recorded on the collection, None when it does not exist yet."""
        if not self.exists():
            return None
        meta = self._collection().metadata or {}
        return meta.get("embedding")

    def check(self, current: str) -> None:
        built = self.built_with()
        if built is not None and built != current:
            raise EmbeddingMismatch(self.collection, built, current)

    def ensure(self, current: str) -> None:
        """Open (creating if needed) for writing with embedding ``current``; refuse another model's collection."""
        self.check(current)
        self._collection(create_for=current)

    def drop(self) -> None:
        if self.exists():
            self.client.delete_collection(self.name)
        self._col, self._n = None, None

    def count(self) -> int:
        return self._collection().count() if self.exists() else 0

    # ---- writes ----
    def upsert(
        self, ids: Sequence[str], vectors: Sequence[Sequence[float]], texts: Sequence[str],
        metadatas: Sequence[dict[str, Any]],
    ) -> None:
        self._write("upsert", ids, vectors, texts, metadatas)

    def add(
        self, ids: Sequence[str], vectors: Sequence[Sequence[float]], texts: Sequence[str],
        metadatas: Sequence[dict[str, Any]],
    ) -> None:
        """Insert new ids only (no upsert lookup: faster for bulk loads such as the benchmarks' corpora)."""
        self._write("add", ids, vectors, texts, metadatas)

    def _write(self, method: str, ids: Sequence[str], vectors: Sequence[Sequence[float]], texts: Sequence[str],
               metadatas: Sequence[dict[str, Any]]) -> None:
        write = getattr(self._collection(), method)
        for i in range(0, len(ids), WRITE_BATCH):
            sl = slice(i, i + WRITE_BATCH)
            write(ids=list(ids[sl]), embeddings=[list(v) for v in vectors[sl]], documents=list(texts[sl]),
                  metadatas=list(metadatas[sl]))

    def delete_ids(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        if not ids or not self.exists():
            return
        col = self._collection()
        for i in range(0, len(ids), WRITE_BATCH):
            col.delete(ids=ids[i : i + WRITE_BATCH])

    def ids_of_document(self, document_id: str) -> list[str]:
        if not self.exists():
            return []
        return list(self._collection().get(where={"document_id": document_id}, include=[])["ids"])

    # ---- reads ----
    def vectors_by_hash(self, hashes: Iterable[str]) -> dict[str, list[float]]:
        """Stored vectors for chunk contents already embedded in this collection (any document)."""
        wanted = sorted(set(hashes))
        found: dict[str, list[float]] = {}
        if not wanted or not self.exists():
            return found
        col = self._collection()
        for i in range(0, len(wanted), READ_BATCH):
            part = wanted[i : i + READ_BATCH]
            got = col.get(where={"hash": {"$in": part}}, include=["embeddings", "metadatas"])
            for meta, vec in zip(got["metadatas"], got["embeddings"], strict=True):
                found.setdefault(meta["hash"], [float(x) for x in vec])
        return found

    def vectors_by_id(self, ids: Sequence[str]) -> dict[str, list[float]]:
        if not ids or not self.exists():
            return {}
        got = self._collection().get(ids=list(ids), include=["embeddings"])
        return {i: list(v) for i, v in zip(got["ids"], got["embeddings"], strict=True)}

    def query(self, vector: Sequence[float], n: int) -> list[tuple[str, float]]:
        """Nearest chunks as (chunk id, cosine similarity clipped to 0..1), best first."""
        if self._n is None:  # the first query checks and counts; later ones reuse the open collection
            if not self.exists():
                return []
            self._n = self._collection().count()
        n = min(n, self._n)
        if n <= 0:
            return []
        # ids and distances only: the texts come from SQLite, which says which chunks are live
        got = self._collection().query(query_embeddings=[list(vector)], n_results=n, include=["distances"])
        # Chroma returns the cosine distance (1 - cos): lower is closer
        return [(cid, max(0.0, min(1.0, 1.0 - float(dist)))) for cid, dist in zip(got["ids"][0], got["distances"][0],
                                                                                strict=True)]
