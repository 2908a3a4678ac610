"""The stat cache: a private SQLite file mapping a file's stat to its content hash.

An entry is reused only when the file's absolute path, size, mtime_ns and inode all match,
so an edit that keeps all four (a same-size rewrite with the mtime put back) is not
noticed; every ordinary edit, copy, move or restore is. Label entries also keep the parsed
per-class row counts, so an unchanged dataset is checked without reading any file. Files
modified less than ``RACY_NS`` before a build are not cached: a later write within the same
clock tick might not change their mtime.

Entries are stored one row per folder, as packed columns (sizes, mtimes and inodes as
64-bit integer arrays in base64; hashes, label counts and names as joined text), so
checking a folder of 100,000 unchanged files is one row read, a few C-level unpacks and
list comparisons instead of 100,000 row lookups, and writing it is one row.

The cache is an optimisation only: WAL mode and a busy timeout let several processes share
it, a write that cannot get the lock is skipped, a corrupt or foreign file is deleted and
rebuilt, and no cache problem ever fails a build. A cache that cannot be opened or
written for another reason (a full disk, a read-only folder) is let go for the rest of the
build, with a ``CacheWarning`` saying so (once per cache).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import warnings
from array import array
from base64 import b64decode, b64encode
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

SCHEMA_VERSION = 4
RACY_NS = 2_000_000_000
_IN_BATCH = 500


# A packed record is seven lines of text: "tbsc4:<files>"; the sizes, the mtimes (int64)
# and the inodes (uint64), as native arrays in base64; the hashes and the label counts
# texts joined by ","; the names joined by "/" (which no file name holds; a name may hold
# a line end, so they come last), or "b64:" and their bytes when one cannot be UTF-8.
_MAGIC = "tbsc4:"
_B64_NAMES = "b64:"
_NO_COUNTS = "-"  # the counts item of a file that is not a label file
_COUNTS_OF = {_NO_COUNTS: None}

_BUSY = frozenset({"SQLITE_BUSY", "SQLITE_LOCKED"})


class CacheWarning(UserWarning):
    """The stat cache could not be used (it is let go; the dataset is read without it)."""


def _is_busy(exc: sqlite3.Error) -> bool:
    """True when ``exc`` says the database is busy or locked (another process writes)."""
    name = getattr(exc, "sqlite_errorname", None)
    if name is not None:
        return name in _BUSY or str(name).startswith(("SQLITE_BUSY_", "SQLITE_LOCKED_"))
    return "locked" in str(exc) or "busy" in str(exc)  # pragma: no cover - Python < 3.11


@dataclass
class DirRecord:
    """The cached entries of one folder, as parallel lists sorted by name."""

    names: list[str]
    sizes: list[int]
    mtimes: list[int]
    inodes: list[int]
    hashes: list[str]
    counts: list[str | None]
    _index: dict[str, int] | None = field(default=None, repr=False)

    def find(self, name: str) -> int | None:
        if self._index is None:
            self._index = {n: i for i, n in enumerate(self.names)}
        return self._index.get(name)

    @classmethod
    def from_text(cls, text: str) -> DirRecord:
        """The record packed by ``to_text``; ``ValueError`` when ``text`` is not one."""
        if not isinstance(text, str) or not text.startswith(_MAGIC):
            raise ValueError("not a packed cache record")
        parts = text.split("\n", 6)
        if len(parts) != 7:
            raise ValueError("not a packed cache record")
        n = int(parts[0][len(_MAGIC) :])
        columns: list[list[int]] = []
        for code, part in zip(("q", "q", "Q"), parts[1:4], strict=True):
            column = array(code)
            column.frombytes(b64decode(part, validate=True))
            columns.append(column.tolist())
        names_text = parts[6]
        if names_text.startswith(_B64_NAMES):
            names_text = b64decode(names_text[len(_B64_NAMES) :], validate=True).decode(
                "utf-8", "surrogateescape"
            )
        names = names_text.split("/") if n else []
        hashes = parts[4].split(",") if n else []
        texts = parts[5].split(",") if n else []
        counts = list(map(_COUNTS_OF.get, texts, texts))
        if not (
            n
            == len(names)
            == len(columns[0])
            == len(columns[1])
            == len(columns[2])
            == len(hashes)
            == len(counts)
        ):
            raise ValueError("cache record columns differ in length")
        return cls(names, columns[0], columns[1], columns[2], hashes, counts)

    def to_text(self) -> str:
        """The record packed in one text (``OverflowError`` for a number out of range)."""
        n = len(self.names)
        if not (
            n
            == len(self.sizes)
            == len(self.mtimes)
            == len(self.inodes)
            == len(self.hashes)
            == len(self.counts)
        ):
            raise ValueError("cache record columns differ in length")
        names = "/".join(self.names)
        if not names.isascii():
            try:
                names.encode("utf-8")
            except UnicodeEncodeError:  # an undecodable file name: its bytes, in base64
                names = _B64_NAMES + _b64(names.encode("utf-8", "surrogateescape"))
        return "\n".join(
            (
                f"{_MAGIC}{n}",
                _b64(array("q", self.sizes).tobytes()),
                _b64(array("q", self.mtimes).tobytes()),
                _b64(array("Q", self.inodes).tobytes()),
                ",".join(self.hashes),
                ",".join([_NO_COUNTS if c is None else c for c in self.counts]),
                names,
            )
        )


def _b64(data: bytes) -> str:
    return b64encode(data).decode("ascii")


class StatCache:
    """A stat cache at ``path``; ``StatCache(None)`` is a cache that never hits."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = os.fspath(path) if path is not None else None
        self._conn: sqlite3.Connection | None = None
        self.problem: str | None = None  # why the cache was let go, if it was
        if self.path is not None:
            self._conn = self._open()

    @property
    def enabled(self) -> bool:
        return self._conn is not None

    # -- opening ---------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection | None:
        assert self.path is not None
        for attempt in range(2):
            try:
                return self._connect(self.path)
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):  # not writable, a full disk: say so
                    self._let_go(str(exc))
                return None  # go on without a cache
            except sqlite3.DatabaseError:
                if attempt == 0:
                    self.discard()
            except OSError as exc:
                self._let_go(exc.strerror or str(exc))
                return None
        return None

    @staticmethod
    def _connect(path: str) -> sqlite3.Connection:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        conn = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout = 5000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                conn.execute("BEGIN IMMEDIATE")
                if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                    for (table,) in conn.execute(
                        "SELECT name FROM sqlite_master WHERE type = 'table'"
                    ).fetchall():
                        conn.execute(f'DROP TABLE IF EXISTS "{table}"')
                    conn.execute("CREATE TABLE dirs (dir BLOB PRIMARY KEY, entries TEXT NOT NULL)")
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            conn.execute("SELECT dir, entries FROM dirs LIMIT 1").fetchall()
        except BaseException:
            conn.close()
            raise
        return conn

    def discard(self) -> None:
        """Delete a corrupt cache file (and its WAL files) so it can be rebuilt."""
        assert self.path is not None
        self.close()
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                os.remove(self.path + suffix)

    # -- use -------------------------------------------------------------------------------

    def load(self, dirs: Iterable[str]) -> dict[str, DirRecord]:
        """The cached records of ``dirs`` (absolute folder paths) that exist."""
        conn = self._conn
        if conn is None:
            return {}
        wanted = {os.fsencode(d): d for d in dirs}
        keys = list(wanted)
        out: dict[str, DirRecord] = {}
        try:
            for i in range(0, len(keys), _IN_BATCH):
                chunk = keys[i : i + _IN_BATCH]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(f"SELECT dir, entries FROM dirs WHERE dir IN ({marks})", chunk).fetchall()
                for key, text in rows:
                    try:
                        out[wanted[bytes(key)]] = DirRecord.from_text(text)
                    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                        continue  # a damaged record is a miss
        except sqlite3.DatabaseError as exc:
            self._failed(exc)
            return {}
        return out

    def save(self, records: Mapping[str, DirRecord]) -> None:
        """Replace the records of these folders; skipped quietly when busy or broken."""
        conn = self._conn
        if conn is None or not records:
            return
        rows = []
        for d, r in records.items():
            try:
                rows.append((os.fsencode(d), r.to_text()))
            except (ValueError, OverflowError, UnicodeEncodeError):
                continue  # not cacheable (a foreign hash, a number out of range): a miss later
        if not rows:
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("INSERT OR REPLACE INTO dirs (dir, entries) VALUES (?, ?)", rows)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            self._failed(exc)

    def _failed(self, exc: sqlite3.DatabaseError) -> None:
        if isinstance(exc, sqlite3.OperationalError):
            if _is_busy(exc):
                return  # busy or locked: skip this read or write, keep the file
            self._let_go(str(exc))  # a full disk, a read-only file: go on without it
            self.close()
            return
        self.discard()  # "file is not a database", "malformed": rebuilt next time

    def _let_go(self, why: str) -> None:
        """Note (and warn, once) that the cache cannot be used: ``why``."""
        if self.problem is not None:
            return
        self.problem = why
        warnings.warn(
            f"the stat cache {self.path} cannot be used ({why}); the dataset is read without it",
            CacheWarning,
            stacklevel=3,
        )

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    def __enter__(self) -> StatCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
