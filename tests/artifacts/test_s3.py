"""S3BlobStore against a real S3-compatible store (SeaweedFS, tests/support/seaweed.py)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from blake3 import blake3

from support.seaweed import Seaweed, seaweed
from trialbook.artifacts.s3 import S3BlobStore, parse_s3_uri
from trialbook.errors import IntegrityError, InvalidInput, NotFound, StorageError


@pytest.fixture(scope="module")
def weed() -> Seaweed:
    return seaweed()


@pytest.fixture
def s3_env(weed: Seaweed, monkeypatch: pytest.MonkeyPatch) -> Seaweed:
    for name, value in weed.env().items():
        monkeypatch.setenv(name, value)
    return weed


@pytest.fixture
def store(s3_env: Seaweed, tmp_path: Path) -> Iterator[S3BlobStore]:
    yield S3BlobStore(s3_env.new_prefix() + "/team", tmp_path / "cache")


def _keys(weed: Seaweed, store: S3BlobStore) -> list[str]:
    return weed.keys(store.root)


def test_uri_is_bucket_and_prefix() -> None:
    assert parse_s3_uri("s3://b/x/y/") == ("b", "x/y")
    assert parse_s3_uri("s3://b") == ("b", "")
    with pytest.raises(InvalidInput):
        parse_s3_uri("s3:///x")
    with pytest.raises(InvalidInput):
        parse_s3_uri("/tmp/x")


def test_put_get_export_keyed_by_digest(store: S3BlobStore, s3_env: Seaweed, tmp_path: Path) -> None:
    src = tmp_path / "best.pt"
    src.write_bytes(os.urandom(300_000))
    digest, size = store.put_file(src)
    assert digest == blake3(src.read_bytes()).hexdigest() and size == 300_000
    assert _keys(s3_env, store) == [f"{digest[:2]}/{digest[2:]}"]
    assert store.key_of(digest).endswith(f"/team/{digest[:2]}/{digest[2:]}")
    assert store.get_bytes(digest) == src.read_bytes()
    out = store.export(digest, tmp_path / "out.pt")
    assert out.read_bytes() == src.read_bytes()
    local = store.path_of(digest)
    assert local.is_file() and local.read_bytes() == src.read_bytes()
    small = store.put_bytes(b"manifest")
    assert store.get_bytes(small) == b"manifest"
    assert store.exists(small)


def test_put_is_idempotent(store: S3BlobStore, s3_env: Seaweed, tmp_path: Path) -> None:
    src = tmp_path / "a.bin"
    src.write_bytes(b"same bytes")
    first = store.put_file(src)
    assert store.put_file(src) == first
    assert store.put_bytes(b"same bytes") == first[0]
    assert len(_keys(s3_env, store)) == 1


def test_missing_and_corrupt_blobs(store: S3BlobStore, s3_env: Seaweed, tmp_path: Path) -> None:
    missing = "0" * 64
    with pytest.raises(NotFound, match="missing"):
        store.get_bytes(missing)
    with pytest.raises(NotFound):
        store.export(missing, tmp_path / "x")
    assert not (tmp_path / "x").exists()
    assert not store.path_of(missing).exists()
    # bytes under a key that is not their digest: refused when read
    digest = blake3(b"the real bytes").hexdigest()
    s3_env.client().put_object(Bucket=store.bucket, Key=store.key_of(digest), Body=b"other bytes")
    with pytest.raises(IntegrityError, match="corrupt"):
        store.get_bytes(digest)
    with pytest.raises(IntegrityError):
        store.export(digest, tmp_path / "y")
    assert not (tmp_path / "y").exists()


def test_bad_sources_are_refused(store: S3BlobStore, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no such file"):
        store.put_file(tmp_path / "nope")
    with pytest.raises(InvalidInput, match="folder"):
        store.put_file(tmp_path)


def test_a_body_that_does_not_match_its_hash_is_refused(store: S3BlobStore, s3_env: Seaweed) -> None:
    """A body that differs from what was hashed (a file rewritten between the hashing and
    the upload) is refused by the store itself (Content-MD5): nothing is written."""
    import base64
    import hashlib

    key = store.key_of("ab" * 32)
    with pytest.raises(StorageError, match="BadDigest"), store._errors("upload"):
        wrong = base64.b64encode(hashlib.md5(b"what was hashed").digest()).decode()
        store._client.put_object(Bucket=store.bucket, Key=key, Body=b"what was sent", ContentMD5=wrong)
    assert _keys(s3_env, store) == []


def test_multipart_upload(s3_env: Seaweed, tmp_path: Path) -> None:
    store = S3BlobStore(s3_env.new_prefix(), tmp_path / "c", part_size=5 << 20, multipart_size=6 << 20)
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom((11 << 20) + 123))
    digest, size = store.put_file(src)
    assert size == src.stat().st_size
    assert _keys(s3_env, store) == [f"{digest[:2]}/{digest[2:]}"]
    assert store.export(digest, tmp_path / "back.bin").read_bytes() == src.read_bytes()


def test_store_frozen_mid_upload_is_retried_then_a_storage_error(s3_env: Seaweed, tmp_path: Path) -> None:
    """The store stops answering while the body is on its way: botocore retries, then
    StorageError; once the store is back, no object is there, and the upload works."""
    uri = s3_env.new_prefix()
    store = S3BlobStore(uri, tmp_path / "c", read_timeout=1, connect_timeout=1, max_attempts=2)
    src = tmp_path / "w.pt"
    src.write_bytes(os.urandom(48 << 20))  # more than the sockets' buffers hold
    s3_env.pause()
    resumed = threading.Timer(8.0, s3_env.resume)  # never left paused
    resumed.start()
    try:
        started = time.monotonic()
        with pytest.raises(StorageError):
            store.put_file(src)
        assert time.monotonic() - started < 8
    finally:
        resumed.cancel()
        s3_env.resume()
    assert _keys(s3_env, store) == []
    digest, _ = store.put_file(src)
    assert _keys(s3_env, store) == [f"{digest[:2]}/{digest[2:]}"]
