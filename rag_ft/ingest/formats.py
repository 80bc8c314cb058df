"""What a file is: its format, read from the content where the extension lies, and its text.

An RFC822 mail saved as ``.txt``, a file with no extension, a PDF renamed ``.doc``: the bytes decide.
Text is decoded here, not by unstructured: its CSV/Markdown readers assume UTF-8 and fail on UTF-16 or
Latin-1 files. A file that cannot be used raises ``ParseError`` with a message in plain words.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Any

# Extension -> format. The format names are ours; rag_ft.ingest.elements has one partition function each.
EXTENSIONS: dict[str, str] = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".doc": "doc",
    ".odt": "odt",
    ".rtf": "rtf",
    ".pptx": "pptx",
    ".ppt": "ppt",
    ".xlsx": "xlsx",
    ".xls": "xlsx",  # partition_xlsx reads .xls through pandas/xlrd
    ".csv": "csv",
    ".tsv": "tsv",
    ".html": "html",
    ".htm": "html",
    ".md": "md",
    ".markdown": "md",
    ".txt": "text",
    ".text": "text",
    ".log": "text",
    ".eml": "eml",
    ".msg": "msg",
    ".epub": "epub",
    ".jpg": "image",
    ".jpeg": "image",
    ".png": "image",
    ".tif": "image",
    ".tiff": "image",
    ".bmp": "image",
    ".gif": "image",
    ".webp": "image",
    ".heic": "image",
}
KIND_WORD = {"xlsx": "spreadsheet", "pptx": "presentation", "ppt": "presentation"}  # else "document"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"II*\x00", b"MM\x00*", b"GIF8", b"BM")
MAIL_HEADERS = {"from", "to", "subject", "date", "mime-version", "message-id", "received", "content-type", "cc"}


class ParseError(Exception):
    """The file yields nothing usable; the message is shown to the user as is.

    ``warnings`` says what was skipped on the way (e.g. pages past the page cap), shown with the error.
    """

    def __init__(self, message: str, warnings: list[str] | None = None) -> None:
        super().__init__(message)
        self.warnings = list(warnings or [])


@dataclass
class Parsed:
    """What reading a file gave: unstructured elements, the format read, pages, and what was skipped."""

    elements: list[Any]
    fmt: str
    pages: int = 0  # page count for paged formats, else 0
    warnings: list[str] = field(default_factory=list)


def extension(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 and "/" not in name[dot:] else ""


def short_reason(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    msg = re.sub(r"(stream )?<_io\.\w+ object at 0x[0-9a-f]+>:?\s*", "", msg).strip() or type(exc).__name__
    return msg if len(msg) <= 120 else msg[:117] + "..."


# ---------------------------------------------------------------- detection
def decode_text(data: bytes) -> str | None:
    """Bytes -> str honouring BOMs, UTF-8, UTF-16 without BOM, then a charset guess; None when binary."""
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"),
                       (b"\x00\x00\xfe\xff", "utf-32"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError:
                break
    head = data[:4000]
    if head and head.count(b"\x00") > len(head) // 4:  # UTF-16 with no BOM: every other byte is NUL
        codec = "utf-16-le" if head[1:2] == b"\x00" else "utf-16-be"
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        from charset_normalizer import from_bytes

        best = from_bytes(data).best()
        if best is None:
            return None
        text = str(best)
    controls = sum(1 for ch in text[:4000] if ord(ch) < 32 and ch not in "\t\n\r\f\v")
    return None if controls > max(8, len(text[:4000]) // 50) else text


def looks_like_mail(text: str) -> bool:
    """RFC822: the file opens with header lines, several of them the usual mail headers."""
    names = set()
    for line in text.lstrip().splitlines()[:40]:
        if not line.strip():
            break
        m = re.match(r"^([A-Za-z][A-Za-z0-9-]*):\s", line)
        if m:
            names.add(m.group(1).lower())
        elif not line[:1].isspace():  # neither a header nor a folded continuation
            return False
    return len(names & MAIL_HEADERS) >= 3 and bool(names & {"from", "to", "subject"})


def looks_like_html(text: str) -> bool:
    head = text.lstrip()[:500].lower()
    return head.startswith(("<!doctype html", "<html")) or ("<html" in head and "<body" in text[:5000].lower())


def zip_format(data: bytes) -> str | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = set(z.namelist())
            if "mimetype" in names:
                with z.open("mimetype") as member:  # bounded: a hostile 'mimetype' may unpack to gigabytes
                    mime = member.read(100).decode("ascii", "replace").strip(" \t\r\n\0")
                if mime == "application/epub+zip":
                    return "epub"
                if mime == "application/vnd.oasis.opendocument.text":
                    return "odt"
    except (zipfile.BadZipFile, OSError, KeyError, ValueError, EOFError, NotImplementedError, zlib.error):
        return None
    for prefix, fmt in (("word/", "docx"), ("ppt/", "pptx"), ("xl/", "xlsx")):
        if any(n.startswith(prefix) for n in names):
            return fmt
    return None


def ole_encrypted(data: bytes) -> bool:
    """Password-protected Office files are OLE containers holding an EncryptionInfo stream."""
    try:
        import msoffcrypto

        return bool(msoffcrypto.OfficeFile(io.BytesIO(data)).is_encrypted())
    except Exception:  # not an Office file msoffcrypto knows; let the partitioner decide
        return False


def detect(name: str, data: bytes) -> str:
    """Our format name for the file, trusting the content over the extension where they disagree."""
    ext = extension(name)
    by_ext = EXTENSIONS.get(ext)
    if ext and by_ext is None:
        raise ParseError("unsupported format")
    if b"%PDF-" in data[:1024]:
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        fmt = zip_format(data)
        if fmt:
            return fmt
        raise ParseError("unsupported format" if by_ext is None else f"corrupt file: not a valid {ext} file")
    if data.startswith(OLE_MAGIC):
        if ole_encrypted(data):
            kind = KIND_WORD.get(by_ext or "", "document")
            raise ParseError(f"encrypted {kind}: needs a password")
        if by_ext in ("doc", "ppt", "xlsx", "msg"):
            return by_ext
        return _ole_kind(data)
    if data.startswith(IMAGE_MAGIC) or data[8:12] in (b"WEBP", b"ftyp") or data[4:8] == b"ftyp":
        return "image"
    if data.lstrip().startswith(b"{\\rtf"):
        return "rtf"
    text = decode_text(data)
    if text is None:
        raise ParseError("unsupported format" if by_ext in (None, "text") else f"corrupt file: not a valid {ext} file")
    if by_ext in (None, "text", "eml") and looks_like_mail(text):
        return "eml"
    if by_ext is None:
        return "html" if looks_like_html(text) else "text"
    if by_ext in ("pdf", "docx", "doc", "odt", "pptx", "ppt", "xlsx", "epub", "image", "msg"):
        raise ParseError(f"corrupt file: not a valid {ext} file")
    return by_ext


def _ole_kind(data: bytes) -> str:
    """An OLE file with a missing or lying extension: look at its stream names."""
    try:
        import olefile

        with olefile.OleFileIO(io.BytesIO(data)) as ole:
            streams = {"/".join(s).lower() for s in ole.listdir()}
    except Exception as exc:
        raise ParseError(f"corrupt file: {short_reason(exc)}") from exc
    if "worddocument" in streams:
        return "doc"
    if "powerpoint document" in streams:
        return "ppt"
    if "workbook" in streams or "book" in streams:
        return "xlsx"
    if any(s.startswith("__substg1.0_") for s in streams):
        return "msg"
    raise ParseError("unsupported format")
