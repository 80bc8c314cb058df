"""Contextual headers: the document and section a chunk comes from, in the text that is embedded and indexed.

Look-alike documents (the same report for four quarters, one handbook per plan year) share most of their
passages almost word for word; what tells them apart is usually only the document's name and period, which a
chunk from page 30 does not repeat. So the text we BM25-index (and, optionally, embed) for a chunk starts with a
short header, ``"<document name as words> | <section>"``; the passage shown to the user (``Chunk.text``) stays as
it was.

The header holds only what is stable for the chunk: the file name (the document's identity in a collection) and
the chunk's own section. A title read from the first page would change every chunk's header, and so force every
chunk to be embedded again, whenever the first page is edited; the document's own words (its first page, its
name as written) are used at query time instead, by ``rag_ft.retrieval.metadata``.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from rag_ft.records import content_hash

# Headers in the BM25 text (built at query time from stored chunks: free to change) and in the embedded text
# (baked into the vectors). bench/retrieval_real.py measured both on the SEC 10-Q dev set and sample_docs: in
# BM25 they help (right filing first 0.31 -> 0.41 alone); in vectors they add little once document matching is on
# (0.80 -> 0.84 first, but recall@10 0.977 -> 0.962), cost sample_docs' vector-only page hit@1 (0.88 -> 0.72),
# and would stop equal passages of two documents sharing one vector. So BM25 only, by default.
INDEX_HEADERS = True
EMBED_HEADERS = False
_SEPARATORS = re.compile(r"[_\-.]+")


def name_words(document: str) -> str:
    """A file name as words: extension dropped, ``_ - .`` as spaces ("2023_Q3-report.pdf" -> "2023 Q3 report")."""
    stem = PurePosixPath(document.replace("\\", "/")).name
    if "." in stem.strip("."):
        stem = stem.rsplit(".", 1)[0]
    return " ".join(_SEPARATORS.sub(" ", stem).split())


def header(document: str, section: str = "") -> str:
    """The one-line header of a chunk: its document's name as words, then its section when it has one."""
    name = name_words(document)
    section = " ".join((section or "").split())[:200]
    return f"{name} | {section}" if section and section != name else name


def contextual_text(text: str, document: str, section: str = "", enabled: bool = True) -> str:
    """A chunk's text preceded by its header and a blank line (the text alone when not ``enabled``)."""
    head = header(document, section) if enabled else ""
    return f"{head}\n\n{text}" if head else text


def indexed_text(text: str, document: str, section: str = "") -> str:
    """What BM25 indexes for a chunk."""
    return contextual_text(text, document, section, INDEX_HEADERS)


def embedded_text(text: str, document: str, section: str = "") -> str:
    """What the embedding model is given for a chunk."""
    return contextual_text(text, document, section, EMBED_HEADERS)


def vector_key(text: str, document: str, section: str = "") -> str:
    """The identity of a chunk's vector: the hash of what was embedded, so equal text under another header is
    not taken for the same vector (without headers: the chunk's content hash, as before headers existed)."""
    return content_hash(embedded_text(text, document, section))


__all__ = ["EMBED_HEADERS", "INDEX_HEADERS", "contextual_text", "embedded_text", "header", "indexed_text",
           "name_words", "vector_key"]
