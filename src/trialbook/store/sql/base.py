"""Shared plumbing of the SQL store mixins: the database handle, upserts, ids, checks."""

from __future__ import annotations

import time
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from trialbook.errors import Conflict, NotFound
from trialbook.store.sql.engine import Database
from trialbook.store.sql.schema import projects, runs


def new_id() -> str:
    return uuid.uuid4().hex


def now() -> float:
    return time.time()


class SqlBase:
    db: Database

    def _insert(self, table: sa.Table) -> Any:
        """The dialect's INSERT, which offers ``on_conflict_do_update/nothing``."""
        if self.db.dialect == "sqlite":
            from sqlalchemy.dialects import sqlite

            return sqlite.insert(table)
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)

    def _project_id(self, conn: Connection, name: str) -> str:
        """The id of project ``name``; ``NotFound`` if there is none."""
        pid = conn.execute(sa.select(projects.c.id).where(projects.c.name == name)).scalar()
        if pid is None:
            raise NotFound(f"no project named {name!r}")
        return str(pid)

    def _require_run(self, conn: Connection, run_id: str, *, lock: bool = False) -> None:
        """``NotFound`` unless run ``run_id`` exists (checked here, so that a missing run
        is never a foreign-key error of the driver). With ``lock`` the run's row is locked
        until the transaction ends (``Database.lock_row``)."""
        query = sa.select(runs.c.id).where(runs.c.id == run_id)
        if conn.execute(self.db.lock_row(query) if lock else query).first() is None:
            raise NotFound(f"no run with id {run_id!r}")

    def _require_new(self, conn: Connection, table: sa.Table, id_: str, what: str) -> None:
        """``Conflict`` if ``table`` already holds a row with id ``id_`` (ids are the
        client's: a replayed write must not pass as a second record)."""
        if conn.execute(sa.select(table.c.id).where(table.c.id == id_)).first() is not None:
            raise Conflict(f"{what} id {id_!r} is already taken")
