"""Every page renders under AppTest with no exception; the sidebar tells the provider's state."""

import pytest
from fake_openai import GOOD_KEY
from streamlit.testing.v1 import AppTest

APP = "../app.py"
PAGES = ["pages/home.py", "pages/documents.py", "pages/training_data.py", "pages/fine_tuning.py",
         "pages/chat.py", "pages/compare.py", "pages/settings.py"]


@pytest.fixture(autouse=True)
def clear_caches():
    import streamlit as st

    st.cache_resource.clear()
    st.cache_data.clear()
    yield


def _sidebar_text(at: AppTest) -> str:
    return " ".join(str(e.value) for e in [*at.sidebar.markdown, *at.sidebar.caption, *at.sidebar.error])


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders(page):
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    assert at.title, f"{page} has no title"


def test_sidebar_shows_local_provider_without_key():
    at = AppTest.from_file(APP, default_timeout=30).run()
    text = _sidebar_text(at)
    assert "`local`" in text and "SmolLM2-135M-Instruct" in text and "all-MiniLM-L6-v2" in text
    assert "OpenAI API key: not set" in text and "Data folder" in text
    assert not at.sidebar.error


def test_sidebar_with_key_from_secrets_never_shows_it(fake_openai):
    at = AppTest.from_file(APP, default_timeout=30)
    at.secrets["OPENAI_API_KEY"] = GOOD_KEY
    at.secrets["OPENAI_BASE_URL"] = fake_openai.base_url
    at.run()
    text = _sidebar_text(at)
    assert "`openai`" in text and "OpenAI API key: set" in text and GOOD_KEY not in text
    assert not at.sidebar.error


def test_wrong_key_and_unknown_provider_are_explained(fake_openai):
    at = AppTest.from_file(APP, default_timeout=30)
    at.secrets["OPENAI_API_KEY"] = "sk-wrong"
    at.secrets["OPENAI_BASE_URL"] = fake_openai.base_url
    at.run()
    assert not at.exception and "key was refused" in at.sidebar.error[0].value
    at = AppTest.from_file(APP, default_timeout=30)
    at.secrets["RAG_FT_PROVIDER"] = "gemini"
    at.run()
    assert not at.exception and "Unknown provider 'gemini'" in at.sidebar.error[0].value
