"""Fixtures of the web server's tests (the ``demo_book`` is in tests/conftest.py).

The ``ui`` extra (fastapi, uvicorn, jinja2, plotly) is needed; without it these tests skip,
unless ``TRIALBOOK_REQUIRE_EXTRAS=1`` (CI). The browser tests drive Debian's chromium
(``/usr/bin/chromium``) with Playwright; without either they skip, unless
``TRIALBOOK_REQUIRE_BROWSER=1`` (CI), which makes the absence a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from support.extras import REQUIRE_EXTRAS
from support.http import Api
from support.runs import make_sealed_book
from trialbook.api import Book

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = os.environ.get("TRIALBOOK_CHROMIUM", "/usr/bin/chromium")
REQUIRE_BROWSER = os.environ.get("TRIALBOOK_REQUIRE_BROWSER") == "1"

collect_ignore_glob: list[str] = []
try:
    import fastapi  # noqa: F401
    import jinja2  # noqa: F401
    import plotly  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the install
    if REQUIRE_EXTRAS:
        raise RuntimeError(f"TRIALBOOK_REQUIRE_EXTRAS=1 but the ui extra is missing: {exc}") from exc
    # the store's page queries are tested all the same; the app's tests need the extra
    collect_ignore_glob = [
        "test_app.py",
        "test_browser.py",
        "test_hardening.py",
        "test_one_answer.py",
        "test_openapi.py",
        "test_record_browser.py",
        "test_ui_command.py",
    ]


@pytest.fixture(autouse=True)
def _user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIALBOOK_USER", "tester")
    monkeypatch.delenv("TRIALBOOK_URI", raising=False)


@pytest.fixture(scope="module")
def demo_api(demo_book: Book) -> Api:
    """The JSON API and the pages of the demo book, in process."""
    from trialbook.server.app import create_app

    return Api(create_app(demo_book))


@pytest.fixture
def sealed_book(tmp_path: Path) -> Iterator[Book]:
    """Two pinned runs with distinctive sealed test numbers (``support.runs.SEALED_TEXTS``)."""
    book = make_sealed_book(tmp_path / "sealed")
    yield book
    book.close()


@pytest.fixture
def sealed_api(sealed_book: Book) -> Api:
    """The JSON API and the pages of ``sealed_book``, in process."""
    from trialbook.server.app import create_app

    return Api(create_app(sealed_book))


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where page screenshots go: ``$TRIALBOOK_SCREENSHOTS`` (docs/screenshots when making
    the README's), else a temporary folder."""
    target = os.environ.get("TRIALBOOK_SCREENSHOTS")
    folder = Path(target) if target else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _browser_problem() -> str | None:
    if not Path(CHROMIUM).exists() and not shutil.which(CHROMIUM):
        return f"no chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        return f"playwright is not installed ({exc})"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian chromium driven by Playwright (its own driver; no browser download).

    One per module: Playwright's sync API keeps an event loop running in the main thread
    while it is open, and ``support.http.Api`` (anyio.run) cannot run beside it."""
    problem = _browser_problem()
    if problem:
        if REQUIRE_BROWSER:
            pytest.fail(f"TRIALBOOK_REQUIRE_BROWSER=1 but {problem}")
        pytest.skip(problem)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page; any script error or failed request on it fails the test."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    pg = context.new_page()
    problems: list[str] = []
    pg.on("pageerror", lambda e: problems.append(f"script error: {e}"))
    pg.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    pg.set_default_timeout(15_000)
    yield pg
    context.close()
    assert not problems, problems
