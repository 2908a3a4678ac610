"""A content-addressed blob folder: ``blobs/ab/cdef...`` named by the blake3 of the bytes."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from blake3 import blake3

from trialbook.errors import IntegrityError, InvalidInput, NotFound, StorageError

CHUNK = 1 << 20


def hash_file(path: Path) -> tuple[str, int]:
    """The blake3 hex digest and size of a file, read in 1 MiB chunks."""
    h = blake3()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_of(self, digest: str) -> Path:
        return self.root / digest[:2] / digest[2:]

    def exists(self, digest: str) -> bool:
        """Whether blob ``digest`` is stored (as ``RemoteBlobs`` and ``S3BlobStore`` say)."""
        return self.path_of(digest).is_file()

    def put_file(self, path: str | os.PathLike[str]) -> tuple[str, int]:
        """Copy a file in (once per content); return its digest and size."""
        src = Path(path)
        _check_source(src)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        except OSError as exc:
            raise StorageError(f"cannot store artifact {src} in {self.root}: {exc.strerror or exc}") from None
        tmp = Path(tmp_name)
        try:
            h = blake3()
            size = 0
            with open(src, "rb") as f, os.fdopen(fd, "wb") as out:
                while chunk := f.read(CHUNK):
                    h.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            digest = h.hexdigest()
            dest = self.path_of(digest)
            if dest.exists():
                tmp.unlink()
            else:
                dest.parent.mkdir(exist_ok=True)
                os.replace(tmp, dest)
            return digest, size
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StorageError(f"cannot store artifact {src} in {self.root}: {exc.strerror or exc}") from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def put_bytes(self, data: bytes) -> str:
        digest = blake3(data).hexdigest()
        dest = self.path_of(digest)
        if dest.exists():
            return digest
        tmp: str | None = None
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".incoming-")
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, dest)
        except OSError as exc:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
            why = exc.strerror or exc
            raise StorageError(f"cannot write {len(data)} bytes to {self.root}: {why}") from None
        return digest

    def get_bytes(self, digest: str) -> bytes:
        """The bytes of a blob, verified against its digest."""
        path = self.path_of(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NotFound(f"blob {digest[:12]} is missing from {self.root}") from None
        if blake3(data).hexdigest() != digest:
            raise IntegrityError(f"blob {path} is corrupt: its content no longer hashes to {digest}")
        return data

    def export(self, digest: str, dest: str | os.PathLike[str]) -> Path:
        """Copy a blob out to ``dest``, verifying it on the way."""
        src = self.path_of(digest)
        if not src.exists():
            raise NotFound(f"blob {digest[:12]} is missing from {self.root}")
        got, _ = hash_file(src)
        if got != digest:
            raise IntegrityError(f"blob {src} is corrupt: its content no longer hashes to {digest}")
        out = Path(dest)
        shutil.copyfile(src, out)
        return out


def _check_source(src: Path) -> None:
    """``src`` is a regular file that can be read; otherwise ``InvalidInput`` saying what it is."""
    try:
        info = src.stat()
    except FileNotFoundError:
        raise InvalidInput(f"artifact {src}: no such file") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InvalidInput(f"artifact {src}: a symbolic link loop (it never reaches a file)") from None
        raise InvalidInput(f"artifact {src}: cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise InvalidInput(f"artifact {src} is a folder: log the files in it one by one, or an archive of it")
    if not stat.S_ISREG(info.st_mode):
        raise InvalidInput(f"artifact {src} is not a regular file (a device, a pipe or a socket)")
    if not os.access(src, os.R_OK):
        raise InvalidInput(f"artifact {src}: cannot be read (permission denied)")


def cached_copy(cache: Path, digest: str, export: Callable[[str, Path], Path]) -> Path:
    """A verified local copy of blob ``digest`` under ``cache`` (``export(digest, path)``
    downloads it on first use): the path of a file that does not exist when the store has
    no such blob. For the stores that keep their blobs elsewhere (S3, a server)."""
    path = cache / digest[:2] / digest[2:]
    if path.is_file():
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        export(digest, path)
    except NotFound:
        pass
    except OSError as exc:
        if isinstance(exc, StorageError):
            raise
        raise StorageError(f"cannot cache blob {digest[:12]} in {cache}: {exc.strerror or exc}") from None
    return path
