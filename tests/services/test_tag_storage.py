"""``services.datasets.tag`` when the book's storage refuses writes: the stat cache is
only a cache (a warning, the tag goes on); a manifest that cannot be stored records
nothing and says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.datasets import make_dataset
from trialbook.api import Book
from trialbook.errors import StorageError
from trialbook.services import datasets as versions


def test_a_cache_folder_that_cannot_be_made_is_a_warning(sqlite_book: Book, tmp_path: Path) -> None:
    config = make_dataset(tmp_path / "ds")
    (tmp_path / "a-file").write_text("not a folder")
    sqlite_book.cache_dir = tmp_path / "a-file" / "cache"
    out = versions.tag(sqlite_book, "pallets", config, "v1")
    assert out["created"] is True
    assert any(
        f"the stat cache folder {tmp_path / 'a-file' / 'cache'} cannot be made" in w for w in out["warnings"]
    )


def test_a_manifest_that_cannot_be_stored_records_nothing(
    sqlite_book: Book, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_dataset(tmp_path / "ds")
    assert sqlite_book.blobs is not None

    def full(data: bytes) -> str:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sqlite_book.blobs, "put_bytes", full)
    with pytest.raises(StorageError) as err:
        versions.tag(sqlite_book, "pallets", config, "v1")
    assert str(err.value) == (
        "pallets:v1 was not tagged (nothing was recorded): cannot store its manifest: "
        f"{sqlite_book.blobs.root}: No space left on device"
    )
    assert sqlite_book.store.list_dataset_versions() == [] and sqlite_book.store.list_tags() == []
