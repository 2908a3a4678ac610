"""Decisions, comparisons and ships (``DecisionStore``): the records of choosing a run.

A decision is written once and never changed. A comparison row is kept for every compare
of a project, so that a later change of the protocol metric is known to come after runs
were compared. A ship makes a run the project's shipped one (``projects.shipped_run_id``)
and stays in the history.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from trialbook.core.entities import Decision, Ship
from trialbook.errors import NotFound
from trialbook.store.sql.base import SqlBase, now
from trialbook.store.sql.schema import comparisons, decisions, projects, runs, ships


def _ship(row: Any, project: str) -> Ship:
    return Ship(
        id=row.id,
        project=project,
        run_id=row.run_id,
        decision_id=row.decision_id,
        forced=bool(row.forced),
        reason=row.reason,
        who=row.who,
        at=row.at,
    )


class DecisionsMixin(SqlBase):
    # decisions -------------------------------------------------------------------------
    def add_decision(self, decision: Decision) -> Decision:
        with self.db.write() as conn:
            pid = self._project_id(conn, decision.project)
            self._require_new(conn, decisions, decision.id, "decision")
            conn.execute(
                decisions.insert().values(
                    id=decision.id,
                    project_id=pid,
                    candidate_id=decision.candidate_id,
                    baseline_id=decision.baseline_id,
                    verdict=decision.verdict,
                    gates=decision.gates,
                    protocol=decision.protocol,
                    test_split_digest=decision.test_split_digest,
                    revealed=decision.revealed,
                    who=decision.who,
                    at=decision.at,
                )
            )
        return decision

    def list_decisions(self, project: str | None = None) -> list[Decision]:
        q = (
            sa.select(decisions, projects.c.name.label("project"))
            .join(projects, projects.c.id == decisions.c.project_id)
            .order_by(decisions.c.at)
        )
        if project is not None:
            q = q.where(projects.c.name == project)
        with self.db.read() as conn:
            return [
                Decision(
                    id=r.id,
                    project=r.project,
                    candidate_id=r.candidate_id,
                    baseline_id=r.baseline_id,
                    verdict=r.verdict,
                    gates=list(r.gates),
                    protocol=dict(r.protocol),
                    test_split_digest=r.test_split_digest,
                    revealed=bool(r.revealed),
                    who=r.who,
                    at=r.at,
                )
                for r in conn.execute(q)
            ]

    # comparisons ----------------------------------------------------------------------
    def record_comparison(
        self, project: str, run_ids: Sequence[str], metric: str, *, exploratory: bool, who: str
    ) -> None:
        with self.db.write() as conn:
            pid = self._project_id(conn, project)
            conn.execute(
                comparisons.insert().values(
                    project_id=pid,
                    metric=metric,
                    exploratory=exploratory,
                    run_ids=list(run_ids),
                    who=who,
                    at=now(),
                )
            )

    def first_comparison_at(self, project: str) -> float | None:
        with self.db.read() as conn:
            pid = self._project_id(conn, project)
            at = conn.execute(
                sa.select(sa.func.min(comparisons.c.at)).where(
                    comparisons.c.project_id == pid, comparisons.c.exploratory.is_(False)
                )
            ).scalar()
        return None if at is None else float(at)

    # ships ------------------------------------------------------------------------------
    def ship_run(
        self,
        project: str,
        run_id: str,
        *,
        decision_id: str | None,
        forced: bool,
        reason: str | None,
        who: str,
    ) -> Ship:
        with self.db.write() as conn:
            pid = self._project_id(conn, project)
            found = conn.execute(
                sa.select(runs.c.id).where(runs.c.id == run_id, runs.c.project_id == pid)
            ).first()
            if found is None:
                raise NotFound(f"no run with id {run_id!r} in project {project!r}")
            result = conn.execute(
                ships.insert().values(
                    project_id=pid,
                    run_id=run_id,
                    decision_id=decision_id,
                    forced=forced,
                    reason=reason,
                    who=who,
                    at=now(),
                )
            )
            conn.execute(projects.update().where(projects.c.id == pid).values(shipped_run_id=run_id))
            key = result.inserted_primary_key
            assert key is not None
            row = conn.execute(sa.select(ships).where(ships.c.id == key[0])).one()
        return _ship(row, project)

    def list_ships(self, project: str) -> list[Ship]:
        with self.db.read() as conn:
            pid = self._project_id(conn, project)
            rows = conn.execute(
                sa.select(ships).where(ships.c.project_id == pid).order_by(ships.c.at, ships.c.id)
            ).all()
        return [_ship(r, project) for r in rows]
