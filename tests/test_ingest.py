"""Ingestion on real files: every file in ../shared/docs gives chunks with text or a named error.

Each shared file is parsed once per session (``parsed``) with OCR off; OCR runs on two files only
(a scanned page and a blank page), since tesseract costs seconds per page.
"""

from __future__ import annotations

import io
import os
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag_ft.ingest import SUPPORTED_EXTENSIONS, ParseLimits, ParseResult, parse, supported
from rag_ft.records import content_hash

DOCS = Path(__file__).resolve().parent.parent.parent / "shared" / "docs"
FILES = sorted(p.name for p in DOCS.iterdir()) if DOCS.is_dir() else ["<missing>"]

# For each shared file: ("text", a phrase its chunks must contain) or ("error", the exact message).
EXPECTED: dict[str, tuple[str, str]] = {
    "MANIFEST.md": ("text", "Owner-password"),
    "SHA256SUMS": ("text", "winter-sports.epub"),
    "UDHR_first_article_all.txt": ("text", "Universal Declaration of Human"),
    "codeblock.md": ("text", "Don't forget me this weekend!"),
    "copy-protected.pdf": ("text", "LayoutParser: A Uniﬁed Toolkit"),
    "docx-tables.docx": ("text", "Simple uniform table"),
    "empty.txt": ("error", "empty file"),
    "example-10k-1p.html": ("text", "TRANSITION REPORT PURSUANT TO SECTION 13"),
    "example-steelJIS-datasheet-utf-16.html": ("text", "Japanese Steels and Alloys"),
    "fake-doc.rtf": ("text", "My first paragraph."),
    "fake-email-attachment.eml": ("text", "Hey this is a fake attachment!"),  # the attachment is read too
    "fake-email.msg": ("text", "This is a test email to use for unit tests."),
    "fake-email.txt": ("text", "Roses are red"),
    "fake-encrypted.eml": ("error", "encrypted email: the body is PGP/S-MIME encrypted"),
    "fake-power-point-malformed.pptx": ("text", "Problem Date Placeholder"),
    "fake-power-point-table.pptx": ("text", "Tangerine"),
    "fake-power-point.ppt": ("text", "Adding a Bullet Slide"),
    "fake.doc": ("text", "Lorem ipsum dolor sit amet."),
    "fake.odt": ("text", "Leader Sarah Mark Ryan"),
    "file_we_dont_want_imported": ("text", "wombat"),
    "fr_olap.pdf": ("text", "Résumés et interrogations de logs de requêtes OLAP"),
    "handbook-1p.docx": ("text", "US Trustee Handbook"),
    "invalid-pdf-structure-pdfminer-one-page.pdf": ("text", "National Cybersecurity Strategy"),
    "korean-text-with-tables.pdf": ("text", "빅포인트 적립"),
    "layout-parser-paper-fast.jpg": ("error", "image: OCR is turned off"),
    "layout-parser-paper-fast.pdf": ("text", "Deep Learning Based Document Image Analysis"),
    "layout-parser-paper-with-empty-pages.pdf": ("text", "LayoutParser"),
    "layout-parser-paper-with-table.pdf": ("text", "Table 1: Current layout detection models"),
    "loremipsum-flat.pdf": ("error", "scanned PDF with no text: OCR is turned off"),
    "norwich-city.txt": ("text", "Norwich City"),
    "password.pdf": ("error", "encrypted PDF: needs a password"),
    "password_protected.xlsx": ("error", "encrypted spreadsheet: needs a password"),
    "reliance.pdf": ("text", "Integrated Annual Report 2021-22"),
    "rotated-page-90.pdf": ("text", "S e c o n d"),  # garbled without OCR, but kept with a warning
    "single_table.pdf": ("error", "scanned PDF with no text: OCR is turned off"),
    "stanley-cups-utf-16.csv": ("text", "Maple Leafs TOR 13"),
    "tests-example.xls": ("text", "What is 2+2?"),
    "umlauts-non-utf8.md": ("text", "können"),
    "vodafone.xlsx": ("text", "Financial performance"),
    "winter-sports.epub": ("text", "Winter Sports in Switzerland"),
}


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="session")
def parsed(shared_docs: Path) -> dict[str, ParseResult]:
    cache: dict[str, ParseResult] = {}

    def get(name: str) -> ParseResult:
        if name not in cache:
            cache[name] = parse(name, (shared_docs / name).read_bytes(), ocr=False)
        return cache[name]

    return get  # type: ignore[return-value]


def check_invariants(result: ParseResult, max_characters: int = 1500) -> None:
    """What every result promises: chunks with text, or an error; never silently empty."""
    assert (result.error is None) == bool(result.chunks), (result.error, len(result.chunks))
    assert [c.chunk_index for c in result.chunks] == list(range(len(result.chunks)))
    for c in result.chunks:
        assert c.text.strip() and c.document == result.document
        assert c.hash == content_hash(c.text)
        assert len(c.text) <= max_characters
        assert c.pages == sorted(set(c.pages)) and all(1 <= p <= max(result.pages, 1) for p in c.pages)
        assert c.element_types


@pytest.mark.parametrize("name", FILES)
def test_every_shared_file_gives_text_or_a_named_error(parsed, name: str) -> None:
    assert name in EXPECTED, f"{name} is new in ../shared/docs: add its expectation"
    result = parsed(name)
    check_invariants(result)
    kind, value = EXPECTED[name]
    if kind == "error":
        assert result.error == value
        assert result.chunks == []
    else:
        assert result.error is None, result.error
        assert flat(value) in flat(" ".join(c.text for c in result.chunks))


def test_misleading_extension_is_read_by_content(parsed) -> None:
    mail = parsed("fake-email.txt")
    assert mail.format == "eml" and mail.chunks[0].section == "Test Email"  # the subject
    assert any("extension" in w for w in mail.warnings)
    assert "MIME-Version" not in " ".join(c.text for c in mail.chunks)  # headers are not body text
    assert parsed("file_we_dont_want_imported").format == "text"


def test_utf16_and_latin1_are_decoded(parsed) -> None:
    csv = parsed("stanley-cups-utf-16.csv")
    assert csv.format == "csv" and csv.chunks[0].element_types == ["Table"]
    assert "äöüß" in parsed("umlauts-non-utf8.md").chunks[0].text
    assert "SteelJIS" in " ".join(c.text for c in parsed("example-steelJIS-datasheet-utf-16.html").chunks)


@pytest.mark.parametrize("name", ["fr_olap.pdf", "reliance.pdf"])
def test_chunk_pages_list_every_page_it_spans(parsed, shared_docs: Path, name: str) -> None:
    from unstructured.partition.pdf import partition_pdf

    result = parsed(name)
    spanning = [c for c in result.chunks if len(c.pages) > 1]
    assert spanning, [c.pages for c in result.chunks]
    # Each spanning chunk holds text that pdfminer places on every page the chunk lists.
    elements = partition_pdf(filename=str(shared_docs / name), strategy="fast")
    for chunk in spanning:
        assert chunk.pages == list(range(chunk.pages[0], chunk.pages[-1] + 1))
        text = flat(chunk.text)
        for page in chunk.pages:
            on_page = [flat(e.text) for e in elements if e.metadata.page_number == page and len(e.text.strip()) > 10]
            # an element too long for one chunk is split: its start or its end is in this chunk
            assert any(t[:30] in text or t[-30:] in text for t in on_page), (chunk.chunk_index, page)
    firsts = [c.pages[0] for c in result.chunks]
    assert firsts == sorted(firsts)


def test_pdf_page_count_includes_empty_pages(parsed) -> None:
    result = parsed("layout-parser-paper-with-empty-pages.pdf")
    assert result.pages == 4
    assert {p for c in result.chunks for p in c.pages} == {1, 4}
    assert "no text on page(s) 2, 3" in result.warnings


def test_korean_text_survives(parsed) -> None:
    text = " ".join(c.text for c in parsed("korean-text-with-tables.pdf").chunks)
    assert "삼성카드" in text and "할인점" in text


def test_rotated_side_stamp_is_dropped(parsed) -> None:
    result = parsed("layout-parser-paper-fast.pdf")
    assert "n u J" not in result.chunks[0].text and "LayoutParser" in result.chunks[0].text
    assert any("lone letters" in w for w in result.warnings)


@pytest.mark.parametrize("name", ["docx-tables.docx", "vodafone.xlsx", "fake-power-point-table.pptx", "fake.odt"])
def test_tables_are_kept_whole(parsed, shared_docs: Path, name: str) -> None:
    from unstructured.partition.auto import partition

    tables = [flat(e.text) for e in partition(filename=str(shared_docs / name)) if type(e).__name__ == "Table"]
    assert tables
    chunks = parsed(name).chunks
    for table in tables:
        holders = [c for c in chunks if table in flat(c.text)]
        assert holders, f"table cut: {table[:60]}"
        assert "Table" in holders[0].element_types and set(holders[0].element_types) <= {"Title", "Text", "Table"}


def test_sections_come_from_titles(parsed) -> None:
    pptx = parsed("fake-power-point-table.pptx")
    assert {c.section for c in pptx.chunks} == {"A Slide with a Table"}
    assert pptx.pages == 1 and all(c.pages == [1] for c in pptx.chunks)
    xls = parsed("tests-example.xls")
    assert xls.pages == 0 and all(c.pages == [] for c in xls.chunks)  # sheets are not pages...
    assert {c.section for c in xls.chunks} >= {"Example Test"}  # ...their names are sections


def test_ocr_reads_a_scanned_pdf(shared_docs: Path) -> None:
    result = parse("loremipsum-flat.pdf", (shared_docs / "loremipsum-flat.pdf").read_bytes())
    check_invariants(result)
    assert result.error is None and result.pages == 1
    text = " ".join(c.text for c in result.chunks)
    assert "Lorem ipsum dolor sit amet" in text
    assert all(c.pages == [1] for c in result.chunks)
    assert "no text layer: text read by OCR" in result.warnings


@pytest.mark.filterwarnings("ignore:Copying pages")
def test_a_scanned_page_inside_a_text_pdf_is_read_by_ocr(shared_docs: Path) -> None:
    import pikepdf

    mixed = pikepdf.new()  # page 1: text layer; page 2: a scanned table (image only)
    for name in ("layout-parser-paper-with-table.pdf", "single_table.pdf"):
        mixed.pages.extend(pikepdf.open(shared_docs / name).pages)
    buf = io.BytesIO()
    mixed.save(buf)
    result = parse("mixed.pdf", buf.getvalue())
    check_invariants(result)
    assert result.pages == 2 and "text read by OCR on page(s) 2" in result.warnings
    page2 = [c for c in result.chunks if 2 in c.pages]
    assert page2 and "800.73" in " ".join(c.text for c in page2)  # a figure of the scanned table
    assert "Table 1: Current layout detection models" in result.chunks[0].text and result.chunks[0].pages == [1]


def blank_pdf(pages: int = 1) -> bytes:
    import pikepdf

    pdf = pikepdf.new()
    for _ in range(pages):
        pdf.add_blank_page(page_size=(200, 200))
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def test_ocr_that_finds_nothing_is_named() -> None:
    result = parse("blank.pdf", blank_pdf())
    assert result.error == "scanned PDF with no text: OCR gave no text"
    assert result.chunks == []


def test_one_bad_file_does_not_stop_a_batch(shared_docs: Path) -> None:
    good = (shared_docs / "layout-parser-paper-with-table.pdf").read_bytes()
    batch = [
        ("good.pdf", good),
        ("corrupt.pdf", good[: len(good) // 3]),
        ("garbage.pdf", b"%PDF-1.4\n" + os.urandom(3000)),
        ("notes.md", b"# Notes\n\nThe batch goes on after a bad file.\n"),
        ("tool.exe", b"MZ" + os.urandom(200)),
    ]
    results = [parse(name, data, ocr=False) for name, data in batch]
    for r in results:
        check_invariants(r)
    assert results[0].error is None and results[3].error is None
    assert results[1].error.startswith("corrupt file: ") and results[2].error.startswith("corrupt file: ")
    assert results[4].error == "unsupported format"
    assert "The batch goes on" in results[3].chunks[0].text


def test_password_protected_word_file_is_named() -> None:
    from msoffcrypto.format.ooxml import OOXMLFile

    plain = (Path(__file__).resolve().parent.parent / "sample_docs" / "billing-faq.docx").read_bytes()
    locked = io.BytesIO()
    OOXMLFile(io.BytesIO(plain)).encrypt("secret", locked)
    assert parse("locked.docx", locked.getvalue()).error == "encrypted document: needs a password"


def test_needs_libreoffice_for_doc(shared_docs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    monkeypatch.setattr(shutil, "which", lambda _name: None)  # as on a machine with no soffice
    result = parse("fake.doc", (shared_docs / "fake.doc").read_bytes())
    assert result.error == "needs LibreOffice to read .doc"


@pytest.mark.parametrize(
    ("name", "data", "error"),
    [
        ("empty.pdf", b"", "empty file"),
        ("spaces.txt", b"  \n\t\n", "empty file"),
        ("archive.zip", b"PK\x03\x04" + b"\x00" * 40, "unsupported format"),
        ("report.pdf", b"just some words, not a PDF", "corrupt file: not a valid .pdf file"),
        ("letter.docx", os.urandom(500), "corrupt file: not a valid .docx file"),
    ],
)
def test_bad_inputs_get_plain_errors(name: str, data: bytes, error: str) -> None:
    assert parse(name, data).error == error


def test_a_pdf_renamed_docx_is_read_as_pdf(shared_docs: Path) -> None:
    result = parse("paper.docx", (shared_docs / "layout-parser-paper-with-table.pdf").read_bytes(), ocr=False)
    assert result.format == "pdf" and result.pages == 1 and result.error is None


def test_max_characters_is_respected(shared_docs: Path) -> None:
    with pytest.raises(ValueError):  # a caller's mistake, not bad input: it raises
        parse("a.txt", b"text", max_characters=10)
    data = (shared_docs / "norwich-city.txt").read_bytes()
    small = parse("norwich-city.txt", data, max_characters=400)
    check_invariants(small, max_characters=400)
    assert len(small.chunks) > 63


def test_supported() -> None:
    assert supported("Report.PDF") and supported("notes.md") and supported("README")
    assert not supported("tool.exe") and not supported("archive.zip")
    assert {"pdf", "docx", "pptx", "xlsx", "xls", "html", "md", "txt", "csv", "eml", "msg", "epub", "rtf",
            "odt", "doc", "ppt", "png", "jpg", "tiff"} <= set(SUPPORTED_EXTENSIONS)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ext=st.sampled_from(["pdf", "docx", "txt", "csv", "html", "md", "eml", "xlsx", "pptx", "png", "", "bin"]),
    data=st.one_of(st.binary(max_size=400), st.text(string.printable, max_size=400).map(str.encode)),
)
def test_parse_never_raises(ext: str, data: bytes) -> None:
    name = f"file.{ext}" if ext else "file"
    result = parse(name, data, ocr=False)
    check_invariants(result)


# ---------------------------------------------------------------- limits (ParseLimits; settings RAG_FT_*)
def test_limits_come_from_the_settings() -> None:
    from rag_ft.settings import load_settings

    s = load_settings(env={"RAG_FT_PARSE_MEMORY_MB": "1024", "RAG_FT_PARSE_TIMEOUT_S": "60",
                           "RAG_FT_MAX_PDF_PAGES": "100", "RAG_FT_MAX_OCR_PAGES": "0", "RAG_FT_MAX_UPLOAD_MB": "10",
                           "RAG_FT_MAX_TEXT_CHARS": "5000"})
    assert ParseLimits.from_settings(s) == ParseLimits(memory_mb=1024, timeout_s=60.0, max_pdf_pages=100,
                                                       max_ocr_pages=0, max_upload_mb=10, max_text_chars=5000)
    assert ParseLimits.from_settings(load_settings(env={})) == ParseLimits()  # one set of defaults
    assert "RAG_FT_PARSE_TIMEOUT_S must be at least 5" in s.with_(parse_timeout_s=1).problems()[0]


@pytest.mark.filterwarnings("ignore:Copying pages")
def test_pages_past_the_page_cap_are_skipped_with_a_warning(shared_docs: Path) -> None:
    result = parse("fr_olap.pdf", (shared_docs / "fr_olap.pdf").read_bytes(), ocr=False,
                   limits=ParseLimits(max_pdf_pages=2))
    check_invariants(result)
    assert result.pages == 2 and {p for c in result.chunks for p in c.pages} <= {1, 2}
    assert "pages 3-12 skipped: the page cap is 2 (RAG_FT_MAX_PDF_PAGES)" in result.warnings


@pytest.mark.filterwarnings("ignore:Copying pages")
def test_a_long_run_of_empty_pages_is_one_range(shared_docs: Path) -> None:
    import pikepdf

    pdf = pikepdf.open(shared_docs / "layout-parser-paper-with-table.pdf")
    for _ in range(30):
        pdf.add_blank_page(page_size=(612, 792))
    buf = io.BytesIO()
    pdf.save(buf)
    result = parse("padded.pdf", buf.getvalue())  # OCR on: blank pages are never sent to tesseract
    assert result.pages == 31 and "no text on page(s) 2-31" in result.warnings


@pytest.mark.filterwarnings("ignore:Copying pages")
def test_ocr_reads_at_most_the_ocr_cap(shared_docs: Path) -> None:
    import pikepdf

    scans = pikepdf.new()  # three copies of a scanned page
    for _ in range(3):
        scans.pages.extend(pikepdf.open(shared_docs / "loremipsum-flat.pdf").pages)
    buf = io.BytesIO()
    scans.save(buf)
    result = parse("scans.pdf", buf.getvalue(), limits=ParseLimits(max_ocr_pages=1))
    check_invariants(result)
    assert result.pages == 3 and all(c.pages == [1] for c in result.chunks)
    assert "Lorem ipsum" in result.chunks[0].text
    assert "OCR stopped after 1 page(s), the limit per file (RAG_FT_MAX_OCR_PAGES): page(s) 2, 3 not read" \
        in result.warnings
    off = parse("scans.pdf", buf.getvalue(), limits=ParseLimits(max_ocr_pages=0))
    assert off.error == "scanned PDF with no text: OCR is turned off"


def test_text_over_the_limit_is_refused_and_other_formats_are_cut(shared_docs: Path) -> None:
    limits = ParseLimits(max_text_chars=2000)
    text = parse("norwich-city.txt", (shared_docs / "norwich-city.txt").read_bytes(), limits=limits)
    assert text.error is not None and text.error.startswith("too much text: the file holds ")
    assert text.error.endswith("characters, over the limit of 2,000 (RAG_FT_MAX_TEXT_CHARS): split it into smaller "
                               "files")
    full = parse("fr_olap.pdf", (shared_docs / "fr_olap.pdf").read_bytes(), ocr=False)
    cut = parse("fr_olap.pdf", (shared_docs / "fr_olap.pdf").read_bytes(), ocr=False, limits=limits)
    check_invariants(cut)
    assert 0 < len(cut.chunks) < len(full.chunks) and sum(len(c.text) for c in cut.chunks) <= 2200
    assert cut.chunks[0].text == full.chunks[0].text
    assert any(w.startswith("text after the first 2,000 characters skipped (the file holds ") for w in cut.warnings)


def test_bounded_parse_gives_the_same_chunks_as_parse(shared_docs: Path) -> None:
    from rag_ft.ingest import parse_bounded

    for name in ("fake.odt", "vodafone.xlsx", "fr_olap.pdf"):
        data = (shared_docs / name).read_bytes()
        assert parse_bounded(name, data, ocr=False) == parse(name, data, ocr=False), name
