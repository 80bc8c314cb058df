"""Ingestion: file bytes -> format (formats) -> unstructured elements (elements, pdf) -> chunks (chunk).

``parse`` (pipeline) runs the three steps for one file in this process; ``parse_bounded`` (sandbox) runs it
in a memory-capped, time-limited worker process within ``ParseLimits`` (limits): the index uses that one.
"""

from rag_ft.ingest.limits import ParseLimits
from rag_ft.ingest.pipeline import SUPPORTED_EXTENSIONS, ParseResult, parse, supported
from rag_ft.ingest.sandbox import parse_bounded

__all__ = ["SUPPORTED_EXTENSIONS", "ParseLimits", "ParseResult", "parse", "parse_bounded", "supported"]
