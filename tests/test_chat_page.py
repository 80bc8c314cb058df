"""The Chat page: AppTest over a real index of sample_docs with the real local model, and a real browser."""

import json
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


def open_chat() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.switch_page("pages/chat.py").run()
    assert not at.exception
    return at


def test_empty_index_says_so_and_keeps_the_conversation(local_chat):
    at = open_chat()
    at.chat_input[0].set_value("How do I reset my password?").run()
    assert "No documents are indexed yet" in at.chat_message[1].error[0].value
    assert at.chat_message[0].markdown[0].value == "How do I reset my password?"


def test_question_gets_a_streamed_answer_with_a_source_card(indexed, local_chat):
    q = first_question()
    at = open_chat()
    at.chat_input[0].set_value(q["question"]).run()
    assert not at.exception
    answer = at.chat_message[1]
    assert answer.markdown[0].value.strip()
    cards = [e.label for e in answer.expander]
    assert cards, "no source card under the answer"
    assert any(q["document"] in label for label in cards), cards
    assert any("first token" in c.value for c in answer.caption)


def test_off_topic_question_is_not_covered(indexed, local_chat):
    at = open_chat()
    at.chat_input[0].set_value("What is the boiling point of mercury in Kelvin?").run()
    answer = at.chat_message[1]
    assert answer.markdown[0].value == NOT_COVERED and not answer.expander


def test_thumbs_up_sends_the_answer_to_training_data(indexed, local_chat):
    from rag_ft.training.examples import ExampleStore

    at = open_chat()
    at.chat_input[0].set_value(first_question()["question"]).run()
    at.feedback[0].set_value(1).run()
    at.button(key="to_train_1").click().run()
    examples = ExampleStore(indexed.db_path).list()
    assert len(examples) == 1 and examples[0].messages[-1]["role"] == "assistant"
    assert examples[0].status == "draft"


def test_new_chat_clears_the_conversation(indexed, local_chat):
    at = open_chat()
    at.chat_input[0].set_value("What is the boiling point of mercury in Kelvin?").run()
    assert len(at.chat_message) == 2
    at.button(key="new_chat").click().run()
    assert len(at.chat_message) == 0


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
