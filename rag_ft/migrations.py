"""Every table's DDL, as an ordered list of migrations applied once per database (after simonw/llm's migrations).

A migration is a function taking a connection; ``migrate`` runs the ones a database has not had yet, in list
order, each in its own ``BEGIN IMMEDIATE`` transaction together with its row in ``_migrations``, so a crash
leaves a migration either fully applied and recorded or not at all, and two processes opening the same file at
once (the app and the training worker) never apply one twice. ``rag_ft.db.connect`` calls ``ensure_current``, so
code that holds a connection can rely on every table existing.

The number of migrations applied is also kept in the file's header (``PRAGMA user_version``): reading it costs
one PRAGMA on a page SQLite has already read, so every connection can check it, and a database file that was
replaced (deleted, restored from a backup) is migrated again, which a cache of "paths already done" would miss.

Rules: never edit or reorder a migration that has shipped; add a new function at the end instead (e.g.
``ALTER TABLE ... ADD COLUMN``). The first four reproduce, statement for statement, the ``CREATE ... IF NOT
EXISTS`` schema the stores ran before migrations existed; they keep ``IF NOT EXISTS`` because such a database
already has those tables but no ``_migrations`` record of them, and must open with no change.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

Migration = Callable[[sqlite3.Connection], None]

MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    """Register ``fn`` as the next migration (its name is its identity in ``_migrations``)."""
    MIGRATIONS.append(fn)
    return fn


def _script(conn: sqlite3.Connection, sql: str) -> None:
    """Run several statements one by one: ``executescript`` would COMMIT the migration's open transaction."""
    statement = ""
    for line in sql.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            conn.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement in a migration: {statement.strip()[:80]!r}")


def applied(conn: sqlite3.Connection) -> list[str]:
    """Names of the migrations this database has had, in the order they were applied."""
    conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    return [r[0] for r in conn.execute("SELECT name FROM _migrations ORDER BY rowid")]


def _record_count(conn: sqlite3.Connection) -> None:
    """Keep the header's count equal to the rows of ``_migrations`` (written only when it differs)."""
    count = int(conn.execute("SELECT COUNT(*) FROM _migrations").fetchone()[0])
    if conn.execute("PRAGMA user_version").fetchone()[0] != count:
        conn.execute(f"PRAGMA user_version = {count}")  # a PRAGMA takes no ? parameters; count is an int


def ensure_current(conn: sqlite3.Connection) -> None:
    """Apply the pending migrations unless the header says every one has been applied (the cheap usual case)."""
    if conn.execute("PRAGMA user_version").fetchone()[0] < len(MIGRATIONS):
        migrate(conn)


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration] | None = None) -> list[str]:
    """Apply the pending migrations in order; returns the names applied now ([] when up to date).

    ``conn`` must be in autocommit mode (``isolation_level=None``, as ``rag_ft.db.connect`` opens it).
    """
    migrations = MIGRATIONS if migrations is None else migrations
    names = [fn.__name__ for fn in migrations]
    if len(set(names)) != len(names):
        raise ValueError("two migrations share a name")
    done = set(applied(conn))
    ran: list[str] = []
    for fn in migrations:
        if fn.__name__ in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            # another process may have applied it while we waited for the write lock
            if conn.execute("SELECT 1 FROM _migrations WHERE name = ?", (fn.__name__,)).fetchone() is None:
                fn(conn)
                conn.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)",
                             (fn.__name__, datetime.now(UTC).isoformat(timespec="seconds")))
                ran.append(fn.__name__)
                _record_count(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    _record_count(conn)  # also when nothing ran: another process may have applied them
    return ran


# ---------------------------------------------------------------- the migrations, oldest first


@migration
def m001_documents(conn: sqlite3.Connection) -> None:
    """Documents, their chunks, and per-collection state (owners: rag_ft.index.documents, rag_ft.index.chunks)."""
    _script(conn, """
CREATE TABLE IF NOT EXISTS documents(
    id TEXT PRIMARY KEY, collection TEXT, name TEXT, size INTEGER, hash TEXT, pages INTEGER,
    chunk_count INTEGER, status TEXT, error TEXT, indexed_at TEXT, embedding TEXT,
    UNIQUE(collection, name));
CREATE TABLE IF NOT EXISTS chunks(
    id TEXT PRIMARY KEY, document_id TEXT, collection TEXT, document TEXT, chunk_index INTEGER, hash TEXT,
    text TEXT, pages TEXT /*json list*/, section TEXT, element_types TEXT /*json list*/);
CREATE INDEX IF NOT EXISTS chunks_by_document ON chunks(document_id, chunk_index);
CREATE INDEX IF NOT EXISTS chunks_by_collection ON chunks(collection);
-- per collection: the embedding model it was built with, and a counter bumped on every change
-- (retrieval rebuilds its in-memory BM25 index when the counter moves)
CREATE TABLE IF NOT EXISTS collections(name TEXT PRIMARY KEY, embedding TEXT, version INTEGER NOT NULL DEFAULT 0);
""")


@migration
def m002_examples(conn: sqlite3.Connection) -> None:
    """Training examples (owner: rag_ft.training.examples)."""
    _script(conn, """
CREATE TABLE IF NOT EXISTS examples (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    messages TEXT NOT NULL,               -- JSON list of {role, content, ...}
    status TEXT NOT NULL DEFAULT 'draft',
    split TEXT NOT NULL DEFAULT 'train',
    source TEXT NOT NULL DEFAULT 'manual',
    source_file TEXT NOT NULL DEFAULT '',
    source_line INTEGER,
    collection TEXT NOT NULL DEFAULT '',
    document_id TEXT NOT NULL DEFAULT '',
    document TEXT NOT NULL DEFAULT '',
    chunk_id TEXT NOT NULL DEFAULT '',
    chunk_hash TEXT NOT NULL DEFAULT '',
    section TEXT NOT NULL DEFAULT '',
    tags TEXT NOT NULL DEFAULT '[]',
    notes TEXT NOT NULL DEFAULT '',
    search_text TEXT NOT NULL DEFAULT '', -- lower-cased contents + tags + notes, for search
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deleted_at TEXT
);
CREATE INDEX IF NOT EXISTS examples_status ON examples(status, split);
CREATE INDEX IF NOT EXISTS examples_doc ON examples(document_id, chunk_hash);
""")


@migration
def m003_fine_tuning_jobs(conn: sqlite3.Connection) -> None:
    """Fine-tuning jobs and what they report (owner: rag_ft.training.jobs)."""
    _script(conn, """
CREATE TABLE IF NOT EXISTS ft_jobs (
    id TEXT PRIMARY KEY,
    backend TEXT NOT NULL,             -- local | openai
    base_model TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    hyperparameters TEXT NOT NULL,     -- json
    suffix TEXT NOT NULL DEFAULT '',
    train_file TEXT NOT NULL,
    train_hash TEXT NOT NULL,
    n_train INTEGER NOT NULL,
    validation_file TEXT,
    validation_hash TEXT,
    n_validation INTEGER NOT NULL DEFAULT 0,
    result_model TEXT,                 -- OpenAI model id or the local tuned model's name
    adapter_dir TEXT,
    external_id TEXT,                  -- OpenAI's ftjob-... id
    error_code TEXT,
    error_message TEXT,
    error_param TEXT,                  -- the file or parameter the error is about
    pid INTEGER,                       -- local worker process
    pid_started REAL,                  -- its create time (guards against pid reuse)
    heartbeat_at REAL,
    cancel_requested_at REAL,
    step INTEGER NOT NULL DEFAULT 0,
    total_steps INTEGER NOT NULL DEFAULT 0,
    estimated_finish REAL,
    trained_tokens INTEGER
);
CREATE TABLE IF NOT EXISTS ft_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL REFERENCES ft_jobs(id) ON DELETE CASCADE,
    created_at REAL NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL,
    external_id TEXT,
    UNIQUE(job_id, external_id)
);
CREATE TABLE IF NOT EXISTS ft_metrics (
    job_id TEXT NOT NULL REFERENCES ft_jobs(id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    epoch REAL,
    train_loss REAL,
    train_token_accuracy REAL,
    valid_loss REAL,
    valid_token_accuracy REAL,
    created_at REAL NOT NULL,
    PRIMARY KEY (job_id, step)
);
CREATE TABLE IF NOT EXISTS ft_checkpoints (
    job_id TEXT NOT NULL REFERENCES ft_jobs(id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    epoch REAL,
    location TEXT NOT NULL,            -- adapter folder (local) or checkpoint model id (OpenAI)
    metrics TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    PRIMARY KEY (job_id, step)
);
CREATE TABLE IF NOT EXISTS ft_models (
    name TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    base_model TEXT NOT NULL,
    model_id TEXT,
    adapter_dir TEXT,
    job_id TEXT NOT NULL,
    created_at REAL NOT NULL
);
""")


@migration
def m004_evaluation(conn: sqlite3.Connection) -> None:
    """Evaluation sets, runs and results (owner: the evaluation store)."""
    _script(conn, """
CREATE TABLE IF NOT EXISTS eval_sets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS eval_questions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    set_id INTEGER NOT NULL REFERENCES eval_sets(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    question TEXT NOT NULL,
    reference TEXT NOT NULL DEFAULT '',
    document TEXT NOT NULL DEFAULT '',
    pages TEXT NOT NULL DEFAULT '[]',
    section TEXT NOT NULL DEFAULT '',
    answerable INTEGER NOT NULL DEFAULT 1,
    origin TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS eval_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    set_id INTEGER NOT NULL REFERENCES eval_sets(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    configs TEXT NOT NULL,
    options TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'new',
    error TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    finished_at TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS eval_results (
    run_id INTEGER NOT NULL REFERENCES eval_runs(id) ON DELETE CASCADE,
    config_index INTEGER NOT NULL,
    question_id INTEGER NOT NULL,
    answer TEXT NOT NULL DEFAULT '',
    covered INTEGER NOT NULL DEFAULT 1,
    citations TEXT NOT NULL DEFAULT '[]',
    passages TEXT NOT NULL DEFAULT '[]',
    ttft_s REAL NOT NULL DEFAULT 0,
    total_s REAL NOT NULL DEFAULT 0,
    retrieval_s REAL NOT NULL DEFAULT 0,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cost REAL NOT NULL DEFAULT 0,
    metrics TEXT NOT NULL DEFAULT '{}',
    error TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    PRIMARY KEY (run_id, config_index, question_id)
);
""")


@migration
def m005_conversations(conn: sqlite3.Connection) -> None:
    """Chat conversations, one row each, so reloading the Chat page's URL brings its conversation back
    (owner: rag_ft.chat.conversations)."""
    _script(conn, """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,                  -- the id in the Chat page's URL (?c=...)
    messages TEXT NOT NULL,               -- JSON list of the page's messages, answers with their sources
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
""")
