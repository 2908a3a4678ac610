"""Manifests: files, counts, digests and their stability, serialization."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
from blake3 import blake3

from support.datasets import (
    NAMES,
    box,
    default_splits,
    make_dataset,
    obb,
    polygon,
    pose,
    write_split,
    write_yaml,
)
from trialbook.datasets import FileEntry, Manifest, build_manifest
from trialbook.errors import IntegrityError, InvalidInput


def test_files_sizes_and_hashes(dataset: Path) -> None:
    m = build_manifest(dataset)
    root = dataset.parent
    train = m.splits["train"]
    assert [e.path for e in train.images] == [
        "images/train/a.jpg",
        "images/train/b.png",
        "images/train/c.jpg",
        "images/train/d.jpg",
    ]
    # c.jpg has no label file; d.jpg has an empty one.
    assert [e.path for e in train.labels] == [
        "labels/train/a.txt",
        "labels/train/b.txt",
        "labels/train/d.txt",
    ]
    for entry in train.images + train.labels:
        data = (root / entry.path).read_bytes()
        assert entry == FileEntry(entry.path, len(data), blake3(data).hexdigest())


def test_counts_per_split_and_class(dataset: Path) -> None:
    m = build_manifest(dataset)
    train, val, test = m.splits["train"], m.splits["val"], m.splits["test"]
    assert (train.image_count, train.label_count, train.backgrounds, train.instances) == (4, 3, 2, 4)
    assert train.class_images == (1, 2, 0)
    assert train.class_instances == (2, 2, 0)
    assert (val.class_images, val.class_instances, val.backgrounds) == ((1, 0, 2), (1, 0, 3), 0)
    assert (test.class_images, test.class_instances) == ((0, 1, 0), (0, 1, 0))


def test_segment_pose_and_obb_rows_count_by_their_class_id(tmp_path: Path) -> None:
    config = make_dataset(
        tmp_path / "ds",
        {
            "train": {
                "s.jpg": [polygon(0), polygon(2)],
                "p.jpg": [pose(1), pose(1)],
                "o.jpg": [obb(2), box(2), obb(0)],
            },
            "val": {"v.jpg": [polygon(1)]},
        },
    )
    train = build_manifest(config).splits["train"]
    assert train.class_instances == (2, 2, 3)
    assert train.class_images == (2, 1, 2)


def test_summary_is_json_and_complete(dataset: Path) -> None:
    m = build_manifest(dataset)
    summary = json.loads(json.dumps(m.summary()))
    assert summary["digest"] == m.digest and summary["short"] == m.digest[:12]
    assert summary["class_names"] == NAMES
    train = summary["splits"]["train"]
    assert train["digest"] == m.split_digests["train"]
    assert train["definition"] == ["images/train"]
    assert (train["images"], train["labels"], train["backgrounds"], train["instances"]) == (4, 3, 2, 4)
    assert train["bytes"] == m.splits["train"].bytes > 0
    assert train["classes"][1] == {"id": 1, "name": "dog", "images": 2, "instances": 2}


def test_digest_is_full_blake3_hex_and_short_is_a_prefix(dataset: Path) -> None:
    m = build_manifest(dataset)
    assert len(m.digest) == 64 and int(m.digest, 16) >= 0
    assert m.short == m.digest[:12]
    assert set(m.split_digests) == {"train", "val", "test"}
    assert len(set(m.split_digests.values())) == 3


def test_same_content_elsewhere_gives_the_same_digest(tmp_path: Path) -> None:
    a = build_manifest(make_dataset(tmp_path / "one"))
    # Written in another order, at another place, with an absolute 'path'.
    splits = default_splits()
    reordered = {s: dict(reversed(list(files.items()))) for s, files in reversed(splits.items())}
    root = tmp_path / "two" / "deeper"
    for split, files in reordered.items():
        write_split(root, split, files)
    config = write_yaml(
        tmp_path / "two" / "cfg.yaml",
        {
            "names": {i: n for i, n in enumerate(NAMES)},
            "test": "images/test",
            "val": "images/val",
            "train": "images/train",
            "path": str(root),
        },
    )
    b = build_manifest(config)
    assert a == b
    assert a.digest == b.digest and a.split_digests == b.split_digests
    # Moving the folder keeps the digest too.
    shutil.move(str(tmp_path / "one"), str(tmp_path / "moved"))
    assert build_manifest(tmp_path / "moved").digest == a.digest


def test_one_byte_changes_the_digest_and_only_that_split(dataset: Path) -> None:
    before = build_manifest(dataset)
    image = dataset.parent / "images" / "val" / "e.jpg"
    data = bytearray(image.read_bytes())
    data[0] ^= 1
    image.write_bytes(bytes(data))
    after = build_manifest(dataset)
    assert after.digest != before.digest
    assert after.split_digests["val"] != before.split_digests["val"]
    assert after.split_digests["train"] == before.split_digests["train"]
    assert after.split_digests["test"] == before.split_digests["test"]


def test_label_edit_changes_the_digest(dataset: Path) -> None:
    before = build_manifest(dataset)
    label = dataset.parent / "labels" / "test" / "g.txt"
    label.write_text("1 0.5 0.6 0.25 0.25\n")
    after = build_manifest(dataset)
    assert after.split_digests["test"] != before.split_digests["test"]
    assert after.splits["test"].class_instances == before.splits["test"].class_instances


def test_class_names_change_the_digest(tmp_path: Path) -> None:
    a = build_manifest(make_dataset(tmp_path / "a"))
    b = build_manifest(make_dataset(tmp_path / "b", names=["cat", "dog", "parrot"]))
    assert a.digest != b.digest
    assert all(a.split_digests[s] != b.split_digests[s] for s in a.split_digests)


def test_split_definition_changes_the_digest(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    write_split(root, "train", {"a.jpg": [box(0)]})
    write_split(root, "val", {"b.jpg": [box(1)]})
    by_folder = write_yaml(root / "data.yaml", {"train": "images/train", "val": "images/val", "names": NAMES})
    (root / "train.txt").write_text("images/train/a.jpg\n")
    by_list = write_yaml(root / "list.yaml", {"train": "train.txt", "val": "images/val", "names": NAMES})
    a, b = build_manifest(by_folder), build_manifest(by_list)
    assert a.splits["train"].images == b.splits["train"].images
    assert a.split_digests["train"] != b.split_digests["train"]
    assert a.split_digests["val"] == b.split_digests["val"]


def test_moving_a_file_between_splits_changes_both(dataset: Path) -> None:
    before = build_manifest(dataset)
    root = dataset.parent
    (root / "images" / "val" / "e.jpg").rename(root / "images" / "test" / "e.jpg")
    (root / "labels" / "val" / "e.txt").rename(root / "labels" / "test" / "e.txt")
    after = build_manifest(dataset)
    assert after.split_digests["val"] != before.split_digests["val"]
    assert after.split_digests["test"] != before.split_digests["test"]
    assert after.split_digests["train"] == before.split_digests["train"]


def test_to_bytes_round_trips_exactly(dataset: Path) -> None:
    m = build_manifest(dataset)
    data = m.to_bytes()
    assert data[:2] == b"\x1f\x8b"  # gzip
    back = Manifest.from_bytes(data)
    assert back == m
    assert back.digest == m.digest and back.split_digests == m.split_digests
    assert back.summary() == m.summary()
    assert back.to_bytes() == data  # deterministic


def test_from_bytes_refuses_garbage_and_tampering(dataset: Path) -> None:
    m = build_manifest(dataset)
    with pytest.raises(InvalidInput, match="not a trialbook manifest"):
        Manifest.from_bytes(b"hello")
    with pytest.raises(InvalidInput, match="format"):
        Manifest.from_bytes(gzip.compress(b'{"format": "other"}'))
    doc = json.loads(gzip.decompress(m.to_bytes()))
    doc["splits"]["train"]["images"]["size"][0] += 1
    with pytest.raises(IntegrityError, match="recorded as"):
        Manifest.from_bytes(gzip.compress(json.dumps(doc).encode()))
    del doc["splits"]["train"]["labels"]
    with pytest.raises(InvalidInput, match="malformed"):
        Manifest.from_bytes(gzip.compress(json.dumps(doc).encode()))


def test_non_ascii_names_and_paths(tmp_path: Path) -> None:
    config = make_dataset(
        tmp_path / "données",
        {"train": {"chat_é.jpg": [box(0)], "猫.jpg": [box(1)]}, "val": {"v.jpg": None}},
        names=["chat", "chien", "oiseau"],
    )
    m = build_manifest(config)
    assert [e.path for e in m.splits["train"].images] == ["images/train/chat_é.jpg", "images/train/猫.jpg"]
    assert Manifest.from_bytes(m.to_bytes()) == m


def test_image_in_two_splits_is_listed_in_both(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    write_split(root, "train", {"a.jpg": [box(0)], "b.jpg": [box(1)]})
    (root / "val.txt").write_text("images/train/b.jpg\n")
    config = write_yaml(root / "data.yaml", {"train": "images/train", "val": "val.txt", "names": NAMES})
    m = build_manifest(config)
    assert [e.path for e in m.splits["val"].images] == ["images/train/b.jpg"]
    assert m.splits["val"].class_instances == (0, 1, 0)


def test_two_images_sharing_one_label_file(tmp_path: Path) -> None:
    config = make_dataset(
        tmp_path / "ds", {"train": {"a.jpg": [box(2)], "a.png": [box(2)]}, "val": {"v.jpg": None}}
    )
    train = build_manifest(config).splits["train"]
    assert [e.path for e in train.labels] == ["labels/train/a.txt"]
    assert train.class_images == (0, 0, 2) and train.class_instances == (0, 0, 2)


@pytest.mark.parametrize("threads", [1, 2, 8])
def test_threads_do_not_change_the_result(tmp_path: Path, threads: int) -> None:
    files = {f"{i:03d}.jpg": [box(i % 3)] * (i % 4) for i in range(300)}
    config = make_dataset(tmp_path / "ds", {"train": files, "val": {"v.jpg": None}})
    assert build_manifest(config, threads=threads) == build_manifest(config, threads=1)


def test_large_files_are_streamed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from trialbook.datasets import hashing

    monkeypatch.setattr(hashing, "CHUNK", 1000)
    monkeypatch.setattr(hashing, "BIG_FILE", 5000)
    monkeypatch.setattr(hashing, "BIG_CHUNK", 1500)
    root = tmp_path / "ds"
    write_split(root, "train", {"a.jpg": [box(0)], "b.jpg": [box(0)]})
    write_split(root, "val", {"v.jpg": None})
    sizes = {"a.jpg": 3333, "b.jpg": 12345}
    for name, size in sizes.items():
        (root / "images" / "train" / name).write_bytes(bytes(range(256)) * (size // 256 + 1))
    config = write_yaml(root / "data.yaml", {"train": "images/train", "val": "images/val", "names": NAMES})
    m = build_manifest(config)
    for entry in m.splits["train"].images:
        data = (root / entry.path).read_bytes()
        assert entry.hash == blake3(data).hexdigest() and entry.size == len(data)
