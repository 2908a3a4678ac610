"""Evaluations (test ones sealed) and artifacts: ``RecordStore`` less the notes (``notes``)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from trialbook.core.entities import Artifact, Evaluation
from trialbook.store.sql.base import SqlBase
from trialbook.store.sql.schema import artifacts, evaluations


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


class RecordsMixin(SqlBase):
    # evaluations -------------------------------------------------------------------
    def add_evaluation(self, evaluation: Evaluation) -> Evaluation:
        with self.db.write() as conn:
            self._require_run(conn, evaluation.run_id)
            self._require_new(conn, evaluations, evaluation.id, "evaluation")
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
            self._require_run(conn, artifact.run_id)
            self._require_new(conn, artifacts, artifact.id, "artifact")
            conn.execute(
                artifacts.insert().values(
                    id=artifact.id,
                    run_id=artifact.run_id,
                    name=artifact.name,
                    digest=artifact.digest,
                    size=artifact.size,
                    created_at=artifact.created_at,
                    evaluation_id=artifact.evaluation_id,
                )
            )
        return artifact

    def list_artifacts(self, run_id: str, *, reveal: bool = False) -> list[Artifact]:
        q = sa.select(artifacts).where(artifacts.c.run_id == run_id)
        if not reveal:  # the files of a sealed evaluation are sealed with it
            sealed = sa.select(evaluations.c.id).where(
                evaluations.c.run_id == run_id, evaluations.c.sealed.is_(True)
            )
            q = q.where(sa.or_(artifacts.c.evaluation_id.is_(None), artifacts.c.evaluation_id.not_in(sealed)))
        q = q.order_by(artifacts.c.created_at, artifacts.c.id)
        with self.db.read() as conn:
            return [
                Artifact(
                    id=r.id,
                    run_id=r.run_id,
                    name=r.name,
                    digest=r.digest,
                    size=r.size,
                    created_at=r.created_at,
                    evaluation_id=r.evaluation_id,
                )
                for r in conn.execute(q)
            ]
