"""Diffs between manifests: files per split, per-class deltas, the short text."""

from __future__ import annotations

import json
from pathlib import Path

from support.datasets import box, make_dataset, write_image, write_label
from trialbook.datasets import build_manifest, diff_manifests


def test_same_manifest_is_clean(dataset: Path) -> None:
    m = build_manifest(dataset)
    d = diff_manifests(m, build_manifest(dataset))
    assert d.clean
    assert all(s.clean for s in d.splits.values())
    assert d.short_text() == f"dataset unchanged ({m.short})"
    assert json.loads(json.dumps(d.to_dict()))["clean"] is True


def test_added_removed_changed_and_class_deltas(dataset: Path) -> None:
    root = dataset.parent
    old = build_manifest(dataset)
    write_image(root / "images" / "train" / "new.jpg")
    write_label(root / "labels" / "train" / "new.txt", [box(2), box(2)])
    (root / "images" / "train" / "b.png").unlink()
    (root / "labels" / "train" / "b.txt").unlink()
    write_label(root / "labels" / "train" / "a.txt", [box(0)])  # was 0, 0, 1
    new = build_manifest(dataset)

    d = diff_manifests(old, new)
    assert not d.clean
    train = d.splits["train"]
    assert train.status == "changed"
    assert train.added == ("images/train/new.jpg", "labels/train/new.txt")
    assert train.removed == ("images/train/b.png", "labels/train/b.txt")
    assert train.changed == ("labels/train/a.txt",)
    assert (train.images_before, train.images_after) == (4, 4)
    deltas = {c.name: c for c in train.classes}
    assert set(deltas) == {"cat", "dog", "bird"}
    assert (deltas["cat"].instances_delta, deltas["cat"].images_delta) == (-1, 0)
    assert (deltas["dog"].images_before, deltas["dog"].images_after) == (2, 0)
    assert (deltas["bird"].instances_delta, deltas["bird"].images_delta) == (2, 1)
    assert d.splits["val"].clean and d.splits["test"].clean

    text = d.short_text()
    assert f"dataset changed: {old.short} -> {new.short}" in text
    assert "train: 2 added, 2 removed, 1 changed (4 -> 4 images)" in text
    assert "  + images/train/new.jpg" in text
    assert "  - labels/train/b.txt" in text
    assert "  ~ labels/train/a.txt" in text
    assert "  bird: images +1 (0 -> 1), instances +2 (0 -> 2)" in text
    assert "val: unchanged" in text

    as_dict = json.loads(json.dumps(d.to_dict()))
    assert as_dict["splits"]["train"]["changed"] == ["labels/train/a.txt"]
    assert as_dict["splits"]["train"]["classes"][0]["instances_delta"] in (-1, 2, 0)


def test_short_text_limits_examples(tmp_path: Path) -> None:
    config = make_dataset(tmp_path / "ds", {"train": {"a.jpg": None}, "val": {"v.jpg": None}})
    old = build_manifest(config)
    for i in range(30):
        write_image(tmp_path / "ds" / "images" / "train" / f"n{i:02d}.jpg")
    (tmp_path / "ds" / "images" / "train" / "a.jpg").write_bytes(b"changed")
    d = diff_manifests(old, build_manifest(config))
    text = d.short_text(limit=5)
    assert text.count("\n  + ") == 4 and text.count("\n  ~ ") == 1
    assert "... and 26 more files" in text
    assert "30 added, 0 removed, 1 changed" in text


def test_split_added_and_removed(tmp_path: Path) -> None:
    with_test = build_manifest(make_dataset(tmp_path / "a"))
    without = build_manifest(
        make_dataset(
            tmp_path / "b",
            {
                "train": {"a.jpg": [box(0), box(0), box(1)], "b.png": [box(1)], "c.jpg": None, "d.jpg": []},
                "val": {"e.jpg": [box(2)], "f.jpg": [box(0), box(2), box(2)]},
            },
        )
    )
    d = diff_manifests(without, with_test)
    assert d.splits["test"].status == "added"
    assert d.splits["test"].added == ("images/test/g.jpg", "labels/test/g.txt")
    assert d.splits["train"].clean and d.splits["val"].clean
    assert "test: new split (1 images)" in d.short_text()
    back = diff_manifests(with_test, without)
    assert back.splits["test"].status == "removed"
    assert "test: split removed (had 1 images)" in back.short_text()


def test_class_names_change_is_reported_and_matched_by_name(tmp_path: Path) -> None:
    old = build_manifest(
        make_dataset(
            tmp_path / "a",
            {"train": {"x.jpg": [box(0), box(1)]}, "val": {"v.jpg": None}},
            names=["cat", "dog"],
        )
    )
    # Same labels, but class 0 is now "dog" and class 1 "cat": ids swapped.
    new = build_manifest(
        make_dataset(
            tmp_path / "b",
            {"train": {"x.jpg": [box(1), box(0)]}, "val": {"v.jpg": None}},
            names=["dog", "cat"],
        )
    )
    d = diff_manifests(old, new)
    assert d.class_names_changed
    assert d.splits["train"].classes == ()  # per class name, nothing moved
    assert "same names, new order: class ids changed" in d.short_text()
    grown = build_manifest(
        make_dataset(
            tmp_path / "c",
            {"train": {"x.jpg": [box(0), box(1)]}, "val": {"v.jpg": None}},
            names=["cat", "dog", "pallet"],
        )
    )
    assert "class names: 2 -> 3 classes; added pallet" in diff_manifests(old, grown).short_text()


def test_definition_change_only(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    config = make_dataset(root, {"train": {"a.jpg": [box(0)]}, "val": {"v.jpg": None}})
    old = build_manifest(config)
    (root / "train.txt").write_text("images/train/a.jpg\n")
    listed = make_dataset(root, {}, config={"train": "train.txt", "val": "images/val"})
    d = diff_manifests(old, build_manifest(listed))
    train = d.splits["train"]
    assert train.status == "changed" and train.definition_changed
    assert (train.added, train.removed, train.changed) == ((), (), ())
    assert "definition: ['images/train'] -> ['train.txt']" in d.short_text()
