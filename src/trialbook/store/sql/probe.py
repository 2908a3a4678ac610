"""What a database holds before trialbook touches it: a new one, a trialbook book (at
which schema revision), someone else's tables, or something damaged.

``probe_sqlite`` reads an SQLite file without changing it: the file's header first (an
empty file, another kind of file, a file shorter than its header says), then its tables
through a read-only connection (``mode=ro``; ``immutable=1`` when no ``-wal`` file is
beside it, so that not even a ``-shm`` file is made). ``probe_tables`` does the same from
the table names of any database (PostgreSQL). ``Probe.refusal`` is the error that
opening such a database must raise (``None`` when it can be opened), naming what was
found; nothing here imports Alembic.
"""

from __future__ import annotations

import sqlite3
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from trialbook.errors import InvalidInput, SchemaOutOfDate, StorageError, TrialbookError
from trialbook.store.sql.schema import SCHEMA_HEAD

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_MAGIC = b"SQLite format 3\x00"

# the tables of the first schema (migration 0001): a database holding them all is a
# trialbook book, whatever else it holds
BOOK_TABLES = frozenset(
    {"projects", "protocol_changes", "runs", "series", "points", "evaluations", "artifacts", "notes"}
    | {"note_history", "decisions", "ships", "dataset_versions", "dataset_tags"}
)

# what a probe found
MISSING = "missing"  # no file: a new book
EMPTY_FILE = "empty file"  # 0 bytes: never a book (a book is written whole, under a lock)
NOT_SQLITE = "not sqlite"
TRUNCATED = "truncated"
UNREADABLE = "unreadable"
NO_TABLES = "no tables"  # an empty database: a new book
FOREIGN = "foreign"  # tables, but not a book's
NO_REVISION = "no revision"  # a book's tables without alembic_version (or without its row)
BOOK = "book"  # a book at ``revision``

# what no process making a book ever leaves, even for a moment (a file being made may be
# seen empty, headerless or unreadable until the lock it is made under is released)
SETTLED = frozenset({TRUNCATED, FOREIGN, NO_REVISION, BOOK})


def known_revisions() -> list[str]:
    """The schema revisions this trialbook has migrations for, oldest first (the
    scripts are named ``NNNN_what.py`` after their revision)."""
    names = (p.name.split("_", 1)[0] for p in (MIGRATIONS_DIR / "versions").glob("[0-9]*_*.py"))
    return sorted(names)


def is_newer(revision: str) -> bool:
    """Whether ``revision`` comes after this trialbook's head (revisions are numbered)."""
    return revision.isdigit() and SCHEMA_HEAD.isdigit() and int(revision) > int(SCHEMA_HEAD)


@dataclass(frozen=True)
class Probe:
    """What ``where`` (a file, or a redacted database URL) holds: ``kind`` (one of the
    constants above), the tables found, the revision of a book and a detail (SQLite's
    message, sizes)."""

    where: str
    kind: str
    tables: tuple[str, ...] = ()
    revision: str | None = None
    detail: str = ""

    @property
    def new(self) -> bool:
        """Nothing there yet: a book may be created."""
        return self.kind in (MISSING, NO_TABLES)

    @property
    def at_head(self) -> bool:
        return self.kind == BOOK and self.revision == SCHEMA_HEAD

    @property
    def upgradable(self) -> bool:
        """A book at an older revision this trialbook has migrations from."""
        return self.kind == BOOK and self.revision != SCHEMA_HEAD and self.revision in known_revisions()

    def refusal(self) -> TrialbookError | None:
        """The error for a database that is neither new nor a book this trialbook can
        open (or upgrade); ``None`` otherwise."""
        if self.new or self.at_head or self.upgradable:
            return None
        return _REFUSALS[self.kind](self)


def _listed(names: Iterable[str], limit: int = 6) -> str:
    names = sorted(names)
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _empty_file(p: Probe) -> TrialbookError:
    return StorageError(
        f"{p.where} is an empty file (0 bytes), not a trialbook book: a book is never empty. "
        "Restore it from a backup, or remove the file to start a new book there"
    )


def _not_sqlite(p: Probe) -> TrialbookError:
    return StorageError(
        f"{p.where} is not a trialbook book: it is not an SQLite database ({p.detail}). "
        "If it was a book, it is damaged: restore it from a backup"
    )


def _damaged(p: Probe) -> TrialbookError:
    return StorageError(f"the book at {p.where} is damaged ({p.detail}): restore it from a backup")


def _foreign(p: Probe) -> TrialbookError:
    return InvalidInput(
        f"{p.where} holds tables {_listed(p.tables)} but no trialbook book: give a trialbook book, "
        "or a new (empty) database for one; nothing was changed"
    )


def _no_revision(p: Probe) -> TrialbookError:
    return StorageError(
        f"the book at {p.where} is damaged: it holds trialbook's tables but no schema revision "
        f"({p.detail}); restore it from a backup"
    )


def _revision(p: Probe) -> TrialbookError:
    if p.revision is not None and is_newer(p.revision):
        return SchemaOutOfDate(
            f"the book at {p.where} was written by a newer trialbook (schema {p.revision}; this one "
            f"knows schemas up to {SCHEMA_HEAD}): upgrade trialbook (pip install -U trialbook)"
        )
    return SchemaOutOfDate(
        f"the book at {p.where} has schema {p.revision!r}, which this trialbook does not know "
        f"(it knows {', '.join(known_revisions())}); it was not written by a trialbook release"
    )


_REFUSALS = {
    EMPTY_FILE: _empty_file,
    NOT_SQLITE: _not_sqlite,
    TRUNCATED: _damaged,
    UNREADABLE: _damaged,
    FOREIGN: _foreign,
    NO_REVISION: _no_revision,
    BOOK: _revision,
}


def probe_tables(where: str, tables: Iterable[str], revision: str | None) -> Probe:
    """What a database with these tables (and this ``alembic_version`` row, ``None``
    without one) holds."""
    found = tuple(sorted(tables))
    if not found:
        return Probe(where, NO_TABLES)
    if not BOOK_TABLES.issubset(found):
        return Probe(where, FOREIGN, found)
    if "alembic_version" not in found:
        return Probe(where, NO_REVISION, found, detail="the alembic_version table is missing")
    if revision is None:
        return Probe(where, NO_REVISION, found, detail="the alembic_version table is empty")
    return Probe(where, BOOK, found, revision=revision)


# --------------------------------------------------------------------------- SQLite
def sqlite_uri(path: Path, *, immutable: bool) -> str:
    """An SQLite URI opening ``path`` read-only (``immutable``: without locks or a
    ``-shm`` file, for a file nobody writes)."""
    quoted = urllib.parse.quote(str(path.absolute()), safe="/")
    return f"file:{quoted}?mode=ro" + ("&immutable=1" if immutable else "")


def wal_in_use(path: Path) -> bool:
    """Whether ``path`` has a ``-wal`` and a ``-shm`` file beside it (written by a
    connection now, or left by one that ended without a checkpoint)."""
    return path.with_name(path.name + "-wal").exists() and path.with_name(path.name + "-shm").exists()


def _header_problem(path: Path, header: bytes, size: int) -> Probe | None:
    """An empty, foreign or truncated file, judged from its first 100 bytes."""
    if size == 0:
        return Probe(str(path), EMPTY_FILE)
    if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
        return Probe(str(path), NOT_SQLITE, detail=f"{size} bytes without an SQLite header")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    header_valid = header[24:28] == header[92:96] and pages > 0
    wal = path.with_name(path.name + "-wal")
    wal_content = wal.exists() and wal.stat().st_size > 0
    if header_valid and not wal_content and size < pages * page_size:
        detail = f"the file is {size} bytes, its header says {pages * page_size}: it was cut short"
        return Probe(str(path), TRUNCATED, detail=detail)
    return None


def probe_sqlite(path: Path) -> Probe:
    """What the SQLite file ``path`` holds; the file is not changed (nor anything made
    beside it)."""
    if not path.exists():
        return Probe(str(path), MISSING)
    if path.is_dir():
        return Probe(str(path), NOT_SQLITE, detail="it is a folder")
    try:
        with open(path, "rb") as f:
            header = f.read(100)
        size = path.stat().st_size
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from None
    problem = _header_problem(path, header, size)
    if problem is not None:
        return problem
    try:
        conn = sqlite3.connect(sqlite_uri(path, immutable=not wal_in_use(path)), uri=True, timeout=60)
        try:
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            revision = None
            if "alembic_version" in tables:
                row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
                revision = None if row is None else str(row[0])
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return Probe(str(path), UNREADABLE, detail=f"SQLite says: {exc}")
    return probe_tables(str(path), tables, revision)
