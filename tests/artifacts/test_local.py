"""Content-addressed blobs (trialbook.artifacts.local) under a book's runs."""

from __future__ import annotations

from pathlib import Path

import pytest

import trialbook as tb
from trialbook.api import Book


def test_corrupt_blob_is_detected(sqlite_book: Book, tmp_path: Path) -> None:
    f = tmp_path / "w.pt"
    f.write_bytes(b"abc" * 100)
    with sqlite_book.start("pallets", "v1_base", allow_unpinned=True) as run:
        run.log_artifact(f)
    digest = sqlite_book.store.list_artifacts(sqlite_book.run("v1_base").id)[0].digest
    assert sqlite_book.blobs is not None
    sqlite_book.blobs.path_of(digest).write_bytes(b"tampered")
    with pytest.raises(tb.IntegrityError, match="corrupt"):
        sqlite_book.blobs.get_bytes(digest)
