"""Shared fixtures. Models load once per test session; every test gets its own data folder."""

from __future__ import annotations

import http.server
import os
import shutil
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DOCS = ROOT.parent / "shared" / "docs"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from procs import serve_app  # noqa: E402

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




@pytest.fixture(scope="session")
def app_server(tmp_path_factory, chromium):
    """`streamlit run app.py` with its own data folder; yields (base_url, data_dir)."""
    data = tmp_path_factory.mktemp("app-data")
    env = {"RAG_FT_DATA_DIR": str(data / "data"), "RAG_FT_PROVIDER": "local"}
    with serve_app(env, data / "server.log") as base:
        yield base, data / "data"


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


# ---- a listener on 127.0.0.1: an image fetched from a text we render would land here ----
class _Recorder(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.server.hits.append(self.path)  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def listener():
    """An HTTP server on 127.0.0.1 that records every request it gets: an image fetched from a text lands here."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.hits = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)
