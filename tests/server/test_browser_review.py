"""The run review in a real browser (Debian's chromium driven by Playwright against uvicorn
on loopback): the compare page's "Where it got worse" draws the ground truth and both
runs' boxes over each stored thumbnail, a layer toggles off, a click opens the large
view; the run page's gallery and its most-wrong images; side-by-side plots; names that
are HTML stay text; a run without predictions says how to record them.

``test_screenshot_where_it_got_worse`` writes ``where-it-got-worse.png`` into the
``screenshots`` folder: ``TRIALBOOK_SCREENSHOTS=docs/img`` makes the README's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from support.http import ServerThread
from support.review_book import BASELINE, CANDIDATE, NO_PREDICTIONS, PROJECT, ReviewWorld, make_review_book
from trialbook.server.app import create_app

if TYPE_CHECKING:  # playwright may be missing: the page fixture then skips
    from playwright.sync_api import Page

IMAGES, WORSE, BETTER = 40, 30, 3  # more worse images than one page (24)
COMPARE = f"/projects/{PROJECT}/compare?runs={CANDIDATE}&runs={BASELINE}&baseline={BASELINE}"
SHOTS = "#review-grid figure.shot"
EVIL_IMAGE = '<img src=x onerror="window.__pwned = 1">.jpg'
EVIL_CLASS = "<b onmouseover=alert(1)>pallet</b>"
# how many boxes of a layer the element ``selector`` draws, and how many are displayed
COUNT = """([selector, layer]) => {
  const rects = [...document.querySelector(selector).querySelectorAll(`rect.box.${layer}`)];
  return [rects.length, rects.filter(r => getComputedStyle(r).display !== 'none').length];
}"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReviewWorld]:
    made = make_review_book(tmp_path_factory.mktemp("review"), images=IMAGES, worse=WORSE, better=BETTER)
    yield made
    made.book.close()


@pytest.fixture(scope="module")
def server(world: ReviewWorld) -> Iterator[str]:
    with ServerThread(create_app(world.book)) as running:
        yield running.url


def counts(page: Page, selector: str, layer: str) -> tuple[int, int]:
    drawn, shown = page.evaluate(COUNT, [selector, layer])
    return drawn, shown


def test_where_it_got_worse_draws_each_layer(page: Page, server: str, world: ReviewWorld) -> None:
    page.goto(server + COMPARE)
    page.wait_for_selector(SHOTS)
    assert page.locator(SHOTS).count() == 24  # the first page of the 30 worse images
    summary = page.text_content("#review-summary") or ""
    assert f"{WORSE} of {IMAGES} images worse for {CANDIDATE}" in summary
    first = page.locator(SHOTS).first
    name = first.get_attribute("data-image")
    assert name is not None
    truth = world.image(CANDIDATE, name)
    assert first.locator("img").get_attribute("src") == f"/api/v1/projects/{PROJECT}/thumbs/{truth.thumb}"
    page.wait_for_function(f"() => document.querySelector({SHOTS + ' img'!r}).naturalWidth > 0")
    expected = {
        "gt": len(truth.gt),
        "candidate": world.shown(CANDIDATE, name),
        "baseline": world.shown(BASELINE, name),
    }
    assert all(expected.values()), expected  # every layer has boxes on the worst image
    assert expected["candidate"] < len(world.image(CANDIDATE, name).pred)  # low-confidence ones left out
    selector = f'{SHOTS}[data-image="{name}"]'
    for layer, n in expected.items():
        assert counts(page, selector, layer) == (n, n), layer
    assert "errors for" in (first.text_content() or "")

    page.uncheck('#review-layers input[data-layer="candidate"]')
    assert counts(page, selector, "candidate") == (expected["candidate"], 0)
    assert counts(page, selector, "gt") == (expected["gt"], expected["gt"])
    assert counts(page, selector, "baseline") == (expected["baseline"], expected["baseline"])

    first.click()
    page.wait_for_selector("#lightbox[open] .frame.large img")
    assert page.text_content("#lightbox .lightbox-title") == name
    large = "#lightbox .frame.large"
    assert counts(page, large, "candidate") == (expected["candidate"], 0)  # still hidden there
    assert counts(page, large, "gt") == (expected["gt"], expected["gt"])
    width = page.locator(large).bounding_box()
    assert width is not None and width["width"] > 2 * (first.bounding_box() or {"width": 1e9})["width"]
    assert page.locator('#lightbox ul[data-layer="baseline"] li').count() == expected["baseline"]
    page.keyboard.press("Escape")
    page.wait_for_selector("#lightbox", state="hidden")
    page.check('#review-layers input[data-layer="candidate"]')
    assert counts(page, selector, "candidate") == (expected["candidate"], expected["candidate"])

    page.click("#review-more")
    page.wait_for_function(f"() => document.querySelectorAll({SHOTS!r}).length === {WORSE}")
    page.wait_for_selector("#review-more", state="hidden")
    assert page.locator("#review-classes tbody tr").count() == 2


def test_run_page_gallery_and_its_most_wrong_images(page: Page, server: str, world: ReviewWorld) -> None:
    page.goto(f"{server}/projects/{PROJECT}/runs/{CANDIDATE}")
    page.wait_for_selector("#run-images-grid figure.shot")
    groups = page.eval_on_selector_all(
        "#gallery .plot-group h3", "hs => hs.map(h => h.firstChild.textContent.trim())"
    )
    assert groups == ["training", "val evaluation"]
    assert page.locator("#gallery figure.plot img").count() == 3
    page.click('#gallery figure.plot a[title^="results.png"]')
    page.wait_for_selector("#lightbox[open] img.large")
    page.wait_for_function("() => document.querySelector('#lightbox img.large').naturalWidth > 0")
    assert page.text_content("#lightbox .lightbox-title") == "training: results.png"
    page.keyboard.press("Escape")
    shot = page.locator("#run-images-grid figure.shot").first
    name = shot.get_attribute("data-image")
    assert name is not None
    selector = f'#run-images-grid figure.shot[data-image="{name}"]'
    assert counts(page, selector, "gt") == (len(world.image(CANDIDATE, name).gt),) * 2
    shown = world.shown(CANDIDATE, name)
    assert counts(page, selector, "pred") == (shown, shown)
    page.uncheck('#run-layers input[data-layer="gt"]')
    assert counts(page, selector, "gt")[1] == 0


def test_side_by_side_plots(page: Page, server: str) -> None:
    page.goto(server + COMPARE)
    page.wait_for_selector("#side-plots figure.plot img")
    assert page.eval_on_selector_all("#side-plots figure.plot", "fs => fs.map(f => f.dataset.run)") == [
        CANDIDATE,
        BASELINE,
    ]
    before = page.eval_on_selector_all("#side-plots img", "is => is.map(i => i.getAttribute('src'))")
    page.select_option("#plot-select", "BoxPR_curve.png")
    after = page.eval_on_selector_all("#side-plots img", "is => is.map(i => i.getAttribute('src'))")
    assert len(after) == 2 and not set(after) & set(before)
    page.wait_for_function(
        "() => [...document.querySelectorAll('#side-plots img')].every(i => i.naturalWidth > 0)"
    )
    assert "val evaluation" in (page.text_content("#side-plots") or "")


def test_names_that_are_html_stay_text(page: Page, tmp_path: Path) -> None:
    evil = make_review_book(
        tmp_path / "evil", images=4, worse=2, names=[EVIL_IMAGE], classes=[EVIL_CLASS, "forklift"]
    )
    try:
        with ServerThread(create_app(evil.book)) as running:
            page.goto(running.url + COMPARE)
            page.wait_for_selector(SHOTS)
            assert page.locator(f"{SHOTS} .shot-name").first.text_content() == EVIL_IMAGE
            assert page.locator('#review-grid img[src="x"], #review-classes b').count() == 0
            assert page.locator("#review-classes tbody td").first.text_content() == EVIL_CLASS
            page.locator(SHOTS).first.click()
            page.wait_for_selector("#lightbox[open]")
            assert EVIL_CLASS in (page.text_content("#lightbox .shot-boxes") or "")
            assert page.evaluate("() => window.__pwned") is None
    finally:
        evil.book.close()


def test_a_run_without_predictions_says_how_to_record_them(page: Page, server: str) -> None:
    page.goto(
        f"{server}/projects/{PROJECT}/compare?runs={NO_PREDICTIONS}&runs={BASELINE}&baseline={BASELINE}"
    )
    message = page.text_content("#review-message") or ""
    assert f"trialbook yolo val {NO_PREDICTIONS} --split val" in message
    assert page.locator("#review-message code").count() == 1
    assert page.locator(SHOTS).count() == 0
    page.goto(f"{server}/projects/{PROJECT}/runs/{NO_PREDICTIONS}")
    assert "trialbook yolo val" in (page.text_content("#run-images-message") or "")


def test_screenshot_where_it_got_worse(page: Page, tmp_path: Path, screenshots: Path) -> None:
    """The README's picture: a few dozen warehouse images, the worst for the candidate."""
    demo = make_review_book(tmp_path / "demo", images=36, worse=9, better=4, seed=7, extras=False)
    try:
        with ServerThread(create_app(demo.book)) as running:
            page.set_viewport_size({"width": 1280, "height": 900})
            page.goto(running.url + COMPARE)
            page.wait_for_selector(SHOTS)
            page.locator("#review").scroll_into_view_if_needed()  # the thumbnails load lazily
            loaded = "is => is.every(i => i.complete && i.naturalWidth > 0)"
            page.wait_for_function(f"() => ({loaded})([...document.querySelectorAll({SHOTS + ' img'!r})])")
            # from the section's title to its per-class table, in page coordinates
            top, bottom = page.evaluate(
                """() => [document.getElementById('review-title'), document.getElementById('review')]
                    .map(e => e.getBoundingClientRect())
                    .map((r, i) => (i ? r.bottom : r.top) + window.scrollY)"""
            )
            path = screenshots / "where-it-got-worse.png"
            page.screenshot(
                path=str(path),
                full_page=True,
                clip={"x": 0, "y": top - 8, "width": 1280, "height": bottom - top + 16},
            )
            assert path.stat().st_size > 10_000
    finally:
        demo.book.close()
