"""The one SQLite database in the data folder. Each module owns its tables and creates them itself."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from rag_ft import offline  # noqa: F401  (the SQLite swap must precede any chromadb import)


def connect(path: Path | str) -> sqlite3.Connection:
    """A connection in autocommit mode (use ``with transaction(conn):`` for atomic edits), WAL, rows by name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # check_same_thread=False: Streamlit reruns a session's script on different threads
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")  # readers (the app) never block the training worker's writes
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


class transaction:
    """``with transaction(conn):`` runs the block in BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")


def ensure_schema(conn: sqlite3.Connection, sql: str) -> None:
    """Run ``CREATE ... IF NOT EXISTS`` statements (idempotent)."""
    conn.executescript(sql)
