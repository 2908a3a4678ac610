"""DatasetStore: content-addressed dataset versions and tags that never move."""

from __future__ import annotations

import pytest

from trialbook.core.entities import DatasetVersion
from trialbook.errors import Conflict, NotFound
from trialbook.store import Store


def version(digest: str = "a" * 64, name: str = "pallets") -> DatasetVersion:
    return DatasetVersion(
        digest=digest,
        name=name,
        created_at=1.0,
        class_names=["pallet"],
        splits={"val": {"digest": "b" * 64, "images": 3}},
    )


def test_dataset_tags_never_move(store: Store) -> None:
    v = version()
    assert store.add_dataset_version(v).digest == "a" * 64
    store.add_dataset_version(v)  # same content again: no-op
    assert store.get_dataset_version("pallets", "aaaa").splits["val"]["images"] == 3
    store.set_tag("pallets", "v1", "a" * 64)
    store.set_tag("pallets", "v1", "a" * 64)  # same content: no-op
    with pytest.raises(Conflict, match="already points to version aaaaaaaaaaaa"):
        store.set_tag("pallets", "v1", "c" * 64)
    assert store.get_tag("pallets", "v1").digest == "a" * 64
    assert [t.tag for t in store.list_tags("pallets")] == ["v1"]
    with pytest.raises(NotFound):
        store.get_tag("pallets", "v9")


def test_a_refused_tag_leaves_no_version_and_prefixes_must_be_unique(store: Store) -> None:
    store.add_tagged_version(version("ab" + "0" * 62), "v1")
    with pytest.raises(Conflict):
        store.add_tagged_version(version("ac" + "0" * 62), "v1")
    assert [v.digest[:2] for v in store.list_dataset_versions("pallets")] == ["ab"]
    store.add_dataset_version(version("ad" + "0" * 62))
    with pytest.raises(NotFound, match="ambiguous"):
        store.get_dataset_version("pallets", "a")
    with pytest.raises(NotFound, match="no version"):
        store.get_dataset_version("pallets", "ff")
    assert store.get_dataset_version("pallets", "ad").digest == "ad" + "0" * 62
    assert store.list_dataset_versions("other") == [] and store.list_tags("other") == []
