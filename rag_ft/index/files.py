"""The uploaded bytes of every document, kept in the data folder so a document can be re-indexed (and an
interrupted run finished) without the user uploading it again; and the sample documents."""

from __future__ import annotations

import os
from pathlib import Path

from rag_ft.settings import ROOT, Settings

SAMPLE_DOCS = ROOT / "sample_docs"


def file_path(settings: Settings, doc_id: str) -> Path:
    return settings.data_dir / "files" / doc_id


def save_file(settings: Settings, doc_id: str, data: bytes) -> None:
    path = file_path(settings, doc_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # atomic: a crash leaves the old copy or the new one, never half a file


def sample_files() -> list[tuple[str, bytes]]:
    """The demo documents in sample_docs/ (every file the ingestion supports; not the question set)."""
    from rag_ft.ingest import supported

    if not SAMPLE_DOCS.is_dir():
        return []
    return [(p.name, p.read_bytes()) for p in sorted(SAMPLE_DOCS.iterdir())
            if p.is_file() and not p.name.startswith(".") and p.suffix != ".jsonl" and supported(p.name)
            and p.name.lower() != "readme.md"]
