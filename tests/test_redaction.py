"""A server that echoes the key it refuses: the key ends up nowhere (database, data folder, logs, the page).

Every path that stores or shows a server's error is driven for real against an HTTP-level fake of OpenAI
that repeats the key in its 401 errors (as some proxies and self-hosted servers do).
"""

import logging
import os

import pytest
from procs import serve_app

from rag_ft.chat.chain import ChainError, RagChain
from rag_ft.index.documents import index_files, list_documents
from rag_ft.models.providers import get_chat_model, get_embeddings, provider_status
from rag_ft.settings import load_settings
from rag_ft.training.backends.openai import OpenAIBackend
from rag_ft.training.jobs import JobStore

LEAK = "sk-proj-LEAKME0123456789abcdefghijklmnop"
ODD = "corp-gateway-token-77aa88bb99cc"  # a key of a format no pattern knows: masked because it is configured


@pytest.fixture
def echo_server(fake_openai):
    fake_openai.state["echo_key"] = True
    return fake_openai


def _settings(echo_server, key=LEAK, **extra):
    env = {"OPENAI_API_KEY": key, "OPENAI_BASE_URL": echo_server.base_url, "RAG_FT_PROVIDER": "openai",
           "RAG_FT_DATA_DIR": os.environ["RAG_FT_DATA_DIR"], **extra}
    return load_settings(env=env)


def _no_key_in_data_folder(data_dir, *keys):
    for path in data_dir.rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            for key in keys:
                assert key.encode() not in blob, f"{key} found in {path}"


@pytest.mark.parametrize("key", [LEAK, ODD])
def test_echoed_key_is_stored_nowhere_and_logged_nowhere(echo_server, data_dir, caplog, key):
    s = _settings(echo_server, key)
    with caplog.at_level(logging.DEBUG):
        status = provider_status(s)
        assert not status.ok and key not in status.message

        with pytest.raises(ChainError) as err:
            RagChain(get_chat_model(s)).run("What is the warranty?")
        assert key not in str(err.value) and key not in err.value.partial

        store = JobStore(s.db_path, s.data_dir)
        train = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}
                 for i in range(10)]
        job = OpenAIBackend.from_settings(s).start_job(store, train, base_model="gpt-4o-mini-2024-07-18")
        assert job.status == "failed"
        shown = [job.error_message or "", *(e.message for e in store.events(job.id))]
        assert shown and not any(key in x for x in shown)
        store.close()

        outcomes = index_files(s, get_embeddings(s), [("notes.md", b"# Notes\n\nThe warranty lasts two years.")])
        assert outcomes[0].status == "failed" and key not in outcomes[0].error
        assert all(key not in (d.error or "") for d in list_documents(s))
        logging.getLogger("test").error("while indexing: %s", outcomes[0].error)
    assert echo_server.requests, "the fake server was reached"
    assert key not in caplog.text
    _no_key_in_data_folder(data_dir, key)


@pytest.mark.browser
def test_echoed_key_never_reaches_the_page_or_its_websocket(echo_server, chromium, browser, tmp_path):
    """A real `streamlit run` with the echoing server: sidebar status and a chat answer that fails."""

    env = {"RAG_FT_DATA_DIR": str(tmp_path / "data"), "OPENAI_API_KEY": LEAK,
           "OPENAI_BASE_URL": echo_server.base_url, "RAG_FT_PROVIDER": "openai"}
    log_path = tmp_path / "server.log"
    frames: list[str] = []
    with serve_app(env, log_path) as base:
        ctx = browser.new_context()
        page = ctx.new_page()
        page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(
            payload if isinstance(payload, str) else payload.decode("utf-8", "replace"))))
        page.goto(f"{base}/chat")
        from ui import wait_idle

        wait_idle(page)
        page.get_by_text("RAG: use documents").click()  # no documents here: ask the model alone
        wait_idle(page)
        page.get_by_test_id("stChatInputTextArea").fill("What is the warranty?")
        page.keyboard.press("Enter")
        page.get_by_text("OpenAI refused the API key (401)").first.wait_for(timeout=60_000)
        wait_idle(page)
        html = page.content()
        ctx.close()
    assert "OpenAI refused the API key (401)" in html  # the chat's failure is explained...
    assert any(r.path.endswith("/chat/completions") for r in echo_server.requests)  # ...after a real request
    assert LEAK not in html
    assert frames and not any(LEAK in f for f in frames)
    assert LEAK not in log_path.read_text()
    _no_key_in_data_folder(tmp_path / "data", LEAK)


def test_a_wrong_key_during_indexing_leaves_no_document_stuck(fake_openai, data_dir):
    """The record ends 'failed' with the plain reason; the next run neither re-parses nor retries it; a good key
    then indexes it."""
    from fake_openai import GOOD_KEY

    bad = _settings(fake_openai, "sk-wrong-key-000000000000")
    files = [("a.md", b"# A\n\nThe warranty lasts two years."), ("b.md", b"# B\n\nReturns within 30 days.")]
    outcomes = index_files(bad, get_embeddings(bad), files)
    assert [o.status for o in outcomes] == ["failed", "failed"]
    assert all(o.error == "indexing failed: OpenAI refused the API key (401). Check OPENAI_API_KEY in secrets "
               "or the environment." for o in outcomes)
    assert {d.status for d in list_documents(bad)} == {"failed"}
    calls = len(fake_openai.requests)
    index_files(bad, get_embeddings(bad), [])  # a later run: nothing left 'indexing' to recover
    assert len(fake_openai.requests) == calls
    good = _settings(fake_openai, GOOD_KEY)
    assert [o.status for o in index_files(good, get_embeddings(good), files)] == ["indexed", "indexed"]
    assert {d.status for d in list_documents(good)} == {"indexed"}
