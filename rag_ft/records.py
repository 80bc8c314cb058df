"""The two records that cross module boundaries: a chunk to index, and a passage found for a question."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langchain_core.documents import Document


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

    # The one conversion between this record and LangChain's Document: the retriever returns Documents (so it
    # composes with any LangChain chain), the answer chain and the pages work with Passages.
    def to_document(self) -> Document:
        """This passage as a LangChain ``Document``: the text, and every other field in the metadata."""
        from langchain_core.documents import Document  # lazy: records is imported by light modules too

        meta = {"document": self.document, "pages": list(self.pages), "section": self.section,
                "chunk_index": self.chunk_index, "score": self.score, "chunk_id": self.chunk_id,
                "document_id": self.document_id, "scores": dict(self.scores)}
        return Document(page_content=self.text, metadata=meta, id=self.chunk_id or None)

    @classmethod
    def from_document(cls, doc: Document) -> Passage:
        """A ``Document`` from any LangChain retriever as a Passage (``source`` names the document if unset)."""
        m = doc.metadata or {}
        return cls(
            text=doc.page_content, document=str(m.get("document") or m.get("source") or ""),
            pages=[int(x) for x in m.get("pages") or []], section=str(m.get("section") or ""),
            chunk_index=int(m.get("chunk_index") or 0), score=float(m.get("score") or 0.0),
            chunk_id=str(m.get("chunk_id") or doc.id or ""), document_id=str(m.get("document_id") or ""),
            scores={k: float(v) for k, v in (m.get("scores") or {}).items()},
        )
