"""``trialbook data``: tags never move, status and diff against the files, list and show."""

from __future__ import annotations

import json
from pathlib import Path

from support.cli import invoke
from trialbook.api import Book
from trialbook.services import datasets as versions


def test_tag_is_immutable_and_retagging_same_content_is_a_no_op(sqlite_book: Book, data_yaml: Path) -> None:
    first = invoke("data", "tag", "pallets", str(data_yaml), "--tag", "v1", "--json")
    assert first.exit_code == 0, first.output
    out = json.loads(first.stdout)
    assert out["created"] is True and len(out["digest"]) == 64
    assert out["splits"]["train"]["images"] == 6 and out["splits"]["test"]["images"] == 3
    again = json.loads(invoke("data", "tag", "pallets", str(data_yaml), "--tag", "v1", "--json").stdout)
    assert again["created"] is False and again["digest"] == out["digest"]
    (data_yaml.parent / "labels" / "train" / "train_0000.txt").write_text("1 0.5 0.5 0.1 0.1\n")
    moved = invoke("data", "tag", "pallets", str(data_yaml), "--tag", "v1")
    assert moved.exit_code == 1
    assert f"already points to version {out['digest'][:12]}" in moved.stderr
    assert sqlite_book.store.get_tag("pallets", "v1").digest == out["digest"]
    assert len(sqlite_book.store.list_dataset_versions("pallets")) == 1


def test_status_and_diff(sqlite_book: Book, data_yaml: Path) -> None:
    versions.tag(sqlite_book, "pallets", data_yaml, "v1")
    clean = invoke("data", "status", "pallets:v1", "--json")
    assert clean.exit_code == 0 and json.loads(clean.stdout)["clean"] is True
    root = data_yaml.parent
    (root / "labels" / "val" / "val_0000.txt").write_text("0 0.5 0.5 0.2 0.2\n0 0.3 0.3 0.1 0.1\n")
    (root / "images" / "train" / "train_0001.png").unlink()
    dirty = invoke("data", "status", "pallets", "--json")  # the newest tag of pallets
    assert dirty.exit_code == 1
    status = json.loads(dirty.stdout)
    assert {"dataset", "tag", "clean", "added", "removed", "changed"} <= set(status)
    assert status["clean"] is False and status["tag"] == "v1"
    assert status["changed"] == {"val": ["labels/val/val_0000.txt"]}
    # a label belongs to its image: removing the image drops both from the version
    assert status["removed"] == {"train": ["images/train/train_0001.png", "labels/train/train_0001.txt"]}
    pallet_val = next(c for c in status["splits"]["val"]["classes"] if c["name"] == "pallet")
    assert pallet_val["instances_delta"] != 0
    human = invoke("data", "status", "pallets:v1")
    assert "differs from pallets:v1" in human.output and "val_0000.txt" in human.output
    versions.tag(sqlite_book, "pallets", data_yaml, "v2")
    diff = json.loads(invoke("data", "diff", "pallets:v1", "pallets:v2", "--json").stdout)
    assert diff["clean"] is False
    assert diff["removed"]["train"] == ["images/train/train_0001.png", "labels/train/train_0001.txt"]
    listed = json.loads(invoke("data", "list", "--json").stdout)["versions"]
    assert [v["tags"] for v in listed] == [["v1"], ["v2"]]
    shown = json.loads(invoke("data", "show", "pallets:v2", "--json").stdout)
    assert shown["tags"] == ["v2"] and shown["class_names"][0] == "pallet"


def test_a_failed_tag_leaves_nothing_behind(sqlite_book: Book, data_yaml: Path) -> None:
    bad = data_yaml.parent / "labels" / "train" / "train_0003.txt"
    bad.write_text("0 0.5 0.5 0.1 0.1\n7 0.5 0.5 0.1 0.1\n")  # class 7 of 4
    result = invoke("data", "tag", "pallets", str(data_yaml), "--tag", "v1")
    assert result.exit_code == 1 and "train_0003.txt:2" in result.stderr
    assert sqlite_book.store.list_dataset_versions() == [] and sqlite_book.store.list_tags() == []


def test_a_relative_path_in_data_yaml_is_warned_about(sqlite_book: Book, data_yaml: Path) -> None:
    assert versions.source_warnings(data_yaml) == []  # no `path:` at all: Ultralytics agrees
    text = data_yaml.read_text()
    data_yaml.write_text("path: .\n" + text)
    result = invoke("data", "tag", "pallets", str(data_yaml), "--tag", "v1", "--json")
    assert result.exit_code == 0
    assert "`path: .` is relative" in result.stderr
    assert json.loads(result.stdout)["warnings"][0].endswith("or make it absolute")
    data_yaml.write_text(f"path: {data_yaml.parent}\n" + text)
    assert versions.source_warnings(data_yaml) == []
