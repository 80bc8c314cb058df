"""RAG + Fine-Tuning Studio engine: plain Python, no Streamlit import."""

from rag_ft import offline as _offline  # noqa: F401  (sets offline env and the SQLite swap first)

__all__ = ["__version__"]
__version__ = "0.1.0"
