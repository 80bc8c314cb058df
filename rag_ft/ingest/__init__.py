"""Ingestion: file bytes -> format (formats) -> unstructured elements (elements) -> chunks (chunk).

``parse`` (pipeline) runs the three steps for one file; it is all the index needs from this stage.
"""

from rag_ft.ingest.pipeline import SUPPORTED_EXTENSIONS, ParseResult, parse, supported

__all__ = ["SUPPORTED_EXTENSIONS", "ParseResult", "parse", "supported"]
