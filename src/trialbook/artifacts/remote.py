"""Artifact bytes through a team server (``trialbook server``): ``RemoteBlobs`` has the
methods of ``local.BlobStore`` over ``PUT``/``GET``/``HEAD /api/v1/blobs/{digest}``, so a
remote book's ``run.log_artifact(...)`` uploads through the server, which hashes the bytes
and stores them in its own artifact store (a folder or S3) only if they match.

The file is hashed here first (blake3), so a blob the server already has is not sent
again; downloads are verified here too. The token (``settings.token(url)``:
``$TRIALBOOK_TOKEN``, else the one ``trialbook login`` stored) is sent as a Bearer token.
Connection failures, timeouts and 5xx answers are retried a few times with a short
backoff, then raised as ``StorageError``; a 401 is ``Unauthorized`` and a 403
``Forbidden``, at once (answers about the caller, not faults).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blake3 import blake3

from trialbook import _http, settings
from trialbook.artifacts.local import CHUNK, _check_source, cached_copy, hash_file
from trialbook.errors import Forbidden, IntegrityError, InvalidInput, NotFound, StorageError

if TYPE_CHECKING:
    import httpx

__all__ = ["RemoteBlobs", "remote_blobs"]

TOKEN_VAR = settings.TOKEN_VAR
ATTEMPTS = 4
BACKOFF_S = 0.5


def remote_blobs(uri: str) -> RemoteBlobs:
    """The blob store of the team server at ``uri`` (``http(s)://host:port``), for the
    store registry's remote opener."""
    return RemoteBlobs(uri)


class RemoteBlobs:
    """Blobs of the server at ``base_url`` (see the module docstring); ``path_of`` hands out
    a verified local copy, downloaded into ``cache_dir`` (default: the user's cache)."""

    def __init__(self, base_url: str, *, cache_dir: Path | None = None, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.root = f"{self.base_url}/api/v1/blobs"
        self.cache = (cache_dir if cache_dir is not None else settings.user_cache_dir()) / "remote-blobs"
        token = settings.token(self.base_url)
        self._token_source = settings.token_source(self.base_url)
        headers = _http.bearer(token, self._token_source)
        try:
            import httpx
        except ImportError:
            raise StorageError("a remote book needs httpx: pip install httpx") from None
        self._transport_error = httpx.TransportError
        self._client = _http.client(headers=headers, timeout=timeout)

    def __repr__(self) -> str:
        return f"RemoteBlobs({self.base_url!r})"

    def close(self) -> None:
        self._client.close()

    def _url(self, digest: str) -> str:
        return f"{self.root}/{digest}"

    def _call(self, what: str, send: Callable[[], httpx.Response]) -> httpx.Response:
        """``send()``, retried on a connection failure, a timeout or a 5xx; trialbook's
        error for a final failure or a 4xx (404: ``NotFound``, 400: ``InvalidInput``)."""
        for attempt in range(ATTEMPTS):
            try:
                got = send()
            except self._transport_error as exc:
                failure = f"{type(exc).__name__}: {exc}"
            else:
                if got.status_code < 500:
                    return _checked(got, what, self.base_url, self._token_source)
                failure = f"{got.status_code} {_detail(got)}"
            if attempt + 1 < ATTEMPTS:
                time.sleep(BACKOFF_S * 2**attempt)
        raise StorageError(f"{what} at {self.base_url}: {failure}")

    def exists(self, digest: str) -> bool:
        try:
            self._call(f"cannot look up blob {digest[:12]}", lambda: self._client.head(self._url(digest)))
        except NotFound:
            return False
        return True

    def put_file(self, path: str | os.PathLike[str]) -> tuple[str, int]:
        """Upload a file through the server (once per content); its digest and size."""
        src = Path(path)
        _check_source(src)
        digest, size = hash_file(src)
        if not self.exists(digest):
            self._call(f"cannot store artifact {src}", lambda: self._put(digest, _chunks(src)))
        return digest, size

    def put_bytes(self, data: bytes) -> str:
        digest = blake3(data).hexdigest()
        if not self.exists(digest):
            self._call(
                f"cannot store {len(data)} bytes", lambda: self._client.put(self._url(digest), content=data)
            )
        return digest

    def _put(self, digest: str, body: Iterator[bytes]) -> httpx.Response:
        headers = {"content-type": "application/octet-stream"}
        return self._client.put(self._url(digest), content=body, headers=headers)

    def get_bytes(self, digest: str) -> bytes:
        """The bytes of a blob, verified against its digest."""
        got = self._call(f"cannot read blob {digest[:12]}", lambda: self._client.get(self._url(digest)))
        if blake3(got.content).hexdigest() != digest:
            raise IntegrityError(f"blob {digest[:12]} from {self.base_url} does not hash to its digest")
        return got.content

    def export(self, digest: str, dest: str | os.PathLike[str]) -> Path:
        """Download a blob to ``dest``, verified (``dest`` appears whole or not at all)."""
        out = Path(dest)
        fd, tmp_name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.incoming-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as f:
                self._call(f"cannot read blob {digest[:12]}", lambda: self._download(digest, f))
            if hash_file(tmp)[0] != digest:
                raise IntegrityError(f"blob {digest[:12]} from {self.base_url} does not hash to its digest")
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
        return out

    def _download(self, digest: str, f: Any) -> httpx.Response:
        f.seek(0)
        f.truncate()
        with self._client.stream("GET", self._url(digest)) as got:
            if got.status_code == 200:
                for chunk in got.iter_bytes(CHUNK):
                    f.write(chunk)
            else:
                got.read()
            return got

    def path_of(self, digest: str) -> Path:
        """A verified local copy of the blob, downloaded into the cache on first use
        (``artifacts.local.cached_copy``)."""
        return cached_copy(self.cache, digest, self.export)


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def _detail(got: httpx.Response) -> str:
    """What the server said of a failed request: its JSON ``detail``, else the error
    header (a HEAD answer has no body), else the body or the reason phrase."""
    try:
        return str(got.json().get("detail", got.text))
    except ValueError:
        return got.headers.get(_http.ERROR_HEADER) or got.text[:200] or got.reason_phrase


def _checked(got: httpx.Response, what: str, base_url: str, source: str | None) -> httpx.Response:
    if got.status_code < 300:
        return got
    if got.status_code == 401:
        raise _http.unauthorized(base_url, source=source, what=what)
    detail = _detail(got) if got.request.method != "HEAD" else got.headers.get(_http.ERROR_HEADER, "")
    if got.status_code == 403:
        raise Forbidden(f"{what}: {detail or 'the role of this token does not allow it'}")
    if got.status_code == 404:
        raise NotFound(f"{what}: {detail or 'not on the server'}")
    if got.status_code == 400:
        raise InvalidInput(f"{what}: {detail}")
    raise StorageError(f"{what}: the server answered {got.status_code} {detail}".rstrip())
