"""The Documents page: upload -> index -> results -> search -> re-upload unchanged -> delete, in AppTest and in
a real browser; the embedding-mismatch message and its one-click re-embed."""

from __future__ import annotations

import re

import pytest
from documents_fixtures import markdown
from playwright.sync_api import expect
from streamlit.testing.v1 import AppTest
from ui import goto_page, wait_idle

from rag_ft.untrusted import inert

APP = "../app.py"
PAGE = "pages/documents.py"

FILES = [
    ("billing.md", b"# Billing FAQ\n\n## Refunds\n\nRefunds for annual plans are paid within 14 days of the request.\n",
     "text/markdown"),
    ("api.txt", b"The API answers HTTP 429 with error code QX-4471 above 600 requests per minute.", "text/plain"),
    ("empty.txt", b"", "text/plain"),
]


@pytest.fixture(autouse=True)
def clear_caches():
    import streamlit as st

    st.cache_resource.clear()
    st.cache_data.clear()
    yield


def _page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def _frame(at: AppTest, column: str):
    """The st.dataframe that has ``column`` (AppTest does not expose a dataframe's key)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def _table(at: AppTest):
    return _frame(at, "Result").set_index("File")


def test_upload_index_search_reupload_delete(local_embeddings):
    at = _page()
    assert at.button(key="index_btn").disabled
    at.file_uploader(key="documents_upload").set_value(FILES).run()
    at.button(key="index_btn").click().run()
    assert not at.exception, at.exception
    assert at.status[0].state == "complete" and "2 indexed, 1 failed" in at.status[0].label
    table = _table(at)
    assert table.loc["billing.md", "Result"] == "indexed" and table.loc["billing.md", "Chunks"] >= 1
    assert table.loc["empty.txt", "Result"] == "failed" and "empty" in table.loc["empty.txt", "Details"]
    # the failure stands out below the table, with its whole reason
    assert [e.value for e in at.error] == [f"**{inert('empty.txt')}** was not indexed: {inert('empty file')}"]
    assert "Indexed documents (2)" in [h.value for h in at.subheader]

    at.text_input(key="documents_query").set_value("QX-4471").run()
    shown = " ".join(m.value for m in at.markdown)
    assert f"**{inert('api.txt')}**" in shown and "score" in shown and "bm25" in shown
    assert any("QX-4471" in t.value for t in at.text)

    at.button(key="index_btn").click().run()  # the same files again
    table = _table(at)
    assert table.loc["billing.md", "Result"] == "unchanged" and table.loc["api.txt", "Result"] == "unchanged"
    assert table.loc["api.txt", "Newly embedded"] == 0

    from rag_ft.index.documents import document_id

    api = document_id("default", "api.txt")
    at.button(key=f"delete_{api}").click().run()  # Delete asks first
    assert "Indexed documents (2)" in [h.value for h in at.subheader]
    assert f"Delete **{inert('api.txt')}** and its 1 chunk(s)" in at.warning[0].value
    at.button(key=f"keep_{api}").click().run()  # changed my mind
    assert not at.warning and f"really_delete_{api}" not in [b.key for b in at.button]
    assert "Indexed documents (2)" in [h.value for h in at.subheader]
    at.button(key=f"delete_{api}").click().run()
    at.button(key=f"really_delete_{api}").click().run()
    assert "Indexed documents (1)" in [h.value for h in at.subheader]
    at.text_input(key="documents_query").set_value("QX-4471 error code").run()
    assert f"**{inert('api.txt')}**" not in " ".join(m.value for m in at.markdown)


def test_chunk_viewer_and_sample_documents(settings, local_embeddings):
    from rag_ft.index.documents import index_files, sample_files

    index_files(settings, local_embeddings, [("guide.md", markdown(3))])
    at = _page()
    at.selectbox(key="documents_chunk_doc").set_value("guide.md").run()
    chunks = _frame(at, "Section")
    assert list(chunks["#"]) == [0, 1, 2] and "Topic 2" in chunks["Section"].tolist()
    # the chunks' text comes first, and the first chunk is shown in full (as text) below the table
    assert list(chunks.columns[:2]) == ["#", "Text"] and "Paragraph 0.0 of Topic 0" in chunks["Text"][0]
    full = [m.value for m in at.markdown if inert("Paragraph 0.3 of Topic 0") in m.value]
    assert len(full) == 1 and inert(chunks["Text"][0]) == full[0]
    if sample_files():
        at.button(key="samples_btn").click().run()
        assert not at.exception and at.status[0].state == "complete"
        assert all(r == "indexed" for r in _table(at)["Result"])


def test_mismatched_collection_offers_one_click_reembed(settings, local_embeddings, monkeypatch):
    from rag_ft.index.documents import index_files
    from rag_ft.models.providers import embedding_id

    index_files(settings, local_embeddings, [("guide.md", markdown(2))])
    monkeypatch.setenv("RAG_FT_EMBEDDING_MODEL", "all-MiniLM-L6-v2-renamed")  # another vector space's name
    at = _page()
    assert inert("was built with the embedding model 'local:all-MiniLM-L6-v2'") in at.error[0].value
    assert not at.file_uploader  # nothing else until re-embedded
    at.button(key="reembed_btn").click().run()
    assert not at.exception and not at.error
    from rag_ft.index.vectors import VectorIndex
    from rag_ft.settings import load_settings

    assert VectorIndex(load_settings()).built_with() == embedding_id(load_settings()) == "local:all-MiniLM-L6-v2-renamed"
    at.text_input(key="documents_query").set_value("Topic 1").run()
    assert f"**{inert('guide.md')}**" in " ".join(m.value for m in at.markdown)


@pytest.mark.browser
def test_browser_upload_search_reupload_delete(page, app_server):
    base, _ = app_server
    page.goto(base)
    wait_idle(page)
    goto_page(page, "Documents", "documents")
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(
        files=[{"name": n, "mimeType": m, "buffer": b} for n, b, m in FILES])
    button = page.get_by_role("button", name="Index files")
    expect(button).to_be_enabled()
    button.click()
    status = page.get_by_test_id("stExpander").filter(has_text="Indexing:")
    expect(status).to_contain_text("2 indexed, 1 failed", timeout=120_000)
    wait_idle(page)
    expect(page.get_by_text("Indexed documents (2)")).to_be_visible()
    expect(status).to_contain_text("api.txt: indexed: 1 chunk")
    expect(status).to_contain_text("empty.txt: empty file")
    expect(page.get_by_test_id("stAlertContentError")).to_contain_text("empty.txt was not indexed: empty file")

    box = page.get_by_placeholder("Ask a question or type a keyword")
    box.fill("how fast are refunds paid")
    box.press("Enter")
    expect(page.get_by_test_id("stText").filter(has_text="Refunds for annual plans")).to_be_visible()
    expect(page.locator("p", has_text=re.compile(r"billing\.md.*score \d\.\d\d"))).to_be_visible()
    wait_idle(page)

    button.click()  # the same files again
    expect(page.get_by_test_id("stExpander").filter(has_text="2 unchanged")).to_be_visible(timeout=60_000)
    wait_idle(page)

    box.fill("QX-4471 error code")
    box.press("Enter")
    api_hit = page.locator("p", has_text=re.compile(r"api\.txt.*score \d\.\d\d"))
    expect(api_hit).to_be_visible()
    wait_idle(page)

    from rag_ft.index.documents import document_id

    api = document_id("default", "api.txt")
    page.locator(f".st-key-delete_{api}").get_by_role("button").click()
    expect(page.get_by_text("Delete api.txt and its 1 chunk(s) from the index?")).to_be_visible()
    expect(page.get_by_text("Indexed documents (2)")).to_be_visible()  # nothing deleted yet
    page.locator(f".st-key-really_delete_{api}").get_by_role("button").click()
    expect(page.get_by_text("Indexed documents (1)")).to_be_visible()
    expect(api_hit).to_have_count(0)  # the same search, rerun after the delete, no longer finds it
    expect(page.get_by_test_id("stText").filter(has_text="QX-4471 above 600 requests")).to_have_count(0)
