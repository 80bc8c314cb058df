"""PDF -> unstructured elements: the text layer first, OCR where there is none, within page and size caps.

PDFs are read with ``strategy="fast"`` (pdfminer, the text layer); pages or files without usable text are
read by the local tesseract (``ocr_only``). Hostile PDFs are bounded before pdfminer or pdfium see them:
pages past ``max_pdf_pages`` are cut off, content streams that inflate past ``max_stream_mb`` are refused
(a Flate bomb), blank pages never reach tesseract, and OCR reads at most ``max_ocr_pages`` pages a file.
Every cut is named in a warning.
"""

from __future__ import annotations

import io
import warnings
import zlib
from typing import Any

from rag_ft.ingest.formats import Parsed, ParseError, short_reason
from rag_ft.ingest.limits import MB, ParseLimits, page_list

# content-stream operators that put marks on a page; a page with none of them is blank and OCR can skip it
PAINT_OPERATORS = {"Do", "f", "F", "f*", "S", "s", "B", "B*", "b", "b*", "Tj", "TJ", "'", '"', "sh", "BI",
                   "INLINE IMAGE"}


def garbled(text: str) -> bool:
    """pdfminer spells rotated text (arXiv side stamps, rotated pages) one letter at a time: '1 2 0 2 n u J'."""
    tokens = text.split()
    singles = sum(len(t) == 1 for t in tokens)
    return bool(tokens) and (singles == len(tokens) or (len(tokens) >= 6 and singles >= 0.7 * len(tokens)))


def mostly_letters_apart(elements: list[Any]) -> bool:
    """A whole text layer of short fragments ('R o', 'f i x t'): a rotated page that OCR reads better."""
    tokens = [t for e in elements for t in e.text.split()]
    return len(tokens) >= 6 and sum(len(t) == 1 for t in tokens) >= 0.6 * len(tokens)


def read_pdf(data: bytes, ocr: bool, limits: ParseLimits) -> Parsed:
    import pikepdf
    from unstructured.partition.pdf import partition_pdf

    warnings: list[str] = []
    pages = 0
    damage = ""
    try:
        with pikepdf.open(io.BytesIO(data)) as pdf:
            pages = len(pdf.pages)
            repairs = [short_reason(Exception(w)) for w in pdf.get_warnings()]
            _refuse_bombs(pdf, min(pages, limits.max_pdf_pages), limits)
            if pages > limits.max_pdf_pages:  # read the first pages only: the rest costs time and memory
                data = _subset(pdf, range(1, limits.max_pdf_pages + 1))
                warnings.append(f"pages {limits.max_pdf_pages + 1}-{pages} skipped: the page cap is "
                                f"{limits.max_pdf_pages} (RAG_FT_MAX_PDF_PAGES)")
                pages = limits.max_pdf_pages
        if repairs:  # qpdf rebuilt a damaged file (e.g. truncated); its text may be partly or wholly lost
            damage = "; ".join(repairs[:2])
            warnings.append(f"damaged PDF structure, repaired: {damage}")
        elif pages == 0:
            damage = "no pages found"
    except pikepdf.PasswordError as exc:
        raise ParseError("encrypted PDF: needs a password") from exc
    except (ParseError, MemoryError):
        raise
    except Exception as exc:  # pdfminer is more tolerant than qpdf: still try, but say so
        damage = short_reason(exc)
        warnings.append(f"damaged PDF structure: {damage}")
    try:
        elements = partition_pdf(file=io.BytesIO(data), strategy="fast")
    except MemoryError:
        raise
    except Exception as exc:
        raise ParseError(f"corrupt file: {short_reason(exc)}", warnings) from exc
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
            ocred = _ocr_scanned_pages(data, empty, limits.max_ocr_pages, warnings)
            if ocred:
                done = sorted({e.metadata.page_number for e in ocred})
                warnings.append("text read by OCR on " + page_list(done))
                kept = sorted(kept + ocred, key=lambda e: e.metadata.page_number or 0)  # stable: order kept
                empty = [p for p in empty if p not in done]
        if empty:
            warnings.append("no text on " + page_list(empty))
        return Parsed(kept, "pdf", pages, warnings)
    if damage:  # a damaged file with no text: a broken text layer, not a scan (OCR would render garbage)
        raise ParseError(f"corrupt file: damaged PDF ({damage})", warnings)
    if not ocr:
        if dropped:
            return Parsed(elements, "pdf", pages, [*warnings, "text layer looks garbled; OCR is turned off"])
        raise ParseError("scanned PDF with no text: OCR is turned off", warnings)
    try:  # no usable text layer: read the page images with the local tesseract
        ocred = _ocr_pages(data, _painted_pages(data), limits.max_ocr_pages, warnings)
    except (ParseError, MemoryError):
        raise
    except Exception as exc:
        raise ParseError(f"corrupt file: {short_reason(exc)}", warnings) from exc
    ocred = [e for e in ocred if e.text.strip()]
    if ocred:
        warnings.append("garbled text layer (rotated page): text read by OCR" if dropped
                        else "no text layer: text read by OCR")
        return Parsed(ocred, "pdf", pages or max(e.metadata.page_number or 0 for e in ocred), warnings)
    if dropped:
        return Parsed(elements, "pdf", pages, [*warnings, "text layer looks garbled and OCR gave no text"])
    raise ParseError("scanned PDF with no text: OCR gave no text", warnings)


def _refuse_bombs(pdf: Any, pages: int, limits: ParseLimits) -> None:
    """Inflate the drawing instructions of each page read, in bounded steps; refuse a Flate bomb by name.

    pdfminer and pdfium inflate a stream whole, so a 4 MB file whose one page unpacks to 4 GB would only be
    stopped by the memory cap, as a crash; here it costs a quarter-second and gets a name.
    """
    seen: set[tuple[int, int]] = set()
    for number in range(1, pages + 1):
        for stream in _streams_of(pdf.pages[number - 1]):
            key = tuple(stream.objgen)
            if key != (0, 0) and key in seen:  # a form or image shared by every page: check it once
                continue
            seen.add(key)
            if stream.get("/Subtype") == "/Image":
                try:
                    pixels = int(stream.get("/Width", 0)) * int(stream.get("/Height", 0))
                except (TypeError, ValueError):
                    continue
                if pixels > limits.max_image_megapixels * 1_000_000:
                    raise ParseError(f"likely a decompression bomb: an image on page {number} declares "
                                     f"{pixels / 1e6:,.0f} megapixels")
            elif _inflated_size(stream, limits.max_stream_mb * MB) > limits.max_stream_mb * MB:
                raise ParseError(f"likely a decompression bomb: the content of page {number} unpacks to more than "
                                 f"{limits.max_stream_mb} MB")


def _streams_of(page: Any) -> list[Any]:
    """A page's content streams and the forms and images it draws (one level down: deeper nesting is rare)."""
    import pikepdf

    out: list[Any] = []
    contents = page.obj.get("/Contents")
    if isinstance(contents, pikepdf.Stream):
        out.append(contents)
    elif isinstance(contents, pikepdf.Array):
        out.extend(c for c in contents if isinstance(c, pikepdf.Stream))
    resources = page.obj.get("/Resources")
    xobjects = resources.get("/XObject") if isinstance(resources, pikepdf.Dictionary) else None
    if isinstance(xobjects, pikepdf.Dictionary):
        out.extend(x for _, x in xobjects.items() if isinstance(x, pikepdf.Stream))
    return out


def _inflated_size(stream: Any, limit: int) -> int:
    """Bytes a Flate stream inflates to, counted up to just past ``limit`` (8 MB at a time, never held)."""
    import pikepdf

    filters = stream.get("/Filter")
    first = (filters[0] if len(filters) else None) if isinstance(filters, pikepdf.Array) else filters
    if str(first) != "/FlateDecode":
        return 0
    inflater = zlib.decompressobj()
    tail, total = stream.read_raw_bytes(), 0
    try:
        while not inflater.eof and total <= limit:
            out = inflater.decompress(tail, 8 * MB)
            total += len(out)
            tail = inflater.unconsumed_tail
            if not out and not tail:
                break
    except zlib.error:  # a corrupt stream: the readers report it their own way
        pass
    return total


def _subset(pdf: Any, numbers: Any) -> bytes:
    """A new PDF of the given pages (1-based). Streams are copied as they are, never inflated here."""
    import pikepdf

    out = pikepdf.new()
    with warnings.catch_warnings():  # named destinations are lost: irrelevant for reading text
        warnings.simplefilter("ignore")
        for number in numbers:
            out.pages.append(pdf.pages[number - 1])
    buf = io.BytesIO()
    out.save(buf, stream_decode_level=pikepdf.StreamDecodeLevel.none)
    return buf.getvalue()


def _painted_pages(data: bytes) -> list[int]:
    """Pages that put any mark on paper. A blank page cannot hold text, and tesseract spends seconds on it."""
    import pikepdf

    out = []
    with pikepdf.open(io.BytesIO(data)) as pdf:
        for number, page in enumerate(pdf.pages, 1):
            try:
                painted = bool(page.images) or any(
                    str(op) in PAINT_OPERATORS for _, op in pikepdf.parse_content_stream(page))
            except MemoryError:
                raise
            except Exception:  # cannot tell: let OCR look at it
                painted = True
            if painted:
                out.append(number)
    return out


def _ocr_pages(data: bytes, numbers: list[int], cap: int, notes: list[str]) -> list[Any]:
    """OCR the given pages (at most ``cap``; a warning names the others), with their own page numbers."""
    import pikepdf
    from unstructured.partition.pdf import partition_pdf

    if len(numbers) > cap:
        notes.append(f"OCR stopped after {cap} page(s), the limit per file (RAG_FT_MAX_OCR_PAGES): "
                     f"{page_list(numbers[cap:])} not read")
        numbers = numbers[:cap]
    if not numbers:
        return []
    with pikepdf.open(io.BytesIO(data)) as pdf:
        whole = numbers == list(range(1, len(pdf.pages) + 1))
        subset = data if whole else _subset(pdf, numbers)
    elements = partition_pdf(file=io.BytesIO(subset), strategy="ocr_only", languages=["eng"])
    if not whole:  # page i of the subset is page numbers[i - 1] of the file
        for e in elements:
            if e.metadata.page_number:
                e.metadata.page_number = numbers[e.metadata.page_number - 1]
    return elements


def _ocr_scanned_pages(data: bytes, page_numbers: list[int], cap: int, notes: list[str]) -> list[Any]:
    """OCR the pages of a text PDF that have no text but hold an image; blank pages are skipped (no cost)."""
    import pikepdf

    try:
        with pikepdf.open(io.BytesIO(data)) as pdf:
            scanned = [n for n in page_numbers if pdf.pages[n - 1].images]
        return [e for e in _ocr_pages(data, scanned, cap, notes) if e.text.strip()]
    except MemoryError:
        raise
    except Exception:  # OCR of extra pages is a bonus: the text pages are already read
        return []


