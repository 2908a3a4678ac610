"""Decisions, comparisons and ships (``DecisionStore``): the records of choosing a run.

A decision is written once and never changed. Decisions are stored one at a time, so
that one revealing test numbers is refused when the split's budget was spent meanwhile
(``add_decision(..., reveal_budget=...)``), and one made on the evidence of a decision
already stored is not stored again: that one is returned (``add_decision(...,
evidence=...)``; the ``decisions.evidence`` column, migration 0005). A comparison row is
kept for every compare of a project, so that a later change of the protocol metric is
known to come after runs were compared. A ship makes a run the project's shipped one
(``projects.shipped_run_id``) and stays in the history.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from trialbook.core.discipline import reveals_used
from trialbook.core.entities import Decision, Ship
from trialbook.errors import Conflict, NotFound
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


def _with_project() -> sa.Select[Any]:
    return sa.select(decisions, projects.c.name.label("project")).join(
        projects, projects.c.id == decisions.c.project_id
    )


def _decision(r: Any) -> Decision:
    return Decision(
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
        evidence=r.evidence,
    )


class DecisionsMixin(SqlBase):
    # decisions -------------------------------------------------------------------------
    def add_decision(
        self, decision: Decision, *, reveal_budget: int | None = None, evidence: str | None = None
    ) -> Decision:
        if evidence is None:
            evidence = decision.evidence
        with self.db.write() as conn:
            # decisions are stored one at a time: a count of reveals below, and a decision
            # on the same evidence looked up, are still true when this one is added
            self.db.serialize_decisions(conn)
            pid = self._project_id(conn, decision.project)
            self._require_new(conn, decisions, decision.id, "decision")
            recorded = self._on_evidence(conn, evidence, pid)
            if recorded is not None:
                return recorded
            if decision.revealed and reveal_budget is not None:
                digest = decision.test_split_digest
                used = reveals_used(self._revealing(conn, digest, pid), digest, decision.project)
                if used >= reveal_budget:
                    split = "of unknown digest" if digest is None else digest[:12]
                    raise Conflict(
                        f"test split {split} is burned: {used} of {reveal_budget} reveals are used "
                        "(another decision revealed it meanwhile); nothing was stored. Decide again: "
                        "the test numbers stay sealed"
                    )
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
                    evidence=evidence,
                )
            )
        return dataclasses.replace(decision, evidence=evidence)

    def _on_evidence(self, conn: Connection, evidence: str | None, project_id: str) -> Decision | None:
        """The first decision of the project stored with ``evidence``; ``None`` if none
        (or no evidence is given)."""
        if evidence is None:
            return None
        q = (
            _with_project()
            .where(decisions.c.project_id == project_id, decisions.c.evidence == evidence)
            .order_by(decisions.c.at, decisions.c.id)
            .limit(1)
        )
        row = conn.execute(q).first()
        return None if row is None else _decision(row)

    def find_decision(self, project: str, evidence: str) -> Decision | None:
        with self.db.read() as conn:
            pid = self._project_id(conn, project)
            return self._on_evidence(conn, evidence, pid)

    def _revealing(self, conn: Connection, digest: str | None, project_id: str) -> list[Decision]:
        """The stored decisions that revealed test split ``digest`` (of unknown digest: of
        this project), which ``core.discipline.reveals_used`` then counts."""
        on_split = (
            decisions.c.test_split_digest == digest
            if digest is not None
            else sa.and_(decisions.c.test_split_digest.is_(None), decisions.c.project_id == project_id)
        )
        q = _with_project().where(decisions.c.revealed.is_(True), on_split)
        return [_decision(r) for r in conn.execute(q)]

    def list_decisions(self, project: str | None = None) -> list[Decision]:
        q = _with_project().order_by(decisions.c.at)
        if project is not None:
            q = q.where(projects.c.name == project)
        with self.db.read() as conn:
            return [_decision(r) for r in conn.execute(q)]

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
