"""Hashing dataset files, one by one and in batches (trialbook.datasets.hashing)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from blake3 import blake3

from trialbook.datasets import hashing
from trialbook.datasets.hashing import (
    BATCH_FILES,
    CHUNK,
    MissingFile,
    batches_of,
    hash_dataset_file,
    hash_many,
)
from trialbook.datasets.labels import decode_counts
from trialbook.errors import InvalidInput


def write(path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


def test_hash_dataset_file_small_and_large(tmp_path: Path) -> None:
    small = write(tmp_path / "a.jpg", b"image bytes")
    large_data = os.urandom(CHUNK * 2 + 123)
    large = write(tmp_path / "b.jpg", large_data)
    h = hash_dataset_file(small)
    assert h.hash == blake3(b"image bytes").hexdigest()
    assert h.size == len(b"image bytes") and h.path == small and h.counts is None
    st = os.stat(small)
    assert (h.mtime_ns, h.inode) == (st.st_mtime_ns, st.st_ino)
    assert hash_dataset_file(large).hash == blake3(large_data).hexdigest()


def test_hash_dataset_file_counts_label_rows(tmp_path: Path) -> None:
    label = write(tmp_path / "a.txt", b"0 0.5 0.5 0.1 0.1\n2 0.5 0.5 0.1 0.1\n0 0.1 0.1 0.1 0.1\n")
    assert decode_counts(hash_dataset_file(label, label=True).counts or "") == {0: 2, 2: 1}


def test_hash_dataset_file_errors(tmp_path: Path) -> None:
    with pytest.raises(MissingFile):
        hash_dataset_file(str(tmp_path / "nope.jpg"))
    (tmp_path / "folder.jpg").mkdir()
    with pytest.raises(InvalidInput, match="not a regular file"):
        hash_dataset_file(str(tmp_path / "folder.jpg"))


def test_hash_many_reports_every_outcome(tmp_path: Path) -> None:
    image = write(tmp_path / "images" / "a.jpg", b"a")
    big = write(tmp_path / "images" / "big.jpg", b"x" * (CHUNK + 1))
    label = write(tmp_path / "labels" / "a.txt", b"1 0.5 0.5 0.1 0.1\n")
    empty = write(tmp_path / "labels" / "e.txt", b"")
    bad = write(tmp_path / "labels" / "bad.txt", b"1 0.5 nope 0.1 0.1\n")
    no_label = str(tmp_path / "labels" / "missing.txt")
    no_image = str(tmp_path / "images" / "missing.jpg")
    items = [(image, False, 1), (big, False, CHUNK + 1), (label, True, 1), (empty, True, 0)]
    items += [(bad, True, 1), (no_label, True, 0), (no_image, False, 0)]
    for threads in (1, 4):
        hashed, missing, errors = hash_many(items, threads=threads)
        by_path = {h.path: h for h in hashed}
        assert set(by_path) == {image, big, label, empty}
        assert by_path[image].hash == blake3(b"a").hexdigest() and by_path[image].counts is None
        assert by_path[big].hash == blake3(b"x" * (CHUNK + 1)).hexdigest()
        assert decode_counts(by_path[label].counts or "") == {1: 1}
        assert by_path[empty].counts == ""
        assert missing == [no_label]
        assert sorted(p for p, _ in errors) == sorted([bad, no_image])
        messages = dict(errors)
        assert messages[no_image] == f"cannot read image {no_image}: no such file"
        assert f"{bad}:1" in messages[bad]


def test_hash_many_reports_progress_per_batch(tmp_path: Path) -> None:
    paths = [write(tmp_path / f"{i}.jpg", b"%d" % i) for i in range(BATCH_FILES + 5)]
    seen: list[int] = []
    hashed, _, _ = hash_many([(p, False, 1) for p in paths], threads=2, on_progress=seen.append)
    assert len(hashed) == len(paths)
    assert sorted(seen) == [5, BATCH_FILES]


def test_batches_by_count_and_by_bytes() -> None:
    files = [(str(i), False, 1) for i in range(BATCH_FILES * 2 + 1)]
    assert [len(b) for b in batches_of(files)] == [BATCH_FILES, BATCH_FILES, 1]
    heavy = [("a", False, hashing.BATCH_BYTES), ("b", False, 1), ("c", False, 1)]
    assert [len(b) for b in batches_of(heavy)] == [1, 2]
    assert batches_of([]) == []
