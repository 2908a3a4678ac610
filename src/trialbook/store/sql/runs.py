"""Runs (``RunStore``): creation (names unique in a project), lookups, status, lineage."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from trialbook.core.entities import RUN_STATUSES, RunRecord
from trialbook.core.text import check_name
from trialbook.errors import Conflict, InvalidInput, NotFound
from trialbook.store.sql.base import SqlBase
from trialbook.store.sql.schema import projects, runs

_RUN_COLUMNS = [c for c in runs.c if c.name != "project_id"] + [projects.c.name.label("project")]


def _run(row: Any) -> RunRecord:
    return RunRecord(
        id=row.id,
        project=row.project,
        name=row.name,
        status=row.status,
        created_at=row.created_at,
        heartbeat_at=row.heartbeat_at,
        ended_at=row.ended_at,
        parent_id=row.parent_id,
        dataset=row.dataset,
        pinned=bool(row.pinned),
        split_digests=dict(row.split_digests or {}),
        config=dict(row.config or {}),
        env=dict(row.env or {}),
        tags=dict(row.tags or {}),
        legacy_name=bool(row.legacy_name),
        end_reason=row.end_reason,
        unwritten=int(row.unwritten or 0),
    )


def _select() -> sa.Select[Any]:
    return sa.select(*_RUN_COLUMNS).join(projects, projects.c.id == runs.c.project_id)


def _name_taken(run: RunRecord) -> Conflict:
    return Conflict(
        f"project {run.project!r} already has a run named {run.name!r}; names are "
        "unique in a project (use resume=True to continue it)"
    )


# "oldest first" (core.runs.run_order)
OLDEST_FIRST = (runs.c.created_at, runs.c.id)


class RunsMixin(SqlBase):
    def create_run(self, run: RunRecord) -> RunRecord:
        check_name("run name", run.name)
        with self.db.write() as conn:
            pid = self._project_id(conn, run.project)
            self._require_new(conn, runs, run.id, "run")
            if self._run_named(conn, pid, run.name):
                raise _name_taken(run)
            # a run of that name (or id) made by another process meanwhile: the insert does
            # nothing (PostgreSQL waits for that one's commit) and says so
            inserted = conn.execute(
                self._insert(runs)
                .values(
                    id=run.id,
                    project_id=pid,
                    name=run.name,
                    status=run.status,
                    created_at=run.created_at,
                    heartbeat_at=run.heartbeat_at,
                    ended_at=run.ended_at,
                    parent_id=run.parent_id,
                    dataset=run.dataset,
                    dataset_digest=run.split_digests.get("dataset"),
                    pinned=run.pinned,
                    split_digests=run.split_digests,
                    config=run.config,
                    env=run.env,
                    tags=run.tags,
                    legacy_name=run.legacy_name,
                    end_reason=run.end_reason,
                    unwritten=run.unwritten,
                )
                .on_conflict_do_nothing()
                .returning(runs.c.id)
            ).first()
            if inserted is None:
                if self._run_named(conn, pid, run.name):
                    raise _name_taken(run)
                raise Conflict(f"run id {run.id!r} is already taken")
        return self.get_run_by_id(run.id)

    def _run_named(self, conn: Connection, project_id: str, name: str) -> bool:
        found = conn.execute(sa.select(runs.c.id).where(runs.c.project_id == project_id, runs.c.name == name))
        return found.first() is not None

    def get_run(self, project: str, name: str) -> RunRecord:
        with self.db.read() as conn:
            row = conn.execute(_select().where(projects.c.name == project, runs.c.name == name)).first()
        if row is None:
            raise NotFound(f"no run named {name!r} in project {project!r}")
        return _run(row)

    def get_run_by_id(self, run_id: str) -> RunRecord:
        with self.db.read() as conn:
            row = conn.execute(_select().where(runs.c.id == run_id)).first()
        if row is None:
            raise NotFound(f"no run with id {run_id!r}")
        return _run(row)

    def find_runs(self, name: str) -> list[RunRecord]:
        with self.db.read() as conn:
            rows = conn.execute(_select().where(runs.c.name == name).order_by(projects.c.name)).all()
        return [_run(r) for r in rows]

    def list_runs(self, project: str | None = None) -> list[RunRecord]:
        q = _select().order_by(*OLDEST_FIRST)
        if project is not None:
            q = q.where(projects.c.name == project)
        with self.db.read() as conn:
            if project is not None:
                self._project_id(conn, project)
            rows = conn.execute(q).all()
        return [_run(r) for r in rows]

    def set_run_status(
        self,
        run_id: str,
        status: str,
        *,
        ended_at: float | None = None,
        heartbeat_at: float | None = None,
        end_reason: str | None = None,
    ) -> None:
        if status not in RUN_STATUSES:
            raise InvalidInput(f"run status {status!r} is not one of {', '.join(RUN_STATUSES)}")
        values: dict[str, Any] = {"status": status, "ended_at": ended_at, "end_reason": end_reason}
        if heartbeat_at is not None:
            values["heartbeat_at"] = heartbeat_at
        with self.db.write() as conn:
            done = conn.execute(runs.update().where(runs.c.id == run_id).values(**values))
            if done.rowcount == 0:
                raise NotFound(f"no run with id {run_id!r}")

    def count_unwritten(self, run_id: str, delta: int) -> int:
        with self.db.write() as conn:
            done = conn.execute(
                runs.update()
                .where(runs.c.id == run_id)
                .values(
                    unwritten=sa.func.max(runs.c.unwritten + delta, 0)
                    if self.db.dialect == "sqlite"
                    else sa.func.greatest(runs.c.unwritten + delta, 0)
                )
            )
            if done.rowcount == 0:
                raise NotFound(f"no run with id {run_id!r}")
            return int(conn.execute(sa.select(runs.c.unwritten).where(runs.c.id == run_id)).scalar_one())

    def get_runs_by_name(self, project: str, names: Iterable[str]) -> list[RunRecord]:
        wanted = list(dict.fromkeys(names))
        with self.db.read() as conn:
            self._project_id(conn, project)
            rows = {
                r.name: _run(r)
                for r in conn.execute(_select().where(projects.c.name == project, runs.c.name.in_(wanted)))
            }
        return [rows[n] for n in wanted if n in rows]

    def run_names(self, run_ids: Iterable[str]) -> dict[str, str]:
        ids = list(set(run_ids))
        if not ids:
            return {}
        with self.db.read() as conn:
            return dict(conn.execute(sa.select(runs.c.id, runs.c.name).where(runs.c.id.in_(ids))).all())

    def child_runs(self, run_id: str) -> list[RunRecord]:
        with self.db.read() as conn:
            rows = conn.execute(_select().where(runs.c.parent_id == run_id).order_by(*OLDEST_FIRST)).all()
        return [_run(r) for r in rows]
