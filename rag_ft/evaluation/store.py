"""EvalStore: evaluation sets, runs and per-answer results in the app's SQLite file (the eval_* tables)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag_ft.db import connect, transaction
from rag_ft.evaluation import metrics as m
from rag_ft.evaluation.configs import RunConfig, RunOptions, check_configs
from rag_ft.evaluation.sets import (
    SAMPLE_QUESTIONS,
    SAMPLE_SET_NAME,
    EvalError,
    EvalQuestion,
    EvalSet,
    parse_questions,
)


@dataclass
class RunInfo:
    id: int
    set_id: int
    name: str
    configs: list[RunConfig]
    options: RunOptions
    status: str  # new | running | stopped | done | failed
    error: str
    created_at: str
    finished_at: str
    answered: int = 0


@dataclass
class AnswerRecord:
    """One question answered by one configuration, with everything measured about it."""

    config_index: int
    question_id: int
    answer: str = ""
    covered: bool = True
    citations: list[dict] = field(default_factory=list)
    passages: list[dict] = field(default_factory=list)
    ttft_s: float = 0.0
    total_s: float = 0.0
    retrieval_s: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str = ""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class EvalStore:
    """Evaluation sets, runs and results in the app's SQLite file (tables eval_*)."""

    def __init__(self, db_path: Path | str) -> None:
        self.conn = connect(db_path)  # the tables exist: connect applies the migrations

    # sets
    def create_set(self, name: str, questions: Sequence[EvalQuestion], source: str = "") -> int:
        if not questions:
            raise EvalError("An evaluation set needs at least one question.")
        name = self._free_name(name.strip() or "Evaluation set")
        with transaction(self.conn):
            cur = self.conn.execute(
                "INSERT INTO eval_sets(name, source, created_at) VALUES (?, ?, ?)", (name, source, _now())
            )
            set_id = int(cur.lastrowid)
            self.conn.executemany(
                "INSERT INTO eval_questions(set_id, position, question, reference, document, pages, section,"
                " answerable, origin) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(set_id, i, q.question, q.reference, q.document, json.dumps(q.pages), q.section,
                  int(q.answerable), q.origin) for i, q in enumerate(questions)],
            )
        return set_id

    def _free_name(self, name: str) -> str:
        taken = {r[0] for r in self.conn.execute("SELECT name FROM eval_sets")}
        candidate, n = name, 2
        while candidate in taken:
            candidate, n = f"{name} ({n})", n + 1
        return candidate

    def list_sets(self) -> list[EvalSet]:
        rows = self.conn.execute(
            "SELECT s.*, (SELECT COUNT(*) FROM eval_questions q WHERE q.set_id = s.id) AS size"
            " FROM eval_sets s ORDER BY s.id"
        ).fetchall()
        return [EvalSet(r["id"], r["name"], r["source"], r["created_at"], r["size"]) for r in rows]

    def find_set(self, name: str) -> EvalSet | None:
        return next((s for s in self.list_sets() if s.name == name), None)

    def questions(self, set_id: int) -> list[EvalQuestion]:
        rows = self.conn.execute(
            "SELECT * FROM eval_questions WHERE set_id = ? ORDER BY position", (set_id,)
        ).fetchall()
        return [EvalQuestion(r["question"], r["reference"], r["document"], json.loads(r["pages"]), r["section"],
                             bool(r["answerable"]), r["origin"], r["id"]) for r in rows]

    def delete_set(self, set_id: int) -> None:
        with transaction(self.conn):
            self.conn.execute("DELETE FROM eval_sets WHERE id = ?", (set_id,))

    # runs
    def create_run(self, set_id: int, configs: Sequence[RunConfig], options: RunOptions, name: str = "") -> int:
        problems = check_configs(configs)
        if problems:
            raise EvalError(" ".join(problems))
        m.compile_style(options.style_pattern)  # a bad regex is refused before any model runs
        name = name or f"Run {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"
        cur = self.conn.execute(
            "INSERT INTO eval_runs(set_id, name, configs, options, status, created_at) VALUES (?, ?, ?, ?, 'new', ?)",
            (set_id, name, json.dumps([asdict(c) for c in configs]), json.dumps(asdict(options)), _now()),
        )
        return int(cur.lastrowid)

    def _run(self, r: Any) -> RunInfo:
        return RunInfo(r["id"], r["set_id"], r["name"], [RunConfig(**c) for c in json.loads(r["configs"])],
                       RunOptions(**json.loads(r["options"])), r["status"], r["error"], r["created_at"],
                       r["finished_at"], r["answered"])

    _RUN_SQL = ("SELECT r.*, (SELECT COUNT(*) FROM eval_results x WHERE x.run_id = r.id) AS answered"
                " FROM eval_runs r")

    def get_run(self, run_id: int) -> RunInfo:
        row = self.conn.execute(f"{self._RUN_SQL} WHERE r.id = ?", (run_id,)).fetchone()
        if row is None:
            raise EvalError(f"There is no run {run_id}.")
        return self._run(row)

    def list_runs(self, set_id: int | None = None) -> list[RunInfo]:
        if set_id is None:
            rows = self.conn.execute(f"{self._RUN_SQL} ORDER BY r.id DESC").fetchall()
        else:
            rows = self.conn.execute(f"{self._RUN_SQL} WHERE r.set_id = ? ORDER BY r.id DESC", (set_id,)).fetchall()
        return [self._run(r) for r in rows]

    def set_status(self, run_id: int, status: str, error: str = "") -> None:
        finished = _now() if status in ("done", "stopped", "failed") else ""
        self.conn.execute("UPDATE eval_runs SET status = ?, error = ?, finished_at = ? WHERE id = ?",
                          (status, error, finished, run_id))

    def delete_run(self, run_id: int) -> None:
        with transaction(self.conn):
            self.conn.execute("DELETE FROM eval_runs WHERE id = ?", (run_id,))

    # results
    def save_result(self, run_id: int, rec: AnswerRecord) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO eval_results(run_id, config_index, question_id, answer, covered, citations,"
            " passages, ttft_s, total_s, retrieval_s, input_tokens, output_tokens, cost, metrics, error, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, rec.config_index, rec.question_id, rec.answer, int(rec.covered), json.dumps(rec.citations),
             json.dumps(rec.passages), rec.ttft_s, rec.total_s, rec.retrieval_s, rec.input_tokens,
             rec.output_tokens, rec.cost, json.dumps(rec.metrics), rec.error, _now()),
        )

    def results(self, run_id: int) -> list[AnswerRecord]:
        rows = self.conn.execute(
            "SELECT * FROM eval_results WHERE run_id = ? ORDER BY question_id, config_index", (run_id,)
        ).fetchall()
        return [AnswerRecord(r["config_index"], r["question_id"], r["answer"], bool(r["covered"]),
                             json.loads(r["citations"]), json.loads(r["passages"]), r["ttft_s"], r["total_s"],
                             r["retrieval_s"], r["input_tokens"], r["output_tokens"], r["cost"],
                             json.loads(r["metrics"]), r["error"]) for r in rows]

    def close(self) -> None:
        self.conn.close()


def import_sample_set(store: EvalStore, path: Path = SAMPLE_QUESTIONS) -> int:
    """The sample questions as "Sample evaluation set" (once: a second call returns the same set)."""
    existing = store.find_set(SAMPLE_SET_NAME)
    if existing:
        return existing.id
    if not path.exists():
        raise EvalError(f"The sample questions are missing ({path}).")
    parsed = parse_questions(path.read_bytes(), path.name)
    if parsed.problems:
        raise EvalError("The sample questions have problems: " + " ".join(parsed.problems[:5]))
    return store.create_set(SAMPLE_SET_NAME, parsed.questions, source=f"sample: {path.name}")
