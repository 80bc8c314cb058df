"""File bytes -> unstructured elements, offline, for every format we accept.

The format comes from ``rag_ft.ingest.formats`` (content over extension). PDFs are read by
``rag_ft.ingest.pdf``; images by the local tesseract (``ocr_only``). Every way a file can yield nothing usable becomes a
``ParseError`` with a message in plain words.
"""

from __future__ import annotations

import email
import io
import shutil
import threading
from typing import Any

from rag_ft.ingest.formats import EXTENSIONS, Parsed, ParseError, decode_text, detect, extension, short_reason
from rag_ft.ingest.limits import ParseLimits
from rag_ft.ingest.pdf import read_pdf
from rag_ft.ingest.unstructured_offline import apply

__all__ = ["EXTENSIONS", "ParseError", "Parsed", "extension", "partition", "short_reason"]

SPREADSHEETS = {"xlsx", "csv", "tsv"}
TEXT_FORMATS = {"text", "md", "html", "csv", "tsv"}  # decoded here, so their size is known before partitioning
_SOFFICE = threading.Lock()


# ---------------------------------------------------------------- partitioning
def partition(name: str, data: bytes, *, ocr: bool = True, limits: ParseLimits | None = None) -> Parsed:
    """Elements of one file. Raises ParseError (plain words) when the file yields nothing usable.

    MemoryError is let through (never called a corrupt file): the sandbox names it as a memory limit.
    """
    limits = limits or ParseLimits()
    ocr = ocr and limits.max_ocr_pages > 0
    if not data.strip():
        raise ParseError("empty file")
    fmt = detect(name, data)
    apply()
    try:
        if fmt == "pdf":
            return read_pdf(data, ocr, limits)
        if fmt == "image":
            return _image(data, ocr)
        if fmt in ("doc", "ppt") and not shutil.which("soffice"):
            raise ParseError(f"needs LibreOffice to read .{fmt}")
        if fmt == "eml":
            _refuse_encrypted_mail(data)
        if fmt in TEXT_FORMATS:
            elements = _TEXT_PARTITIONERS[fmt](_bounded_text(data, limits.max_text_chars))
        elif fmt in ("doc", "ppt"):
            with _SOFFICE:  # one LibreOffice conversion at a time: a second one in parallel fails
                elements = _PARTITIONERS[fmt](data)
        else:
            elements = _PARTITIONERS[fmt](data)
    except (ParseError, MemoryError):
        raise
    except Exception as exc:  # any library failure on bad bytes is a corrupt file, named, never a crash
        raise ParseError(f"corrupt file: {short_reason(exc)}") from exc
    parsed = Parsed(elements, fmt)
    if fmt in SPREADSHEETS:  # a sheet index is not a page; the sheet name becomes the section instead
        for e in elements:
            e.metadata.page_number = None
    else:
        parsed.pages = max((e.metadata.page_number or 0 for e in elements), default=0)
    return parsed


def _text_of(data: bytes) -> str:
    text = decode_text(data)
    if text is None:
        raise ParseError("corrupt file: not readable as text")
    if not text.strip():
        raise ParseError("empty file")
    return text


def _bounded_text(data: bytes, max_chars: int) -> str:
    """The decoded text, refused whole when over the limit: partitioning costs ~40 s a million characters,
    and a refusal named up front beats a partial index found out later."""
    text = _text_of(data)
    if len(text) > max_chars:
        raise ParseError(f"too much text: the file holds {len(text):,} characters, over the limit of {max_chars:,} "
                         "(RAG_FT_MAX_TEXT_CHARS): split it into smaller files")
    return text


def _csv(text: str) -> list[Any]:
    from unstructured.partition.csv import partition_csv

    # partition_csv only reads UTF-8 (UTF-16 files raise UnicodeDecodeError): decode here, hand it UTF-8.
    return partition_csv(file=io.BytesIO(text.encode("utf-8")), encoding="utf-8")


def _office(module: str, func: str) -> Any:
    def run(data: bytes) -> list[Any]:
        import importlib

        return getattr(importlib.import_module(f"unstructured.partition.{module}"), func)(file=io.BytesIO(data))

    return run


def _lazy(module: str, func: str, **kwargs: Any) -> Any:
    def run(text: str) -> list[Any]:
        import importlib

        fn = getattr(importlib.import_module(f"unstructured.partition.{module}"), func)
        return fn(text=text, **kwargs)

    return run


_TEXT_PARTITIONERS: dict[str, Any] = {
    "text": _lazy("text", "partition_text"),
    "md": _lazy("md", "partition_md"),
    "html": _lazy("html", "partition_html"),
    "csv": _csv,
    "tsv": _csv,
}
_PARTITIONERS: dict[str, Any] = {
    "eml": _office("email", "partition_email"),
    "msg": _office("msg", "partition_msg"),
    "docx": _office("docx", "partition_docx"),
    "doc": _office("doc", "partition_doc"),
    "odt": _office("odt", "partition_odt"),
    "rtf": _office("rtf", "partition_rtf"),
    "pptx": _office("pptx", "partition_pptx"),
    "ppt": _office("ppt", "partition_ppt"),
    "xlsx": _office("xlsx", "partition_xlsx"),
    "epub": _office("epub", "partition_epub"),
}


def _refuse_encrypted_mail(data: bytes) -> None:
    msg = email.message_from_bytes(data)
    types = {part.get_content_type() for part in msg.walk()}
    if "multipart/encrypted" in types or "application/pgp-encrypted" in types or "application/pkcs7-mime" in types:
        raise ParseError("encrypted email: the body is PGP/S-MIME encrypted")


def _image(data: bytes, ocr: bool) -> Parsed:
    from unstructured.partition.image import partition_image

    if not ocr:
        raise ParseError("image: OCR is turned off")
    try:
        elements = partition_image(file=io.BytesIO(data), strategy="ocr_only", languages=["eng"])
    except Exception as exc:
        raise ParseError(f"corrupt file: {short_reason(exc)}") from exc
    elements = [e for e in elements if e.text.strip()]
    if not elements:
        raise ParseError("image with no text: OCR gave no text")
    return Parsed(elements, "image", max(e.metadata.page_number or 1 for e in elements), ["text read by OCR"])
