"""RAG + Fine-Tuning Studio engine: plain Python, no Streamlit import."""

from rag_ft import offline as _offline  # noqa: F401  (sets offline env and the SQLite swap first)
from rag_ft.untrusted import install_log_redaction

install_log_redaction()  # no log line of this process carries a key (see rag_ft.untrusted)

__all__ = ["__version__"]
__version__ = "0.1.0"
