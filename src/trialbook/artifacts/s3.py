"""Artifact bytes in an S3-compatible object store: ``s3://bucket/prefix/ab/cdef...``, keyed
by the blake3 digest of the bytes, like the local folder store (``local.BlobStore``), with
the same methods.

The endpoint, the credentials and the region come from boto3's standard configuration
(``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_DEFAULT_REGION``, or ``~/.aws``). boto3 is the ``s3`` extra, imported when a store is
made.

Never half-written. An object becomes visible in S3 only when the request that writes it
has completed: a single ``PutObject`` is all or nothing, and the parts of a multipart
upload are invisible until ``CompleteMultipartUpload``. Each request carries the
``Content-MD5`` of its body, computed in the same pass over the file as the blake3
digest, so the store refuses (``BadDigest``) a body that differs from what was hashed (a
file rewritten meanwhile, bytes damaged on the way) and nothing is written. This is
simpler and safer than a temporary key and a copy: there is no temporary object to leave
behind, be seen or clean up, and no second request. A failed multipart upload is aborted.

Transient failures (throttling, 5xx, a dropped connection, a timeout) are retried by
botocore (``standard`` retry mode); what still fails is raised as ``StorageError``.

``path_of`` gives a local file, as callers that run programs on an artifact need one
(``services.artifacts.artifact_file``, ``services.yolo.run_weights``): the object is
downloaded, verified, into the cache folder on first use.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from blake3 import blake3

from trialbook.artifacts.local import CHUNK, _check_source, cached_copy
from trialbook.errors import IntegrityError, InvalidInput, NotFound, StorageError

__all__ = ["MULTIPART_SIZE", "S3BlobStore", "parse_s3_uri"]

# a file up to this size is one PutObject (S3 takes up to 5 GiB in one request); larger
# ones are uploaded in parts of PART_SIZE
MULTIPART_SIZE = 1 << 30
PART_SIZE = 64 << 20
MAX_ATTEMPTS = 5


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` as ``("bucket", "some/prefix")`` (the prefix may be empty)."""
    if not uri.lower().startswith("s3://"):
        raise InvalidInput(f"{uri!r} is not an S3 URI: write s3://BUCKET/PREFIX")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if not bucket:
        raise InvalidInput(f"{uri!r} names no bucket: write s3://BUCKET/PREFIX")
    return bucket, prefix.strip("/")


class _Hashed:
    """A file's blake3 digest, its size, the MD5 of the whole and of each of its parts."""

    def __init__(self, path: Path, part_size: int) -> None:
        digest = blake3()
        whole = hashlib.md5(usedforsecurity=False)
        self.size = 0
        self.part_md5: list[str] = []
        with open(path, "rb") as f:
            while True:
                md5 = hashlib.md5(usedforsecurity=False)
                got = 0
                while got < part_size and (chunk := f.read(min(CHUNK, part_size - got))):
                    digest.update(chunk)
                    md5.update(chunk)
                    whole.update(chunk)
                    got += len(chunk)
                if got == 0 and self.part_md5:
                    break
                self.part_md5.append(base64.b64encode(md5.digest()).decode())
                self.size += got
                if got < part_size:
                    break
        self.digest = digest.hexdigest()
        self.md5 = base64.b64encode(whole.digest()).decode()


class _Part:
    """``size`` bytes of an open file from ``start`` on, as a seekable body for one request
    (botocore rewinds a body to retry)."""

    def __init__(self, f: IO[bytes], start: int, size: int) -> None:
        self._f, self._start, self._size, self._pos = f, start, size, 0

    def read(self, n: int = -1) -> bytes:
        left = self._size - self._pos
        n = left if n is None or n < 0 else min(n, left)
        self._f.seek(self._start + self._pos)
        data = self._f.read(n)
        self._pos += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, min(self._size, base + offset))
        return self._pos

    def tell(self) -> int:
        return self._pos

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def __len__(self) -> int:
        return self._size


class S3BlobStore:
    """Content-addressed blobs under ``s3://bucket/prefix`` (see the module docstring).
    ``cache_dir`` is where ``path_of`` puts the local copies it hands out."""

    def __init__(
        self,
        uri: str,
        cache_dir: Path,
        *,
        client: Any = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        max_attempts: int = MAX_ATTEMPTS,
        part_size: int = PART_SIZE,
        multipart_size: int = MULTIPART_SIZE,
    ) -> None:
        self.bucket, self.prefix = parse_s3_uri(uri)
        self.root = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        self.cache = Path(cache_dir) / "blobs"
        self.part_size = part_size
        self.multipart_size = multipart_size
        self._client = client if client is not None else _client(connect_timeout, read_timeout, max_attempts)

    def __repr__(self) -> str:
        return f"S3BlobStore({self.root!r})"

    def key_of(self, digest: str) -> str:
        name = f"{digest[:2]}/{digest[2:]}"
        return f"{self.prefix}/{name}" if self.prefix else name

    # writing --------------------------------------------------------------------------
    def put_file(self, path: str | os.PathLike[str]) -> tuple[str, int]:
        """Upload a file (once per content); return its digest and size."""
        src = Path(path)
        _check_source(src)
        try:
            hashed = _Hashed(src, self.part_size)
        except OSError as exc:
            raise StorageError(f"cannot read artifact {src}: {exc.strerror or exc}") from None
        if self.exists(hashed.digest):
            return hashed.digest, hashed.size
        key = self.key_of(hashed.digest)
        with self._errors(f"cannot store artifact {src} in {self.root}"), open(src, "rb") as f:
            if hashed.size <= self.multipart_size:
                self._client.put_object(Bucket=self.bucket, Key=key, Body=f, ContentMD5=hashed.md5)
            else:
                self._multipart(key, f, hashed)
        return hashed.digest, hashed.size

    def put_bytes(self, data: bytes) -> str:
        digest = blake3(data).hexdigest()
        if self.exists(digest):
            return digest
        md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
        with self._errors(f"cannot write {len(data)} bytes to {self.root}"):
            self._client.put_object(Bucket=self.bucket, Key=self.key_of(digest), Body=data, ContentMD5=md5)
        return digest

    def _multipart(self, key: str, f: IO[bytes], hashed: _Hashed) -> None:
        upload = self._client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
        try:
            parts = []
            for number, md5 in enumerate(hashed.part_md5, start=1):
                start = (number - 1) * self.part_size
                body = _Part(f, start, min(self.part_size, hashed.size - start))
                got = self._client.upload_part(
                    Bucket=self.bucket, Key=key, UploadId=upload, PartNumber=number, Body=body, ContentMD5=md5
                )
                parts.append({"PartNumber": number, "ETag": got["ETag"]})
            self._client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            with contextlib.suppress(Exception):  # the first failure is the one to report
                self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload)
            raise

    # reading --------------------------------------------------------------------------
    def exists(self, digest: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._client.head_object(Bucket=self.bucket, Key=self.key_of(digest))
        except ClientError as exc:
            if _status(exc) == 404:
                return False
            raise _storage_error(exc, f"cannot read {self.root}") from None
        except Exception as exc:
            raise _storage_error(exc, f"cannot read {self.root}") from None
        return True

    def iter_bytes(self, digest: str) -> Iterator[bytes]:
        """The bytes of a blob in chunks, as they arrive (not verified: a reader that
        needs them verified hashes them, as ``get_bytes`` and ``export`` do)."""
        with self._errors(f"cannot read blob {digest[:12]} from {self.root}", digest):
            body = self._client.get_object(Bucket=self.bucket, Key=self.key_of(digest))["Body"]
        try:
            with self._errors(f"cannot read blob {digest[:12]} from {self.root}", digest):
                yield from body.iter_chunks(CHUNK)
        finally:
            body.close()

    def get_bytes(self, digest: str) -> bytes:
        """The bytes of a blob, verified against its digest."""
        data = b"".join(self.iter_bytes(digest))
        if blake3(data).hexdigest() != digest:
            raise self._corrupt(digest)
        return data

    def export(self, digest: str, dest: str | os.PathLike[str]) -> Path:
        """Download a blob to ``dest``, verifying it on the way (``dest`` appears whole or not at all)."""
        out = Path(dest)
        fd, tmp_name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.incoming-")
        tmp = Path(tmp_name)
        try:
            h = blake3()
            with os.fdopen(fd, "wb") as f:
                for chunk in self.iter_bytes(digest):
                    h.update(chunk)
                    f.write(chunk)
            if h.hexdigest() != digest:
                raise self._corrupt(digest)
            os.replace(tmp, out)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if isinstance(exc, StorageError):
                raise
            raise StorageError(f"cannot write {out}: {exc.strerror or exc}") from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return out

    def path_of(self, digest: str) -> Path:
        """A verified local copy of the blob, downloaded into the cache on first use
        (``artifacts.local.cached_copy``)."""
        return cached_copy(self.cache, digest, self.export)

    # errors ---------------------------------------------------------------------------
    def _corrupt(self, digest: str) -> IntegrityError:
        where = f"s3://{self.bucket}/{self.key_of(digest)}"
        return IntegrityError(f"blob {where} is corrupt: its content no longer hashes to {digest}")

    @contextlib.contextmanager
    def _errors(self, what: str, digest: str | None = None) -> Iterator[None]:
        """botocore's errors as trialbook's: a missing key is ``NotFound`` (with ``digest``,
        the blob asked for), anything else ``StorageError`` naming ``what``."""
        try:
            yield
        except (StorageError, NotFound, IntegrityError, InvalidInput):
            raise
        except Exception as exc:
            if digest is not None and _is_missing(exc):
                raise NotFound(f"blob {digest[:12]} is missing from {self.root}") from None
            raise _storage_error(exc, what) from None


def _status(exc: Any) -> int | None:
    response = getattr(exc, "response", None) or {}
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status is not None else None


def _is_missing(exc: Exception) -> bool:
    code = (getattr(exc, "response", None) or {}).get("Error", {}).get("Code")
    return code in ("NoSuchKey", "404", "NotFound") or _status(exc) == 404


def _storage_error(exc: Exception, what: str) -> StorageError:
    code = (getattr(exc, "response", None) or {}).get("Error", {})
    why = f"{code.get('Code')}: {code.get('Message')}" if code else str(exc)
    return StorageError(f"{what}: {why}")


def _client(connect_timeout: float, read_timeout: float, max_attempts: int) -> Any:
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise StorageError("artifacts in S3 need boto3: pip install 'trialbook[s3]'") from None
    config = Config(
        retries={"max_attempts": max_attempts, "mode": "standard"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )
    return boto3.session.Session().client("s3", config=config)
