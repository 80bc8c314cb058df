"""Read a file in a child process that a hostile file cannot take down: memory-capped and time-limited.

A decompression bomb or a runaway OCR used to run inside the server, where it could take every session
down with it. ``parse_bounded`` makes the cheap checks here (``limits.precheck``: name, size, zip
directory), then hands the file to a worker process (``rag_ft.ingest.worker``) whose address space is
capped and which is killed when it overruns the time limit; either way the answer is a ``ParseResult``
with a named error, and the next file gets a fresh worker.

The worker is long-lived and reused: importing the readers costs seconds, reading a small file tens of
milliseconds. It is started with ``subprocess`` (a fresh interpreter, like multiprocessing's "spawn"):
never ``fork``, since the server has threads and torch loaded. It runs in its own session so a kill
also ends the LibreOffice, pandoc or tesseract it started. One file at a time: callers queue on a lock.

``submit`` hands a file to the worker and returns at once with a ``Future``: the index reads file i+1 in the
worker (one core) while this process embeds file i (the other), instead of leaving one core idle each time.
"""

from __future__ import annotations

import atexit
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from multiprocessing.connection import Connection
from typing import Any

from rag_ft.ingest.formats import ParseError
from rag_ft.ingest.limits import ParseLimits, precheck
from rag_ft.ingest.pipeline import ParseResult
from rag_ft.settings import ROOT

START_TIMEOUT_S = 180.0  # importing the readers on a busy 2-core machine
IDLE_EXIT_S = 600.0  # an idle worker exits and gives its memory back

_LOCK = threading.Lock()
_worker: _Worker | None = None
_last: dict[str, Any] = {}
_jobs: queue.SimpleQueue[tuple[Future[ParseResult], tuple[Any, ...], dict[str, Any]]] = queue.SimpleQueue()
_submitter: threading.Thread | None = None
_SUBMITTER_LOCK = threading.Lock()


def memory_error(limits: ParseLimits) -> str:
    return (f"the file needs more than {limits.memory_mb:,} MB to read: likely a decompression bomb "
            "(the limit is RAG_FT_PARSE_MEMORY_MB)")


def timeout_error(limits: ParseLimits) -> str:
    return f"reading took longer than {limits.timeout_s:g} s: stopped (the limit is RAG_FT_PARSE_TIMEOUT_S)"


class WorkerError(RuntimeError):
    """The worker could not be started or answered nonsense."""


class _Worker:
    def __init__(self, memory_mb: int) -> None:
        self.memory_mb = memory_mb
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "rag_ft.ingest.worker", str(to_child_r), str(from_child_w), str(memory_mb),
                 str(IDLE_EXIT_S)],
                pass_fds=(to_child_r, from_child_w), start_new_session=True, env=env, stdin=subprocess.DEVNULL)
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self.outbox = Connection(to_child_w, readable=False)
        self.inbox = Connection(from_child_r, writable=False)
        self.info: dict[str, Any] = {}
        if not self.inbox.poll(START_TIMEOUT_S):
            self.stop()
            raise WorkerError(f"the file reader did not start within {START_TIMEOUT_S:g} s")
        try:
            kind, self.info = self.inbox.recv()
        except EOFError:
            self.stop()
            raise WorkerError(f"the file reader could not start (exit code {self.proc.returncode}): "
                              "see the server log") from None
        if kind != "ready":
            self.stop()
            raise WorkerError(f"the file reader answered {kind!r} instead of 'ready'")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """Kill the worker and everything it started (its own process group)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        for conn in (self.outbox, self.inbox):
            conn.close()


def _get_worker(memory_mb: int) -> _Worker:
    global _worker
    if _worker is not None and (not _worker.alive() or _worker.memory_mb != memory_mb):
        _worker.stop()
        _worker = None
    if _worker is None:
        _worker = _Worker(memory_mb)
    return _worker


def _drop_worker() -> None:
    global _worker
    if _worker is not None:
        _worker.stop()
        _worker = None


def shutdown() -> None:
    """Stop the worker now (it also exits by itself when idle, or when this process ends)."""
    with _LOCK:
        _drop_worker()


atexit.register(_drop_worker)


def prestart(limits: ParseLimits | None = None) -> None:
    """Start the worker in the background (its imports take seconds), e.g. when the Documents page opens."""
    memory_mb = (limits or ParseLimits()).memory_mb

    def run() -> None:
        with _LOCK:
            try:
                _get_worker(memory_mb)
            except WorkerError:  # parse_bounded names the problem when a file needs the worker
                pass

    threading.Thread(target=run, name="parse-worker-start", daemon=True).start()


def worker_stats() -> dict[str, Any]:
    """The last file's figures (seconds, peak_vm_mb, peak_rss_mb of the worker, base_mb, pid), for logs/tests."""
    return dict(_last)


def parse_bounded(
    name: str, data: bytes, limits: ParseLimits | None = None, *, max_characters: int = 1500, ocr: bool = True
) -> ParseResult:
    """``parse`` in the worker process, within ``limits``; never raises for bad input or a dying reader."""
    limits = limits or ParseLimits()
    try:
        precheck(name, data, limits)
    except ParseError as exc:  # refused before anything is decompressed, or sent anywhere
        _last.clear()
        return ParseResult(name, [], 0, 0, str(exc), [])
    job = (name, data, {"max_characters": max_characters, "ocr": ocr, "limits": limits})
    with _LOCK:
        for attempt in (1, 2):  # a worker that exited while idle is only noticed on send: start another once
            try:
                worker = _get_worker(limits.memory_mb)
                worker.outbox.send(job)
                break
            except (BrokenPipeError, ConnectionResetError):
                _drop_worker()
                if attempt == 2:
                    return ParseResult(name, [], 0, 0, "the file reader stopped unexpectedly: try again", [])
            except WorkerError as exc:
                return ParseResult(name, [], 0, 0, str(exc), [])
        started = time.monotonic()
        _last.clear()
        _last.update(pid=worker.proc.pid, base_mb=worker.info.get("base_mb"))
        peak_mb = _wait(worker, started + limits.timeout_s)
        _last.update(seconds=round(time.monotonic() - started, 2), sampled_peak_vm_mb=peak_mb)
        if peak_mb < 0:
            _drop_worker()
            return ParseResult(name, [], 0, 0, timeout_error(limits), [])
        try:
            kind, result, stats = worker.inbox.recv()
        except (EOFError, OSError):  # it died: killed by the kernel, or crashed on the file
            code = worker.proc.wait()
            near_cap = peak_mb >= worker.info.get("base_mb", 0) + limits.memory_mb // 2
            _drop_worker()
            return ParseResult(name, [], 0, 0, _death(code, limits, near_cap), [])
        _last.update(stats)
        if kind == "memory":
            _drop_worker()  # it has exited: the next file gets a fresh one
            return ParseResult(name, [], 0, 0, memory_error(limits), list(result.warnings), result.format)
        return result


def submit(
    name: str, data: bytes, limits: ParseLimits | None = None, *, max_characters: int = 1500, ocr: bool = True
) -> Future[ParseResult]:
    """``parse_bounded`` in the background: returns at once; ``.result()`` is the same ``ParseResult``.

    Files are read in the order they are submitted, one at a time (one worker). ``cancel()`` on a file not yet
    started skips it. The waiting thread is a daemon that sleeps in ``poll`` (the GIL is free), so the caller's
    own work, e.g. embedding the previous file, runs at full speed meanwhile.
    """
    global _submitter
    future: Future[ParseResult] = Future()
    _jobs.put((future, (name, data, limits), {"max_characters": max_characters, "ocr": ocr}))
    with _SUBMITTER_LOCK:
        if _submitter is None or not _submitter.is_alive():
            _submitter = threading.Thread(target=_read_submitted, name="parse-ahead", daemon=True)
            _submitter.start()
    return future


def _read_submitted() -> None:
    # one thread for every submitted file: FIFO, and a daemon, so exiting never waits for a read in flight
    # (the worker is killed at exit). It idles on the queue between batches; that costs nothing.
    while True:
        future, args, kwargs = _jobs.get()
        if not future.set_running_or_notify_cancel():
            continue
        try:
            future.set_result(parse_bounded(*args, **kwargs))
        except BaseException as exc:  # parse_bounded does not raise for input; anything else goes to the caller
            future.set_exception(exc)


def _wait(worker: _Worker, deadline: float) -> int:
    """Wait for the answer (or the worker's death) until ``deadline``; the worker's peak address space seen
    meanwhile, in MB, or -1 on timeout. Sampled because a C library that runs out of memory under the cap
    (pdfium, qpdf) aborts the process instead of raising, and a dead process has no figures left to read."""
    import psutil

    peak = 0
    try:
        watched = psutil.Process(worker.proc.pid)
    except psutil.Error:
        watched = None
    while True:
        if worker.inbox.poll(min(0.1, max(0.0, deadline - time.monotonic()))):
            return peak
        if time.monotonic() >= deadline:
            return -1
        try:
            peak = max(peak, watched.memory_info().vms // (1024 * 1024)) if watched else peak
        except psutil.Error:  # exiting: the next poll sees the end of the pipe
            pass


def _death(code: int, limits: ParseLimits, near_cap: bool) -> str:
    from rag_ft.ingest.worker import EXIT_OUT_OF_MEMORY

    # SIGKILL not sent by us (a timeout is handled before) is the kernel's OOM killer; an abort with the
    # address space near the cap is a C library giving up on a failed allocation
    if code in (EXIT_OUT_OF_MEMORY, -signal.SIGKILL) or (code < 0 and near_cap):
        return memory_error(limits)
    reason = signal.Signals(-code).name if code < 0 and -code in signal.valid_signals() else f"exit code {code}"
    return f"the reader crashed on this file ({reason}): likely a decompression bomb or a corrupt file"
