"""Local fine-tuning backend: start the training worker as its own process, cancel it, and find dead ones.

The worker runs in a new session (``start_new_session``): it is not a thread of the Streamlit server,
so reruns, page reloads and even a server restart leave it running. ``reconcile`` is called whenever
jobs are shown: a job whose worker is gone (pid missing, a zombie, or a reused pid) or silent (stale
heartbeat) is marked failed with the reason, so nothing stays "running" for ever.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

from rag_ft.settings import LOCAL_CHAT_MODEL, ROOT, Settings
from rag_ft.training.backends.base import Endpoint, FinetuneBackend, LaunchRefused, Parameter, Request
from rag_ft.training.jobs import TERMINAL, Job, JobStore
from rag_ft.training.lora import MIN_FREE_BYTES, free_memory_problem

HEARTBEAT_STALE_S = 120.0  # the worker beats every 2 s; model loading under contention stays far below
CANCEL_GRACE_S = 20.0  # after this the worker is terminated if it has not stopped by itself
NOT_STARTED_S = 60.0
DEFAULTS: dict[str, Any] = {"epochs": 3, "batch_size": 4, "learning_rate": 1e-3, "rank": 8, "alpha": 16, "seed": 0}

_children: dict[int, subprocess.Popen] = {}  # workers this process started (reaped so they leave no zombie)


def start_job(
    store: JobStore,
    train: list[dict[str, Any]] | bytes,
    validation: list[dict[str, Any]] | bytes | None = None,
    hyperparameters: dict[str, Any] | None = None,
    suffix: str = "",
    base_model: str = LOCAL_CHAT_MODEL,
    min_free_bytes: int = MIN_FREE_BYTES,
) -> Job:
    """Refuse when memory is short, else freeze the data, create the job and start its worker."""
    problem = free_memory_problem(min_free_bytes)
    if problem:
        raise LaunchRefused(problem)
    hp = {**DEFAULTS, **(hyperparameters or {})}
    if min_free_bytes != MIN_FREE_BYTES:
        hp["min_free_bytes"] = min_free_bytes
    job = store.create_job("local", base_model, train, validation, hp, suffix)
    launch(store, job.id)
    return store.get(job.id)


def launch(store: JobStore, job_id: str) -> int:
    import psutil

    reap()
    job = store.get(job_id)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    with open(job.folder / "worker.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rag_ft.training.worker", job_id, str(store.db_path)],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True,
        )
    _children[proc.pid] = proc
    try:
        started = psutil.Process(proc.pid).create_time()
    except psutil.Error:
        started = None
    store.update(job_id, pid=proc.pid, pid_started=started, heartbeat_at=time.time())
    store.add_event(job_id, f"Training process started (pid {proc.pid}); log: {job.folder / 'worker.log'}.")
    return proc.pid


def reap() -> list[int]:
    """Collect the exit status of every worker this process started that has finished (``Popen.poll`` waits
    for it), so none stays a zombie under the app; a finished job's worker is otherwise never looked at
    again. Returns the reaped pids."""
    done = [pid for pid, child in list(_children.items()) if child.poll() is not None]
    for pid in done:
        _children.pop(pid, None)
    return done


def worker_alive(job: Job) -> bool:
    import psutil

    if not job.pid:
        return False
    child = _children.get(job.pid)
    if child is not None and child.poll() is not None:
        _children.pop(job.pid, None)
        return False
    try:
        proc = psutil.Process(job.pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        if job.pid_started and abs(proc.create_time() - job.pid_started) > 1.0:
            return False  # the pid now belongs to another program
        return True
    except psutil.Error:
        return False


def terminate(job: Job, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL: only the job's own worker pid (checked by its start time)."""
    import psutil

    if not worker_alive(job):
        return
    try:
        proc = psutil.Process(job.pid)
        proc.terminate()
        try:
            proc.wait(timeout)
        except psutil.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    except psutil.Error:
        pass
    child = _children.pop(job.pid or -1, None)
    if child is not None:
        child.poll()


def cancel(store: JobStore, job_id: str, wait_s: float = 0.0) -> Job:
    """Ask the worker to stop (it checks before every step). With ``wait_s``, wait that long, then
    terminate it if it is still there. Without, ``reconcile`` terminates it after CANCEL_GRACE_S."""
    job = store.get(job_id)
    if job.is_terminal:
        return job
    store.request_cancel(job_id)
    deadline = time.time() + wait_s
    while wait_s and time.time() < deadline:
        if not worker_alive(job):  # it wrote "cancelled" and exited (exiting takes a moment after the write)
            break
        time.sleep(0.5)
    if wait_s:
        job = store.get(job_id)
        if not job.is_terminal:
            terminate(job)
            _finish_cancel(store, job_id)
    return store.get(job_id)


def _finish_cancel(store: JobStore, job_id: str) -> None:
    if not store.get(job_id).is_terminal:
        store.set_status(job_id, "cancelled", "Cancelled: the training process was stopped.")


def _log_tail(job: Job, lines: int = 3) -> str:
    try:
        text = (job.folder / "worker.log").read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    text = [t for t in text if t.strip() and "it/s]" not in t]
    return " | ".join(text[-lines:])


def reconcile(store: JobStore, now: float | None = None) -> list[str]:
    """Settle local jobs whose worker is gone, silent, or ignoring a cancel. Returns the changed ids."""
    now = now or time.time()
    reap()
    changed = []
    for job in store.list():
        if job.backend != "local" or job.status in TERMINAL:
            continue
        alive = worker_alive(job)
        job = store.get(job.id)  # re-read after the liveness check: a worker writes its last status before exiting
        if job.is_terminal:
            continue
        if not job.pid:
            if now - job.created_at > NOT_STARTED_S:
                store.fail(job.id, "worker_not_started", "The training process never started (the app stopped "
                           "while launching it). Start the job again.")
                changed.append(job.id)
            continue
        if not alive:
            if job.cancel_requested_at:
                _finish_cancel(store, job.id)
            else:
                tail = _log_tail(job)
                store.fail(job.id, "worker_lost",
                           f"The training process (pid {job.pid}) stopped without finishing: it was killed, ran out "
                           f"of memory, or the machine restarted." + (f" Last output: {tail}" if tail else ""))
            changed.append(job.id)
        elif job.heartbeat_at and now - job.heartbeat_at > HEARTBEAT_STALE_S:
            terminate(job)
            store.fail(job.id, "worker_unresponsive", f"The training process (pid {job.pid}) stopped reporting for "
                       f"{now - job.heartbeat_at:.0f} s and was stopped.")
            changed.append(job.id)
        elif job.cancel_requested_at and now - job.cancel_requested_at > CANCEL_GRACE_S:
            terminate(job)
            _finish_cancel(store, job.id)
            changed.append(job.id)
    return changed


class LocalBackend(FinetuneBackend):
    """The worker-process LoRA trainer behind the common interface (the functions above stay the engine)."""

    name = "local"
    label = "Local LoRA (this computer)"
    note = "A LoRA adapter trained on this computer's CPU: free, offline, always available."

    def __init__(self, min_free_bytes: int = MIN_FREE_BYTES) -> None:
        self.min_free_bytes = min_free_bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalBackend:
        return cls()

    def base_models(self) -> tuple[str, ...]:
        return (LOCAL_CHAT_MODEL,)

    def available_parameters(self) -> list[Parameter]:
        return [
            Parameter("epochs", "int", DEFAULTS["epochs"], "Epochs", "Passes over the training data.", 1, 50),
            Parameter("batch_size", "int", DEFAULTS["batch_size"], "Batch size", "Examples per step.", 1, 64,
                      key="batch"),
            Parameter("seed", "int", DEFAULTS["seed"], "Seed", "Same seed, same data: the same adapter.", 0,
                      2**31 - 1),
            Parameter("learning_rate", "float", DEFAULTS["learning_rate"], "Learning rate", "", 1e-5, 1e-2,
                      key="lr"),
            Parameter("rank", "int", DEFAULTS["rank"], "LoRA rank", "Rank of the adapter's matrices.", 1, 64),
            Parameter("alpha", "int", DEFAULTS["alpha"], "LoRA alpha", "Scale of the adapter.", 1, 128),
            Parameter("max_steps", "int", 0, "Stop after steps (0 = all)", "A short trial run.", 0, 100_000,
                      optional=True),
        ]

    def start(self, store: JobStore, request: Request) -> Job:
        return start_job(store, request.train, request.validation, self.hyperparameters(request), request.suffix,
                         request.base_model, self.min_free_bytes)

    def refresh(self, store: JobStore, job_id: str) -> Job:
        reconcile(store)  # the worker writes its own progress; only dead or silent workers need settling
        return store.get(job_id)

    def refresh_all(self, store: JobStore) -> None:
        reconcile(store)

    def cancel(self, store: JobStore, job_id: str) -> Job:
        return cancel(store, job_id)

    def tuned_model(self, job: Job) -> Endpoint | None:
        if job.status != "succeeded" or not job.result_model:
            return None
        return Endpoint(job.result_model, None, "local")  # the adapter folder is job.adapter_dir
