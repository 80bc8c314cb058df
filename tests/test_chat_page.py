"""The Chat page: AppTest over a real index of sample_docs with the real local model, and a real browser."""

import html
import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect
from streamlit.testing.v1 import AppTest
from ui import goto_page, wait_idle

from rag_ft.chat.prompt import NOT_COVERED

APP = "../app.py"
QUESTIONS = Path(__file__).resolve().parent.parent / "sample_docs" / "questions.jsonl"


def first_question() -> dict:
    """A sample question whose answer sits in one document (the source card must name it)."""
    rows = [json.loads(line) for line in QUESTIONS.read_text().splitlines() if line.strip()]
    return next(r for r in rows if r["answerable"])


@pytest.fixture(autouse=True)
def clear_caches():
    import streamlit as st

    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture(scope="module")
def sample_index(tmp_path_factory, local_embeddings):
    """sample_docs indexed once for the module (parsing + embedding takes ~30 s on 2 cores)."""
    from rag_ft.index.documents import load_sample_documents
    from rag_ft.settings import load_settings

    folder = tmp_path_factory.mktemp("sample-index") / "data"
    load_sample_documents(load_settings(env={"RAG_FT_DATA_DIR": str(folder), "RAG_FT_PROVIDER": "local"}),
                          local_embeddings)
    return folder


@pytest.fixture
def indexed(data_dir, sample_index):
    """A private copy of the sample index in this test's data folder."""
    import shutil

    from rag_ft.settings import load_settings

    shutil.copytree(sample_index, data_dir)
    return load_settings(env={"RAG_FT_DATA_DIR": str(data_dir), "RAG_FT_PROVIDER": "local"})


def shown(element) -> str:
    """The text a Markdown element shows (the page writes untrusted text as character references)."""
    return html.unescape(element.value).replace("  \n", "\n")


def open_chat() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.switch_page("pages/chat.py").run()
    assert not at.exception
    return at


def test_empty_index_says_so_and_keeps_the_conversation(local_chat):
    at = open_chat()
    at.chat_input[0].set_value("How do I reset my password?").run()
    assert "No documents are indexed yet" in at.chat_message[1].error[0].value
    assert shown(at.chat_message[0].markdown[0]) == "How do I reset my password?"


def test_question_gets_a_streamed_answer_with_a_source_card(indexed, local_chat):
    q = first_question()
    at = open_chat()
    at.chat_input[0].set_value(q["question"]).run()
    assert not at.exception
    answer = at.chat_message[1]
    assert answer.markdown[0].value.strip()
    cards = [html.unescape(e.label) for e in answer.expander]
    assert cards, "no source card under the answer"
    assert any(q["document"] in label for label in cards), cards
    assert any("first token" in c.value for c in answer.caption)
    # the local SmolLM2 answered: a plain note says it may be wrong, and how well the answer is supported
    assert any("small offline model" in i.value for i in answer.info)
    assert any("backed by a retrieved passage" in c.value for c in answer.caption)


def test_off_topic_question_is_not_covered(indexed, local_chat):
    at = open_chat()
    at.chat_input[0].set_value("What is the boiling point of mercury in Kelvin?").run()
    answer = at.chat_message[1]
    assert shown(answer.markdown[0]) == NOT_COVERED and not answer.expander


def test_thumbs_up_sends_the_question_once_and_an_edit_replaces_the_answer(indexed, local_chat):
    from rag_ft.training.examples import ExampleStore

    q = first_question()["question"]
    at = open_chat()
    at.chat_input[0].set_value(q).run()
    at.feedback[0].set_value(1).run()
    at.button(key="to_train_1").click().run()
    examples = ExampleStore(indexed.db_path).list()
    assert len(examples) == 1 and examples[0].status == "draft"
    # the question as typed, not the RAG prompt around it
    assert [m["role"] for m in examples[0].messages] == ["user", "assistant"] and examples[0].user == q
    sent = at.button(key="to_train_1")
    assert sent.label == "Sent" and sent.disabled  # no second click: one answer, one example
    at.run()
    assert len(ExampleStore(indexed.db_path).list()) == 1
    # an edit replaces the answer shown, and the example sent follows it
    at.text_area[0].input("The reset takes ten seconds.").run()
    at.button(key="save_edit_1").click().run()
    assert shown(at.chat_message[1].markdown[0]) == "The reset takes ten seconds."
    (example,) = ExampleStore(indexed.db_path).list()
    assert example.assistant == "The reset takes ten seconds." and example.user == q


def test_thumbs_down_asks_what_was_wrong_and_stores_a_draft_to_fix(indexed, local_chat):
    from rag_ft.training.examples import ExampleStore

    at = open_chat()
    at.chat_input[0].set_value(first_question()["question"]).run()
    at.feedback[0].set_value(0).run()
    assert not ExampleStore(indexed.db_path).list()  # nothing stored until the user says what was wrong
    at.text_area(key=next(ta.key for ta in at.text_area if ta.key.startswith("fix_note_"))).input(
        "Cites the wrong page")
    at.button(key="fix_save_1").click().run()  # the form sends the note with its button
    (example,) = ExampleStore(indexed.db_path).list()
    assert example.status == "draft" and example.source == "chat"
    assert example.notes.startswith("Thumbs down: Cites the wrong page")
    assert any(f"draft example {example.id}" in c.value for c in at.chat_message[1].caption)


def test_reload_of_the_same_url_restores_the_conversation(indexed, local_chat):
    at = open_chat()
    at.chat_input[0].set_value("What is the boiling point of mercury in Kelvin?").run()
    at.feedback[0].set_value(1).run()
    cid = at.query_params["c"][0] if isinstance(at.query_params["c"], list) else at.query_params["c"]
    again = AppTest.from_file(APP, default_timeout=180)  # a new browser session: nothing in session state
    again.query_params["c"] = cid
    again.run()
    again.switch_page("pages/chat.py").run()
    assert [shown(m.markdown[0]) for m in again.chat_message] == [
        "What is the boiling point of mercury in Kelvin?", NOT_COVERED]
    assert again.feedback[0].value == 1  # what the user did with the answer comes back too
    fresh = AppTest.from_file(APP, default_timeout=180).run()  # another URL: another conversation
    fresh.switch_page("pages/chat.py").run()
    assert len(fresh.chat_message) == 0


def test_model_loading_is_shown_apart_from_the_answer_timings(indexed, local_chat):
    from rag_ft.models.local_chat import load_runtime

    load_runtime.cache_clear()  # a cold start: the first answer loads the model
    at = open_chat()
    at.chat_input[0].set_value("What is the boiling point of mercury in Kelvin?").run()
    caption = next(c.value for c in at.chat_message[1].caption if "first token" in c.value)
    assert "model loading" in caption and "not in these timings" in caption
    loading = float(caption.split("model loading ")[1].split(" s")[0])
    first_token = float(caption.split("first token ")[1].split(" s")[0])
    assert loading > 1.0 and first_token < loading, caption
    at.chat_input[0].set_value("And in Celsius?").run()  # loaded now: nothing to report
    assert not any("model loading" in c.value for c in at.chat_message[3].caption)


def test_new_chat_clears_the_conversation(indexed, local_chat):
    at = open_chat()
    at.chat_input[0].set_value("What is the boiling point of mercury in Kelvin?").run()
    assert len(at.chat_message) == 2
    at.button(key="new_chat").click().run()
    assert len(at.chat_message) == 0


def test_checked_citations_are_shown_moved_dropped_and_unsupported(settings):
    """A stored answer whose markers the check moved and dropped: the page says so, inert, after a reload."""
    from rag_ft.chat.chain import AnswerResult
    from rag_ft.chat.citations import SMALL_MODEL_NOTE, check
    from rag_ft.chat.conversations import ConversationStore
    from rag_ft.records import Passage

    passages = [Passage("Refunds are issued within 14 days of a cancellation request.", "billing.md", [], "", 0, 0.8),
                Passage("The Pro plan costs 12 euros per user per month.", "pricing.pdf", [3], "", 1, 0.7)]
    raw = "The Pro plan costs 12 euros per user per month [1]. The CEO owns [jets](http://127.0.0.1:9/x) <b>too</b> [2]."
    checked = check(raw, passages)
    result = AnswerResult("q", "q", checked.text, raw, checked.citations, passages, True, "SmolLM2", True,
                          dropped_markers=checked.dropped, unsupported=checked.unsupported, claims=checked.claims,
                          support_level=checked.support_level)
    store = ConversationStore(settings.db_path)
    store.save("checked-answer-1", [{"role": "user", "content": "q"},
                                    {"role": "assistant", "content": result.text, "result": result,
                                     "k": 2, "collection": "default", "small_model": True}])
    store.close()
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["c"] = "checked-answer-1"
    at.run()
    at.switch_page("pages/chat.py").run()
    assert not at.exception
    answer = at.chat_message[1]
    assert shown(answer.markdown[0]).startswith("The Pro plan costs 12 euros per user per month [2].")
    [card] = [html.unescape(e.label) for e in answer.expander]
    assert card.startswith("[2] pricing.pdf") and "moved from [1]" in card
    assert any("The model cited [1] here" in c.value for c in answer.caption)
    [warning] = answer.warning
    assert "Not backed by any retrieved passage" in warning.value
    assert "](" not in warning.value and "<b>" not in warning.value  # the model's sentence, shown inert
    assert "The CEO owns [jets](http://127.0.0.1:9/x) <b>too</b>." in html.unescape(warning.value)
    captions = [c.value for c in answer.caption]
    assert "Partly supported: 1 of 2 sentences backed by a retrieved passage." in captions
    assert any(c.startswith("Removed [2]: the cited passage does not support") for c in captions)
    assert [i.value for i in answer.info] == [SMALL_MODEL_NOTE]


@pytest.mark.browser
def test_browser_question_answer_and_source_card(page, app_server, local_embeddings):
    from rag_ft.index.documents import delete_document, load_sample_documents, sample_files
    from rag_ft.settings import load_settings

    base, data = app_server
    settings = load_settings(env={"RAG_FT_DATA_DIR": str(data), "RAG_FT_PROVIDER": "local"})
    load_sample_documents(settings, local_embeddings)
    try:
        q = first_question()
        page.goto(base)
        wait_idle(page)
        goto_page(page, "Chat", "chat")
        box = page.get_by_test_id("stChatInputTextArea")
        box.fill(q["question"])
        box.press("Enter")
        messages = page.get_by_test_id("stChatMessage")
        expect(messages).to_have_count(2, timeout=180_000)
        card = messages.nth(1).get_by_test_id("stExpander").first
        expect(card).to_contain_text(q["document"], timeout=180_000)
        card.click()
        expect(messages.nth(1).locator("mark").first).to_be_visible()
        # on topic (so retrieval passes it to the model) but not in the documents: the default model, base +
        # grounding adapter, says so itself
        rows = [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
        unanswered = next(x for x in rows if not x["answerable"] and "CEO" in x["question"])
        box.fill(unanswered["question"])
        box.press("Enter")
        expect(messages).to_have_count(4, timeout=180_000)
        expect(messages.nth(3)).to_contain_text(NOT_COVERED, timeout=180_000)
        page.screenshot(path=str(Path(data).parent / "chat.png"))
    finally:  # the server is shared by the session's browser tests: leave its index as it was
        for name, _ in sample_files():
            delete_document(settings, name)


@pytest.mark.browser
def test_browser_chat_with_this_model_from_the_live_job_view(page, chromium, data_dir, tmp_path):
    """The job succeeds while its view refreshes every 2 s; "Chat with this model" opens Chat with it picked."""
    import subprocess
    import sys
    import time

    import psutil
    from ft_fixtures import style_records
    from procs import serve_app

    from rag_ft.training.jobs import JobStore

    store = JobStore(data_dir / "studio.sqlite3")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])  # stands in for the worker
    try:
        job = store.create_job("local", "SmolLM2-135M-Instruct", style_records(4))
        store.update(job.id, pid=sleeper.pid, pid_started=psutil.Process(sleeper.pid).create_time(),
                     heartbeat_at=time.time() + 3600, step=1, total_steps=2)
        store.set_status(job.id, "running")
        env = {"RAG_FT_DATA_DIR": str(data_dir), "RAG_FT_PROVIDER": "local"}
        with serve_app(env, tmp_path / "server.log") as base:
            page.goto(base)
            wait_idle(page)
            goto_page(page, "Fine-tuning", "fine_tuning")
            expect(page.get_by_text("step 1/2")).to_be_visible(timeout=30_000)
            adapter = data_dir / "adapter-x"
            adapter.mkdir()
            store.register_model(job.id, "SmolLM2-135M-Instruct-x", adapter_dir=str(adapter))
            store.update(job.id, step=2)
            store.set_status(job.id, "succeeded")  # the live view (a fragment, every 2 s) picks this up
            button = page.get_by_role("button", name="Chat with this model")
            expect(button).to_be_enabled(timeout=30_000)
            button.click()
            expect(page).to_have_url(re.compile("chat"), timeout=30_000)
            wait_idle(page)
            expect(page.get_by_role("heading", name="Chat")).to_be_visible(timeout=10_000)
            expect(page.get_by_role("combobox", name="Model")).to_have_value("SmolLM2-135M-Instruct-x (LoRA)")
            expect(page.get_by_test_id("stChatInput")).to_be_visible()
    finally:
        sleeper.kill()
        sleeper.wait()
        store.close()
