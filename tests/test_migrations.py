"""Ordered migrations: a database written before migrations existed opens with every row and the same schema,
a fresh database gets every table, and migrations run in order, once, each atomically with its record.

The legacy fixture was written by the code of commit d3f49af (see tests/fixtures/make_legacy_db.py).
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from rag_ft import migrations
from rag_ft.db import connect

LEGACY = Path(__file__).resolve().parent / "fixtures" / "legacy-d3f49af.sqlite"
TABLES = {"documents", "chunks", "collections", "examples", "ft_jobs", "ft_events", "ft_metrics", "ft_checkpoints",
          "ft_models", "eval_sets", "eval_questions", "eval_runs", "eval_results"}


def _raw(path: Path) -> sqlite3.Connection:
    """A plain connection that applies no migration (to look at the file as it is)."""
    return sqlite3.connect(path)


def _schema(path: Path) -> dict[str, str]:
    with _raw(path) as conn:
        return {name: sql for name, sql in conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name != '_migrations'")}


def _counts(path: Path) -> dict[str, int]:
    with _raw(path) as conn:
        return {t: conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in TABLES}


@pytest.fixture
def legacy(settings) -> Path:
    """A copy of the legacy database as the data folder's database (the fixture itself is never written)."""
    settings.db_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(LEGACY, settings.db_path)
    return settings.db_path


def test_fixture_is_a_database_from_before_migrations() -> None:
    assert LEGACY.stat().st_size < 200_000
    with _raw(LEGACY) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
    assert TABLES <= names and "_migrations" not in names
    assert all(n > 0 for n in _counts(LEGACY).values())


def test_legacy_database_opens_with_every_row_and_the_same_schema(legacy: Path) -> None:
    before_schema, before_counts = _schema(legacy), _counts(legacy)
    conn = connect(legacy)
    try:
        assert migrations.applied(conn) == [fn.__name__ for fn in migrations.MIGRATIONS]
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(migrations.MIGRATIONS)
    finally:
        conn.close()
    after_counts, after_schema = _counts(legacy), _schema(legacy)
    assert {t: after_counts[t] for t in before_counts} == before_counts  # no row lost
    # the first migrations reproduce the old schema: the old tables are unchanged; later ones only add
    assert {name: after_schema[name] for name in before_schema} == before_schema
    assert all(after_counts[t] == 0 for t in set(after_counts) - set(before_counts))


def test_stores_read_the_legacy_rows_back(settings, legacy: Path) -> None:
    from rag_ft import evaluation as ev
    from rag_ft.index.documents import document_chunks, list_documents
    from rag_ft.training import generate
    from rag_ft.training.examples import ExampleStore
    from rag_ft.training.jobs import JobStore

    docs = {d.name: d.status for d in list_documents(settings)}
    assert docs == {"hub.md": "indexed", "billing.md": "indexing"}
    hub = document_chunks(settings, "hub.md")
    assert hub and "reset button" in hub[0].text and hub[0].hash

    # a document a killed run left 'indexing' is not offered for drafting examples
    assert [c.document for c in generate.list_chunks(legacy)] == ["hub.md"] * len(hub)
    assert [(c, d) for c, d, _ in generate.list_documents(legacy)] == [("default", "hub.md")]

    examples = ExampleStore(legacy)
    try:
        counts = examples.counts()
        assert (counts["total"], counts["deleted"], counts["approved"]) == (2, 1, {"train": 1, "validation": 1})
        assert examples.stale_ids() == set()  # the generated example's chunk is still there
    finally:
        examples.close()
    generated = ev.questions_from_examples(legacy, "generated")
    assert [(q.question, q.document) for q in generated] == [("How do I reset the hub?", "hub.md")]

    jobs = JobStore(legacy)
    try:
        [job] = jobs.list()
        assert job.status == "succeeded" and job.n_train == 1
        assert [m.train_loss for m in jobs.metrics(job.id)] == [2.5]
        assert [c.step for c in jobs.checkpoints(job.id)] == [1]
        assert [t.name for t in jobs.tuned_models()] == ["hub-tuned"]
        assert [e.message for e in jobs.events(job.id)][-1] == "done"
    finally:
        jobs.close()

    store = ev.EvalStore(legacy)
    try:
        [s] = store.list_sets()
        assert s.name == "Legacy set" and [q.pages for q in store.questions(s.id)] == [[], [1]]
        [run] = store.list_runs(s.id)
        assert run.status == "done" and run.configs[0].rag
        [result] = store.results(run.id)
        assert result.answer == "Hold the button [1]." and result.metrics == {"f1": 0.5}
    finally:
        store.close()


def test_fresh_database_gets_every_table_with_the_legacy_schema(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.sqlite3"
    connect(fresh).close()
    fresh_schema, legacy_schema = _schema(fresh), _schema(LEGACY)
    assert {name: fresh_schema[name] for name in legacy_schema} == legacy_schema
    assert set(_counts(fresh)) >= TABLES and not any(_counts(fresh).values())
    with _raw(fresh) as conn:
        assert conn.execute("SELECT COUNT(*) FROM _migrations").fetchone()[0] == len(migrations.MIGRATIONS)


def test_a_replaced_database_file_is_migrated_again(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    connect(path).close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    conn = connect(path)
    try:
        assert conn.execute("SELECT COUNT(*) FROM examples").fetchone()[0] == 0
    finally:
        conn.close()


def _autocommit(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def test_migrations_run_in_order_and_once(tmp_path: Path) -> None:
    calls: list[str] = []

    def first(conn: sqlite3.Connection) -> None:
        calls.append("first")
        conn.execute("CREATE TABLE t (a INTEGER)")

    def second(conn: sqlite3.Connection) -> None:
        calls.append("second")
        conn.execute("ALTER TABLE t ADD COLUMN b TEXT NOT NULL DEFAULT ''")  # needs `first` to have run

    conn = _autocommit(tmp_path / "m.sqlite3")
    assert migrations.migrate(conn, [first, second]) == ["first", "second"]
    assert migrations.migrate(conn, [first, second]) == []
    assert calls == ["first", "second"]
    assert migrations.applied(conn) == ["first", "second"]
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2

    def third(conn: sqlite3.Connection) -> None:
        calls.append("third")
        conn.execute("INSERT INTO t (a) VALUES (1)")

    assert migrations.migrate(conn, [first, second, third]) == ["third"]  # only the new one
    assert calls == ["first", "second", "third"]
    assert conn.execute("SELECT a, b FROM t").fetchall() == [(1, "")]
    conn.close()


def test_a_failing_migration_leaves_nothing_behind(tmp_path: Path) -> None:
    def good(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE t (a INTEGER)")

    def bad(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half (a INTEGER)")
        conn.execute("INSERT INTO missing VALUES (1)")

    conn = _autocommit(tmp_path / "m.sqlite3")
    with pytest.raises(sqlite3.OperationalError, match="missing"):
        migrations.migrate(conn, [good, bad])
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "t" in tables and "half" not in tables  # `bad` rolled back whole, `good` stays applied
    assert migrations.applied(conn) == ["good"]
    assert not conn.in_transaction
    conn.close()


def test_every_migration_is_registered_once_by_name() -> None:
    names = [fn.__name__ for fn in migrations.MIGRATIONS]
    assert names == sorted(names) and len(set(names)) == len(names)  # m001_, m002_, ...: list order is name order
