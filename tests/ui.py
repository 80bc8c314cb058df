"""Helpers for browser tests (Playwright against the real app)."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect


def wait_idle(page: Page, timeout: float = 60_000) -> None:
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning", timeout=timeout)


def goto_page(page: Page, label: str, url_part: str) -> None:
    """Navigate with the sidebar (keeps the browser session; page.goto would start a new one)."""
    page.get_by_test_id("stSidebarNavLink").filter(has_text=label).first.click()
    expect(page).to_have_url(re.compile(url_part))
    wait_idle(page)
