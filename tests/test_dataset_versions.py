"""Dataset versions in a book: tags never move, status and diff, pinned starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import trialbook as tb
from trialbook.cli.main import cli
from trialbook.demo.story import write_dataset
from trialbook.errors import Conflict, InvalidInput
from trialbook.services import datasets as versions


@pytest.fixture
def shop(tmp_path, monkeypatch):
    """A book and a small YOLO dataset beside it; cwd is the book's folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRIALBOOK_URI", raising=False)
    book = tb.init(tmp_path)
    data_yaml = write_dataset(tmp_path / "data", {"train": 6, "val": 3, "test": 3}, seed=1)
    return book, data_yaml


def invoke(*args: str):
    result = CliRunner().invoke(cli, list(args))
    return result


def test_tag_is_immutable_and_retagging_same_content_is_a_no_op(shop):
    book, data_yaml = shop
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
    assert book.store.get_tag("pallets", "v1").digest == out["digest"]
    assert len(book.store.list_dataset_versions("pallets")) == 1


def test_status_and_diff(shop):
    book, data_yaml = shop
    versions.tag(book, "pallets", data_yaml, "v1")
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
    versions.tag(book, "pallets", data_yaml, "v2")
    diff = json.loads(invoke("data", "diff", "pallets:v1", "pallets:v2", "--json").stdout)
    assert diff["clean"] is False
    assert diff["removed"]["train"] == ["images/train/train_0001.png", "labels/train/train_0001.txt"]
    listed = json.loads(invoke("data", "list", "--json").stdout)["versions"]
    assert [v["tags"] for v in listed] == [["v1"], ["v2"]]
    shown = json.loads(invoke("data", "show", "pallets:v2", "--json").stdout)
    assert shown["tags"] == ["v2"] and shown["class_names"][0] == "pallet"


def test_pinned_start_refuses_changed_files_and_unpinned_is_recorded(shop):
    book, data_yaml = shop
    version = versions.tag(book, "pallets", data_yaml, "v1")
    with book.start("pallets", "v1_pinned", dataset="pallets:v1") as run:
        pass
    rec = book.run(run.name)
    assert rec.pinned and rec.dataset == "pallets:v1"
    assert rec.split_digests["val"] == version["splits"]["val"]["digest"]
    assert rec.split_digests["dataset"] == version["digest"]
    label = data_yaml.parent / "labels" / "train" / "train_0002.txt"
    label.write_text(label.read_text() + "2 0.5 0.5 0.1 0.1\n")
    with pytest.raises(InvalidInput) as refused:
        book.start("pallets", "v2_after_edit", dataset="pallets:v1")
    message = str(refused.value)
    assert "no longer match pallets:v1" in message and "train_0002.txt" in message
    assert "trialbook data tag pallets" in message and "allow_unpinned=True" in message
    with pytest.raises(tb.NotFound):
        book.run("v2_after_edit")  # nothing was recorded
    with book.start("pallets", "v2_after_edit", dataset="pallets:v1", allow_unpinned=True) as run:
        pass
    rec = book.run(run.name)
    assert rec.pinned is False and rec.dataset == "pallets:v1"
    table = json.loads(invoke("runs", "--json").stdout)
    assert {r["name"]: r["pinned"] for r in table["runs"]} == {"v1_pinned": True, "v2_after_edit": False}
    assert "UNPINNED" in invoke("runs").output


def test_unknown_tags_and_bad_names_are_explained(shop):
    book, data_yaml = shop
    with pytest.raises(tb.NotFound, match="trialbook data tag pallets SOURCE --tag v9"):
        book.start("pallets", "v1_x", dataset="pallets:v9")
    with pytest.raises(InvalidInput, match="must be NAME:TAG"):
        book.start("pallets", "v1_x", dataset="pallets")
    with pytest.raises(InvalidInput, match="tag 'v 1'"):
        versions.tag(book, "pallets", data_yaml, "v 1")


def test_a_failed_tag_leaves_nothing_behind(shop):
    book, data_yaml = shop
    bad = data_yaml.parent / "labels" / "train" / "train_0003.txt"
    bad.write_text("0 0.5 0.5 0.1 0.1\n7 0.5 0.5 0.1 0.1\n")  # class 7 of 4
    result = invoke("data", "tag", "pallets", str(data_yaml), "--tag", "v1")
    assert result.exit_code == 1 and "train_0003.txt:2" in result.stderr
    assert book.store.list_dataset_versions() == [] and book.store.list_tags() == []


def test_conflicting_tag_from_another_process_is_refused(shop):
    book, data_yaml = shop
    versions.tag(book, "pallets", data_yaml, "v1")
    other = Path(data_yaml.parent.parent / "other")
    other_yaml = write_dataset(other, {"train": 2, "val": 1}, seed=9)
    with pytest.raises(Conflict, match="Tags never move"):
        versions.tag(book, "pallets", other_yaml, "v1")


def test_a_relative_path_in_data_yaml_is_warned_about(shop):
    _book, data_yaml = shop
    assert versions.source_warnings(data_yaml) == []  # no `path:` at all: Ultralytics agrees
    text = data_yaml.read_text()
    data_yaml.write_text("path: .\n" + text)
    result = invoke("data", "tag", "pallets", str(data_yaml), "--tag", "v1", "--json")
    assert result.exit_code == 0
    assert "`path: .` is relative" in result.stderr
    assert json.loads(result.stdout)["warnings"][0].endswith("or make it absolute")
    data_yaml.write_text(f"path: {data_yaml.parent}\n" + text)
    assert versions.source_warnings(data_yaml) == []
