"""Pinned starts: ``Book.start(dataset="pallets:v1")`` checks the working files against the
tagged version, refuses a mismatch (or records it UNPINNED when allowed) and explains
unknown tags and bad names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import trialbook as tb
from support.cli import invoke
from trialbook.api import Book
from trialbook.errors import InvalidInput
from trialbook.services import datasets as versions


def test_pinned_start_refuses_changed_files_and_unpinned_is_recorded(
    sqlite_book: Book, data_yaml: Path
) -> None:
    version = versions.tag(sqlite_book, "pallets", data_yaml, "v1")
    with sqlite_book.start("pallets", "v1_pinned", dataset="pallets:v1") as run:
        pass
    rec = sqlite_book.run(run.name)
    assert rec.pinned and rec.dataset == "pallets:v1"
    assert rec.split_digests["val"] == version["splits"]["val"]["digest"]
    assert rec.split_digests["dataset"] == version["digest"]
    label = data_yaml.parent / "labels" / "train" / "train_0002.txt"
    label.write_text(label.read_text() + "2 0.5 0.5 0.1 0.1\n")
    with pytest.raises(InvalidInput) as refused:
        sqlite_book.start("pallets", "v2_after_edit", dataset="pallets:v1")
    message = str(refused.value)
    assert "no longer match pallets:v1" in message and "train_0002.txt" in message
    assert "trialbook data tag pallets" in message and "allow_unpinned=True" in message
    with pytest.raises(tb.NotFound):
        sqlite_book.run("v2_after_edit")  # nothing was recorded
    with sqlite_book.start("pallets", "v2_after_edit", dataset="pallets:v1", allow_unpinned=True) as run:
        pass
    rec = sqlite_book.run(run.name)
    assert rec.pinned is False and rec.dataset == "pallets:v1"
    table = json.loads(invoke("runs", "--json").stdout)
    assert {r["name"]: r["pinned"] for r in table["runs"]} == {"v1_pinned": True, "v2_after_edit": False}
    assert "UNPINNED" in invoke("runs").output


def test_unknown_tags_and_bad_names_are_explained(sqlite_book: Book, data_yaml: Path) -> None:
    with pytest.raises(tb.NotFound, match="trialbook data tag pallets SOURCE --tag v9"):
        sqlite_book.start("pallets", "v1_x", dataset="pallets:v9")
    with pytest.raises(InvalidInput, match="must be NAME:TAG"):
        sqlite_book.start("pallets", "v1_x", dataset="pallets")
    with pytest.raises(InvalidInput, match="tag 'v 1'"):
        versions.tag(sqlite_book, "pallets", data_yaml, "v 1")
