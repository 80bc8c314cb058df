"""What every command shares: errors with exit codes, JSON on stdout, notes and progress on stderr.

stdout carries only the result (a table, an answer, or one JSON document with ``--json``) so it can be piped
and parsed; everything else (progress, warnings, errors) goes to stderr.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
from typing import Any, TextIO

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """A command could not do its job: the message is printed on stderr and the process exits with ``code``."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def redact(text: str, limit: int = 300) -> str:
    """An error text fit for the terminal: no API key (OpenAI's errors may echo it), not too long."""
    text = re.sub(r"sk-[A-Za-z0-9_\-]{6,}", "sk-***", text)
    return text if len(text) <= limit else text[:limit] + "..."


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2, default=str)
    sys.stdout.write("\n")
    sys.stdout.flush()


def note(message: str) -> None:
    """A line for the person at the terminal (never part of the result)."""
    print(message, file=sys.stderr, flush=True)


def table(rows: list[list[str]], header: list[str]) -> str:
    """Left-aligned columns, the last one unpadded (it holds free text such as errors)."""
    if not rows:
        return ""
    cols = list(zip(header, *rows, strict=True))
    widths = [max(len(str(c)) for c in col) for col in cols[:-1]]
    lines = []
    for row in [header, *rows]:
        cells = [str(c).ljust(w) for c, w in zip(row, widths, strict=False)] + [str(row[-1])]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def fmt(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


class Progress:
    """A text bar redrawn in place when ``stream`` is a terminal; otherwise plain lines, at most one per
    5% step or new item, so a log file stays readable."""

    def __init__(self, label: str, stream: TextIO | None = None, width: int = 24) -> None:
        self.label, self.stream, self.width = label, stream or sys.stderr, width
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_step, self._last_item, self._drawn = -1, "", False
        self._start = time.perf_counter()

    def update(self, fraction: float, message: str = "") -> None:
        fraction = max(0.0, min(1.0, fraction))
        if self.tty:
            filled = round(fraction * self.width)
            bar = "#" * filled + "." * (self.width - filled)
            line = f"{self.label} [{bar}] {fraction:4.0%} {message}"
            cols = shutil.get_terminal_size((100, 20)).columns
            self.stream.write("\r" + line[: cols - 1].ljust(cols - 1))
            self.stream.flush()
            self._drawn = True
            return
        # a new item is "<name>: ..." (index reports per file); other messages only print on a new 5% step
        step, item = int(fraction * 20), message.split(":", 1)[0] if ":" in message else ""
        if step != self._last_step or item != self._last_item:
            self._last_step, self._last_item = step, item
            print(f"{self.label} {fraction:4.0%} {message}", file=self.stream, flush=True)

    def done(self, message: str = "") -> None:
        if self.tty and self._drawn:
            self.stream.write("\r" + " " * (shutil.get_terminal_size((100, 20)).columns - 1) + "\r")
        elapsed = time.perf_counter() - self._start
        print(f"{self.label}: {message + ', ' if message else ''}{elapsed:.1f} s", file=self.stream, flush=True)
