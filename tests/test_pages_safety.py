"""Untrusted text on the Documents and Training data pages (issue #13 item 1), and PDF bullets (item 9).

A file name, a heading, a passage or an example can carry a Markdown image or an <img> tag; the pages show
them as the characters they are: a real browser renders the pages while an HTTP listener on 127.0.0.1 records
every request, and none may arrive.
"""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, expect
from ui import goto_page, wait_idle

from rag_ft.text import show_bullets


def test_pdf_bullet_glyphs_are_shown_as_bullets():
    text = "Steps:\n\uf0b7 Unplug the hub\n\uf0a7 Wait 10 s\n\u25aa Plug it in\n\uf0d8 Done \u2022 ok"
    assert show_bullets(text) == "Steps:\n\u2022 Unplug the hub\n\u2022 Wait 10 s\n\u2022 Plug it in\n\u2022 Done \u2022 ok"
    assert show_bullets("Größe: 3 × 4 — ok ■") == "Größe: 3 × 4 — ok ■"  # other symbols stay


def _shown(page: Page, text: str) -> None:
    expect(page.get_by_text(text, exact=False).first).to_be_visible()


@pytest.mark.browser
def test_documents_page_shows_hostile_name_heading_and_passage_as_text(page, app_server, listener):
    base, data = app_server
    port = listener.server_address[1]
    name = f"![x](http://127.0.0.1:{port}/name).md"
    heading = f"Refund rules ![x](http://127.0.0.1:{port}/heading)"
    passage = f"Refunds take 14 days ![x](http://127.0.0.1:{port}/passage) for annual plans."
    after_blank = f'<img src="http://127.0.0.1:{port}/img">'
    # escaped in the Markdown source, so the extracted text holds the image syntax itself (as a PDF's would)
    def md(text: str) -> str:
        return "".join("\\" + ch if ch in "![]()" else ch for ch in text).replace("<", "&lt;").replace(">", "&gt;")

    body = f"# {md(heading)}\n\n{md(passage)}\n\n{md(after_blank)}\n\nSteps: \uf0b7 Unplug the hub first.\n"
    from rag_ft.index.documents import delete_document
    from rag_ft.settings import load_settings

    settings = load_settings(env={"RAG_FT_DATA_DIR": str(data), "RAG_FT_PROVIDER": "local"})
    try:
        page.goto(base)
        wait_idle(page)
        goto_page(page, "Documents", "documents")
        page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(
            files=[{"name": name, "mimeType": "text/markdown", "buffer": body.encode()}])
        page.get_by_role("button", name="Index files").click()
        status = page.get_by_test_id("stExpander").filter(has_text="Indexing:")
        expect(status).to_contain_text("1 indexed", timeout=120_000)
        wait_idle(page)
        expect(status).to_contain_text(f"{name}: indexed: 1 chunk")  # the progress line, literally
        listed = page.get_by_test_id("stMarkdownContainer").filter(has_text=f"{name} indexed")
        expect(listed.first).to_be_visible()  # the document list

        viewer = page.get_by_test_id("stExpander").filter(has_text="Chunk viewer")
        viewer.get_by_text("Chunk viewer").click()
        wait_idle(page)
        # the shared server may hold other tests' documents: pick this one (the option is plain text)
        picker = viewer.get_by_test_id("stSelectbox").locator("input")
        picker.click()
        picker.fill(name)
        picker.press("Enter")
        wait_idle(page)
        chunk = page.locator(".st-key-documents_chunk_text")
        expect(chunk).to_contain_text(passage)
        expect(chunk).to_contain_text(after_blank)  # after a blank line: still text
        expect(chunk).to_contain_text("Steps: \u2022 Unplug the hub first.")  # the PDF bullet glyph, as a bullet
        expect(chunk).to_contain_text(heading)  # the section heading, in the chunk's caption

        box = page.get_by_placeholder("Ask a question or type a keyword")
        box.fill("refunds annual plans")
        box.press("Enter")
        wait_idle(page)
        hit = page.locator("p", has_text=f"{name} · {heading}")
        expect(hit.first).to_be_visible()  # the search result's document and section

        # Delete asks first, then deletes
        card = page.locator("[class*='st-key-doc_']").filter(has_text=name)
        card.get_by_role("button", name="Delete").click()
        expect(card).to_contain_text(f"Delete {name} and its 1 chunk(s) from the index?")
        wait_idle(page)
        card.get_by_role("button", name="Really delete").click()
        wait_idle(page)
        expect(page.locator("[class*='st-key-doc_']").filter(has_text=name)).to_have_count(0)
        page.wait_for_timeout(1500)  # time for any image request to arrive
        assert listener.hits == []
    finally:
        delete_document(settings, name)  # leave the shared server's data as it was


@pytest.mark.browser
def test_training_data_page_shows_hostile_examples_as_text(page, app_server, listener):
    base, data = app_server
    port = listener.server_address[1]

    def img(tag: str) -> str:
        return f"![x](http://127.0.0.1:{port}/{tag})"

    file_name = f"{img('file')}.jsonl"
    question = f"How long do refunds take? {img('question')}"
    answer = f'Fourteen days. {img("answer")}\n\n<img src="http://127.0.0.1:{port}/html">'
    lines = [{"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]},
             {"messages": [{"role": img("role"), "content": "x"}]}]  # a bad line: its reason names the role
    from rag_ft.settings import load_settings
    from rag_ft.training.examples import ExampleStore

    store = ExampleStore(load_settings(env={"RAG_FT_DATA_DIR": str(data)}).db_path)
    try:
        page.goto(base)
        wait_idle(page)
        goto_page(page, "Training data", "training_data")
        page.get_by_text("Import a file (JSONL or CSV)").click()
        page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(files=[{
            "name": file_name, "mimeType": "application/jsonl",
            "buffer": "".join(json.dumps(r) + "\n" for r in lines).encode()}])
        wait_idle(page)
        page.get_by_role("button", name="Import and approve").click()
        wait_idle(page)
        _shown(page, f"Imported 1 example(s) from {file_name}; 1 approved; 1 line(s) had problems:")
        _shown(page, f"line 2: message 1 has unknown role '{img('role')}'")
        page.get_by_placeholder("words in any message, tag or note").fill("how long do refunds take")
        page.keyboard.press("Enter")
        wait_idle(page)
        expect(page.get_by_text("1 example(s) shown.")).to_be_visible(timeout=30_000)
        wait_idle(page)
        page.get_by_text("Edit one example in full").click()  # the preview of the one shown example
        wait_idle(page)
        _shown(page, f"Source: import: {file_name} line 1")
        # a selectbox option is plain text: the question's image link reads as typed
        expect(page.get_by_role("combobox", name="Example")).to_have_value(re.compile(re.escape(question[:60])))
        page.wait_for_timeout(1500)  # time for any image request to arrive
        assert listener.hits == []
    finally:
        store.conn.execute("DELETE FROM examples WHERE source_file = ?", (file_name,))
        store.conn.commit()
        store.close()
