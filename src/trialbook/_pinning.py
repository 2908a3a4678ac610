"""Pinning a run to a tagged dataset version at start (DESIGN.md, 'Pinning')."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from trialbook.errors import InvalidInput

if TYPE_CHECKING:
    from trialbook.api import Book

UNPINNED_HINT = (
    "name a tagged version (dataset='pallets:v3'; tag one with `trialbook data tag NAME SOURCE "
    "--tag T`), or pass allow_unpinned=True (--allow-unpinned) to record the run as UNPINNED")


def parse_ref(ref: str) -> tuple[str, str]:
    name, sep, tag = ref.partition(":")
    if not sep or not name or not tag:
        raise InvalidInput(f"dataset {ref!r} must be NAME:TAG, e.g. pallets:v3")
    return name, tag


def pin_run(book: Book, dataset: str | None, source: str | os.PathLike[str] | None,
            allow_unpinned: bool) -> dict[str, Any]:
    """The dataset fields of a new run: pinned to ``dataset``'s tag after checking the
    working files, or UNPINNED when ``allow_unpinned`` is given."""
    if dataset is None:
        if not allow_unpinned:
            raise InvalidInput(f"this run names no dataset version: {UNPINNED_HINT}")
        return {"dataset": None, "pinned": False, "split_digests": {}}
    name, tag = parse_ref(dataset)
    bound = book.store.get_tag(name, tag)
    version = book.store.get_dataset_version(name, bound.digest)
    splits = {s: info.get("digest") for s, info in version.splits.items() if info.get("digest")}
    digests = {"dataset": version.digest, **splits}
    return {"dataset": dataset, "pinned": True, "split_digests": digests}
