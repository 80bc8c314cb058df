"""The two records that cross module boundaries: a chunk to index, and a passage found for a question."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any


def content_hash(text: str) -> str:
    """Identity of a chunk's content: equal text is embedded once, whatever the document."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class Chunk:
    """A piece of a document, ready to embed. Produced by ingestion, stored by the index."""

    text: str
    document: str  # file name as uploaded; identifies the document within a collection
    chunk_index: int
    pages: list[int] = field(default_factory=list)  # every page the chunk spans; empty when the format has none
    section: str = ""  # nearest title above the chunk
    element_types: list[str] = field(default_factory=list)
    hash: str = ""

    def __post_init__(self) -> None:
        if not self.hash:
            self.hash = content_hash(self.text)

    def metadata(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("text")
        return d


@dataclass
class Passage:
    """A chunk returned by retrieval for a question, with its score (higher is more relevant, 0..1)."""

    text: str
    document: str
    pages: list[int]
    section: str
    chunk_index: int
    score: float
    chunk_id: str = ""
    document_id: str = ""
    scores: dict[str, float] = field(default_factory=dict)  # per method, e.g. {"vector": .., "bm25": ..}

    @property
    def page_label(self) -> str:
        if not self.pages:
            return ""
        lo, hi = min(self.pages), max(self.pages)
        return f"p. {lo}" if lo == hi else f"pp. {lo}-{hi}"
