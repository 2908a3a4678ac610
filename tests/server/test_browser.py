"""The web UI in a real browser: Debian's chromium driven by Playwright against a real
uvicorn server on a free loopback port. Screenshots of every page go to the
``screenshots`` folder (``$TRIALBOOK_SCREENSHOTS`` to keep them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from support.http import ServerThread
from support.runs import MAP, SEALED_TEXTS, add_run
from trialbook.api import Book
from trialbook.server.app import create_app

if TYPE_CHECKING:  # playwright may be missing: the page fixture then skips
    from playwright.sync_api import Page

V1, V2, V3 = "v1_baseline", "v2_imgsz_1024", "v3_pallets_added_imgsz_640"
TRACES = "id => document.getElementById(id).data.length"


@pytest.fixture(scope="module")
def demo_server(demo_book: Book) -> Iterator[str]:
    with ServerThread(create_app(demo_book)) as server:
        yield server.url


def text(page: Page, selector: str) -> str:
    """The text of the element ``selector`` (which must exist)."""
    found = page.text_content(selector)
    assert found is not None, selector
    return found


def shot(page: Page, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def test_select_three_runs_compare_and_decide(page: Page, demo_server: str, screenshots: Path) -> None:
    page.goto(demo_server + "/")
    assert page.locator("#projects tbody tr").count() == 1
    shot(page, screenshots, "home")
    page.click("text=pallets")
    page.wait_for_selector("#runs")
    assert page.locator("#runs tbody tr").count() == 3
    assert page.locator("#runs svg.spark").count() == 3
    for name in (V1, V2, V3):
        page.check(f"input[name=runs][value={name}]")
    assert text(page, "#selected-count") == "3 selected"
    shot(page, screenshots, "project")
    page.click("#compare-button")
    page.wait_for_function("() => document.getElementById('curves').data !== undefined")
    assert page.evaluate(TRACES, "curves") == 3
    names = page.evaluate("() => document.getElementById('curves').data.map(t => t.name)")
    assert sorted(names) == sorted([V1, V2, V3])
    assert page.locator("#confusion .matrix.js-plotly-plot").count() == 5  # 3 runs + 2 differences
    assert page.locator("#analytics tbody tr").count() == 3
    assert "sealed" in text(page, "#analytics")
    page.select_option("#candidate-select", V3)
    page.select_option("#decide-baseline-select", V2)
    shot(page, screenshots, "compare")
    page.click("#decide-button")
    page.wait_for_selector("#decision .decision-card")
    assert text(page, "#decision .verdict") == "WIN"
    assert page.locator("#decision ul.gates li").count() == 4
    page.goto(demo_server + "/decisions")
    assert page.locator(".decision-card").count() == 1
    assert "1 of 5" in text(page, "#decision-list")
    shot(page, screenshots, "decisions")


def test_exploratory_switch(page: Page, demo_server: str) -> None:
    page.goto(f"{demo_server}/projects/pallets/compare?runs={V1}&runs={V2}&runs={V3}")
    page.wait_for_function("() => document.getElementById('curves').data !== undefined")
    assert page.locator("#exploratory").count() == 0
    with page.expect_navigation():
        page.select_option("#metric-select", "val/box_loss")
    page.wait_for_function("() => document.getElementById('curves').data !== undefined")
    assert "exploratory" in text(page, "#exploratory")
    assert page.evaluate(TRACES, "curves") == 3
    assert "val/box_loss" in page.evaluate("() => document.getElementById('curves').layout.yaxis.title.text")


def test_edit_a_note_in_place(page: Page, demo_server: str, screenshots: Path) -> None:
    page.goto(f"{demo_server}/projects/pallets/runs/{V2}")
    page.wait_for_selector(".chart[data-group] .main-svg")
    assert page.locator(".chart[data-group]").count() == 4
    traces = page.evaluate(
        "() => [...document.querySelectorAll('.chart[data-group]')].map(d => d.data.length)"
    )
    assert traces == [4, 3, 3, 3]
    shot(page, screenshots, "run")
    evil = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
    page.click("#note-edit")
    page.fill("textarea[name=hypothesis]", evil)
    page.fill("textarea[name=next]", "try a longer schedule")
    page.click("#note-use-draft")
    draft = text(page, "#note-draft")
    assert page.input_value("textarea[name=result]") == draft and draft.startswith("pallet AP")
    page.click("#note-save")
    page.wait_for_selector("textarea[name=hypothesis]", state="hidden")
    assert text(page, '.note-field[data-field="hypothesis"]') == evil
    page.reload()
    assert text(page, '.note-field[data-field="hypothesis"]') == evil
    assert text(page, '.note-field[data-field="next"]') == "try a longer schedule"
    assert text(page, '.note-field[data-field="result"]') == draft
    assert page.evaluate("() => window.__pwned") is None
    assert "&lt;script&gt;window.__pwned" in page.content()
    assert page.locator("#note img").count() == 0


def test_datasets_page(page: Page, demo_server: str, screenshots: Path) -> None:
    page.goto(demo_server + "/datasets")
    page.wait_for_selector(".chart.bars .main-svg")
    assert page.locator(".chart.bars.js-plotly-plot").count() == 2
    bars = page.evaluate("() => document.querySelector('.chart.bars').data.map(t => t.name)")
    assert bars == ["train", "val", "test"]
    page.select_option("select[name=a]", "pallets:v1")
    page.select_option("select[name=b]", "pallets:v2")
    page.click("#diff button")
    page.wait_for_selector(".diff-split")
    assert "48 added" in text(page, "#diff")
    shot(page, screenshots, "datasets")


def test_sealed_number_appears_only_after_the_decision(page: Page, sealed_book: Book) -> None:
    with ServerThread(create_app(sealed_book)) as server:
        page.goto(f"{server.url}/projects/pallets/compare?runs=v1_base&runs=v2_more_data")
        page.wait_for_function("() => document.getElementById('curves').data !== undefined")
        before = page.content()
        assert not [t for t in SEALED_TEXTS if t in before]
        page.goto(f"{server.url}/projects/pallets/runs/v2_more_data")
        assert not [t for t in SEALED_TEXTS if t in page.content()]
        page.goto(f"{server.url}/projects/pallets/compare?runs=v1_base&runs=v2_more_data")
        page.select_option("#candidate-select", "v2_more_data")
        page.select_option("#decide-baseline-select", "v1_base")
        page.click("#decide-button")
        page.wait_for_selector("#decision .decision-card")
        after = page.content()
        assert "0.5813" in after and "0.5471" in after
        assert "0.5813" in text(page, "#decision li.pass:has-text('test_set')")
        page.goto(f"{server.url}/decisions")
        assert "0.5813" in page.content()


def test_live_updates_without_reload(page: Page, tmp_path: Path) -> None:
    book = Book.open(str(tmp_path / "live"), create=True)
    add_run(book, "v1_done", project="live", curve=[0.1, 0.2, 0.3, 0.35, 0.4, 0.42], pinned=False)
    run = book.start("live", "v2_training", allow_unpinned=True, flush_interval=0.05)
    for e in range(3):
        run.log({MAP: 0.1 * (e + 1), "train/box_loss": 2.0 - 0.1 * e}, epoch=e)
    run.flush()
    try:
        with ServerThread(create_app(book, poll_interval=0.4)) as server:
            page.goto(f"{server.url}/projects/live/compare?runs=v1_done&runs=v2_training")
            page.wait_for_function("() => document.getElementById('curves').data !== undefined")
            live = page.evaluate(
                "() => document.getElementById('curves').data.findIndex(t => t.name === 'v2_training')"
            )
            count = f"() => document.getElementById('curves').data[{live}].x.length"
            assert page.evaluate(count) == 3
            page.evaluate("() => { window.__same_page = true; }")
            for e in range(3, 6):
                run.log({MAP: 0.1 * (e + 1), "train/box_loss": 2.0 - 0.1 * e}, epoch=e)
            run.flush()
            page.wait_for_function(f"() => ({count})() === 6", timeout=10_000)
            assert page.evaluate("() => window.__same_page") is True  # no reload happened
            assert text(page, '[data-status-of="v2_training"]') == "running"

            page.goto(f"{server.url}/projects/live/runs/v2_training")
            page.wait_for_selector(".chart[data-group] .main-svg")
            metrics = "() => document.querySelector('.chart[data-group=\"0\"]').data[0].x.length"
            assert page.evaluate(metrics) == 6
            run.log({MAP: 0.7, "train/box_loss": 1.4}, epoch=6)
            run.flush()
            page.wait_for_function(f"() => ({metrics})() === 7", timeout=10_000)
            run.finish()
            page.wait_for_function(
                "() => document.getElementById('run-status').textContent === 'finished'", timeout=10_000
            )
    finally:
        run.finish()
        book.close()
