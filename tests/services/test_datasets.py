"""The dataset service (trialbook.services.datasets) on its own: tags of one name never move."""

from __future__ import annotations

from pathlib import Path

import pytest

from trialbook.api import Book
from trialbook.demo.story import write_dataset
from trialbook.errors import Conflict
from trialbook.services import datasets as versions


def test_conflicting_tag_from_another_process_is_refused(sqlite_book: Book, data_yaml: Path) -> None:
    versions.tag(sqlite_book, "pallets", data_yaml, "v1")
    other = Path(data_yaml.parent.parent / "other")
    other_yaml = write_dataset(other, {"train": 2, "val": 1}, seed=9)
    with pytest.raises(Conflict, match="Tags never move"):
        versions.tag(sqlite_book, "pallets", other_yaml, "v1")
