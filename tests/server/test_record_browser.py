"""Recording a comparison in a real browser (chromium, Playwright, uvicorn on loopback):
opening the compare page records nothing; its "Record this comparison" button does."""

from __future__ import annotations

from typing import TYPE_CHECKING

from support.http import ServerThread
from trialbook.api import Book
from trialbook.server.app import create_app

if TYPE_CHECKING:  # playwright may be missing: the page fixture then skips
    from playwright.sync_api import Page

COMPARE = "/projects/pallets/compare?runs=v1_base&runs=v2_more_data"


def test_the_record_button_records_the_comparison(page: Page, sealed_book: Book) -> None:
    with ServerThread(create_app(sealed_book)) as server:
        for _ in range(2):
            page.goto(server.url + COMPARE)
            page.wait_for_function("() => document.getElementById('curves').data !== undefined")
        assert sealed_book.store.first_comparison_at("pallets") is None
        page.click("#record-button")
        page.wait_for_selector("#record-message.notice")
        message = page.text_content("#record-message") or ""
        assert message.startswith("Recorded: 2 runs compared on metrics/mAP50-95(B)"), message
        assert page.is_disabled("#record-button")
        assert sealed_book.store.first_comparison_at("pallets") is not None
