"""Hostile files end with a named error (or a documented skip) in seconds, and the server process stays small.

Every bomb is built here, in a few MB, from deflate blocks that each inflate to 1 MiB of zeros: a full
flush makes the blocks independent, so one compressed block repeated N times is a valid stream of N MiB.
Reading goes through ``parse_bounded`` (the worker process, memory-capped and time-limited) and, for the
batch test, through ``index_files`` with real MiniLM embeddings, SQLite and Chroma.
"""

from __future__ import annotations

import io
import struct
import threading
import time
import zipfile
import zlib
from pathlib import Path

import pytest

from rag_ft.ingest.limits import ParseLimits, check_zip, page_list
from rag_ft.ingest.sandbox import parse_bounded, worker_stats

SAMPLES = Path(__file__).resolve().parent.parent / "sample_docs"
MIB = 1024 * 1024
WORDS = ("invoice", "backup", "export", "audit", "archive", "billing", "quota")
GOOD_MD = b"# Backups\n\nThe backup window opens at 02:00 UTC every Sunday and lasts two hours.\n"


# ---------------------------------------------------------------- bomb building blocks
def _zero_block() -> bytes:
    """Raw deflate data for 1 MiB of zeros, ending byte-aligned with a fresh dictionary (full flush)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(bytes(MIB)) + c.flush(zlib.Z_FULL_FLUSH)


def _final_block() -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(b"") + c.flush(zlib.Z_FINISH)


def _crc_of_zeros(mib: int, prefix: bytes = b"") -> int:
    crc, block = zlib.crc32(prefix), bytes(MIB)
    for _ in range(mib):
        crc = zlib.crc32(block, crc)
    return crc


def _zip(members: list[tuple[str, bytes, int, int, int]], extra_entries: int = 0) -> bytes:
    """A zip built by hand: (name, stored bytes, method, crc, declared size) per member.

    ``extra_entries`` more directory entries point at the first member's data (an overlapping-member bomb).
    """
    out, central = io.BytesIO(), io.BytesIO()
    entries = 0
    for i, (name, payload, method, crc, size) in enumerate(members):
        offset = out.tell()
        raw = name.encode()
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, crc, len(payload), size,
                              len(raw), 0) + raw + payload)
        for copy in range(1 + (extra_entries if i == 0 else 0)):
            entry = raw if copy == 0 else f"{name}.{copy}".encode()
            central.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0, crc,
                                      len(payload), size, len(entry), 0, 0, 0, 0, 0, offset) + entry)
            entries += 1
    cd = central.getvalue()
    start = out.tell()
    out.write(cd)
    if entries > 0xFFFF:  # zip64 end record + locator, as real archivers write past 65,535 members
        z64 = out.tell()
        out.write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, entries, entries, len(cd), start))
        out.write(struct.pack("<IIQI", 0x07064B50, 0, z64, 1))
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, min(entries, 0xFFFF), min(entries, 0xFFFF), len(cd),
                          start, 0))
    return out.getvalue()


def _deflated_zeros(mib: int, prefix: bytes = b"") -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(prefix) + c.flush(zlib.Z_FULL_FLUSH)
    return head + _zero_block() * mib + _final_block()


def _office_members(path: Path) -> list[tuple[str, bytes, int, int, int]]:
    """The members of a real Office file, stored uncompressed (so the bomb is a valid file around its core)."""
    with zipfile.ZipFile(path) as z:
        return [(i.filename, z.read(i), 0, zlib.crc32(z.read(i)), i.file_size) for i in z.infolist()]


def docx_bomb(mib: int = 3072) -> bytes:
    """billing-faq.docx with a word/document.xml that unpacks to ``mib`` MiB (3 GiB in ~3 MB)."""
    head = b'<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="x"><w:body><w:p><w:r><w:t>'
    members = [m for m in _office_members(SAMPLES / "billing-faq.docx") if m[0] != "word/document.xml"]
    core = ("word/document.xml", _deflated_zeros(mib, head), 8, _crc_of_zeros(mib, head), len(head) + mib * MIB)
    return _zip([core, *members])


def overlapping_docx(copies: int = 60) -> bytes:
    """A 1-2 MB file whose directory lists the same 100 MiB member ``copies`` times (a non-recursive bomb)."""
    members = _office_members(SAMPLES / "billing-faq.docx")
    core = ("word/media/blob.bin", _deflated_zeros(100), 8, _crc_of_zeros(100), 100 * MIB)
    return _zip([core, *members], extra_entries=copies)


def many_members_docx(count: int = 70_000) -> bytes:
    """A DOCX of tens of thousands of tiny parts: the zip directory alone would cost the server memory."""
    members = _office_members(SAMPLES / "billing-faq.docx")
    return _zip([("word/media/x.bin", b"x", 0, zlib.crc32(b"x"), 1), *members], extra_entries=count)


def odt_bomb(mib: int = 2048) -> bytes:
    """An ODT whose ``mimetype`` member unpacks to ``mib`` MiB (the old detection read it whole)."""
    mime = b"application/vnd.oasis.opendocument.text"
    core = ("mimetype", _deflated_zeros(mib, mime), 8, _crc_of_zeros(mib, mime), len(mime) + mib * MIB)
    content = b'<?xml version="1.0"?><office:document-content xmlns:office="x"/>'
    return _zip([core, ("content.xml", content, 0, zlib.crc32(content), len(content))])


def pdf_flate_bomb(mib: int = 4096) -> bytes:
    """A one-page PDF whose content stream inflates to ``mib`` MiB of zeros (4 GiB in ~4 MB)."""
    stream = b"\x78\xda" + _deflated_zeros(mib) + struct.pack(">I", _adler_of_zeros(mib))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << >> /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % n + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % o for o in offsets))
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def _adler_of_zeros(mib: int) -> int:
    # zeros leave a = 1, and b grows by 1 per byte
    return ((mib * MIB % 65521) << 16) | 1


def blank_pages_pdf(pages: int = 2000) -> bytes:
    import pikepdf

    pdf = pikepdf.new()
    for _ in range(pages):
        pdf.add_blank_page(page_size=(612, 792))
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def big_text(mb: int = 45) -> bytes:
    line = b"The backup window opens at 02:00 UTC every Sunday and lasts two hours.\n"
    return line * (mb * MIB // len(line))


# ---------------------------------------------------------------- measuring
def _status_kb(key: str) -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(key + ":"))


def measured(fn, *args, **kwargs):
    """(result, seconds, peak growth of this process's RSS in MB): the high-water mark is reset first."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # resets VmHWM to the current RSS
    before = _status_kb("VmRSS")
    started = time.monotonic()
    result = fn(*args, **kwargs)
    return result, time.monotonic() - started, (_status_kb("VmHWM") - before) / 1024


# ---------------------------------------------------------------- limits, without a worker
def test_page_lists_are_short() -> None:
    assert page_list([2, 3]) == "page(s) 2, 3"
    assert page_list(list(range(3, 2002))) == "page(s) 3-2001"
    assert page_list([1, 2, 3, 7, 9, 10, 11]) == "page(s) 1-3, 7, 9-11"
    assert page_list(list(range(1, 4000, 2))) == "2,000 pages between 1 and 3999"


def test_names_and_sizes_are_refused_by_name() -> None:
    bad = parse_bounded("report\udc80.txt", b"some text")
    assert bad.error.startswith("the file name is not valid text") and bad.chunks == []
    big = parse_bounded("big.md", b"x" * (2 * MIB + 1), ParseLimits(max_upload_mb=2))
    assert big.error == "file too large: 2.0 MB, over the limit of 2 MB (RAG_FT_MAX_UPLOAD_MB)"


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (docx_bomb, "likely a decompression bomb: the file unpacks to 3,073 MB, over the limit of 1,024 MB"),
        (overlapping_docx, "likely a decompression bomb: the file unpacks to 6,101 MB, over the limit of 1,024 MB"),
        (many_members_docx, "too many parts: the file declares 70,018 zip members, over the limit of 20,000"),
        (odt_bomb, "likely a decompression bomb: the file unpacks to 2,048 MB, over the limit of 1,024 MB"),
    ],
    ids=["docx-3GB", "overlapping-members", "70k-members", "odt-mimetype"],
)
def test_zip_bombs_are_refused_before_anything_is_inflated(make, error: str) -> None:
    data = make()
    result, seconds, growth = measured(parse_bounded, "bomb.docx", data)
    assert result.error == error and result.chunks == []
    assert seconds < 5 and growth < 100, (seconds, growth)


def test_a_ratio_bomb_under_the_size_limit_is_refused_too() -> None:
    from rag_ft.ingest.formats import ParseError

    with pytest.raises(ParseError, match=r"^likely a decompression bomb: the file unpacks to 301 MB, \d{3} times its"):
        check_zip(docx_bomb(300), ParseLimits())  # 301 MB < 1,024 MB, but packed 100s of times


def test_odt_detection_reads_a_bounded_mimetype() -> None:
    from rag_ft.ingest.formats import zip_format

    data = odt_bomb(2048)  # the old detection read all 2 GB of this member
    fmt, seconds, growth = measured(zip_format, data)
    assert fmt == "odt" and seconds < 2 and growth < 50, (seconds, growth)


# ---------------------------------------------------------------- in the worker
def test_the_worker_is_reused_and_costs_little_per_file() -> None:
    from rag_ft.ingest import parse

    first = parse_bounded("notes.md", GOOD_MD)  # may start the worker
    pid = worker_stats()["pid"]
    result, seconds, _ = measured(parse_bounded, "notes.md", GOOD_MD)
    assert worker_stats()["pid"] == pid and result.chunks == first.chunks == parse("notes.md", GOOD_MD).chunks
    assert seconds - worker_stats()["seconds"] < 0.5  # the round trip, beyond the reading itself


@pytest.mark.parametrize(
    ("name", "make", "error", "warnings"),
    [
        ("flate-bomb.pdf", pdf_flate_bomb,
         "likely a decompression bomb: the content of page 1 unpacks to more than 256 MB", []),
        ("big.txt", big_text, "too much text: the file holds {size:,} characters, over the limit of 2,000,000 "
                              "(RAG_FT_MAX_TEXT_CHARS): split it into smaller files", []),
        ("blank-pages.pdf", blank_pages_pdf, "scanned PDF with no text: OCR gave no text",
         ["pages 501-2000 skipped: the page cap is 500 (RAG_FT_MAX_PDF_PAGES)"]),
    ],
    ids=["pdf-4GB-stream", "text-45MB", "pdf-2000-blank-pages"],
)
def test_bombs_read_in_the_worker_end_with_a_named_error(name, make, error, warnings) -> None:
    data = make()
    result, seconds, growth = measured(parse_bounded, name, data)
    assert result.error == error.format(size=len(data)) and result.warnings == warnings and result.chunks == []
    # the worker is already running (previous test): this is the file alone
    assert seconds < 30 and growth < 1024, (seconds, growth)


def test_a_bomb_batch_indexes_its_good_files(settings, local_embeddings) -> None:
    from rag_ft.index.documents import index_files, list_documents
    from rag_ft.retrieval.hybrid import Retriever

    batch = [("backups.md", GOOD_MD), ("bomb.docx", docx_bomb()), ("flate.pdf", pdf_flate_bomb()),
             ("big.txt", big_text()), ("odt-bomb.odt", odt_bomb()), ("report\udc80.md", GOOD_MD),
             ("billing-faq.docx", (SAMPLES / "billing-faq.docx").read_bytes())]
    outcomes, seconds, growth = measured(index_files, settings, local_embeddings, batch)
    assert [o.status for o in outcomes] == ["indexed", "failed", "failed", "failed", "failed", "failed", "indexed"]
    assert [o.error.split(":")[0] for o in outcomes[1:6]] == [
        "likely a decompression bomb", "likely a decompression bomb", "too much text", "likely a decompression bomb",
        "the file name is not valid text (it holds a lone surrogate character)"]
    assert outcomes[5].name == "report?.md"  # shown without the surrogate
    assert seconds < 60 and growth < 1024, (seconds, growth)
    assert {d.name for d in list_documents(settings)} == {"backups.md", "billing-faq.docx"}
    found = Retriever(settings, local_embeddings).search("When does the backup window open?", k=1, threshold=0)
    assert found[0].document == "backups.md"


def test_delete_does_not_wait_behind_a_slow_read(settings, local_embeddings) -> None:
    """A file that reads until the timeout holds no lock meanwhile: Delete of another document is immediate."""
    from rag_ft.index.documents import delete_document, index_files, list_documents

    index_files(settings, local_embeddings, [("old.md", GOOD_MD)])
    slow = settings.with_(parse_timeout_s=5)
    # ~1M characters of distinct paragraphs (unstructured caches its per-paragraph NLP): ~40 s to read here
    text = "".join(f"Paragraph {i} says the {WORDS[i % 7]} ledger of region {i * 7919 % 10007} closes on day "
                   f"{i % 28 + 1} at {i % 24:02d}:00.\n\n" for i in range(12_000)).encode()
    reading = threading.Event()
    outcomes = []

    def progress(_frac: float, msg: str) -> None:
        if msg.endswith("reading"):
            reading.set()

    worker = threading.Thread(target=lambda: outcomes.extend(index_files(slow, local_embeddings, [("slow.txt", text)],
                                                                         progress=progress)))
    worker.start()
    assert reading.wait(60)
    time.sleep(0.5)  # the file is in the worker now
    started = time.monotonic()
    assert delete_document(settings, "old.md")
    waited = time.monotonic() - started
    assert worker.is_alive() and waited < 2, waited  # deleted while the slow file is still being read
    worker.join(120)
    assert outcomes[0].error == "reading took longer than 5 s: stopped (the limit is RAG_FT_PARSE_TIMEOUT_S)"
    assert list_documents(settings) == []


def test_the_memory_cap_stops_a_bomb_the_prechecks_let_through() -> None:
    """With the stream check lifted, the 4 GB Flate stream reaches pdfminer and pdfium: the cap ends it."""
    limits = ParseLimits(memory_mb=400, max_stream_mb=100_000)
    result, seconds, growth = measured(parse_bounded, "flate-bomb.pdf", pdf_flate_bomb(), limits)
    assert result.error == ("the file needs more than 400 MB to read: likely a decompression bomb "
                            "(the limit is RAG_FT_PARSE_MEMORY_MB)")
    assert seconds < 60 and growth < 1024, (seconds, growth)  # includes starting a worker with this cap
    after = parse_bounded("notes.md", GOOD_MD, limits)  # a fresh worker reads the next file
    assert after.error is None and after.chunks
