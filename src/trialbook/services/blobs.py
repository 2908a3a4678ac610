"""Artifact bytes by digest, for the server's blob routes: a streamed upload hashed as it
arrives and stored only when it matches the digest it was sent under, and the local,
verified file of a blob to stream back. The book's blob store may be a folder
(``artifacts.local.BlobStore``) or an object store (``artifacts.s3.S3BlobStore``)."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from blake3 import blake3

from trialbook.api import Book
from trialbook.artifacts.local import hash_file
from trialbook.errors import IntegrityError, InvalidInput, NotFound, StorageError

__all__ = ["Upload", "begin_upload", "blob_file", "check_digest", "has_blob"]

DIGEST = re.compile(r"[0-9a-f]{64}")


def check_digest(digest: str) -> str:
    """``digest`` if it is a blake3 hex digest (64 lower-case hex digits), else ``InvalidInput``."""
    if not DIGEST.fullmatch(digest):
        raise InvalidInput(f"{digest[:80]!r} is not a blob digest (64 lower-case hex digits, blake3)")
    return digest


class Upload:
    """The bytes of one blob as they arrive: written to a temporary file in the book's
    cache and hashed; ``finish`` stores them if they hash to ``digest`` (``InvalidInput``
    otherwise, and nothing is stored); ``abort`` drops them."""

    def __init__(self, book: Book, digest: str) -> None:
        self.book, self.digest = book, check_digest(digest)
        if book.blobs is None:
            raise NotFound(f"{book.uri} keeps no artifact files")
        folder = book.cache_dir / "incoming"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=folder, prefix=f"{digest[:12]}-")
        except OSError as exc:
            raise StorageError(f"cannot receive a blob in {folder}: {exc.strerror or exc}") from None
        self.path = Path(name)
        self._file = os.fdopen(fd, "wb")
        self._hash = blake3()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        self.size += len(chunk)
        try:
            self._file.write(chunk)
        except OSError as exc:
            self.abort()
            why = exc.strerror or exc
            raise StorageError(f"cannot receive a blob in {self.path.parent}: {why}") from None

    def finish(self) -> tuple[str, int]:
        """Store the bytes received (once per content); their digest and size."""
        try:
            self._file.close()
            got = self._hash.hexdigest()
            if got != self.digest:
                raise InvalidInput(
                    f"the {self.size} bytes sent as blob {self.digest[:12]} hash to {got[:12]}: "
                    "refused (damaged or incomplete upload)"
                )
            digest, size = self.book.blobs.put_file(self.path)
            assert digest == self.digest
            return digest, size
        finally:
            self.path.unlink(missing_ok=True)

    def abort(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


def begin_upload(book: Book, digest: str) -> Upload:
    """An upload of blob ``digest`` into ``book``'s blob store (see ``Upload``)."""
    return Upload(book, digest)


def blob_file(book: Book, digest: str) -> Path:
    """A local, verified file of blob ``digest`` (an object store's is downloaded into the
    cache first); ``NotFound`` when the book has no such blob."""
    check_digest(digest)
    blobs = book.blobs
    if blobs is None:
        raise NotFound(f"{book.uri} keeps no artifact files")
    path = blobs.path_of(digest)
    if not path.is_file():
        raise NotFound(f"blob {digest[:12]} is missing from {blobs.root}")
    if hash_file(path)[0] != digest:
        raise IntegrityError(f"blob {path} is corrupt: its content no longer hashes to {digest}")
    return path


def has_blob(book: Book, digest: str) -> bool:
    check_digest(digest)
    blobs = book.blobs
    if blobs is None:
        return False
    exists = getattr(blobs, "exists", None)
    return bool(exists(digest)) if exists is not None else blobs.path_of(digest).is_file()
