"""Text we did not write: documents, model output, server error messages, file names.

Three jobs, one place:
- ``redact``: secrets never reach a stored, logged or shown message (servers echo keys back in errors,
  base URLs carry ``user:password@``).
- ``csv_cell``: a spreadsheet must not run a cell of ours as a formula (``=HYPERLINK(...)``, ``+cmd|...``).
- ``inert``: text shown through Markdown renders as the characters it holds. Streamlit renders Markdown, and a
  Markdown image (``![x](http://host/?q=...)``) makes the browser fetch its address with no click; raw HTML and
  links are no better. Every character that Markdown or HTML could read as syntax becomes a numeric character
  reference: CommonMark decodes those to the literal character and never reads them as structure, in plain
  Markdown and inside HTML blocks alike (where Markdown resumes after a blank line).
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Iterable
from typing import Any

MASK = "***"

# key formats of the providers we talk to (OpenAI sk-/sk-proj-, Fireworks fw_, Together tgp_v1_, Hugging Face
# hf_, Anthropic sk-ant-, GitHub tokens) and generic bearer/basic credentials
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\b(sk-(?:proj-|ant-)?|fw_|tgp_v1_|hf_|gh[pousr]_)[A-Za-z0-9_\-]{6,}"), r"\1" + MASK),
    (re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=\-]{8,}"), r"\1 " + MASK),
    (re.compile(r"(?i)(authorization|x-api-key|api[-_]?key)(\"?\s*[:=]\s*\"?)[^\s\"',;&]+"), r"\1\2" + MASK),
    # credentials in URLs: scheme://user:password@host, scheme://token@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s:@]+(?::[^/\s@]*)?@"), r"\1" + MASK + "@"),
    # secrets passed in query strings
    (re.compile(r"(?i)([?&](?:api[-_]?key|key|token|access_token|password|secret)=)[^&\s#]+"), r"\1" + MASK),
]


# Every key the settings hold, registered when settings are loaded: a key of a format no pattern knows is
# still masked when a server echoes it back. Kept in memory only.
_KNOWN: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a configured secret so every later ``redact`` masks it (values under 8 characters are ignored)."""
    if value and len(value) >= 8:
        _KNOWN.add(value)


def redact(text: object, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with API keys, bearer tokens and URL credentials masked; ``secrets`` are masked wherever they occur.

    Registered secrets (``register_secret``) are masked too.
    """
    out = str(text)
    for secret in [*secrets, *sorted(_KNOWN, key=len, reverse=True)]:
        if secret and len(secret) >= 4:
            out = out.replace(secret, MASK)
    for pattern, repl in _PATTERNS:
        out = pattern.sub(repl, out)
    return out


def short(text: object, limit: int = 300, secrets: Iterable[str | None] = ()) -> str:
    """A redacted message cut to ``limit`` characters (redacted first, so a cut never exposes half a key)."""
    out = redact(text, secrets)
    return out if len(out) <= limit else out[:limit] + "..."


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A CSV cell a spreadsheet shows as text: strings starting like a formula get a leading apostrophe.

    (OWASP's advice for CSV injection.) Numbers pass unchanged, so -3 stays a number; JSONL exports stay exact.
    """
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


# Characters Markdown or HTML may read as syntax. Letters, digits and spaces stay, so text stays searchable.
_SYNTAX = set("\\`*_{}[]()<>#+-.!|~=&\"':;/?$@^%")


def inert(text: object) -> str:
    """Text that renders as itself through ``st.markdown`` (with or without ``unsafe_allow_html``).

    Newlines are kept (a blank line still starts a paragraph, which is harmless once no character is syntax).
    """
    return "".join(f"&#{ord(ch)};" if ch in _SYNTAX else ch for ch in str(text))


def inert_line(text: object, limit: int = 200) -> str:
    """One line of inert text for labels (expanders, captions): whitespace folded, cut to ``limit``."""
    flat = " ".join(str(text).split())
    if len(flat) > limit:
        flat = flat[:limit] + "..."
    return inert(flat)


def safe_name(name: object) -> str:
    """A file name that can be encoded, stored and shown: lone surrogates and control characters replaced."""
    text = str(name)
    text = text.encode("utf-8", "replace").decode("utf-8")
    return "".join(ch if ch.isprintable() else "\ufffd" for ch in text)


def install_log_redaction() -> None:
    """Redact every log record of this process (message, arguments and traceback) as it is created.

    A record factory rather than a filter: filters only see records of the logger they sit on, and libraries
    (openai, httpx, chromadb) log through their own loggers.
    """
    if getattr(logging.getLogRecordFactory(), "_rag_ft_redacts", False):
        return
    make = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        try:
            record.msg, record.args = redact(record.getMessage()), ()
        except Exception:  # a bad format string stays the logging module's problem, not ours
            return record
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
        return record

    factory._rag_ft_redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
