"""Engines, the transaction helper and in-process migrations.

SQLite discipline (after datasette and mlflow): WAL journal, a 60 s busy timeout,
foreign keys on; every write goes through ``Database.write()``, which serialises the
writers of this process on a lock and opens ``BEGIN IMMEDIATE`` so that writers of other
processes queue on the busy handler instead of failing with "database is locked";
readers use deferred transactions on connections marked ``query_only``.

Before anything is written, what the database holds is probed (``probe``): a new
database becomes a book, a book at an older revision is migrated (SQLite) or refused
with the command to run (PostgreSQL), and anything else (an empty or damaged file,
someone else's tables, a book of a newer trialbook) is refused, unchanged, with one line
naming what was found. A new SQLite book is created whole under the migration lock, so
a half-made one is never seen.

A SQLite book this process may not write (a read-only folder or file) is opened
read-only: read with ``mode=ro`` (plus ``immutable=1`` when no ``-wal`` file is beside
it: SQLite cannot make the ``-shm`` file in a read-only folder), and every write is
refused with ``StorageError`` ("the book at X is read-only").
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from trialbook.errors import Conflict, InvalidInput, SchemaOutOfDate, StorageError, TrialbookError
from trialbook.store.sql.probe import (
    MIGRATIONS_DIR,
    SETTLED,
    Probe,
    probe_sqlite,
    probe_tables,
    sqlite_uri,
    wal_in_use,
)
from trialbook.store.sql.schema import SCHEMA_HEAD

__all__ = ["BUSY_TIMEOUT_S", "MIGRATIONS_DIR", "Database", "upgrade"]

BUSY_TIMEOUT_S = 60.0
_PG_MIGRATE_LOCK = 74726961  # advisory lock keys ("trbi"...)
_PG_DECISIONS_LOCK = 74726962


def _sqlite_engine(url: str, *, readonly: bool, ro_path: Path | None = None) -> Engine:
    """An engine on the SQLite file of ``url``; with ``ro_path`` (a file this process
    cannot write) one opening it read-only, a new connection each time: one that finds
    the ``-wal`` and ``-shm`` files there (a writer with permission is at work, or left
    them) reads through them, otherwise the file is opened immutable."""
    if ro_path is not None:

        def creator() -> sqlite3.Connection:
            uri = sqlite_uri(ro_path, immutable=not wal_in_use(ro_path))
            return sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, check_same_thread=False)

        engine = sa.create_engine("sqlite://", creator=creator, poolclass=sa.pool.NullPool)
    else:
        engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA synchronous = NORMAL")
        if readonly:
            cur.execute("PRAGMA query_only = ON")
        else:
            mode = cur.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":  # pragma: no cover - e.g. network filesystems
                raise TrialbookError(f"{url}: could not switch SQLite to WAL (got {mode})")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine


def _read_only_why(path: Path) -> str | None:
    """Why this process cannot write the SQLite book ``path`` (``None``: it can)."""
    folder = path.parent
    if path.exists() and not os.access(path, os.W_OK):
        return f"no write permission on {path.name}"
    if folder.exists() and not os.access(folder, os.W_OK | os.X_OK):
        return f"no write permission on the folder {folder}"
    return None


class Database:
    """A writer engine and a reader engine over one database, plus ``write()``.

    ``read_only`` is true for a SQLite book this process cannot write: ``write()`` then
    raises ``StorageError``."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self.dialect = url.split(":", 1)[0].split("+", 1)[0]
        self._local = threading.local()
        self._write_lock = threading.RLock()
        self.read_only = False
        self._read_only_why: str | None = None
        if self.dialect == "sqlite":
            path = Path(url[len("sqlite:///") :])
            self.path: Path | None = path
            self._read_only_why = _read_only_why(path)
            self.read_only = self._read_only_why is not None
            if self.read_only:
                self._open_read_only(path, migrate)
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = _sqlite_engine(url, readonly=False)
            if migrate:
                self._migrate_sqlite(path)
            self.reader = _sqlite_engine(url, readonly=True)
        else:
            self.path = None
            self.writer = sa.create_engine(url, pool_pre_ping=True)
            self.reader = self.writer
            if migrate:
                self._migrate_server()

    @property
    def where(self) -> str:
        """The book, for messages: its folder for a ``book.db``, else the file or URL."""
        if self.path is None:
            return _redact(self.url)
        return str(self.path.parent if self.path.name == "book.db" else self.path)

    def _open_read_only(self, path: Path, migrate: bool) -> None:
        if not path.exists():
            raise StorageError(f"cannot make a book at {self.where}: it is read-only ({self._read_only_why})")
        found = probe_sqlite(path)
        refusal = found.refusal()
        if refusal is not None:
            raise refusal
        if migrate and not found.at_head:
            raise StorageError(
                f"the book at {self.where} has schema {found.revision} and needs an upgrade to "
                f"{SCHEMA_HEAD}, but it is read-only ({self._read_only_why}): open it where it "
                "can be written once, or use the trialbook it was written with"
            )
        # SQLite reads a WAL book in a read-only folder only with its -wal and -shm files
        # present, or as an immutable file (then nothing is written beside it)
        self.reader = _sqlite_engine(self.url, readonly=True, ro_path=path)
        self.writer = self.reader

    # transactions ----------------------------------------------------------------
    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction; nested calls become savepoints. Rolls back on any error."""
        if self.read_only:
            raise self.read_only_error()
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            with self._refusals(), conn.begin_nested():
                yield conn
            return
        with self._refusals(), self._write_lock, self.writer.connect() as conn, conn.begin():
            self._local.conn = conn
            try:
                yield conn
            finally:
                self._local.conn = None

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is not None:  # reads inside a write see its own changes
            yield conn
            return
        with self._read_errors(), self.reader.connect() as conn:
            yield conn

    def serialize_decisions(self, conn: Connection) -> None:
        """Inside ``write()``: wait until no other transaction is storing a decision (on
        SQLite the writer's ``BEGIN IMMEDIATE`` already does; on PostgreSQL a
        transaction-level advisory lock, released at commit or rollback)."""
        if self.dialect != "sqlite":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_DECISIONS_LOCK})")

    def lock_row(self, select: Any) -> Any:
        """``select`` taking a row lock until the end of the transaction (``FOR UPDATE``
        on PostgreSQL; SQLite's writers are serialised already)."""
        return select if self.dialect == "sqlite" else select.with_for_update()

    def dispose(self) -> None:
        self.writer.dispose()
        if self.reader is not self.writer:
            self.reader.dispose()

    def read_only_error(self) -> StorageError:
        return StorageError(
            f"the book at {self.where} is read-only ({self._read_only_why}): it can be read, not "
            "written. Get write permission on it, or work on a copy"
        )

    @contextlib.contextmanager
    def _refusals(self) -> Iterator[None]:
        """A database's refusal of a write as trialbook's errors (the transaction is rolled
        back): a duplicate of a unique record is a ``Conflict`` (a get-or-create that lost a
        race re-reads on it), a value the column cannot hold is ``InvalidInput``, a book
        that cannot be written (read-only, damaged, gone) a ``StorageError``. The checks
        in ``core`` refuse such values first; this keeps a driver error from ever escaping."""
        try:
            yield
        except sa.exc.IntegrityError as exc:
            why = _first_line(exc)
            raise Conflict(
                f"the book already holds this record (a unique name or id is taken): {why}"
            ) from exc
        except sa.exc.DataError as exc:
            raise InvalidInput(f"the database refused a value: {_first_line(exc)}") from exc
        except (sa.exc.OperationalError, sa.exc.InternalError) as exc:
            if "readonly" in _first_line(exc).replace("read-only", "readonly"):
                self._read_only_why = self._read_only_why or _first_line(exc)
                raise self.read_only_error() from exc
            raise StorageError(f"the book at {self.where} refused a write: {_first_line(exc)}") from exc
        except sa.exc.DatabaseError as exc:
            if isinstance(exc, sa.exc.ProgrammingError | sa.exc.NotSupportedError):
                raise
            raise StorageError(f"the book at {self.where} cannot be written: {_first_line(exc)}") from exc

    @contextlib.contextmanager
    def _read_errors(self) -> Iterator[None]:
        """A book that cannot be read (damaged, locked past the timeout, gone) as one
        ``StorageError`` naming it, not a driver's traceback."""
        try:
            yield
        except (sa.exc.OperationalError, sa.exc.InternalError) as exc:
            raise StorageError(f"the book at {self.where} cannot be read: {_first_line(exc)}") from exc
        except sa.exc.DatabaseError as exc:
            if isinstance(exc, sa.exc.IntegrityError | sa.exc.ProgrammingError | sa.exc.NotSupportedError):
                raise
            raise StorageError(f"the book at {self.where} cannot be read: {_first_line(exc)}") from exc

    # migrations ------------------------------------------------------------------
    def current_revision(self) -> str | None:
        with self._read_errors(), self.reader.connect() as conn:
            return _revision(conn)

    def probe(self) -> Probe:
        """What the database holds now (see ``probe``)."""
        if self.path is not None:
            return probe_sqlite(self.path)
        with self._read_errors(), self.writer.connect() as conn:
            return _probe_server(conn, self.where)

    def _migrate_sqlite(self, path: Path) -> None:
        found = probe_sqlite(path)
        if found.at_head:
            return
        refusal = found.refusal()
        if refusal is not None and found.kind in SETTLED:
            raise refusal  # no process makes such a file: refused with nothing made beside it
        # An embedded book is created, or upgrades itself, one process at a time (a file
        # lock); what the file holds is judged again under the lock, where no other
        # process is half-way through making it.
        with _file_lock(path.with_name(path.name + ".migrate.lock")):
            found = probe_sqlite(path)
            refusal = found.refusal()
            if refusal is not None:
                raise refusal
            if found.at_head:
                return
            with self._refusals(), self.writer.connect() as conn:
                upgrade(conn)
                conn.commit()

    def _migrate_server(self) -> None:
        with self._read_errors(), self.writer.connect() as conn:
            found = _probe_server(conn, self.where)
            if found.new or found.upgradable:
                # new, or being made by another process (whose migrations commit one by
                # one): judged again under the lock
                found = self._create_server(conn)
        if found.at_head:
            return
        if found.upgradable or _older(found):
            raise SchemaOutOfDate(
                f"the database at {self.where} has schema {found.revision!r}; this trialbook needs "
                f"{SCHEMA_HEAD!r}. Back it up, then run: trialbook db upgrade --uri {self.where}"
            )
        refusal = found.refusal()
        assert refusal is not None
        raise refusal

    def _create_server(self, conn: Connection) -> Probe:
        """Under an advisory lock, create the schema if the database is new (of the
        processes that find it new at once, one creates it and the others wait); what
        it holds after."""
        conn.rollback()
        conn.exec_driver_sql(f"SELECT pg_advisory_lock({_PG_MIGRATE_LOCK})")
        try:
            found = _probe_server(conn, self.where)
            if found.new:
                upgrade(conn)
                conn.commit()
                found = _probe_server(conn, self.where)
        finally:
            conn.rollback()
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock({_PG_MIGRATE_LOCK})")
            conn.commit()
        return found

    def upgrade(self) -> None:
        """Upgrade an existing database to head (``trialbook db upgrade``): a new one is
        created; someone else's, a damaged one or a newer one is refused, unchanged."""
        if self.read_only:
            raise self.read_only_error()
        found = self.probe()
        refusal = found.refusal()
        if refusal is not None:
            raise refusal
        with self._refusals(), self.writer.connect() as conn:
            upgrade(conn)
            conn.commit()


def _older(found: Probe) -> bool:
    """A book at a numbered revision below head that this trialbook has no script for
    (a database of a test or a pre-release): refused as out of date, not as unknown."""
    rev = found.revision or ""
    return found.kind == "book" and rev.isdigit() and int(rev) < int(SCHEMA_HEAD)


def _probe_server(conn: Connection, where: str) -> Probe:
    tables = sa.inspect(conn).get_table_names()
    revision = _revision(conn) if "alembic_version" in tables else None
    return probe_tables(where, tables, revision)


@contextlib.contextmanager
def _file_lock(lock_path: Path) -> Iterator[None]:
    import fcntl

    try:
        lock: IO[str] = open(lock_path, "w")  # noqa: SIM115 - held across the block
    except OSError as exc:
        raise StorageError(f"cannot lock {lock_path}: {exc.strerror or exc}") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _revision(conn: Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    value = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    return None if value is None else str(value)


def upgrade(conn: Connection) -> None:
    """Run the Alembic migrations in this process, on ``conn``."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")


def _first_line(exc: sa.exc.DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)


def _redact(url: str) -> str:
    return sa.engine.make_url(url).render_as_string(hide_password=True).replace("+psycopg", "")
