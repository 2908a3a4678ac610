"""The layout of the run and compare pages in a real browser (Debian's chromium driven by
Playwright against uvicorn on loopback): what a user needs first is at the top, Plotly's
toolbar covers no legend and no title, confusion matrices carry their numbers, epoch axes
tick at whole epochs, and a draft equal to the saved result is not repeated.

Screenshots go to the ``screenshots`` folder (``$TRIALBOOK_SCREENSHOTS`` to keep them)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from support.http import ServerThread
from support.runs import DIGESTS, MAP, add_run
from trialbook.api import Book
from trialbook.core.entities import Evaluation, RunRecord
from trialbook.server.app import create_app
from trialbook.services.notes import draft_note

if TYPE_CHECKING:  # playwright may be missing: the page fixture then skips
    from playwright.sync_api import Page

V1, V2, V3 = "v1_baseline", "v2_imgsz_1024", "v3_pallets_added_imgsz_640"
RUN = "v2_short_asked"
ASKED = {"model": "yolo11n.pt", "data": "data/pallets/data.yaml", "epochs": 3, "imgsz": 320}
# an Ultralytics-sized config: the asked keys and 116 more at their defaults
CONFIG = {**ASKED, **{f"default_arg_{i:03d}": i / 10 for i in range(116)}}
CURVE = [0.21, 0.34, 0.4]  # three epochs: 0, 1, 2

# the bounding boxes (viewport pixels) of a chart's legend and of its toolbar
BOXES = """div => {
  const box = (sel) => { const n = div.querySelector(sel); if (!n) return null;
    const r = n.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  return {legend: box('.legend'), modebar: box('.modebar'), plot: box('.nsewdrag')};
}"""
X_TICKS = "div => [...div.querySelectorAll('.xtick text')].map(t => t.textContent)"
CELLS = "div => [...div.querySelectorAll('.heatmaplayer text')].map(t => t.textContent)"


def _overlap(a: list[float], b: list[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _add_asked_run(book: Book) -> None:
    """A finished child of ``v1_base`` whose tracker listed the keys asked for
    (``run.env["config_asked"]``), with three epochs and a val evaluation."""
    store = book.store
    now = time.time()
    record = store.create_run(
        RunRecord(
            id=uuid.uuid4().hex,
            project="pallets",
            name=RUN,
            status="finished",
            created_at=now,
            heartbeat_at=now,
            ended_at=now,
            parent_id=book.run("v1_base", "pallets").id,
            dataset="pallets:v1",
            pinned=True,
            split_digests=dict(DIGESTS),
            config=CONFIG,
            env={"python": "3.11.9", "config_asked": sorted(ASKED)},
        )
    )
    store.log_batch(
        record.id,
        {
            MAP: dict(enumerate(CURVE)),
            "metrics/mAP50(B)": {e: v + 0.2 for e, v in enumerate(CURVE)},
            "train/box_loss": {e: 2.0 - v for e, v in enumerate(CURVE)},
            "lr/pg0": dict.fromkeys(range(len(CURVE)), 0.01),
        },
    )
    store.add_evaluation(
        Evaluation(
            id=uuid.uuid4().hex,
            run_id=record.id,
            split="val",
            sealed=False,
            created_at=now,
            metrics={MAP: 0.4},
            per_class_ap={"pallet": 0.45, "box": 0.35},
            latency_ms=6.1,
            device="jetson-orin-nx",
            split_digest=DIGESTS["val"],
        )
    )


@pytest.fixture(scope="module")
def layout_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A book with a baseline and a 3-epoch run of 120 config keys, 4 of them asked for,
    whose note's result is its drafted result."""
    book = Book.open(str(tmp_path_factory.mktemp("layout") / "book"), create=True)
    add_run(book, "v1_base", curve=[0.2, 0.3, 0.36], val=0.36, per_class={"pallet": 0.3, "box": 0.4})
    _add_asked_run(book)
    draft_note(book, RUN, project="pallets", save=True)
    try:
        with ServerThread(create_app(book)) as server:
            yield server.url
    finally:
        book.close()


@pytest.fixture(scope="module")
def demo_server(demo_book: Book) -> Iterator[str]:
    with ServerThread(create_app(demo_book)) as server:
        yield server.url


def _top(page: Page, selector: str) -> float:
    box = page.locator(selector).bounding_box()
    assert box is not None, selector
    return float(box["y"])


def _charts_keep_their_legends_free(page: Page, selector: str) -> list[dict[str, Any]]:
    """Hover every chart of ``selector`` (its toolbar shows) and return its boxes, after
    checking that no toolbar overlaps a legend."""
    found = []
    for div in page.query_selector_all(selector):
        div.hover()
        boxes = page.evaluate(BOXES, div)
        assert boxes["legend"] and boxes["modebar"], boxes
        assert not _overlap(boxes["legend"], boxes["modebar"]), boxes
        assert not _overlap(boxes["plot"], boxes["modebar"]), boxes
        found.append(boxes)
    return found


def test_the_run_page_leads_with_what_matters(page: Page, layout_server: str, screenshots: Path) -> None:
    page.goto(f"{layout_server}/projects/pallets/runs/{RUN}")
    page.wait_for_selector(".chart[data-group] .main-svg")
    page.screenshot(path=str(screenshots / "run-layout.png"), full_page=True)

    # summary, note, evaluations and decisions come before the curves and the config
    evaluations = _top(page, "#evaluations")
    assert evaluations < 1000, evaluations  # on the first screen (the viewport is 1000 px high)
    assert _top(page, "#summary") < evaluations and _top(page, "#note") < evaluations
    assert evaluations < _top(page, "#run-decisions") < _top(page, "#curve-groups") < _top(page, "#config")
    assert page.locator("#summary tbody tr").first.text_content() is not None
    assert MAP in (page.locator("#summary tbody tr").first.text_content() or "")  # protocol metric first

    # the asked keys are shown, the other 116 folded
    shown = page.locator("#config tbody tr code").all_text_contents()
    assert sorted(shown) == sorted(ASKED)
    fold = page.locator("#config-rest")
    assert (fold.locator("summary").text_content() or "").strip() == "116 more config keys at their defaults"
    assert fold.get_attribute("open") is None
    assert not page.locator("#config-rest td", has_text="default_arg_000").is_visible()
    fold.locator("summary").click()
    assert page.locator("#config-rest td", has_text="default_arg_000").is_visible()
    assert "config_asked" not in (page.text_content("#environment") or "")

    # epochs 0, 1, 2 tick as whole numbers on every chart
    for div in page.query_selector_all(".chart[data-group]"):
        assert page.evaluate(X_TICKS, div) == ["0", "1", "2"]
    _charts_keep_their_legends_free(page, ".chart[data-group]")

    # the saved result is the draft: it is not repeated; a different result shows the draft
    assert page.locator("#note-draft-line").count() == 1 and page.locator("#note-draft-line").is_hidden()
    assert not page.get_by_text("Drafted result").is_visible()
    draft = page.text_content("#note-draft") or ""
    assert draft.startswith("pallet AP") and draft == page.text_content('.note-field[data-field="result"]')
    page.click("#note-edit")
    page.fill("textarea[name=result]", "worse than hoped")
    page.click("#note-save")
    page.wait_for_selector("#note-draft-line", state="visible")
    assert page.locator("#note-use-draft").is_hidden()  # offered only while editing
    page.reload()
    page.wait_for_selector("#note-draft-line", state="visible")


def test_run_page_toolbars_cover_no_legend_and_zoom_keeps_whole_epochs(page: Page, demo_server: str) -> None:
    page.goto(f"{demo_server}/projects/pallets/runs/v2_imgsz_1024")
    page.wait_for_selector(".chart[data-group] .main-svg")
    charts = _charts_keep_their_legends_free(page, ".chart[data-group]")
    assert len(charts) == 4
    # the metrics chart's legend (4 keys) is wide: it stops before its chart's toolbar
    legend, modebar = charts[0]["legend"], charts[0]["modebar"]
    assert legend[2] - legend[0] > 400 and legend[2] <= modebar[0], charts[0]
    # 60 epochs tick every 10; zoomed to four epochs, every epoch, never half of one
    metrics = page.query_selector('.chart[data-group="0"]')
    assert page.evaluate(X_TICKS, metrics) == ["0", "10", "20", "30", "40", "50"]
    page.evaluate("div => Plotly.relayout(div, {'xaxis.range': [10.2, 13.8]})", metrics)
    page.wait_for_function("div => div.layout.xaxis.dtick === 1", arg=metrics)
    assert page.evaluate(X_TICKS, metrics) == ["11", "12", "13"]
    page.evaluate("div => Plotly.relayout(div, {'xaxis.autorange': true})", metrics)
    page.wait_for_function("div => div.layout.xaxis.dtick === 10", arg=metrics)


def test_datasets_toolbars_cover_no_legend(page: Page, demo_server: str) -> None:
    page.goto(f"{demo_server}/datasets")
    page.wait_for_selector(".chart.bars .main-svg")
    assert len(_charts_keep_their_legends_free(page, ".chart.bars")) == 2


def test_compare_toolbars_cover_nothing_and_matrices_show_numbers(
    page: Page, demo_server: str, screenshots: Path
) -> None:
    page.set_viewport_size({"width": 700, "height": 1000})  # a narrow window: long names, little room
    page.goto(f"{demo_server}/projects/pallets/compare?runs={V1}&runs={V2}&runs={V3}")
    page.wait_for_selector("#confusion .matrix .main-svg")
    (boxes,) = _charts_keep_their_legends_free(page, "#curves")
    assert boxes["legend"][2] <= boxes["modebar"][0], boxes

    matrices = page.query_selector_all("#confusion .matrix.js-plotly-plot")
    assert len(matrices) == 5  # 3 runs and 2 differences against the baseline
    for i, div in enumerate(matrices):
        z = page.evaluate("div => div.data[0].z.flat()", div)
        cells = page.evaluate(CELLS, div)
        assert [float(c) for c in cells] == pytest.approx(z), i  # every cell, its own number
        if i >= 3:  # differences carry their sign
            assert any(c.startswith("+") for c in cells) and any(c.startswith("-") for c in cells), cells
    # a matrix has no toolbar; its title is a heading of the page, above the plot
    assert page.locator("#confusion .modebar").count() == 0
    assert page.locator("#confusion .gtitle").count() == 0
    titles = page.locator("#confusion .matrix-title").all_text_contents()
    assert titles == [V1, V2, V3, f"{V2} − {V1}", f"{V3} − {V1}"]
    for title, div in zip(page.query_selector_all("#confusion .matrix-title"), matrices, strict=True):
        title_box, plot_box = title.bounding_box(), div.bounding_box()
        assert title_box and plot_box and title_box["y"] + title_box["height"] <= plot_box["y"]

    page.set_viewport_size({"width": 1440, "height": 1000})
    page.wait_for_timeout(300)  # plotly redraws at the new width
    (wide,) = _charts_keep_their_legends_free(page, "#curves")
    assert wide["legend"][2] <= wide["modebar"][0], wide
    page.screenshot(path=str(screenshots / "compare-layout.png"), full_page=True)
