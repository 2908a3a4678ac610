"""Shared plumbing of the SQL store mixins: the database handle, upserts, ids."""

from __future__ import annotations

import time
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from trialbook.store.sql.engine import Database


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
        from trialbook.errors import NotFound
        from trialbook.store.sql.schema import projects

        pid = conn.execute(sa.select(projects.c.id).where(projects.c.name == name)).scalar()
        if pid is None:
            raise NotFound(f"no project named {name!r}")
        return str(pid)
