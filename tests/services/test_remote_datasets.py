"""Datasets over a team server: a loopback server over a SQLite book, a client folder with
``TRIALBOOK_URI=http://...``. ``data tag`` uploads the manifest through the server's blob
store; ``data status`` and ``tb.start(dataset=...)`` check the working files here, through
the client's stat cache, against the server's manifest."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import trialbook as tb
from support.cli import invoke
from support.datasets import age, box, make_dataset, write_label
from support.server import LoopbackServer, start
from trialbook.api import Book
from trialbook.datasets import Manifest
from trialbook.errors import InvalidInput


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    monkeypatch.setenv("TRIALBOOK_USER", "tester")
    monkeypatch.setenv("TRIALBOOK_OUTBOX", str(tmp_path / "outbox.db"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "client-cache"))
    with start(str(tmp_path / "server-book")) as served:
        monkeypatch.setenv("TRIALBOOK_URI", served.url)
        client = tmp_path / "client"
        client.mkdir()
        monkeypatch.chdir(client)
        yield served


def data(*args: str, code: int = 0) -> dict[str, object]:
    result = invoke("data", *args, "--json", catch_exceptions=False)
    assert result.exit_code == code, result.output
    doc: dict[str, object] = json.loads(result.stdout)
    return doc


def test_tag_status_and_pinning_against_a_server(server: LoopbackServer, tmp_path: Path) -> None:
    data_yaml = make_dataset(tmp_path / "client" / "ds")
    age(data_yaml.parent)  # old enough for the stat cache to keep
    tagged = data("tag", "ds", str(data_yaml), "--tag", "v1")
    assert tagged["created"] is True

    # the server's own book holds the version, and its manifest in its blob store
    served = Book.open(server.book_uri or "")
    try:
        version = served.store.get_dataset_version("ds", str(tagged["digest"]))
        assert version.manifest_digest is not None and served.blobs is not None
        stored = Manifest.from_bytes(served.blobs.get_bytes(version.manifest_digest))
        assert stored.digest == tagged["digest"]
    finally:
        served.close()

    clean = data("status", "ds:v1")
    assert clean["clean"] is True and clean["working_digest"] == tagged["digest"]
    assert (tmp_path / "client-cache" / "trialbook" / "stat.db").is_file()  # the client's stat cache

    with tb.start(project="pallets", name="v1_pinned", dataset="ds:v1") as run:
        run.log({"metrics/mAP50-95(B)": 0.5}, epoch=0)
    remote = Book.open(server.url)
    try:
        pinned = remote.store.get_run("pallets", "v1_pinned")
        assert pinned.pinned and pinned.dataset == "ds:v1" and pinned.split_digests
    finally:
        remote.close()

    write_label(data_yaml.parent / "labels" / "val" / "e.txt", [box(1)])  # a relabelled image
    changed = data("status", "ds:v1", code=1)
    assert changed["clean"] is False and changed["changed"] == {"val": ["labels/val/e.txt"]}

    with pytest.raises(InvalidInput, match="no longer match ds:v1"):
        tb.start(project="pallets", name="v2_refused", dataset="ds:v1")
