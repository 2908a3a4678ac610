"""lint (each kind, --strict), noise (enough and not enough evidence) and name suggestions."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from support.cli import CLI, as_json
from support.runs import MAP, add_run
from trialbook.api import Book


def test_lint_lists_each_kind(tb: CLI, sqlite_book: Book) -> None:
    add_run(sqlite_book, "v1_good", note={"hypothesis": "h"})
    add_run(sqlite_book, "train3", note={"hypothesis": "h"})  # created around the naming check
    add_run(sqlite_book, "exp12", legacy=True, note={"hypothesis": "h"})
    add_run(sqlite_book, "v2_no_note")
    add_run(sqlite_book, "v3_running", status="running")
    add_run(sqlite_book, "v4_unpinned", pinned=False, digests={}, note={"result": "r"})
    add_run(sqlite_book, "v1_elsewhere", project="other")
    out = as_json(tb("lint", "--json"))
    found = {(p["run"], p["kind"]) for p in out["problems"]}
    assert found == {
        ("train3", "bad_name"),
        ("v2_no_note", "note_debt"),
        ("v4_unpinned", "unpinned"),
        ("v1_elsewhere", "note_debt"),
    }
    assert all(set(p) >= {"run", "kind", "detail"} for p in out["problems"])
    bad = next(p for p in out["problems"] if p["kind"] == "bad_name")
    assert "v3_what_changed" in bad["detail"]
    assert [(n["run"], n["kind"]) for n in out["notices"]] == [("exp12", "legacy_name")]
    human = tb("lint").stdout
    assert "legacy-named" in human and "exp12" in human and "note_debt" in human
    one = as_json(tb("lint", "--project", "other", "--json"))
    assert [p["run"] for p in one["problems"]] == ["v1_elsewhere"]
    assert tb("lint", "--strict", code=1).exit_code == 1
    assert "no project named 'nope'" in tb("lint", "--project", "nope", code=1).stderr


def test_a_clean_book_lints_clean_even_strict(tb: CLI, sqlite_book: Book) -> None:
    add_run(sqlite_book, "v1_good", note={"hypothesis": "h"})
    assert as_json(tb("lint", "--strict", "--json")) == {
        "projects": ["pallets"],
        "problems": [],
        "notices": [],
    }
    assert "no problems" in tb("lint").stdout


def seeds(book: Book, values: Sequence[float], config: Mapping[str, Any] | None = None) -> None:
    for seed, value in enumerate(values):
        add_run(
            book,
            f"v1_seed{seed}",
            curve=[value / 2, value],
            config={"lr0": 0.01, "imgsz": 640, "seed": seed, **(config or {})},
        )


def test_noise_from_seed_repeats(tb: CLI, sqlite_book: Book) -> None:
    seeds(sqlite_book, [0.50, 0.51, 0.52])
    add_run(sqlite_book, "v2_other_lr", curve=[0.7], config={"lr0": 0.001, "imgsz": 640, "seed": 0})
    add_run(
        sqlite_book,
        "v3_running",
        curve=[0.1],
        status="running",
        config={"lr0": 0.01, "imgsz": 640, "seed": 9},
    )
    out = as_json(tb("noise", "--json"))
    assert out["enough"] is True and out["runs_used"] == 3
    assert out["std"] == pytest.approx(0.01) and out["suggested_noise"] == pytest.approx(0.02)
    assert out["current_noise"] == 0.005 and out["applied"] is False and out["metric"] == MAP
    assert "suggested" in tb("noise").stdout
    applied = as_json(tb("noise", "--apply", "--json"))
    assert applied["applied"] is True
    shown = as_json(tb("project", "show", "pallets", "--json"))
    assert shown["protocol"]["noise"] == pytest.approx(0.02)
    assert shown["history"][-1]["reason"].startswith("trialbook noise: 3 runs")


def test_noise_without_enough_repeats_keeps_the_default(tb: CLI, sqlite_book: Book) -> None:
    seeds(sqlite_book, [0.50, 0.51])
    out = as_json(tb("noise", "--project", "pallets", "--apply", "--json"))
    assert out["enough"] is False and out["suggested_noise"] is None and out["applied"] is False
    assert "not enough repeats" in out["message"]
    assert "keeping the protocol's noise threshold 0.005" in tb("noise").stdout
    assert as_json(tb("project", "show", "pallets", "--json"))["protocol"]["noise"] == 0.005


def test_name_suggestion_from_an_args_yaml(tb: CLI, sqlite_book: Book, tmp_path: Path) -> None:
    add_run(
        sqlite_book,
        "v3_pallets_added",
        config={"lr0": 0.001, "mosaic": 1.0, "imgsz": 640, "name": "train3", "epochs": 100},
    )
    add_run(sqlite_book, "v4_lr0_0.0005_no_mosaic")  # taken: the suggestion moves on
    args = tmp_path / "args.yaml"
    args.write_text("lr0: 0.0005\nmosaic: 0.0\nimgsz: 640\nname: train4\nepochs: 100\n")
    out = as_json(tb("name", "--parent", "v3_pallets_added", "--config", str(args), "--json"))
    assert out["name"] == "v4b_lr0_0.0005_no_mosaic" and out["parent"] == "v3_pallets_added"
    assert out["changed"]["lr0"] == [0.001, 0.0005] and out["changed"]["mosaic"] == [1.0, 0.0]
    human = tb("name", "--parent", "v3_pallets_added", "--config", str(args)).stdout
    assert "v4b_lr0_0.0005_no_mosaic" in human and "mosaic" in human
    as_json_file = tmp_path / "cfg.json"
    as_json_file.write_text(json.dumps({"lr0": 0.001, "mosaic": 1.0, "imgsz": 1024, "epochs": 100}))
    assert (
        as_json(tb("name", "--parent", "v3_pallets_added", "--config", str(as_json_file), "--json"))["name"]
        == "v4_imgsz_1024"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    assert (
        "must hold a mapping"
        in tb("name", "--parent", "v3_pallets_added", "--config", str(bad), code=1).stderr
    )
    assert (
        "cannot read config file"
        in tb("name", "--parent", "v3_pallets_added", "--config", str(tmp_path / "nope.yaml"), code=1).stderr
    )
    broken = tmp_path / "broken.json"
    broken.write_text("{nope")
    assert (
        "is not valid JSON"
        in tb("name", "--parent", "v3_pallets_added", "--config", str(broken), code=1).stderr
    )
