"""Contextual headers: the document and section a chunk comes from, in the text that is embedded and indexed.

Look-alike documents (the same report for four quarters, one handbook per plan year) share most of their
passages almost word for word; what tells them apart is usually only the document's name and period, which a
chunk from page 30 does not repeat. So the text we embed and BM25-index for a chunk starts with a short header,
``"<document name as words> | <section>"``, and the passage shown to the user (``Chunk.text``) stays as it was.

The header holds only what is stable for the chunk: the file name (the document's identity in a collection) and
the chunk's own section. A title read from the first page would change every chunk's header, and so force every
chunk to be embedded again, whenever the first page is edited; the document's own words (its first page, its
name as written) are used at query time instead, by ``rag_ft.retrieval.metadata``.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from rag_ft.records import content_hash

# headers on/off for what is embedded and indexed; the benchmark (bench/retrieval_real.py) measures both
CONTEXTUAL = True
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


def contextual_text(text: str, document: str, section: str = "", enabled: bool | None = None) -> str:
    """What is embedded and BM25-indexed for a chunk: its header, a blank line, its text (or the text alone)."""
    on = CONTEXTUAL if enabled is None else enabled
    head = header(document, section) if on else ""
    return f"{head}\n\n{text}" if head else text


def vector_key(text: str, document: str, section: str = "") -> str:
    """The identity of a chunk's vector: the hash of what was embedded, so equal text under another header (or
    embedded before headers existed) is not taken for the same vector."""
    embedded = contextual_text(text, document, section)
    return content_hash(embedded) if embedded != text else content_hash(text)


__all__ = ["CONTEXTUAL", "contextual_text", "header", "name_words", "vector_key"]
