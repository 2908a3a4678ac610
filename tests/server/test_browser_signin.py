"""Signing in to the team server's UI in a real browser (Debian's chromium driven by
Playwright, against uvicorn on loopback, ``create_app(auth=True)``): sent to the sign-in
page, in with a name and password, the user and role shown, a note written through the
page (its script sends the session's CSRF token), signed out, sent back to sign in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from support.http import ServerThread
from support.runs import add_run
from trialbook.api import Book
from trialbook.server.app import create_app
from trialbook.services import accounts as account_service

if TYPE_CHECKING:  # playwright may be missing: the page fixture then skips
    from playwright.sync_api import Page

PASSWORD = "a long enough password"
RUN_PAGE = "/projects/pallets/runs/v1_base"


@pytest.fixture
def team_server(tmp_path: Path) -> Iterator[str]:
    book = Book.open(str(tmp_path / "book"), create=True)
    add_run(book, "v1_base", curve=[0.1, 0.2, 0.3], val=0.3, per_class={"pallet": 0.3})
    accounts = account_service.accounts_of(book.store)
    account_service.add_user(accounts, "edna", admin=False, who="setup")
    account_service.grant(accounts, book.store, "edna", "pallets", "editor", who="setup")
    account_service.set_password(accounts, "edna", PASSWORD, who="setup")
    try:
        with ServerThread(create_app(book, auth=True)) as server:
            yield server.url
    finally:
        book.close()


def text(page: Page, selector: str) -> str:
    found = page.text_content(selector)
    assert found is not None, selector
    return found


def test_sign_in_write_a_note_and_sign_out(page: Page, team_server: str, screenshots: Path) -> None:
    page.goto(team_server + RUN_PAGE)
    assert page.url.startswith(f"{team_server}/signin?next=")
    assert page.locator("#me").count() == 0 and page.locator("nav").count() == 0
    # (a wrong password's 401 is tested in test_signin.py: the browser logs any 401 as an error)
    page.fill("#signin-name", "edna")
    page.fill("#signin-pass", PASSWORD)
    page.screenshot(path=str(screenshots / "signin.png"), full_page=True)
    page.click("#signin-button")
    page.wait_for_url(team_server + RUN_PAGE)
    assert text(page, "#me-name") == "edna"
    assert text(page, "#me-role") == "editor of pallets"
    cookie = next(c for c in page.context.cookies() if c["name"] == "tb_session")
    assert cookie["httpOnly"] and cookie["sameSite"] in ("Lax", "Strict") and not cookie["secure"]
    assert "tb_session" not in page.evaluate("() => document.cookie")  # no script reads it

    # a write through the page: its script sends the session's CSRF token
    page.click("#note-edit")
    page.fill("textarea[name=hypothesis]", "signed in, then written")
    page.click("#note-save")
    page.wait_for_selector("textarea[name=hypothesis]", state="hidden")
    assert text(page, "#note-message") == "" or "saved" in text(page, "#note-message").lower()
    page.reload()
    assert text(page, '.note-field[data-field="hypothesis"]') == "signed in, then written"
    page.screenshot(path=str(screenshots / "signed-in-run.png"), full_page=True)

    page.click("#signout-button")
    page.wait_for_url(f"{team_server}/signin")
    assert page.locator("#signin-password").count() == 1
    assert not [c for c in page.context.cookies() if c["name"] == "tb_session"]
    page.goto(team_server + RUN_PAGE)
    assert page.url.startswith(f"{team_server}/signin?next=")
