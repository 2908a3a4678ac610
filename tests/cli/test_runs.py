"""``trialbook runs`` and ``trialbook show`` on a real book, found from the current folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.cli import invoke
from trialbook.api import Book

MAP = "metrics/mAP50-95(B)"


@pytest.fixture
def filled(sqlite_book: Book) -> Book:
    """Three runs of pallets, each with a sealed test evaluation; v3_bad_lr has no note."""
    book = sqlite_book
    for name, top, parent in (
        ("v1_base", 0.5, None),
        ("v2_imgsz_1024", 0.6, "v1_base"),
        ("v3_bad_lr", 0.4, "v1_base"),
    ):
        with book.start("pallets", name, parent=parent, allow_unpinned=True, config={"imgsz": 640}) as run:
            for e in range(10):
                run.log({MAP: top * (e + 1) / 10}, epoch=e)
            run.log_eval("test", {MAP: 0.777777}, per_class_ap={"pallet": 0.666666})
            if name != "v3_bad_lr":
                run.note(hypothesis="h", result="r")
    return book


def test_runs_json_is_ranked(filled: Book) -> None:
    result = invoke("runs", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["project"] == "pallets" and data["metric"] == MAP
    assert [r["name"] for r in data["runs"]] == ["v2_imgsz_1024", "v1_base", "v3_bad_lr"]
    first = data["runs"][0]
    for key in (
        "name",
        "status",
        "dataset",
        "pinned",
        "parent",
        "best",
        "final",
        "epoch_of_best",
        "epochs",
        "has_note",
    ):
        assert key in first
    assert first["parent"] == "v1_base" and first["best"] == pytest.approx(0.6)
    assert first["epochs"] == 10 and first["pinned"] is False
    assert data["runs"][2]["has_note"] is False


def test_show_json_hides_sealed_numbers(filled: Book) -> None:
    result = invoke("show", "v1_base", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["summary"][MAP]["epoch_of_best"] == 9
    assert data["evaluations"][0]["sealed"] is True
    assert data["evaluations"][0]["metrics"] is None
    assert "0.7777" not in result.stdout and "0.6666" not in result.stdout
    human = invoke("show", "v1_base")
    assert "sealed" in human.output and "0.7777" not in human.output


def test_human_runs_table(filled: Book) -> None:
    result = invoke("runs")
    assert result.exit_code == 0
    assert "v2_imgsz_1024" in result.output and "UNPINNED" in result.output
    assert "note debt" in result.output


def test_errors_name_what_and_where(filled: Book, tmp_path: Path) -> None:
    missing = invoke("show", "v9_nothing")
    assert missing.exit_code == 1 and "no run named 'v9_nothing'" in missing.stderr
    nobook = invoke("runs", "--uri", str(tmp_path / "nowhere"))
    assert nobook.exit_code == 1 and "trialbook init" in nobook.stderr
    proj = invoke("runs", "--project", "nope")
    assert proj.exit_code == 1 and "no project named 'nope'" in proj.stderr
