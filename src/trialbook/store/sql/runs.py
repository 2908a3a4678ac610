"""Runs: creation (names unique in a project), lookup and status."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from trialbook.core.entities import RUN_STATUSES, RunRecord, RunRow
from trialbook.errors import Conflict, InvalidInput, NotFound
from trialbook.store.sql.base import SqlBase
from trialbook.store.sql.schema import note_written, notes, projects, runs, series

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
    )


def _select() -> sa.Select[Any]:
    return sa.select(*_RUN_COLUMNS).join(projects, projects.c.id == runs.c.project_id)


class RunsMixin(SqlBase):
    def create_run(self, run: RunRecord) -> RunRecord:
        with self.db.write() as conn:
            pid = self._project_id(conn, run.project)
            taken = conn.execute(
                sa.select(runs.c.id).where(runs.c.project_id == pid, runs.c.name == run.name)
            ).first()
            if taken:
                raise Conflict(
                    f"project {run.project!r} already has a run named {run.name!r}; names are "
                    "unique in a project (use resume=True to continue it)"
                )
            conn.execute(
                runs.insert().values(
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
                )
            )
        return self.get_run_by_id(run.id)

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
        """Runs named ``name`` in any project (names are unique only per project)."""
        with self.db.read() as conn:
            rows = conn.execute(_select().where(runs.c.name == name).order_by(projects.c.name)).all()
        return [_run(r) for r in rows]

    def list_runs(self, project: str | None = None) -> list[RunRecord]:
        q = _select().order_by(runs.c.created_at)
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
    ) -> None:
        if status not in RUN_STATUSES:
            raise InvalidInput(f"run status {status!r} is not one of {', '.join(RUN_STATUSES)}")
        values: dict[str, Any] = {"status": status, "ended_at": ended_at}
        if heartbeat_at is not None:
            values["heartbeat_at"] = heartbeat_at
        with self.db.write() as conn:
            done = conn.execute(runs.update().where(runs.c.id == run_id).values(**values))
            if done.rowcount == 0:
                raise NotFound(f"no run with id {run_id!r}")

    def run_rows(self, project: str, key: str) -> list[RunRow]:
        """Every run of ``project`` with the summary of ``key``, in one query (the runs
        table: no config, env or tags are read)."""
        with self.db.read() as conn:
            self._project_id(conn, project)
            rows = conn.execute(_RUN_ROWS, {"project": project, "key": key}).all()
        return [
            RunRow(
                id=i,
                name=n,
                status=st,
                created_at=ca,
                heartbeat_at=hb,
                parent_id=pid,
                parent_name=pn,
                dataset=ds,
                pinned=bool(pin),
                legacy_name=bool(leg),
                best=b,
                best_epoch=be,
                final=f,
                final_epoch=fe,
                count=c or 0,
                has_note=bool(nc),
            )
            for i, n, st, ca, hb, pid, pn, ds, pin, leg, b, be, f, fe, c, nc in rows
        ]


def _run_rows_query() -> sa.Select[Any]:
    """Runs of a project (bind ``project``) with one series' summary (bind ``key``) and
    whether their note has any text. Built once: SQLAlchemy caches its compiled form."""
    parent = runs.alias("parent")
    return (
        sa.select(
            runs.c.id,
            runs.c.name,
            runs.c.status,
            runs.c.created_at,
            runs.c.heartbeat_at,
            runs.c.parent_id,
            parent.c.name,
            runs.c.dataset,
            runs.c.pinned,
            runs.c.legacy_name,
            series.c.best,
            series.c.best_epoch,
            series.c.final,
            series.c.final_epoch,
            series.c["count"],
            note_written(),
        )
        .select_from(
            runs.join(projects, projects.c.id == runs.c.project_id)
            .outerjoin(parent, parent.c.id == runs.c.parent_id)
            .outerjoin(series, sa.and_(series.c.run_id == runs.c.id, series.c.key == sa.bindparam("key")))
            .outerjoin(notes, notes.c.run_id == runs.c.id)
        )
        .where(projects.c.name == sa.bindparam("project"))
        .order_by(runs.c.created_at)
    )


_RUN_ROWS = _run_rows_query()
