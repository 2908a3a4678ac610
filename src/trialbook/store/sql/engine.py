"""Engines, the transaction helper and in-process migrations.

SQLite discipline (after datasette and mlflow): WAL journal, a 60 s busy timeout,
foreign keys on; every write goes through ``Database.write()``, which serialises the
writers of this process on a lock and opens ``BEGIN IMMEDIATE`` so that writers of other
processes queue on the busy handler instead of failing with "database is locked";
readers use deferred transactions on connections marked ``query_only``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from trialbook.errors import SchemaOutOfDate, TrialbookError
from trialbook.store.sql.schema import SCHEMA_HEAD

BUSY_TIMEOUT_S = 60.0
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _sqlite_engine(url: str, *, readonly: bool) -> Engine:
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


class Database:
    """A writer engine and a reader engine over one database, plus ``write()``."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self.dialect = url.split(":", 1)[0].split("+", 1)[0]
        self._local = threading.local()
        self._write_lock = threading.RLock()
        if self.dialect == "sqlite":
            path = Path(url[len("sqlite:///") :])
            path.parent.mkdir(parents=True, exist_ok=True)
            self.path: Path | None = path
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

    # transactions ----------------------------------------------------------------
    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction; nested calls become savepoints. Rolls back on any error."""
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            with conn.begin_nested():
                yield conn
            return
        with self._write_lock, self.writer.connect() as conn, conn.begin():
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
        with self.reader.connect() as conn:
            yield conn

    def dispose(self) -> None:
        self.writer.dispose()
        if self.reader is not self.writer:
            self.reader.dispose()

    # migrations ------------------------------------------------------------------
    def current_revision(self) -> str | None:
        with self.writer.connect() as conn:
            return _revision(conn)

    def _migrate_sqlite(self, path: Path) -> None:
        if self.current_revision() == SCHEMA_HEAD:
            return
        # An embedded book upgrades itself, one process at a time (a file lock).
        import fcntl

        lock_path = path.with_name(path.name + ".migrate.lock")
        with open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                with self.writer.connect() as conn:
                    if _revision(conn) != SCHEMA_HEAD:
                        upgrade(conn)
                        conn.commit()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _migrate_server(self) -> None:
        with self.writer.connect() as conn:
            revision = _revision(conn)
            if revision == SCHEMA_HEAD:
                return
            existing = sa.inspect(conn).get_table_names()
            if revision is None and not [t for t in existing if t in _OUR_TABLES]:
                # A fresh database is created at head, under an advisory lock.
                conn.exec_driver_sql("SELECT pg_advisory_lock(74726961)")
                try:
                    if _revision(conn) is None:
                        upgrade(conn)
                    conn.commit()
                finally:
                    conn.exec_driver_sql("SELECT pg_advisory_unlock(74726961)")
                    conn.commit()
                return
        raise SchemaOutOfDate(
            f"the database at {_redact(self.url)} has schema {revision!r}; this trialbook needs "
            f"{SCHEMA_HEAD!r}. Back it up, then run: trialbook db upgrade --uri {_redact(self.url)}"
        )

    def upgrade(self) -> None:
        """Upgrade an existing database to head (``trialbook db upgrade``)."""
        with self.writer.connect() as conn:
            upgrade(conn)
            conn.commit()


_OUR_TABLES = {"projects", "runs", "series", "points"}


def _revision(conn: Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def upgrade(conn: Connection) -> None:
    """Run the Alembic migrations in this process, on ``conn``."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")


def _redact(url: str) -> str:
    return sa.engine.make_url(url).render_as_string(hide_password=True).replace("+psycopg", "")
