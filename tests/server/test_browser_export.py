"""The HTML export (``trialbook export --format html``) in a real browser (Debian's chromium,
Playwright): decision blocks and the chart's legend are shown whole at any window width, the
page never scrolls sideways, and the chart's epoch axis ticks at whole epochs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from support.runs import MAP
from trialbook.api import Book
from trialbook.services.decisions import decide
from trialbook.services.reports import build_report, to_html
from trialbook.services.reports.html import epoch_ticks, overlay_svg

if TYPE_CHECKING:  # playwright may be missing: the page fixture then skips
    from playwright.sync_api import Page

V1, V2, V3 = "v1_baseline", "v2_imgsz_1024", "v3_pallets_added_imgsz_640"
X_LABELS = re.compile(r'text-anchor="middle" font-size="11">([^<]*)</text>')
# every element of a kind whose content is wider or taller than its box (cut off or scrolled)
CUT = """sel => [...document.querySelectorAll(sel)]
  .filter(n => n.scrollWidth > n.clientWidth || n.scrollHeight > n.clientHeight)
  .map(n => [n.scrollWidth, n.clientWidth, n.textContent.slice(0, 60)])"""


@pytest.fixture(scope="module")
def export(demo_book: Book, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo book's export, after two decisions (each with lines of 160+ characters)."""
    decide(demo_book, V3, V2, project="pallets")
    decide(demo_book, V2, V1, project="pallets")
    target = tmp_path_factory.mktemp("export") / "pallets.html"
    target.write_text(to_html(build_report(demo_book, project="pallets")), encoding="utf-8")
    return target


@pytest.mark.parametrize("width", [1280, 700])
def test_decision_blocks_and_the_legend_are_shown_whole(
    page: Page, export: Path, screenshots: Path, width: int
) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(export.as_uri())
    blocks = page.locator("pre")
    assert blocks.count() == 2
    longest = max((line for text in blocks.all_text_contents() for line in text.splitlines()), key=len)
    assert len(longest) > 150  # wider than the page: it must wrap to be seen
    assert page.evaluate(CUT, "pre") == []
    assert page.evaluate(CUT, "ul.legend li") == []
    assert page.locator("ul.legend li").all_text_contents() == [V3, V2, V1]
    # the page never scrolls sideways: a wide table scrolls in its own box
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width
    page.screenshot(path=str(screenshots / f"export-{width}.png"), full_page=True)


def test_the_export_chart_ticks_whole_epochs() -> None:
    short = overlay_svg({"v1_a": [[0, 0.1], [1, 0.2], [2, 0.3]], "v2_b": [[0, 0.2], [1, 0.3]]}, MAP)
    assert X_LABELS.findall(short) == ["0", "1", "2"]
    one = overlay_svg({"v1_a": [[4, 0.1]]}, MAP)
    assert X_LABELS.findall(one) == ["4", "5"]
    assert epoch_ticks(1, 3) == [1, 2, 3]
    assert epoch_ticks(0, 59) == [0, 10, 20, 30, 40, 50]
    assert epoch_ticks(3, 17) == [4, 6, 8, 10, 12, 14, 16]
    assert epoch_ticks(0, 1000) == [0, 200, 400, 600, 800, 1000]
