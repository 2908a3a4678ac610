"""The stat cache: what it skips, what it notices, and that it never breaks a build.

Semantics under test: a cached hash is reused only when the file's absolute path, size,
mtime_ns and inode all match. An edit that keeps all four (same size, written in place,
mtime put back) is therefore NOT noticed; anything else is. Files modified in the two
seconds before a build are not cached, so ``age`` moves test files into the past.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from support.datasets import age, box, make_dataset
from trialbook.datasets import build, build_manifest
from trialbook.datasets.cache import DirRecord, StatCache
from trialbook.errors import InvalidInput


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every path the builds of this test read and hash, in order."""
    seen: list[str] = []
    real = build.hash_many

    def counting(todo: Any, **kw: Any) -> Any:
        seen.extend(path for path, _, _ in todo)
        return real(todo, **kw)

    monkeypatch.setattr(build, "hash_many", counting)
    return seen


@pytest.fixture
def aged(dataset: Path) -> Path:
    age(dataset.parent)
    return dataset


def test_second_build_reads_no_file(aged: Path, tmp_path: Path, hashed: list[str]) -> None:
    cache = tmp_path / "cache.sqlite"
    first = build_manifest(aged, cache_path=cache)
    assert len(hashed) > 0 and cache.exists()
    hashed.clear()
    second = build_manifest(aged, cache_path=cache)
    assert hashed == []
    assert second == first


def test_label_counts_come_from_the_cache(
    aged: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache.sqlite"
    first = build_manifest(aged, cache_path=cache)
    from trialbook.datasets import hashing

    def refuse(*_: Any) -> str:
        raise AssertionError("a label file was parsed")

    monkeypatch.setattr(hashing, "label_counts", refuse)
    assert build_manifest(aged, cache_path=cache).splits == first.splits


def test_only_changed_files_are_read_again(aged: Path, tmp_path: Path, hashed: list[str]) -> None:
    cache = tmp_path / "cache.sqlite"
    first = build_manifest(aged, cache_path=cache)
    image = aged.parent / "images" / "train" / "a.jpg"
    image.write_bytes(image.read_bytes() + b"!")
    hashed.clear()
    second = build_manifest(aged, cache_path=cache)
    assert hashed == [str(image.resolve())]
    assert second.digest != first.digest
    assert second == build_manifest(aged)  # the same as without any cache


def test_same_size_in_place_edit_with_mtime_restored_is_not_noticed(aged: Path, tmp_path: Path) -> None:
    """The documented limit of a stat cache (git, rsync and make share it)."""
    cache = tmp_path / "cache.sqlite"
    first = build_manifest(aged, cache_path=cache)
    image = aged.parent / "images" / "val" / "e.jpg"
    st = image.stat()
    data = image.read_bytes()
    with open(image, "r+b") as fh:  # same inode, same size
        fh.write(bytes([data[0] ^ 1]))
    os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert build_manifest(aged, cache_path=cache).digest == first.digest  # not noticed
    assert build_manifest(aged).digest != first.digest  # without the cache: noticed
    os.utime(image)  # any mtime change and the cache notices too
    assert build_manifest(aged, cache_path=cache).digest != first.digest


def test_new_inode_with_same_size_and_mtime_is_noticed(aged: Path, tmp_path: Path, hashed: list[str]) -> None:
    cache = tmp_path / "cache.sqlite"
    first = build_manifest(aged, cache_path=cache)
    image = aged.parent / "images" / "val" / "e.jpg"
    st = image.stat()
    data = bytearray(image.read_bytes())
    data[0] ^= 1
    other = tmp_path / "other.jpg"
    other.write_bytes(bytes(data))
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(other, image)
    assert image.stat().st_ino != st.st_ino
    hashed.clear()
    assert build_manifest(aged, cache_path=cache).digest != first.digest
    assert hashed == [str(image.resolve())]


def test_files_changed_just_now_are_not_cached(dataset: Path, tmp_path: Path, hashed: list[str]) -> None:
    cache = tmp_path / "cache.sqlite"
    build_manifest(dataset, cache_path=cache)  # every file was written a moment ago
    count = len(hashed)
    build_manifest(dataset, cache_path=cache)
    existing = {path for path in hashed[:count] if os.path.exists(path)}
    assert len(existing) == 13 and set(hashed[count:]) == existing


def test_corrupt_cache_is_discarded(aged: Path, tmp_path: Path, hashed: list[str]) -> None:
    cache = tmp_path / "cache.sqlite"
    cache.write_bytes(b"this is not a database" * 100)
    first = build_manifest(aged, cache_path=cache)
    assert first == build_manifest(aged)
    hashed.clear()
    assert build_manifest(aged, cache_path=cache) == first
    assert hashed == []  # rebuilt and used


def test_damaged_record_is_a_miss(aged: Path, tmp_path: Path, hashed: list[str]) -> None:
    cache = tmp_path / "cache.sqlite"
    first = build_manifest(aged, cache_path=cache)
    with sqlite3.connect(cache) as conn:
        conn.execute("UPDATE dirs SET entries = '{\"n\": [1, 2'")
    hashed.clear()
    assert build_manifest(aged, cache_path=cache) == first
    assert hashed


def test_damaged_label_counts_rebuild_the_cache(aged: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    first = build_manifest(aged, cache_path=cache)
    with sqlite3.connect(cache) as conn:
        for folder, text in conn.execute("SELECT dir, entries FROM dirs").fetchall():
            conn.execute(
                "UPDATE dirs SET entries = ? WHERE dir = ?",
                (text.replace('"0"', '"zero"').replace('"1"', '"x:y"'), folder),
            )
    assert build_manifest(aged, cache_path=cache) == first
    assert build_manifest(aged, cache_path=cache) == first


def test_old_cache_schema_is_replaced(aged: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    with sqlite3.connect(cache) as conn:
        conn.execute("CREATE TABLE files (path TEXT)")
        conn.execute("PRAGMA user_version = 1")
    first = build_manifest(aged, cache_path=cache)
    with sqlite3.connect(cache) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "dirs" in tables and "files" not in tables
    assert build_manifest(aged, cache_path=cache) == first


def test_unusable_cache_path_is_not_fatal(aged: Path, tmp_path: Path) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    assert build_manifest(aged, cache_path=folder) == build_manifest(aged)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert build_manifest(aged, cache_path=blocker / "cache.sqlite") == build_manifest(aged)


def test_concurrent_builds_share_one_cache(tmp_path: Path) -> None:
    configs = [
        make_dataset(
            tmp_path / f"ds{i}",
            {"train": {f"{j}.jpg": [box(j % 3)] for j in range(40 + i)}, "val": {"v.jpg": None}},
        )
        for i in range(4)
    ]
    for config in configs:
        age(config.parent)
    cache = tmp_path / "shared.sqlite"
    expected = [build_manifest(c) for c in configs]
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda c: build_manifest(c, cache_path=cache), configs * 4))
    assert got == expected * 4
    with ThreadPoolExecutor(8) as pool:
        again = list(pool.map(lambda c: build_manifest(c, cache_path=cache), configs * 2))
    assert again == expected * 2


def test_a_failed_build_still_caches_what_it_read(aged: Path, tmp_path: Path, hashed: list[str]) -> None:
    cache = tmp_path / "cache.sqlite"
    label = aged.parent / "labels" / "val" / "e.txt"
    good = label.read_text()
    label.write_text("not a label\n")
    age(aged.parent)
    with pytest.raises(InvalidInput, match=r"e\.txt:1"):
        build_manifest(aged, cache_path=cache)
    label.write_text(good)
    expected = build_manifest(aged)
    hashed.clear()
    assert build_manifest(aged, cache_path=cache) == expected
    assert hashed == [str(label.resolve())]


def test_cached_counts_are_checked_against_new_class_names(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    config = make_dataset(root)
    age(root)
    cache = tmp_path / "cache.sqlite"
    build_manifest(config, cache_path=cache)
    fewer = make_dataset(root, names=["cat", "dog"])  # class 2 is now out of range
    age(root)
    with pytest.raises(InvalidInput, match=r"labels/val/e\.txt:1: class id 2 .* 2 class"):
        build_manifest(fewer, cache_path=cache)


def test_dataset_copied_elsewhere_is_read_again(aged: Path, tmp_path: Path, hashed: list[str]) -> None:
    cache = tmp_path / "cache.sqlite"
    first = build_manifest(aged, cache_path=cache)
    copy = tmp_path / "copy"
    shutil.copytree(aged.parent, copy)
    hashed.clear()
    assert build_manifest(copy / "data.yaml", cache_path=cache).digest == first.digest
    assert hashed  # other absolute paths: other cache entries


def test_stat_cache_none_never_hits() -> None:
    cache = StatCache(None)
    assert not cache.enabled
    assert cache.load(["/x"]) == {}
    cache.save({"/x": DirRecord(["a"], [1], [2], [3], ["h"], [None])})
