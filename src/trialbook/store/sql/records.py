"""Evaluations (test ones sealed), artifacts, notes with history, and decisions."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from trialbook.core.entities import Artifact, Decision, Evaluation, Note
from trialbook.errors import InvalidInput, NotFound
from trialbook.store.sql.base import SqlBase, now
from trialbook.store.sql.schema import (
    artifacts,
    decisions,
    evaluations,
    note_history,
    notes,
    projects,
    runs,
)

NOTE_COLUMNS = ("hypothesis", "change", "result", "next", "text")


def _json_numbers(d: Mapping[str, Any]) -> dict[str, Any]:
    """NaN is not JSON: stored as null."""
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}


def _evaluation(row: Any, reveal: bool) -> Evaluation:
    hidden = row.sealed and not reveal
    return Evaluation(
        id=row.id,
        run_id=row.run_id,
        split=row.split,
        sealed=bool(row.sealed),
        created_at=row.created_at,
        metrics={} if hidden else dict(row.metrics),
        per_class_ap={} if hidden else dict(row.per_class_ap),
        confusion_matrix=None if hidden else row.confusion_matrix,
        class_names=row.class_names,
        latency_ms=None if hidden else row.latency_ms,
        device=row.device,
        split_digest=row.split_digest,
    )


def _note(run_id: str, row: Any, at_field: str) -> Note:
    return Note(
        run_id=run_id,
        **{c: getattr(row, c) for c in NOTE_COLUMNS},
        version=row.version,
        updated_at=getattr(row, at_field),
    )


class RecordsMixin(SqlBase):
    # evaluations -------------------------------------------------------------------
    def add_evaluation(self, evaluation: Evaluation) -> Evaluation:
        with self.db.write() as conn:
            conn.execute(
                evaluations.insert().values(
                    id=evaluation.id,
                    run_id=evaluation.run_id,
                    split=evaluation.split,
                    sealed=evaluation.sealed,
                    created_at=evaluation.created_at,
                    metrics=_json_numbers(evaluation.metrics),
                    per_class_ap=_json_numbers(evaluation.per_class_ap),
                    confusion_matrix=evaluation.confusion_matrix,
                    class_names=evaluation.class_names,
                    latency_ms=evaluation.latency_ms,
                    device=evaluation.device,
                    split_digest=evaluation.split_digest,
                )
            )
        return evaluation

    def list_evaluations(self, run_ids: Iterable[str], *, reveal: bool = False) -> list[Evaluation]:
        """Evaluations of these runs, oldest first. Sealed (test) ones carry no numbers
        unless ``reveal`` is true, which only a decision passes."""
        q = (
            sa.select(evaluations)
            .where(evaluations.c.run_id.in_(list(run_ids)))
            .order_by(evaluations.c.created_at)
        )
        with self.db.read() as conn:
            return [_evaluation(r, reveal) for r in conn.execute(q)]

    # artifacts ---------------------------------------------------------------------
    def add_artifact(self, artifact: Artifact) -> Artifact:
        with self.db.write() as conn:
            conn.execute(
                artifacts.insert().values(
                    id=artifact.id,
                    run_id=artifact.run_id,
                    name=artifact.name,
                    digest=artifact.digest,
                    size=artifact.size,
                    created_at=artifact.created_at,
                )
            )
        return artifact

    def list_artifacts(self, run_id: str) -> list[Artifact]:
        q = sa.select(artifacts).where(artifacts.c.run_id == run_id).order_by(artifacts.c.created_at)
        with self.db.read() as conn:
            return [
                Artifact(
                    id=r.id,
                    run_id=r.run_id,
                    name=r.name,
                    digest=r.digest,
                    size=r.size,
                    created_at=r.created_at,
                )
                for r in conn.execute(q)
            ]

    # notes ---------------------------------------------------------------------------
    def set_note(self, run_id: str, fields: Mapping[str, str], *, who: str) -> Note:
        """Update some fields of a run's note; every version is kept in the history."""
        unknown = [k for k in fields if k not in NOTE_COLUMNS]
        if unknown:
            raise InvalidInput(f"unknown note field(s): {', '.join(unknown)}; use {', '.join(NOTE_COLUMNS)}")
        for k, v in fields.items():
            if not isinstance(v, str):
                raise InvalidInput(f"note field {k!r} must be text, got {type(v).__name__}")
        at = now()
        with self.db.write() as conn:
            if conn.execute(sa.select(runs.c.id).where(runs.c.id == run_id)).first() is None:
                raise NotFound(f"no run with id {run_id!r}")
            row = conn.execute(sa.select(notes).where(notes.c.run_id == run_id)).first()
            current = {c: (getattr(row, c) if row else "") for c in NOTE_COLUMNS}
            current.update(fields)
            version = (row.version if row else 0) + 1
            if row is None:
                conn.execute(
                    notes.insert().values(run_id=run_id, version=version, who=who, updated_at=at, **current)
                )
            else:
                conn.execute(
                    notes.update()
                    .where(notes.c.run_id == run_id)
                    .values(version=version, who=who, updated_at=at, **current)
                )
            conn.execute(
                note_history.insert().values(run_id=run_id, version=version, who=who, at=at, **current)
            )
        return Note(run_id=run_id, version=version, updated_at=at, **current)

    def get_notes(self, run_ids: Iterable[str]) -> dict[str, Note]:
        q = sa.select(notes).where(notes.c.run_id.in_(list(run_ids)))
        with self.db.read() as conn:
            return {r.run_id: _note(r.run_id, r, "updated_at") for r in conn.execute(q)}

    def note_history(self, run_id: str) -> list[Note]:
        q = sa.select(note_history).where(note_history.c.run_id == run_id).order_by(note_history.c.version)
        with self.db.read() as conn:
            return [_note(run_id, r, "at") for r in conn.execute(q)]

    # decisions -------------------------------------------------------------------------
    def add_decision(self, decision: Decision) -> Decision:
        with self.db.write() as conn:
            pid = self._project_id(conn, decision.project)
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
