"""Helpers for the server processes tests start (streamlit, chroma)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def stop_process(proc: subprocess.Popen) -> None:
    """Terminate a server the tests started (its own PID only), killing it if it does not stop in 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve_app(env: dict[str, str], log: Path) -> Iterator[str]:
    """A private `streamlit run app.py` with these settings in its environment; yields its base URL.

    For tests that need settings the session's shared server does not have (another provider), or data that
    must not leak into the other browser tests (a fine-tuning job).
    """
    port = free_port()
    full = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RAG_FT_"))} | env
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port",
             str(port), "--server.address", "127.0.0.1", "--server.fileWatcherType", "none",
             "--browser.gatherUsageStats", "false"], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=full)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                if urllib.request.urlopen(f"{base}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("streamlit did not start:\n" + log.read_text()[-3000:])
            time.sleep(0.3)
        yield base
    finally:
        stop_process(proc)


def run_async(coro: Any) -> Any:
    """Run a coroutine to completion from a test. In its own thread: once Playwright's sync API has started (the
    session's browser fixture), the main thread has a running event loop and asyncio.run() refuses to start."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
