"""The one SQLite database in the data folder.

``connect`` applies the pending migrations of ``rag_ft.migrations`` (the one place for DDL) when it opens a
database file that has not had them all (a cheap check of the file's header), so every connection it returns
sees every table. Each table's queries live in one owner module (e.g. ``rag_ft.index.chunks`` for ``chunks``).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from rag_ft import (
    migrations,
    offline,  # noqa: F401  (the SQLite swap must precede any chromadb import)
)

if TYPE_CHECKING:
    from rag_ft.settings import Settings


def connect(path: Path | str) -> sqlite3.Connection:
    """A connection in autocommit mode (use ``with transaction(conn):`` for atomic edits), WAL, rows by name.

    The schema is up to date: pending migrations are applied first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # check_same_thread=False: Streamlit reruns a session's script on different threads
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")  # readers (the app) never block the training worker's writes
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    try:
        migrations.ensure_current(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def open_db(settings: Settings) -> sqlite3.Connection:
    """A connection to the data folder's database (``settings.db_path``); the caller closes it."""
    return connect(settings.db_path)


class transaction:
    """``with transaction(conn):`` runs the block in BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
