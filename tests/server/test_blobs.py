"""The blob routes in process, over a folder book: a streamed PUT hashed by the server,
refused on a mismatch, and GET/HEAD; ``RemoteBlobs`` on them through an in-process transport."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from blake3 import blake3

from support.http import Api
from trialbook.api import Book
from trialbook.artifacts.remote import RemoteBlobs
from trialbook.server.app import create_app


@pytest.fixture
def book(tmp_path: Path) -> Book:
    return Book.open(str(tmp_path / "book"), create=True)


def test_put_get_head(book: Book) -> None:
    api = Api(create_app(book))
    data = os.urandom(3_000_000)
    digest = blake3(data).hexdigest()
    assert api.request("HEAD", f"/api/v1/blobs/{digest}").status_code == 404
    got = api.put(f"/api/v1/blobs/{digest}", content=data)
    assert got.status_code == 200 and got.json() == {"digest": digest, "size": len(data)}
    assert book.blobs is not None and book.blobs.get_bytes(digest) == data
    assert api.request("HEAD", f"/api/v1/blobs/{digest}").status_code == 200
    assert api.get(f"/api/v1/blobs/{digest}").content == data
    assert api.put(f"/api/v1/blobs/{digest}", content=data).status_code == 200  # again: harmless


def test_a_mismatch_is_refused_and_nothing_stored(book: Book) -> None:
    api = Api(create_app(book))
    digest = blake3(b"the real bytes").hexdigest()
    got = api.put(f"/api/v1/blobs/{digest}", content=b"the real byte")  # one short
    assert got.status_code == 400 and "hash to" in got.json()["detail"]
    assert book.blobs is not None and not book.blobs.path_of(digest).exists()
    assert not list((book.cache_dir / "incoming").iterdir())
    assert api.put("/api/v1/blobs/XYZ", content=b"x").status_code == 400


def test_remote_blobs_over_the_routes(book: Book, tmp_path: Path) -> None:
    from support.server import InProcess

    transport = InProcess(create_app(book))
    blobs = RemoteBlobs("http://127.0.0.1", cache_dir=tmp_path / "cache")
    blobs._client = httpx.Client(transport=transport)
    try:
        src = tmp_path / "w.pt"
        src.write_bytes(b"weights" * 1000)
        digest, size = blobs.put_file(src)
        assert (digest, size) == (blake3(src.read_bytes()).hexdigest(), 7000)
        assert blobs.get_bytes(digest) == src.read_bytes()
        assert blobs.path_of(digest).read_bytes() == src.read_bytes()
        assert not blobs.path_of("0" * 64).exists()
    finally:
        blobs.close()
        transport.close()
