"""Ingestion: a file (name + bytes) -> chunks with pages and sections, or a named error.

``parse`` is the one entry point the index calls; bad input never makes it raise. What a file is lives in
``rag_ft.ingest.formats``, reading it (unstructured, OCR) in ``rag_ft.ingest.elements``, structure-keeping chunking in
``rag_ft.ingest.chunk``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from rag_ft.ingest.chunk import chunk_elements
from rag_ft.ingest.elements import EXTENSIONS, ParseError, extension, partition, short_reason
from rag_ft.records import Chunk

log = logging.getLogger(__name__)

# What the upload widget accepts. A name with no extension is accepted too: its content decides.
SUPPORTED_EXTENSIONS: tuple[str, ...] = tuple(sorted(e.lstrip(".") for e in EXTENSIONS))


@dataclass
class ParseResult:
    document: str  # file name
    chunks: list[Chunk]  # chunk_index 0..n-1; pages = every page the chunk spans
    pages: int  # page count when the format has pages, else 0
    elements: int  # elements unstructured returned (after dropping empty/garbled ones)
    error: str | None  # plain words when the file yields nothing usable, else None
    warnings: list[str] = field(default_factory=list)
    format: str = ""  # what the content was read as ("pdf", "eml", ...), may differ from the extension

    @property
    def ok(self) -> bool:
        return self.error is None


def supported(name: str) -> bool:
    """True for a known extension, or for no extension at all (then the content is sniffed)."""
    ext = extension(name)
    return ext == "" or ext in EXTENSIONS


def parse(name: str, data: bytes, *, max_characters: int = 1500, ocr: bool = True) -> ParseResult:
    """Parse and chunk one file. Bad input gives ``error`` in plain words and no chunks, never an exception."""
    if max_characters < 50:
        raise ValueError(f"max_characters must be at least 50, got {max_characters}")
    try:
        parsed = partition(name, data, ocr=ocr)
    except ParseError as exc:
        return ParseResult(name, [], 0, 0, str(exc), [])
    except Exception as exc:  # a library bug must not stop a batch: name it like a corrupt file
        log.exception("parsing %s failed", name)
        return ParseResult(name, [], 0, 0, f"corrupt file: {short_reason(exc)}", [])
    fallback = ""
    if parsed.fmt in ("eml", "msg"):
        fallback = next((str(e.metadata.subject) for e in parsed.elements
                         if getattr(e.metadata, "subject", None)), "")
    try:
        chunks = chunk_elements(parsed.elements, name, max_characters=max_characters, fallback_section=fallback)
    except Exception as exc:
        log.exception("chunking %s failed", name)
        return ParseResult(name, [], parsed.pages, len(parsed.elements), f"corrupt file: {short_reason(exc)}",
                           parsed.warnings, parsed.fmt)
    error = None if chunks else "no text found in the file"
    if error and parsed.fmt in ("text", "md", "csv", "tsv", "html"):
        error = "empty file"
    if extension(name) and parsed.fmt != _expected_format(name):
        parsed.warnings.append(f"read as {parsed.fmt} (the content is not what the extension says)")
    return ParseResult(name, chunks, parsed.pages, len(parsed.elements), error, parsed.warnings, parsed.fmt)


def _expected_format(name: str) -> str:
    return EXTENSIONS.get(extension(name), "")
