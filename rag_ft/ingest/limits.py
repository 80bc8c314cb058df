"""Bounds on reading one file, and the cheap checks made before a single byte is decompressed.

A hostile file must cost a bounded amount of memory and time: the limits live in ``ParseLimits`` (built
from the settings), the checks that need no decompression live here (``precheck``), the ones that do run
in the memory-capped child process (``rag_ft.ingest.sandbox``). Every refusal is a ``ParseError`` whose
message names what was too big and the setting that moves the limit.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rag_ft.ingest.formats import ParseError

if TYPE_CHECKING:
    from rag_ft.settings import Settings

ZIP_MAGIC = b"PK\x03\x04"
MB = 1024 * 1024


@dataclass(frozen=True)
class ParseLimits:
    memory_mb: int = 2048  # on top of the reader's own footprint (the child process, after its imports)
    timeout_s: float = 300.0
    max_pdf_pages: int = 500
    max_ocr_pages: int = 50
    max_upload_mb: int = 50
    max_text_chars: int = 2_000_000
    # zip containers (DOCX, XLSX, PPTX, ODT, EPUB): judged on the sizes their directory declares.
    # Python's zipfile never inflates a member past its declared size, so these bound what readers see.
    zip_max_members: int = 20_000
    zip_max_total_mb: int = 1024
    zip_max_ratio: int = 100  # real Office XML packs 5-30x; zeros pack 1000x
    zip_ratio_floor_mb: int = 50  # a whole file unpacking to less than this is never judged on its ratio
    zip_member_floor_mb: int = 20  # same for one member
    # PDF: one page's drawing instructions (real ones are KBs, a few MB for a dense map), images' pixels
    max_stream_mb: int = 256
    max_image_megapixels: int = 400  # an A0 scan at 300 dpi is ~140

    @classmethod
    def from_settings(cls, settings: Settings) -> ParseLimits:
        return cls(memory_mb=settings.parse_memory_mb, timeout_s=float(settings.parse_timeout_s),
                   max_pdf_pages=settings.max_pdf_pages, max_ocr_pages=settings.max_ocr_pages,
                   max_upload_mb=settings.max_upload_mb, max_text_chars=settings.max_text_chars)


def precheck(name: str, data: bytes, limits: ParseLimits) -> None:
    """Refuse what can be judged without decompressing anything: cheap enough for the server process."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as exc:  # e.g. a name decoded with surrogateescape: SQLite would raise later
        raise ParseError("the file name is not valid text (it holds a lone surrogate character): rename the "
                         "file") from exc
    if len(data) > limits.max_upload_mb * MB:
        raise ParseError(f"file too large: {len(data) / MB:,.1f} MB, over the limit of {limits.max_upload_mb} MB "
                         "(RAG_FT_MAX_UPLOAD_MB)")
    if data.startswith(ZIP_MAGIC):
        check_zip(data, limits)


# ---------------------------------------------------------------- zip containers
def zip_member_count(data: bytes) -> int | None:
    """Members the zip declares, read from its end record, before ``zipfile`` builds one object per member."""
    tail_start = max(0, len(data) - (65535 + 22))  # the end record sits in the last 64 KiB (+ comment)
    end = data.rfind(b"PK\x05\x06", tail_start)
    if end < 0 or end + 22 > len(data):
        return None
    count = int.from_bytes(data[end + 10 : end + 12], "little")
    locator = end - 20  # a zip64 end record is announced by a locator just before the classic one
    if locator >= 0 and data[locator : locator + 4] == b"PK\x06\x07":
        offset = int.from_bytes(data[locator + 8 : locator + 16], "little")
        if data[offset : offset + 4] == b"PK\x06\x06":
            count = max(count, int.from_bytes(data[offset + 32 : offset + 40], "little"))
    return count


def check_zip(data: bytes, limits: ParseLimits) -> None:
    """Refuse a zip whose directory declares too many members, too much content, or bomb-like ratios."""
    count = zip_member_count(data)
    if count is not None and count > limits.zip_max_members:
        raise ParseError(f"too many parts: the file declares {count:,} zip members, over the limit of "
                         f"{limits.zip_max_members:,}")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return  # not a zip we can read: detection names it (corrupt or unsupported)
    if len(infos) > limits.zip_max_members:
        raise ParseError(f"too many parts: the file holds {len(infos):,} zip members, over the limit of "
                         f"{limits.zip_max_members:,}")
    total = sum(i.file_size for i in infos)
    if total > limits.zip_max_total_mb * MB:
        raise ParseError(f"likely a decompression bomb: the file unpacks to {total / MB:,.0f} MB, over the limit "
                         f"of {limits.zip_max_total_mb:,} MB")
    if total > limits.zip_ratio_floor_mb * MB and total > limits.zip_max_ratio * len(data):
        raise ParseError(f"likely a decompression bomb: the file unpacks to {total / MB:,.0f} MB, "
                         f"{total / max(1, len(data)):,.0f} times its size")
    for info in infos:
        if info.file_size > limits.zip_member_floor_mb * MB and \
                info.file_size > limits.zip_max_ratio * max(1, info.compress_size):
            raise ParseError(f"likely a decompression bomb: its part {info.filename[:60]!r} unpacks to "
                             f"{info.file_size / MB:,.0f} MB, {info.file_size / max(1, info.compress_size):,.0f} "
                             "times its packed size")


# ---------------------------------------------------------------- warnings that name pages
def page_list(pages: list[int]) -> str:
    """'page(s) 2, 3', 'page(s) 3-2001', or '1,999 pages between 3 and 2001': never a list of 2,000 numbers."""
    pages = sorted(set(pages))
    if not pages:
        return "no pages"
    runs: list[list[int]] = []
    for p in pages:
        if runs and p == runs[-1][1] + 1:
            runs[-1][1] = p
        else:
            runs.append([p, p])
    parts: list[str] = []
    for first, last in runs:
        parts.extend([f"{first}-{last}"] if last - first >= 2 else map(str, range(first, last + 1)))
    if len(parts) > 12:
        return f"{len(pages):,} pages between {pages[0]} and {pages[-1]}"
    return "page(s) " + ", ".join(parts)
