"""The manifest of a made tree equals one computed here independently (plain os.walk,
blake3 of each file, label rows counted line by line), whichever path the build takes:
no cache, a cold stat cache, a re-check, a hashing pool, a changed file; and the packed
stat cache record gives back what was put in."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from blake3 import blake3

from support.datasets import age, write_yaml
from trialbook.datasets import FileEntry, Manifest, SplitManifest, build_manifest
from trialbook.datasets.cache import DirRecord
from trialbook.datasets.hashing import BATCH_FILES

NAMES = ["pallet", "forklift", "person"]
IMAGE_SUFFIXES = (".jpg", ".png")


def _rows(rng: random.Random, n: int) -> str:
    return "".join(
        f"{rng.randrange(len(NAMES))} {rng.random():.6f} {rng.random():.6f} 0.1 0.25\n" for _ in range(n)
    )


def make_tree(root: Path) -> Path:
    """A dataset crossing hashing batches: backgrounds (no label file, empty ones), CRLF
    and long label files, a nested folder, names whose label files sort apart."""
    rng = random.Random(7)
    files: dict[str, bytes] = {}
    for i in range(BATCH_FILES + 40):
        files[f"images/train/{i:05d}.jpg"] = rng.randbytes(rng.randrange(1, 3000))
        roll = rng.random()
        if roll < 0.05:
            continue  # no label file
        text = "" if roll < 0.08 else _rows(rng, rng.randint(1, 12))
        if 0.08 <= roll < 0.1:
            text = text.replace("\n", "\r\n")
        files[f"images/train/{i:05d}.jpg".replace("images", "labels").replace(".jpg", ".txt")] = text.encode()
    for name in ("a.jpg", "a.k.jpg", "a-b.png"):  # label names a.txt, a.k.txt, a-b.txt
        files[f"images/train/{name}"] = name.encode()
        files[f"labels/train/{name.rsplit('.', 1)[0]}.txt"] = _rows(rng, 2).encode()
    files["images/train/sub/deep.png"] = b"deep"
    files["labels/train/sub/deep.txt"] = b"2 0.5 0.5 0.1 0.1\n"
    for i in range(30):
        files[f"images/val/v{i}.jpg"] = rng.randbytes(100)
        files[f"labels/val/v{i}.txt"] = _rows(rng, 3).encode()
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return write_yaml(root / "data.yaml", {"train": "images/train", "val": "images/val", "names": NAMES})


def expected_manifest(root: Path) -> Manifest:
    """The manifest of ``root`` computed without trialbook's builder."""
    splits = {}
    for split in ("train", "val"):
        images: list[FileEntry] = []
        labels: list[FileEntry] = []
        class_images = [0] * len(NAMES)
        class_instances = [0] * len(NAMES)
        backgrounds = 0
        for folder, dirs, names in os.walk(root / "images" / split):
            dirs.sort()
            for name in sorted(n for n in names if n.endswith(IMAGE_SUFFIXES)):
                image = Path(folder) / name
                images.append(entry(root, image))
                label = Path(str(image).replace(f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"))
                label = label.with_name(name.rsplit(".", 1)[0] + ".txt")
                if not label.exists():
                    backgrounds += 1
                    continue
                labels.append(entry(root, label))
                ids = [int(line.split()[0]) for line in label.read_text().splitlines() if line.strip()]
                if not ids:
                    backgrounds += 1
                for cls in set(ids):
                    class_images[cls] += 1
                for cls in ids:
                    class_instances[cls] += 1
        splits[split] = SplitManifest(
            name=split,
            definition=(f"images/{split}",),
            images=tuple(sorted(images)),
            labels=tuple(sorted(labels)),
            backgrounds=backgrounds,
            class_images=tuple(class_images),
            class_instances=tuple(class_instances),
        )
    return Manifest(class_names=tuple(NAMES), splits=splits)


def entry(root: Path, path: Path) -> FileEntry:
    data = path.read_bytes()
    return FileEntry(path.relative_to(root).as_posix(), len(data), blake3(data).hexdigest())


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    config = make_tree(tmp_path / "ds")
    age(tmp_path / "ds")
    return config


def test_every_build_path_gives_the_independent_manifest(tree: Path, tmp_path: Path) -> None:
    expected = expected_manifest(tree.parent)
    assert expected.splits["train"].backgrounds > 0
    cache = tmp_path / "cache.sqlite"
    assert build_manifest(tree, progress=False) == expected
    assert build_manifest(tree, progress=False, threads=3) == expected
    assert build_manifest(tree, cache_path=cache, progress=False) == expected  # cold, fills
    assert build_manifest(tree, cache_path=cache, progress=False) == expected  # re-check
    cache.unlink()
    assert build_manifest(tree, cache_path=cache, progress=False, threads=3) == expected
    assert build_manifest(tree, cache_path=cache, progress=False, threads=3) == expected


def test_a_changed_file_is_read_again(tree: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    build_manifest(tree, cache_path=cache, progress=False)
    image = tree.parent / "images" / "train" / "00003.jpg"
    image.write_bytes(b"other content of another size")
    label = tree.parent / "labels" / "train" / "a.k.txt"
    label.write_bytes(b"1 0.5 0.5 0.1 0.1\n")
    changed = build_manifest(tree, cache_path=cache, progress=False)
    assert changed == expected_manifest(tree.parent)
    assert build_manifest(tree, cache_path=cache, progress=False) == changed


def test_timings_name_every_phase(tree: Path, tmp_path: Path) -> None:
    cold: dict[str, float] = {}
    build_manifest(tree, cache_path=tmp_path / "c.sqlite", progress=False, timings=cold)
    assert {"source", "read+hash", "labels", "cache read", "cache write", "manifest"} <= set(cold)
    assert all(seconds >= 0 for seconds in cold.values())
    again: dict[str, float] = {}
    build_manifest(tree, cache_path=tmp_path / "c.sqlite", progress=False, timings=again)
    assert "read+hash" not in again and {"stat", "manifest"} <= set(again)


def test_packed_cache_record_round_trips() -> None:
    record = DirRecord(
        ["a.jpg", "line\nbreak.jpg", "bad-\udcff.jpg", "é.txt"],
        [0, 1, 2**40, 3],
        [-5, 0, 2**62, 7],
        [1, 2**64 - 1, 3, 4],
        [blake3(bytes([i])).hexdigest() for i in range(4)],
        [None, None, None, "0 1:9"],
    )
    assert DirRecord.from_text(record.to_text()) == record
    empty = DirRecord([], [], [], [], [], [])
    assert DirRecord.from_text(empty.to_text()) == empty
    lines = record.to_text().split("\n")
    short_sizes = "\n".join([lines[0], lines[1][:-4], *lines[2:]])
    for damaged in ("", '{"n": [1, 2', short_sizes, "\n".join(lines[:-1]), "x" + record.to_text()):
        with pytest.raises(ValueError):
            DirRecord.from_text(damaged)


ODD_LABELS = [
    b"0 0.5 0.5 0.1 0.1\n",
    b"0 0.5 0.5 0.1 0.1",
    b"0 0.5 0.5 0.1 0.1\r\n1 0.5 0.5 0.1 0.1\r\n",
    b"  2\t0.5 0.5 0.1 0.1  \n",
    b"01 0.5 0.5 0.1 0.1\n",
    b"1.0 0.5 0.5 0.1 0.1\n",
    b"+1 0.5 0.5 0.1 0.1\n",
    b"0 0.5 0.5 0.1 0.1\n\n",
    b"\n0 0.5 0.5 0.1 0.1\n",
    b"0 0.5 0.5 0.1 0.1 7 8 9\n" * 10,
    b"",
    b"\n",
]
BAD_LABELS = [
    b"~ 0 0 0 0\n",
    b"0 ~ 1 1 1\n",
    b"0 0.5 0.5 0.1\n",
    b"-1 0.5 0.5 0.1 0.1\n",
    b"0 0.5 x 0.1 0.1\n",
]


def test_label_fast_paths_agree_with_the_careful_count() -> None:
    from trialbook.datasets.labels import _count_lines, decode_counts, label_counts, label_counts_many
    from trialbook.errors import InvalidInput

    for data in ODD_LABELS:
        careful = _count_lines(data.removeprefix(b"\xef\xbb\xbf"), "x.txt")
        assert decode_counts(label_counts(data, "x.txt")) == careful, data
    plain = [*ODD_LABELS[:5], b"0 0.5 0.5 0.1 0.1 7 8 9\n" * 10, b"", b"\n"]  # the batch's fast path
    together = label_counts_many(plain)
    assert together is not None
    assert together == [label_counts(d, "x.txt") for d in plain]
    for data in BAD_LABELS:
        with pytest.raises(InvalidInput):
            label_counts(data, "x.txt")
        assert label_counts_many([ODD_LABELS[0], data]) is None
