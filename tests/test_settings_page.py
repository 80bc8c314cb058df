"""The Settings page (AppTest): each endpoint, whether its key is set (never the key), its models, its health on
"Check", server text rendered inert; and Chat's picker offering an endpoint's models. Two fake OpenAI servers."""

from __future__ import annotations

import html
import json
import socket

import pytest
from streamlit.testing.v1 import AppTest
from test_endpoints import ALPHA_KEY, BETA_KEY, KeyedFake

APP = "../app.py"
HOSTILE = "![x](http://127.0.0.1:9/leak?q=1)"  # a model id that Markdown would turn into an image request


@pytest.fixture(autouse=True)
def clear_caches():
    import streamlit as st

    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture
def servers():
    alpha = KeyedFake(ALPHA_KEY, ["alpha-chat-1"], "Alpha.").start()
    beta = KeyedFake(BETA_KEY, ["beta-chat", HOSTILE], "Beta.").start()
    yield alpha, beta
    alpha.stop()
    beta.stop()


def app(alpha, beta, monkeypatch) -> AppTest:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("BETA_KEY", BETA_KEY)
    monkeypatch.setenv("RAG_FT_ENDPOINTS", json.dumps({
        "beta": {"base_url": beta.base_url, "key_env": "BETA_KEY"},
        "dead": {"base_url": f"http://user:hunter2pass@127.0.0.1:{port}/v1", "models": ["ghost"]},
        "typo": {"base_url": "localhost:1234"}}))
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["ALPHA_KEY"] = ALPHA_KEY
    at.secrets["endpoints"] = {"alpha": {"base_url": alpha.base_url, "key_env": "ALPHA_KEY",
                                         "models": ["alpha-chat-1"], "headers": {"X-Team": "docs"}}}
    return at.run()


def page_text(at: AppTest) -> str:
    parts = [str(getattr(e, "value", "")) for kind in ("markdown", "caption", "success", "error", "warning", "info")
             for e in getattr(at, kind)]
    return "\n".join(parts)


def test_settings_page_shows_endpoints_keys_models_and_health(servers, monkeypatch):
    alpha, beta = servers
    at = app(alpha, beta, monkeypatch)
    at.switch_page("pages/settings.py").run()
    assert not at.exception, at.exception
    text = html.unescape(page_text(at))
    for expected in ("alpha", alpha.base_url, "key ALPHA_KEY: set", "alpha-chat-1", "beta", "key BETA_KEY: set",
                     "every chat model the server lists", "Extra headers: X-Team", "no key needed",
                     "'typo': base_url must start with http://"):
        assert expected in text, expected
    assert "hunter2pass" not in text and "http://***@127.0.0.1" in text  # URL credentials masked
    assert [b.label for b in at.button][:1] == ["Check all"]

    at.button(key="check_alpha").click().run()  # one endpoint's own button checks that endpoint alone
    assert len(at.success) == 1 and "alpha-chat-1" in html.unescape(at.success[0].value) and not at.error
    at.button(key="check_all").click().run()
    assert not at.exception, at.exception
    successes = [html.unescape(s.value) for s in at.success]
    assert any("1 models: alpha-chat-1" in s for s in successes)
    assert any("2 models: beta-chat" in s and HOSTILE in s for s in successes)
    errors = [html.unescape(e.value) for e in at.error]
    assert any(e.startswith("Cannot reach http://***@127.0.0.1") for e in errors), errors
    # the server's model id is shown as the characters it holds: no Markdown image, no link syntax left
    raw = "\n".join(s.value for s in at.success)
    assert "![" not in raw and "](" not in raw and "http://127" not in raw
    every = "\n".join([page_text(at), *(str(b.label) for b in at.button), repr(at.session_state)])
    assert ALPHA_KEY not in every and BETA_KEY not in every

    assert [r for r in alpha.requests if r.path == "/v1/models"][-1].headers["x-team"] == "docs"


def test_chat_picker_lists_every_endpoint_model(servers, monkeypatch):
    alpha, beta = servers
    at = app(alpha, beta, monkeypatch)
    at.switch_page("pages/chat.py").run()
    assert not at.exception, at.exception
    options = at.selectbox(key="chat_model_pick").options
    assert options[0] == "SmolLM2-135M + grounding adapter" or options[0] == "SmolLM2-135M-Instruct"
    assert {"alpha-chat-1 · alpha", "beta-chat · beta", "ghost · dead"} <= set(options)
    # the hostile id is a picker entry (a selectbox shows plain text); it is not rendered as Markdown
    assert f"{HOSTILE} · beta" in options
