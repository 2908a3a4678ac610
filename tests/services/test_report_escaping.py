"""Reports carry text from the book (run names, notes, reasons, config values) into
Markdown, CSV and HTML: each format escapes it, so a note holding ``<script>`` or
``<img onerror=...>`` stays text, a cell starting with ``=`` is no formula, and a ``|``
or a line break keeps a table's rows whole."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest

from support.runs import add_run
from trialbook.api import Book
from trialbook.services.reports import build_report, to_csv, to_html, to_markdown

SCRIPT = "<script>alert(1)</script>"
IMG = '<img src=x onerror="alert(2)">'
FORMULA = "=cmd|' /C calc'!A0"


@pytest.fixture
def hostile(book: Book) -> Book:
    """Two runs of pallets whose names, notes and configs hold HTML and formulas."""
    add_run(
        book,
        "v1_base",
        curve=[0.2, 0.4],
        config={"imgsz": 640, "note": "=1+1"},
        note={
            "hypothesis": f"{SCRIPT} | pipes\nand a new line",
            "change": IMG,
            "result": FORMULA,
            "next": "@SUM(A1:A2)",
            "text": "```\n# a heading\n```",
        },
    )
    add_run(
        book,
        f"v2_{IMG}",
        curve=[0.3, 0.5],
        parent="v1_base",
        config={"imgsz": 1024, "note": "+2"},
        note={"hypothesis": "-3+4", "change": "\tx", "result": "\rx", "next": "plain"},
        legacy=True,
    )
    return book


def test_markdown_escapes_html_and_keeps_table_rows_whole(hostile: Book) -> None:
    md = to_markdown(build_report(hostile, project="pallets"))
    assert "<script" not in md and "<img" not in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    assert '&lt;img src=x onerror="alert(2)"&gt;' in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt; \\| pipes and a new line" in md  # one line
    # every line of a table has as many unescaped cell separators as the header
    for table in re.findall(r"(?:^\|.*\|$\n)+", md, flags=re.MULTILINE):
        rows = table.strip("\n").split("\n")
        widths = {len(re.findall(r"(?<!\\)\|", row)) for row in rows}
        assert len(widths) == 1, rows


def test_markdown_code_spans_and_fences_cannot_be_closed_by_the_text(hostile: Book) -> None:
    report = build_report(hostile, project="pallets")
    assert report["decisions"] == []
    report["metric"] = "metrics/`x`"
    decisions: list[Any] = [
        {
            "candidate": "v2_x",
            "baseline": "v1_base",
            "verdict": "WIN",
            "at": 0.0,
            "who": "<b>me</b>",
            "text": "Verdict: WIN\n```\n<script>x</script>",
        }
    ]
    report["decisions"] = decisions
    md = to_markdown(report)
    assert "`` metrics/`x` ``" in md
    fence = md.split("### v2_x vs v1_base: WIN")[1]
    assert "&lt;b&gt;me&lt;/b&gt;" in fence.splitlines()[0]
    assert "\n````text\nVerdict: WIN\n```\n<script>x</script>\n````\n" in fence


def test_csv_cells_that_would_be_formulas_get_a_quote(hostile: Book) -> None:
    text = to_csv(build_report(hostile, project="pallets"))
    rows = {r["run"]: r for r in csv.DictReader(io.StringIO(text))}
    first, second = rows["v1_base"], rows[f"v2_{IMG}"]
    assert first["result"] == "'" + FORMULA and first["next"] == "'@SUM(A1:A2)"
    assert second["hypothesis"] == "'-3+4" and second["change"] == "'\tx" and second["result"] == "'\rx"
    assert second["next"] == "plain" and second["parent"] == "v1_base"
    assert first["hypothesis"].startswith(SCRIPT)  # CSV is text: nothing to escape but formulas
    assert float(first["best"]) == pytest.approx(0.4)  # numbers stay numbers
    for row in rows.values():
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), row


def test_html_escapes_every_text(hostile: Book) -> None:
    page = to_html(build_report(hostile, project="pallets"))
    assert "<script" not in page and "<img" not in page and 'onerror="' not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in page
