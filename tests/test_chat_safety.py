"""Untrusted text on the Chat page (issue #13 item 1): answers, passages, section headings, document names and
error messages are shown as text; an image link in them is never fetched.

The browser test runs its own `streamlit run app.py` whose provider is the HTTP-level fake of OpenAI
(``tests/fake_openai.py``), told to answer with an image link: the local model will not reliably repeat one.
A listener on 127.0.0.1 records every request an image would make.
"""

from __future__ import annotations

import html
from pathlib import Path

import pytest
from fake_openai import GOOD_KEY, FakeOpenAI, Request, Response, error
from playwright.sync_api import expect
from procs import serve_app
from streamlit.testing.v1 import AppTest
from ui import goto_page, wait_idle

ROOT = Path(__file__).resolve().parent.parent


def openai_env(fake: FakeOpenAI, data: Path) -> dict[str, str]:
    return {"RAG_FT_PROVIDER": "openai", "OPENAI_API_KEY": GOOD_KEY, "OPENAI_BASE_URL": fake.base_url,
            "RAG_FT_DATA_DIR": str(data)}


def hostile_page(port: int) -> str:
    """A document whose heading, passage (also after a blank line) carry image links and raw <img> tags."""
    url = f"http://127.0.0.1:{port}"
    return f"""<html><body>
<h2>Router setup ![h]({url}/leak-heading) &lt;img src={url}/img-heading&gt;</h2>
<p>To reset the router hold the reset button for ten seconds ![x]({url}/leak-passage).</p>
<p>&lt;img src={url}/img-passage&gt; The router restarts afterwards.</p>
<p>![y]({url}/leak-after-blank) The lights blink green when the reset is done.</p>
</body></html>"""


def test_error_message_is_redacted_and_inert(data_dir, fake_openai, monkeypatch):
    """A server error that echoes a key and carries an image link: masked, and shown as text."""
    leak = "![x](http://127.0.0.1:9/leak-error)"

    def refuse(fake: FakeOpenAI, req: Request, match) -> Response:
        return error(404, f"No such model {leak} for key sk-proj-abcdefghijklmnop", "invalid_request_error",
                     "model_not_found")

    fake_openai.route("POST", "/chat/completions", refuse)
    for key, value in openai_env(fake_openai, data_dir).items():
        monkeypatch.setenv(key, value)
    at = AppTest.from_file("../app.py", default_timeout=60).run()
    at.switch_page("pages/chat.py").run()
    at.toggle(key="chat_rag").set_value(False).run()  # the model alone: no documents needed
    at.chat_input[0].set_value("Hello?").run()
    assert not at.exception
    shown = at.chat_message[1].error[0].value
    assert "![" not in shown and "sk-proj-abcdefghijklmnop" not in shown  # inert, and the key masked
    assert leak in html.unescape(shown) and "sk-proj-***" in html.unescape(shown)


@pytest.mark.browser
def test_browser_hostile_passage_heading_name_and_answer_fetch_nothing(page, listener, fake_openai, tmp_path):
    from rag_ft.index.documents import index_files
    from rag_ft.models.providers import get_embeddings
    from rag_ft.settings import load_settings

    port = listener.server_address[1]
    answer_leak = f"![a](http://127.0.0.1:{port}/leak-answer)"
    answer_img = f"<img src=http://127.0.0.1:{port}/img-answer>"
    fake_openai.reply_text = f"Hold the reset button for ten seconds [1]. {answer_leak} {answer_img}"
    data = tmp_path / "app-data"
    env = openai_env(fake_openai, data)
    settings = load_settings(env=env)
    name = f"router ![n](http://127.0.0.1:{port}/leak-name).html"
    outcomes = index_files(settings, get_embeddings(settings), [(name, hostile_page(port).encode())])
    assert outcomes[0].status == "indexed", outcomes[0].message

    with serve_app(env, tmp_path / "server.log") as base:
        page.goto(base)
        wait_idle(page)
        goto_page(page, "Chat", "chat")
        box = page.get_by_test_id("stChatInputTextArea")
        box.fill("How do I reset the router?")
        box.press("Enter")
        messages = page.get_by_test_id("stChatMessage")
        expect(messages).to_have_count(2, timeout=60_000)
        wait_idle(page)
        answer = messages.nth(1)
        expect(answer).to_contain_text(f"{answer_leak} {answer_img}")  # the literal text, not an image
        card = answer.get_by_test_id("stExpander").first
        expect(card).to_contain_text(f"router ![n](http://127.0.0.1:{port}/leak-name).html")
        expect(card).to_contain_text(f"Router setup ![h](http://127.0.0.1:{port}/leak-heading) <img src=")
        card.click()
        body = card.get_by_test_id("stMarkdownContainer").last
        expect(body).to_contain_text(f"![y](http://127.0.0.1:{port}/leak-after-blank) The lights blink")
        expect(body).to_contain_text(f"<img src=http://127.0.0.1:{port}/img-passage>")
        expect(body.locator("mark").first).to_be_visible()  # highlights survive the escaping
        assert answer.locator("img").count() == 0
        page.wait_for_timeout(1500)  # time for any image request to arrive
        assert listener.hits == []

        # a reload of the same URL (?c=<conversation id>) brings the conversation back, still as text
        assert "c=" in page.url
        page.reload()
        wait_idle(page)
        expect(messages).to_have_count(2, timeout=30_000)
        expect(messages.nth(0)).to_contain_text("How do I reset the router?")
        expect(messages.nth(1)).to_contain_text(f"{answer_leak} {answer_img}")
        page.wait_for_timeout(1000)
        assert listener.hits == []
        url = page.url

    # the same URL opened on a freshly started server (it routes through st.navigation first) keeps ?c=...
    with serve_app(env, tmp_path / "server2.log") as base2:
        page.goto(url.replace(base, base2))
        wait_idle(page)
        messages = page.get_by_test_id("stChatMessage")
        expect(messages).to_have_count(2, timeout=30_000)
        expect(messages.nth(0)).to_contain_text("How do I reset the router?")
