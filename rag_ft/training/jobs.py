"""Fine-tuning jobs in the one SQLite file: jobs, their events, step metrics, checkpoints, and tuned models.

Both backends (local LoRA worker, OpenAI) write here; the page only reads. A job freezes its data at
creation: the training / validation JSONL are copied into ``<data_dir>/jobs/<id>/`` with their hash, so
editing the training-data store later never changes what a job trained on.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag_ft.db import connect, transaction
from rag_ft.training.dataset import CHAT_ROLES, has_assistant, has_role
from rag_ft.untrusted import redact

# OpenAI's job statuses; the local backend uses the same words. Anything else is shown as is.
STATUSES = ("validating_files", "queued", "running", "succeeded", "failed", "cancelled")
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


class JobNotFound(KeyError):
    pass


@dataclass(frozen=True)
class JobError:
    code: str
    message: str
    param: str | None = None


@dataclass(frozen=True)
class Job:
    id: str
    backend: str
    base_model: str
    status: str
    created_at: float
    updated_at: float
    hyperparameters: dict[str, Any]
    suffix: str
    train_file: str
    train_hash: str
    n_train: int
    validation_file: str | None = None
    validation_hash: str | None = None
    n_validation: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    result_model: str | None = None
    adapter_dir: str | None = None
    external_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    error_param: str | None = None
    pid: int | None = None
    pid_started: float | None = None
    heartbeat_at: float | None = None
    cancel_requested_at: float | None = None
    step: int = 0
    total_steps: int = 0
    estimated_finish: float | None = None
    trained_tokens: int | None = None

    @property
    def error(self) -> JobError | None:
        if not self.error_message and not self.error_code:
            return None
        return JobError(self.error_code or "error", self.error_message or "", self.error_param)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def is_known_status(self) -> bool:
        return self.status in STATUSES

    @property
    def folder(self) -> Path:
        return Path(self.train_file).parent


@dataclass(frozen=True)
class Event:
    id: int
    job_id: str
    created_at: float
    level: str  # info | warning | error
    message: str


@dataclass(frozen=True)
class Metric:
    step: int
    epoch: float | None = None
    train_loss: float | None = None
    train_token_accuracy: float | None = None
    valid_loss: float | None = None
    valid_token_accuracy: float | None = None


@dataclass(frozen=True)
class Checkpoint:
    job_id: str
    step: int
    epoch: float | None
    location: str
    metrics: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0


@dataclass(frozen=True)
class TunedModel:
    name: str
    backend: str
    base_model: str
    model_id: str | None  # OpenAI's ft:... id (None for local)
    adapter_dir: str | None  # local LoRA adapter folder (None for OpenAI)
    job_id: str
    created_at: float


def iso(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else ""


# ---- the frozen data snapshot ----
def records_to_jsonl(records: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()


def parse_jsonl(data: bytes | str, name: str = "file") -> tuple[list[dict[str, Any]], list[str]]:
    """Records and problems ("train.jsonl line 3: ..."). Checks the chat format fine-tuning needs."""
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    records: list[dict[str, Any]] = []
    problems: list[str] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{name} line {n}: not valid JSON ({exc.msg}).")
            continue
        problem = record_problem(rec)
        if problem:
            problems.append(f"{name} line {n}: {problem}")
        else:
            records.append(rec)
    if not records and not problems:
        problems.append(f"{name} has no examples.")
    return records, problems


def record_problem(rec: Any) -> str | None:
    """Why one record is not a chat example (None when it is fine)."""
    if not isinstance(rec, dict) or not isinstance(rec.get("messages"), list) or not rec["messages"]:
        return 'each line must be an object with a non-empty "messages" list.'
    for i, m in enumerate(rec["messages"]):
        if not has_role(m, CHAT_ROLES):
            return f'message {i + 1} needs a "role" of {", ".join(CHAT_ROLES)}.'
        if not isinstance(m.get("content"), str) or not m["content"].strip():
            return f'message {i + 1} ({m.get("role")}) has no text "content".'
    if not has_assistant(rec["messages"]):
        return "no assistant message: there is nothing to learn from this example."
    return None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class JobStore:
    """Jobs and everything they report. Safe across processes (WAL; the worker writes, the app reads)."""

    def __init__(self, db_path: Path | str, data_dir: Path | str | None = None) -> None:
        self.db_path = Path(db_path)
        self.data_dir = Path(data_dir) if data_dir else self.db_path.parent
        self.conn = connect(self.db_path)  # the tables exist: connect applies the migrations

    def close(self) -> None:
        self.conn.close()

    # ---- jobs ----
    def create_job(
        self,
        backend: str,
        base_model: str,
        train: list[dict[str, Any]] | bytes,
        validation: list[dict[str, Any]] | bytes | None = None,
        hyperparameters: dict[str, Any] | None = None,
        suffix: str = "",
        status: str = "validating_files",
    ) -> Job:
        """Freeze the data (records, or raw JSONL bytes as uploaded) and record the job.

        Raw bytes are stored unchanged and validated later by the backend, so a malformed upload
        is a job that fails at ``validating_files`` with the reason, not a lost upload.
        """
        job_id = f"ftjob-{uuid.uuid4().hex[:12]}"
        folder = self.data_dir / "jobs" / job_id
        folder.mkdir(parents=True, exist_ok=True)
        train_bytes = train if isinstance(train, bytes) else records_to_jsonl(train)
        train_path = folder / "train.jsonl"
        train_path.write_bytes(train_bytes)
        val_path, val_hash, n_val = None, None, 0
        if validation:
            val_bytes = validation if isinstance(validation, bytes) else records_to_jsonl(validation)
            val_path = folder / "validation.jsonl"
            val_path.write_bytes(val_bytes)
            val_hash, n_val = _sha256(val_bytes), sum(1 for x in val_bytes.splitlines() if x.strip())
        now = time.time()
        self.conn.execute(
            "INSERT INTO ft_jobs (id, backend, base_model, status, created_at, updated_at, hyperparameters, suffix,"
            " train_file, train_hash, n_train, validation_file, validation_hash, n_validation)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (job_id, backend, base_model, status, now, now, json.dumps(hyperparameters or {}), suffix or "",
             str(train_path), _sha256(train_bytes), sum(1 for x in train_bytes.splitlines() if x.strip()),
             str(val_path) if val_path else None, val_hash, n_val),
        )
        self.add_event(job_id, f"Created {backend} fine-tuning job on {base_model}.")
        return self.get(job_id)

    def get(self, job_id: str) -> Job:
        row = self.conn.execute("SELECT * FROM ft_jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFound(job_id)
        return _job(row)

    def list(self) -> list[Job]:
        """Newest first."""
        return [_job(r) for r in self.conn.execute("SELECT * FROM ft_jobs ORDER BY created_at DESC")]

    def update(self, job_id: str, **fields: Any) -> None:
        if not fields:
            return
        if "hyperparameters" in fields:
            fields["hyperparameters"] = json.dumps(fields["hyperparameters"])
        if fields.get("error_message"):
            fields["error_message"] = redact(fields["error_message"])
        fields["updated_at"] = time.time()
        cols = ", ".join(f"{k} = ?" for k in fields)
        self.conn.execute(f"UPDATE ft_jobs SET {cols} WHERE id = ?", (*fields.values(), job_id))

    def set_status(self, job_id: str, status: str, message: str | None = None, level: str = "info") -> None:
        now = time.time()
        fields: dict[str, Any] = {"status": status}
        if status == "running":
            fields["started_at"] = now
        if status in TERMINAL:
            fields["finished_at"] = now
        self.update(job_id, **fields)
        if message:
            self.add_event(job_id, message, level)

    def fail(self, job_id: str, code: str, message: str, param: str | None = None) -> None:
        message = redact(message)  # servers echo keys in errors; nothing stored may hold one
        with transaction(self.conn):
            self.update(job_id, error_code=code, error_message=message, error_param=param)
            self.set_status(job_id, "failed", f"Failed: {message}", "error")

    def request_cancel(self, job_id: str) -> None:
        """The local worker polls this flag between steps."""
        self.update(job_id, cancel_requested_at=time.time())
        self.add_event(job_id, "Cancellation requested.")

    def cancel_requested(self, job_id: str) -> bool:
        row = self.conn.execute("SELECT cancel_requested_at FROM ft_jobs WHERE id = ?", (job_id,)).fetchone()
        return bool(row and row[0])

    def heartbeat(self, job_id: str) -> None:
        self.conn.execute("UPDATE ft_jobs SET heartbeat_at = ? WHERE id = ?", (time.time(), job_id))

    # ---- events, metrics, checkpoints ----
    def add_event(self, job_id: str, message: str, level: str = "info", created_at: float | None = None,
                  external_id: str | None = None) -> bool:
        """False when an event with this external id is already stored (OpenAI polling dedupe)."""
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO ft_events (job_id, created_at, level, message, external_id) VALUES (?,?,?,?,?)",
            (job_id, created_at or time.time(), level, redact(message), external_id),
        )
        return cur.rowcount > 0

    def events(self, job_id: str) -> list[Event]:
        """Oldest first."""
        rows = self.conn.execute(
            "SELECT id, job_id, created_at, level, message FROM ft_events WHERE job_id = ? ORDER BY created_at, id",
            (job_id,),
        )
        return [Event(*r) for r in rows]

    def has_event(self, job_id: str, external_id: str) -> bool:
        return self.conn.execute("SELECT 1 FROM ft_events WHERE job_id = ? AND external_id = ?",
                                 (job_id, external_id)).fetchone() is not None

    def add_metric(self, job_id: str, metric: Metric) -> None:
        """Merge into the step's row: validation may arrive after the training loss of the same step."""
        self.conn.execute(
            "INSERT INTO ft_metrics (job_id, step, epoch, train_loss, train_token_accuracy, valid_loss,"
            " valid_token_accuracy, created_at) VALUES (?,?,?,?,?,?,?,?)"
            " ON CONFLICT(job_id, step) DO UPDATE SET"
            " epoch = COALESCE(excluded.epoch, epoch), train_loss = COALESCE(excluded.train_loss, train_loss),"
            " train_token_accuracy = COALESCE(excluded.train_token_accuracy, train_token_accuracy),"
            " valid_loss = COALESCE(excluded.valid_loss, valid_loss),"
            " valid_token_accuracy = COALESCE(excluded.valid_token_accuracy, valid_token_accuracy)",
            (job_id, metric.step, metric.epoch, metric.train_loss, metric.train_token_accuracy, metric.valid_loss,
             metric.valid_token_accuracy, time.time()),
        )

    def metrics(self, job_id: str) -> list[Metric]:
        rows = self.conn.execute(
            "SELECT step, epoch, train_loss, train_token_accuracy, valid_loss, valid_token_accuracy"
            " FROM ft_metrics WHERE job_id = ? ORDER BY step", (job_id,))
        return [Metric(*r) for r in rows]

    def step_times(self, job_id: str) -> list[tuple[int, float]]:
        """(step, when its metrics were first written) in step order: the trainer's measured pace."""
        rows = self.conn.execute("SELECT step, created_at FROM ft_metrics WHERE job_id = ? ORDER BY step", (job_id,))
        return [(int(r[0]), float(r[1])) for r in rows]

    def add_checkpoint(self, job_id: str, step: int, location: str, epoch: float | None = None,
                       metrics: dict[str, Any] | None = None) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO ft_checkpoints (job_id, step, epoch, location, metrics, created_at)"
            " VALUES (?,?,?,?,?,?)", (job_id, step, epoch, location, json.dumps(metrics or {}), time.time()))

    def checkpoints(self, job_id: str) -> list[Checkpoint]:
        rows = self.conn.execute("SELECT job_id, step, epoch, location, metrics, created_at FROM ft_checkpoints"
                                 " WHERE job_id = ? ORDER BY step", (job_id,))
        return [Checkpoint(r[0], r[1], r[2], r[3], json.loads(r[4] or "{}"), r[5]) for r in rows]

    # ---- tuned models ----
    def register_model(self, job_id: str, name: str, *, model_id: str | None = None,
                       adapter_dir: str | None = None) -> TunedModel:
        job = self.get(job_id)
        now = time.time()
        self.conn.execute(
            "INSERT OR REPLACE INTO ft_models (name, backend, base_model, model_id, adapter_dir, job_id, created_at)"
            " VALUES (?,?,?,?,?,?,?)", (name, job.backend, job.base_model, model_id, adapter_dir, job_id, now))
        self.update(job_id, result_model=model_id or name, adapter_dir=adapter_dir)
        return TunedModel(name, job.backend, job.base_model, model_id, adapter_dir, job_id, now)

    def tuned_models(self) -> list[TunedModel]:
        rows = self.conn.execute("SELECT name, backend, base_model, model_id, adapter_dir, job_id, created_at"
                                 " FROM ft_models ORDER BY created_at DESC")
        return [TunedModel(*r) for r in rows]


def list_tuned_models(db_path: Path | str) -> list[TunedModel]:
    """Every model a succeeded job produced, newest first (the chat page's model picker)."""
    if not Path(db_path).exists():
        return []
    store = JobStore(db_path)
    try:
        return store.tuned_models()
    finally:
        store.close()


def _job(row: Any) -> Job:
    d = dict(row)
    d["hyperparameters"] = json.loads(d.get("hyperparameters") or "{}")
    return Job(**d)
