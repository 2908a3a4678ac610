"""export: Markdown, HTML (self-contained, with an overlay chart), CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from support.cli import CLI
from support.runs import DEVICE, add_run, set_protocol
from trialbook.api import Book


@pytest.fixture
def filled(sqlite_book: Book, tb: CLI) -> Book:
    """Two runs of pallets with a WIN decision between them, and one run of another project."""
    set_protocol(sqlite_book, latency_budget_ms=8.0, device=DEVICE)
    common: dict[str, Any] = {"per_class": {"pallet": 0.5}, "latency": 4.0}
    add_run(
        sqlite_book,
        "v1_base",
        curve=[0.2, 0.4, 0.5],
        val=0.5,
        test=0.5,
        config={"imgsz": 640},
        note={"hypothesis": "stock <model> | baseline", "result": "ok"},
        **common,
    )
    add_run(
        sqlite_book,
        "v2_imgsz_1024",
        parent="v1_base",
        curve=[0.3, 0.5, 0.6],
        val=0.6,
        test=0.6,
        config={"imgsz": 1024},
        **common,
    )
    add_run(sqlite_book, "v1_z", project="other")
    tb("decide", "v2_imgsz_1024", "--baseline", "v1_base")
    return sqlite_book


def test_markdown(tb: CLI, filled: Book) -> None:
    md = tb("export", "--project", "pallets", "--format", "md").stdout
    assert md.startswith("# trialbook report: pallets")
    for part in (
        "## Protocol",
        "## Protocol history",
        "latency_budget_ms",
        "test setup",
        "## Runs",
        "## Config keys that differ",
        "## Decisions",
        "## Notes",
        "v2_imgsz_1024 vs v1_base: WIN",
        "Verdict:   WIN",
        "note debt",
    ):
        assert part in md, part
    assert "stock &lt;model&gt; \\| baseline" in md  # table-safe, HTML-escaped
    runs = md.split("## Runs")[1].split("##")[0]
    assert runs.index("v2_imgsz_1024") < runs.index("v1_base")  # ranked
    assert "▁" in runs


def test_html_is_self_contained_with_an_overlay_chart(tb: CLI, filled: Book, tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    result = tb("export", "--project", "pallets", "--format", "html", "-o", str(target))
    assert f"wrote {target}" in result.stderr and result.stdout == ""
    page = target.read_text()
    assert page.startswith("<!DOCTYPE html>") and "</html>" in page
    assert "<svg" in page and page.count("<polyline") == 2
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page)
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert "<link" not in page and "@import" not in page
    assert "stock &lt;model&gt; | baseline" in page  # escaped
    assert "Verdict:   WIN" in page


def test_csv(tb: CLI, filled: Book) -> None:
    text = tb("export", "--project", "pallets", "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["run"] for r in rows] == ["v2_imgsz_1024", "v1_base"]
    assert rows[0]["rank"] == "1" and float(rows[0]["best"]) == pytest.approx(0.6)
    assert rows[0]["decisions"] == "WIN vs v1_base" and rows[1]["hypothesis"] == "stock <model> | baseline"
    assert rows[0]["metric"] == "metrics/mAP50-95(B)"


def test_json_and_a_selection_of_runs(tb: CLI, filled: Book) -> None:
    report = json.loads(tb("export", "v1_base", "--format", "json").stdout)
    for key in (
        "project",
        "protocol",
        "protocol_history",
        "runs",
        "curves",
        "decisions",
        "shipped",
        "config_diff",
    ):
        assert key in report
    assert [r["name"] for r in report["runs"]] == ["v1_base"]
    assert report["runs"][0]["note"]["result"] == "ok"
    assert report["curves"]["v1_base"] == [[0, 0.2], [1, 0.4], [2, 0.5]]
    assert len(report["decisions"]) == 1  # v1_base is the baseline of the decision
    sealed = [e for e in report["runs"][0]["evaluations"] if e["split"] == "test"]
    assert sealed and sealed[0]["metrics"] is None
    whole = json.loads(tb("export", "--project", "pallets", "--format", "json").stdout)
    assert len(whole["runs"]) == 2


def test_export_errors(tb: CLI, filled: Book) -> None:
    assert "several projects" in tb("export", "v1_base", "other/v1_z", code=1).stderr
    assert "choose one with --project" in tb("export", code=1).stderr
    assert tb("export", "--project", "pallets", "--format", "pdf", code=2).exit_code == 2
    empty = tb("export", "--project", "other", "--format", "html").stdout
    assert "<svg" not in empty and "No per-epoch values" in empty
