"""Shared fixtures. Models load once per test session; every test gets its own data folder."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DOCS = ROOT.parent / "shared" / "docs"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from procs import stop_process  # noqa: E402

import rag_ft  # noqa: E402,F401  (offline env before any model import)

# The suite must pass with no network and no API key, whatever the developer's shell has.
for _key in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "RAG_FT_PROVIDER", "CHROMA_HOST", "RAG_FT_DATA_DIR"):
    os.environ.pop(_key, None)


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test works in its own data folder (also for the app under AppTest)."""
    folder = tmp_path / "data"
    monkeypatch.setenv("RAG_FT_DATA_DIR", str(folder))
    return folder


@pytest.fixture
def settings(data_dir: Path):
    from rag_ft.settings import load_settings

    return load_settings(env={"RAG_FT_DATA_DIR": str(data_dir), "RAG_FT_PROVIDER": "local"})


@pytest.fixture(scope="session")
def local_embeddings():
    """The real MiniLM model, loaded once for the session."""
    from rag_ft.models.local_embeddings import LocalEmbeddings, load_sentence_transformer

    load_sentence_transformer()
    return LocalEmbeddings()


@pytest.fixture(scope="session")
def local_chat():
    """The real SmolLM2 model, loaded once for the session (short answers keep tests fast)."""
    from rag_ft.models.local_chat import LocalChatModel, load_runtime

    load_runtime()
    return LocalChatModel(max_new_tokens=48)


@pytest.fixture
def fake_openai():
    from fake_openai import FakeOpenAI

    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def shared_docs() -> Path:
    if not SHARED_DOCS.is_dir():
        pytest.skip("../shared/docs is not beside this checkout")
    return SHARED_DOCS


@pytest.fixture(scope="session")
def chromium() -> str:
    path = shutil.which("chromium")
    if not path:
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    return path


# ---- real browser: a Streamlit server on 127.0.0.1 and Debian's chromium through Playwright ----
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def app_server(tmp_path_factory, chromium):
    """`streamlit run app.py` with its own data folder; yields (base_url, data_dir)."""
    import subprocess
    import time
    import urllib.request

    data = tmp_path_factory.mktemp("app-data")
    port = _free_port()
    log_path = data / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RAG_FT_"))}
    env.update(RAG_FT_DATA_DIR=str(data / "data"), RAG_FT_PROVIDER="local")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1", "--server.fileWatcherType", "none",
             "--browser.gatherUsageStats", "false"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
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
                raise RuntimeError("streamlit did not start:\n" + log_path.read_text()[-3000:])
            time.sleep(0.3)
        yield base, data / "data"
    finally:
        stop_process(proc)


@pytest.fixture(scope="session")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, app_server):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    pg = ctx.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    ctx.close()
