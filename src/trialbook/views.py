"""Read models shared by the CLI, exports and the web UI: plain dicts built from the
store and ``core`` rules. Sealed test numbers never appear here."""

from __future__ import annotations

import time
from typing import Any

from trialbook.api import Book
from trialbook.core import ranking
from trialbook.core.entities import Evaluation, Note, RunRecord, SeriesSummary
from trialbook.core.metrics import direction_of
from trialbook.core.runs import effective_status
from trialbook.errors import InvalidInput


def pick_project(book: Book, project: str | None) -> str:
    """``project``, or the book's only project; a clear error when there are several."""
    if project:
        book.store.get_project(project)
        return project
    names = [p.name for p in book.store.list_projects()]
    if len(names) == 1:
        return names[0]
    if not names:
        raise InvalidInput(f"the book at {book.uri} has no projects yet")
    raise InvalidInput(f"the book holds several projects ({', '.join(names)}): choose one with --project")


def note_dict(note: Note | None) -> dict[str, Any] | None:
    if note is None or note.is_empty:
        return None
    return {
        "hypothesis": note.hypothesis,
        "change": note.change,
        "result": note.result,
        "next": note.next,
        "text": note.text,
        "version": note.version,
        "updated_at": note.updated_at,
    }


def evaluation_dict(ev: Evaluation) -> dict[str, Any]:
    """An evaluation for output. A sealed one carries no numbers at all."""
    out: dict[str, Any] = {
        "split": ev.split,
        "sealed": ev.sealed,
        "created_at": ev.created_at,
        "device": ev.device,
        "split_digest": ev.split_digest,
    }
    if ev.sealed:
        out.update(metrics=None, per_class_ap=None, latency_ms=None, confusion_matrix=None)
    else:
        out.update(
            metrics=ev.metrics,
            per_class_ap=ev.per_class_ap,
            latency_ms=ev.latency_ms,
            confusion_matrix=ev.confusion_matrix,
            class_names=ev.class_names,
        )
    return out


def summary_dict(s: SeriesSummary) -> dict[str, Any]:
    return {
        "best": s.best,
        "final": s.final,
        "epoch_of_best": s.best_epoch,
        "epochs": s.count,
        "nan_count": s.nan_count,
        "direction": s.direction,
    }


def runs_table(book: Book, project: str | None = None, *, metric: str | None = None) -> dict[str, Any]:
    """The project's runs ranked by the protocol metric (INTERFACE.md ``runs --json``)."""
    name = pick_project(book, project)
    proto = book.store.get_project(name).protocol
    key = metric or proto.metric
    direction = proto.direction if key == proto.metric else direction_of(key)
    now = time.time()
    rows: list[dict[str, Any]] = [
        {
            "name": r.name,
            "id": r.id,
            "status": effective_status(r.as_record, now),
            "dataset": r.dataset,
            "pinned": r.pinned,
            "parent": r.parent_name or r.parent_id,
            "best": r.best,
            "final": r.final,
            "epoch_of_best": r.best_epoch,
            "epochs": r.count,
            "has_note": r.has_note,
            "legacy_name": r.legacy_name,
            "created_at": r.created_at,
        }
        for r in book.store.run_rows(name, key)
    ]
    ranked = ranking.rank(rows, lambda row: row["best"], direction)
    return {
        "project": name,
        "metric": key,
        "direction": direction,
        "exploratory": key != proto.metric,
        "runs": ranked,
    }


def run_detail(book: Book, run: RunRecord) -> dict[str, Any]:
    """One run (INTERFACE.md ``show --json``); sealed evaluations carry no numbers."""
    summaries = book.store.get_summaries([run.id])[run.id]
    parent = book.store.get_run_by_id(run.parent_id).name if run.parent_id else None
    note = book.store.get_notes([run.id]).get(run.id)
    evaluations = book.store.list_evaluations([run.id])
    artifacts = book.store.list_artifacts(run.id)
    return {
        "name": run.name,
        "id": run.id,
        "project": run.project,
        "status": effective_status(run, time.time()),
        "dataset": run.dataset,
        "pinned": run.pinned,
        "split_digests": run.split_digests,
        "parent": parent,
        "created_at": run.created_at,
        "ended_at": run.ended_at,
        "legacy_name": run.legacy_name,
        "config": run.config,
        "env": run.env,
        "tags": run.tags,
        "summary": {k: summary_dict(s) for k, s in sorted(summaries.items())},
        "evaluations": [evaluation_dict(e) for e in evaluations],
        "artifacts": [{"name": a.name, "digest": a.digest, "size": a.size} for a in artifacts],
        "note": note_dict(note),
    }
