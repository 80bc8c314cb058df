"""A real browser opens the app and visits every page."""

import pytest
from playwright.sync_api import expect
from ui import goto_page, wait_idle

pytestmark = pytest.mark.browser
PAGES = [("Documents", "documents"), ("Training data", "training_data"), ("Fine-tuning", "fine_tuning"),
         ("Chat", "chat"), ("Compare", "compare"), ("Settings", "settings"),
         ("Home", "/")]


def test_visit_every_page(page, app_server):
    base, _ = app_server
    page.goto(base)
    expect(page.get_by_role("heading", name="RAG + Fine-Tuning Studio")).to_be_visible()
    wait_idle(page)
    expect(page.get_by_test_id("stSidebar")).to_contain_text("local")
    for label, url in PAGES:
        goto_page(page, label, url)
        expect(page.get_by_test_id("stException")).to_have_count(0)
        expect(page.locator("h1").first).to_be_visible()
