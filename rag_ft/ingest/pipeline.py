"""Ingestion: a file (name + bytes) -> chunks with pages and sections, or a named error.

``parse`` reads one file in this process; bad input never makes it raise. The index calls
``rag_ft.ingest.sandbox.parse_bounded``, which runs ``parse`` in a memory-capped, time-limited child process.
What a file is lives in ``rag_ft.ingest.formats``, reading it (unstructured, OCR) in ``rag_ft.ingest.elements``,
structure-keeping chunking in ``rag_ft.ingest.chunk``, the limits in ``rag_ft.ingest.limits``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from rag_ft.ingest.chunk import chunk_elements
from rag_ft.ingest.elements import EXTENSIONS, ParseError, extension, partition, short_reason
from rag_ft.ingest.limits import ParseLimits, precheck
from rag_ft.records import Chunk

log = logging.getLogger(__name__)
# What parse() reports when an allocation fails; the sandbox swaps it for the limit it set.
OUT_OF_MEMORY = "out of memory while reading the file: likely a decompression bomb"

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


def parse(
    name: str, data: bytes, *, max_characters: int = 1500, ocr: bool = True, limits: ParseLimits | None = None
) -> ParseResult:
    """Parse and chunk one file. Bad input gives ``error`` in plain words and no chunks, never an exception.

    ``limits`` (default: ``ParseLimits()``) caps PDF pages, OCR pages, text size and zip contents; memory and
    time are only bounded when this runs in the sandbox.
    """
    if max_characters < 50:
        raise ValueError(f"max_characters must be at least 50, got {max_characters}")
    limits = limits or ParseLimits()
    try:
        precheck(name, data, limits)
        parsed = partition(name, data, ocr=ocr, limits=limits)
    except ParseError as exc:
        return ParseResult(name, [], 0, 0, str(exc), exc.warnings)
    except MemoryError:
        return ParseResult(name, [], 0, 0, OUT_OF_MEMORY, [])
    except Exception as exc:  # a library bug must not stop a batch: name it like a corrupt file
        log.exception("parsing %s failed", name)
        return ParseResult(name, [], 0, 0, f"corrupt file: {short_reason(exc)}", [])
    fallback = ""
    if parsed.fmt in ("eml", "msg"):
        fallback = next((str(e.metadata.subject) for e in parsed.elements
                         if getattr(e.metadata, "subject", None)), "")
    _cap_text(parsed.elements, parsed.warnings, limits.max_text_chars)
    try:
        chunks = chunk_elements(parsed.elements, name, max_characters=max_characters, fallback_section=fallback)
    except MemoryError:
        return ParseResult(name, [], parsed.pages, len(parsed.elements), OUT_OF_MEMORY, parsed.warnings, parsed.fmt)
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


def _cap_text(elements: list, warnings: list[str], max_chars: int) -> None:
    """Keep the elements within the first ``max_chars`` characters (every chunk costs an embedding)."""
    total = 0
    for i, e in enumerate(elements):
        total += len(e.text or "")
        if total > max_chars:
            whole = total + sum(len(x.text or "") for x in elements[i + 1 :])
            if i == 0:  # one huge element (a spreadsheet read as one table): keep its start
                e.text = e.text[:max_chars]
                i = 1
            del elements[i:]
            warnings.append(f"text after the first {max_chars:,} characters skipped (the file holds {whole:,}): "
                            "the limit is RAG_FT_MAX_TEXT_CHARS")
            return


def _expected_format(name: str) -> str:
    return EXTENSIONS.get(extension(name), "")
