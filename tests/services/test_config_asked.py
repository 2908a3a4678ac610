"""What was asked for, and only training keys: ``trialbook name`` compares the parent's
asked-for config with the user's file (a whole Ultralytics args.yaml reduced to what differs
from Ultralytics' defaults), and compare and the exports leave bookkeeping keys out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from support.extras import require_ultralytics
from trialbook.api import Book
from trialbook.services.compare import compare_runs
from trialbook.services.lint import suggest_run_name, ultralytics_defaults
from trialbook.services.reports.build import build_report
from trialbook.services.reports.markdown import to_markdown


def _resolved(defaults: dict[str, Any], **asked: Any) -> dict[str, Any]:
    """A config as the Ultralytics tracker records it once optimizer=auto is resolved."""
    return {**defaults, **asked, "optimizer": "AdamW", "lr0": 0.001429, "warmup_bias_lr": 0.0}


def _start(book: Book, name: str, config: dict[str, Any], asked: dict[str, Any] | None = None) -> None:
    env = {"config_asked": asked} if asked is not None else None
    with book.start("shapes", name, config=config, allow_unpinned=True, env=env):
        pass


def test_an_args_yaml_is_compared_with_what_the_parent_asked_for(sqlite_book: Book, tmp_path: Path) -> None:
    require_ultralytics()
    defaults, whose = ultralytics_defaults()
    from ultralytics.cfg import DEFAULT_CFG_DICT

    assert defaults == dict(DEFAULT_CFG_DICT)  # read without importing torch, the same dict
    asked = {"model": "yolo11n.yaml", "epochs": 30, "imgsz": 320, "name": "v3_imgsz_320"}
    _start(sqlite_book, "v3_imgsz_320", {**_resolved(defaults, **asked), "save_dir": "runs/a"}, asked)
    args = {**defaults, "model": "yolo11n.yaml", "epochs": 30, "imgsz": 640, "name": "v4", "workers": 2}
    path = tmp_path / "args.yaml"
    path.write_text(yaml.safe_dump({**args, "save_dir": "runs/detect/v4"}))
    got = suggest_run_name(sqlite_book, "v3_imgsz_320", path)
    assert got["name"] == "v4_imgsz_640"
    assert got["changed"] == {"imgsz": [320, 640]}
    assert got["config_is"] == "whole" and whose is not None and got["defaults"] == whose

    # a partial file names what changes; what it does not mention stays as the parent had it
    part = tmp_path / "change.yaml"
    part.write_text("lr0: 0.005\ndevice: cpu\n")
    got = suggest_run_name(sqlite_book, "v3_imgsz_320", part)
    assert (got["name"], got["changed"], got["config_is"]) == (
        "v4_lr0_0.005",
        {"lr0": [0.01, 0.005]},
        "partial",
    )

    # an imported parent (its args.yaml, no record of what was asked) is reduced the same way
    _start(sqlite_book, "v1_imported", {**defaults, "imgsz": 320, "save_dir": "runs/b"})
    got = suggest_run_name(sqlite_book, "v1_imported", path)
    assert got["changed"] == {"epochs": [100, 30], "imgsz": [320, 640], "model": [None, "yolo11n.yaml"]}


def test_compare_and_the_exports_leave_bookkeeping_keys_out(sqlite_book: Book) -> None:
    base = {"imgsz": 320, "lr0": 0.01, "device": "cpu", "workers": 8, "train": {"exist_ok": False}}
    _start(sqlite_book, "v1_base", {**base, "name": "v1_base", "save_dir": "runs/detect/v1"})
    other = {**base, "imgsz": 640, "device": "0", "workers": 2, "train": {"exist_ok": True}}
    _start(sqlite_book, "v2_imgsz_640", {**other, "name": "v2_imgsz_640", "save_dir": "runs/detect/v2"})
    compared = compare_runs(sqlite_book, ["v1_base", "v2_imgsz_640"], record=False)
    assert compared["config_diff"] == {"imgsz": {"v1_base": 320, "v2_imgsz_640": 640}}
    report = build_report(sqlite_book, project="shapes")
    assert report["config_diff"] == compared["config_diff"]
    text = to_markdown(report)
    section = text.split("## Config keys that differ", 1)[1].split("## Decisions", 1)[0]
    assert "imgsz" in section and "save_dir" not in section and "workers" not in section
