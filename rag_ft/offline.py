"""Process-wide set-up that must run before heavy imports: offline model hubs and the SQLite swap.

Import this module first (``rag_ft/__init__`` does). It only sets defaults, so a user can still
override any variable in the environment.
"""

from __future__ import annotations

import os
import sqlite3
import sys

# No model hub is reachable at run time: fail in 0.1 s instead of retrying for a minute.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",  # unstructured's telemetry
    "UNSTRUCTURED_DISABLE_NOTICE": "1",
    "ANONYMIZED_TELEMETRY": "False",  # chromadb's telemetry
    "TOKENIZERS_PARALLELISM": "false",
}


def apply() -> None:
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    swap_sqlite()


def swap_sqlite() -> None:
    """Chroma needs SQLite >= 3.35; Streamlit Community Cloud ships 3.34, so use pysqlite3's newer copy."""
    if sqlite3.sqlite_version_info >= (3, 35, 0) or "chromadb" in sys.modules:
        return
    try:
        __import__("pysqlite3")
    except ImportError:
        return
    sys.modules["sqlite3"] = sys.modules.pop("pysqlite3")


apply()
