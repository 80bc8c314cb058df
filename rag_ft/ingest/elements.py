"""File bytes -> unstructured elements, offline, for every format we accept.

The format comes from ``rag_ft.ingest.formats`` (content over extension). PDFs are read with
``strategy="fast"`` (the text layer); pages or files without usable text are read by the local tesseract
(``ocr_only``), and images always are. Every way a file can yield nothing usable becomes a
``ParseError`` with a message in plain words.
"""

from __future__ import annotations

import email
import io
import shutil
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any

from rag_ft.ingest.formats import EXTENSIONS, ParseError, decode_text, detect, extension, short_reason
from rag_ft.ingest.unstructured_offline import apply

__all__ = ["EXTENSIONS", "ParseError", "Parsed", "extension", "partition", "short_reason"]

SPREADSHEETS = {"xlsx", "csv", "tsv"}
_SOFFICE = threading.Lock()


@dataclass
class Parsed:
    elements: list[Any]
    fmt: str
    pages: int = 0  # page count for paged formats, else 0
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- partitioning
def partition(name: str, data: bytes, *, ocr: bool = True) -> Parsed:
    """Elements of one file. Raises ParseError (plain words) when the file yields nothing usable."""
    if not data.strip():
        raise ParseError("empty file")
    fmt = detect(name, data)
    apply()
    try:
        if fmt == "pdf":
            return _pdf(data, ocr)
        if fmt == "image":
            return _image(data, ocr)
        if fmt in ("doc", "ppt") and not shutil.which("soffice"):
            raise ParseError(f"needs LibreOffice to read .{fmt}")
        if fmt == "eml":
            _refuse_encrypted_mail(data)
        if fmt in ("doc", "ppt"):
            with _SOFFICE:  # one LibreOffice conversion at a time: a second one in parallel fails
                elements = _PARTITIONERS[fmt](data)
        else:
            elements = _PARTITIONERS[fmt](data)
    except ParseError:
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


def _csv(data: bytes) -> list[Any]:
    from unstructured.partition.csv import partition_csv

    # partition_csv only reads UTF-8 (UTF-16 files raise UnicodeDecodeError): decode here, hand it UTF-8.
    return partition_csv(file=io.BytesIO(_text_of(data).encode("utf-8")), encoding="utf-8")


def _office(module: str, func: str) -> Any:
    def run(data: bytes) -> list[Any]:
        import importlib

        return getattr(importlib.import_module(f"unstructured.partition.{module}"), func)(file=io.BytesIO(data))

    return run


def _lazy(module: str, func: str, **kwargs: Any) -> Any:
    def run(data: bytes) -> list[Any]:
        import importlib

        fn = getattr(importlib.import_module(f"unstructured.partition.{module}"), func)
        return fn(text=_text_of(data), **kwargs)

    return run


_PARTITIONERS: dict[str, Any] = {
    "text": _lazy("text", "partition_text"),
    "md": _lazy("md", "partition_md"),
    "html": _lazy("html", "partition_html"),
    "csv": _csv,
    "tsv": _csv,
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


def garbled(text: str) -> bool:
    """pdfminer spells rotated text (arXiv side stamps, rotated pages) one letter at a time: '1 2 0 2 n u J'."""
    tokens = text.split()
    singles = sum(len(t) == 1 for t in tokens)
    return bool(tokens) and (singles == len(tokens) or (len(tokens) >= 6 and singles >= 0.7 * len(tokens)))


def mostly_letters_apart(elements: list[Any]) -> bool:
    """A whole text layer of short fragments ('R o', 'f i x t'): a rotated page that OCR reads better."""
    tokens = [t for e in elements for t in e.text.split()]
    return len(tokens) >= 6 and sum(len(t) == 1 for t in tokens) >= 0.6 * len(tokens)


def _pdf(data: bytes, ocr: bool) -> Parsed:
    import pikepdf
    from unstructured.partition.pdf import partition_pdf

    warnings: list[str] = []
    pages = 0
    damage = ""
    try:
        with pikepdf.open(io.BytesIO(data)) as pdf:
            pages = len(pdf.pages)
            repairs = [short_reason(Exception(w)) for w in pdf.get_warnings()]
        if repairs:  # qpdf rebuilt a damaged file (e.g. truncated); its text may be partly or wholly lost
            damage = "; ".join(repairs[:2])
            warnings.append(f"damaged PDF structure, repaired: {damage}")
        elif pages == 0:
            damage = "no pages found"
    except pikepdf.PasswordError as exc:
        raise ParseError("encrypted PDF: needs a password") from exc
    except Exception as exc:  # pdfminer is more tolerant than qpdf: still try, but say so
        damage = short_reason(exc)
        warnings.append(f"damaged PDF structure: {damage}")
    try:
        elements = partition_pdf(file=io.BytesIO(data), strategy="fast")
    except Exception as exc:
        raise ParseError(f"corrupt file: {short_reason(exc)}") from exc
    kept = [e for e in elements if e.text.strip() and not garbled(e.text)]
    dropped = sum(1 for e in elements if e.text.strip() and garbled(e.text))
    if mostly_letters_apart(kept):
        dropped, kept = dropped + len(kept), []
    if kept:
        if dropped:
            warnings.append(f"dropped {dropped} fragment(s) of lone letters or digits (page numbers, rotated side text)")
        pages = pages or max((e.metadata.page_number or 0 for e in kept), default=0)
        empty = sorted(set(range(1, pages + 1)) - {e.metadata.page_number for e in kept})
        if empty and ocr and not damage:  # a scanned page inside a text PDF (a signed form, an annex)
            ocred = _ocr_scanned_pages(data, empty)
            if ocred:
                done = sorted({e.metadata.page_number for e in ocred})
                warnings.append("text read by OCR on page(s) " + ", ".join(map(str, done)))
                kept = sorted(kept + ocred, key=lambda e: e.metadata.page_number or 0)  # stable: order kept
                empty = [p for p in empty if p not in done]
        if empty:
            warnings.append("no text on page(s) " + ", ".join(map(str, empty)))
        return Parsed(kept, "pdf", pages, warnings)
    if damage:  # a damaged file with no text: a broken text layer, not a scan (OCR would render garbage)
        raise ParseError(f"corrupt file: damaged PDF ({damage})")
    if not ocr:
        if dropped:
            return Parsed(elements, "pdf", pages, [*warnings, "text layer looks garbled; OCR is turned off"])
        raise ParseError("scanned PDF with no text: OCR is turned off")
    try:  # no usable text layer: read the page images with the local tesseract
        ocred = partition_pdf(file=io.BytesIO(data), strategy="ocr_only", languages=["eng"])
    except Exception as exc:
        raise ParseError(f"corrupt file: {short_reason(exc)}") from exc
    ocred = [e for e in ocred if e.text.strip()]
    if ocred:
        warnings.append("garbled text layer (rotated page): text read by OCR" if dropped
                        else "no text layer: text read by OCR")
        return Parsed(ocred, "pdf", pages or max(e.metadata.page_number or 0 for e in ocred), warnings)
    if dropped:
        return Parsed(elements, "pdf", pages, [*warnings, "text layer looks garbled and OCR gave no text"])
    raise ParseError("scanned PDF with no text: OCR gave no text")


def _ocr_scanned_pages(data: bytes, page_numbers: list[int]) -> list[Any]:
    """OCR the pages of a text PDF that have no text but hold an image; blank pages are skipped (no cost)."""
    import pikepdf
    from unstructured.partition.pdf import partition_pdf

    out: list[Any] = []
    try:
        with pikepdf.open(io.BytesIO(data)) as pdf:
            for number in page_numbers:
                page = pdf.pages[number - 1]
                if not page.images:
                    continue
                single = pikepdf.new()
                with warnings.catch_warnings():  # named destinations are lost: irrelevant for OCR
                    warnings.simplefilter("ignore")
                    single.pages.append(page)
                buf = io.BytesIO()
                single.save(buf)
                elements = partition_pdf(file=io.BytesIO(buf.getvalue()), strategy="ocr_only", languages=["eng"],
                                         starting_page_number=number)
                out.extend(e for e in elements if e.text.strip())
    except Exception:  # OCR of extra pages is a bonus: the text pages are already read
        return out
    return out


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
