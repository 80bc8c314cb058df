"""Reading a file for the index: in the bounded worker process, with the name as it can be stored and shown,
and the outcome's failure in plain words."""

from __future__ import annotations

from typing import Any

from rag_ft.settings import Settings


def parse_file(settings: Settings, name: str, data: bytes) -> Any:
    """Read one file in the memory-capped, time-limited worker process (rag_ft.ingest.sandbox)."""
    from rag_ft.ingest.limits import ParseLimits
    from rag_ft.ingest.sandbox import parse_bounded

    return parse_bounded(name, data, ParseLimits.from_settings(settings))


def shown_name(name: str) -> str:
    """The name as it can be displayed and stored: a lone surrogate (undecodable bytes) becomes '?'."""
    return name.encode("utf-8", "replace").decode("utf-8")


def failure(result: Any) -> str | None:
    if result.error:
        return result.error
    if not result.chunks:
        return "no text found in the file"
    return None
