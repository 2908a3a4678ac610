"""A run's one-paragraph note: write it, read it, draft its result line from the
numbers, its history, and full-text search over every note."""

from __future__ import annotations

from collections.abc import Mapping

from typing_extensions import TypedDict

from trialbook import settings
from trialbook.api import Book
from trialbook.core import discipline as rules
from trialbook.core.entities import Evaluation, Note, RunRecord
from trialbook.core.notes import check_note_fields, draft_result
from trialbook.errors import InvalidInput


class NoteView(TypedDict):
    hypothesis: str
    change: str
    result: str
    next: str
    text: str
    version: int
    updated_at: float | None


class RunNote(TypedDict):
    """``note RUN --json`` and ``GET/PUT /api/v1/projects/P/runs/R/note``."""

    run: str
    project: str
    note: NoteView | None
    draft: str | None


class NoteDraft(TypedDict):
    run: str
    project: str
    parent: str | None
    metric: str
    draft: str
    saved: bool
    sources: dict[str, str | None]


class NoteVersion(TypedDict):
    hypothesis: str
    change: str
    result: str
    next: str
    text: str
    version: int
    at: float | None


class NoteHistory(TypedDict):
    run: str
    project: str
    history: list[NoteVersion]


class NoteHit(NoteView):
    run: str
    project: str


class NoteSearch(TypedDict):
    query: str
    project: str | None
    hits: list[NoteHit]


def note_view(note: Note | None) -> NoteView | None:
    """A note for output; ``None`` when nothing is written in it."""
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


def open_evaluations(book: Book, ids: list[str]) -> dict[str, list[Evaluation]]:
    """Evaluations by run, oldest first; sealed ones without numbers."""
    out: dict[str, list[Evaluation]] = {i: [] for i in ids}
    for ev in book.store.list_evaluations(ids):
        out[ev.run_id].append(ev)
    return out


def set_note(
    book: Book,
    ref: str,
    fields: Mapping[str, str | None],
    *,
    project: str | None = None,
    who: str | None = None,
) -> RunNote:
    """Write some fields of a run's note; every version stays in the history. Fields
    left out (or ``None``) keep their text. ``who`` is recorded (default
    ``settings.who()``; the team server passes the authenticated user)."""
    run = book.run(ref, project)
    given = check_note_fields(fields)
    if not given:
        raise InvalidInput(
            f"note {run.name}: give at least one of --hypothesis, --change, --result, --next, --text"
        )
    note = book.store.set_note(run.id, given, who=who or settings.who())
    return {"run": run.name, "project": run.project, "note": note_view(note), "draft": None}


def get_note(book: Book, ref: str, *, project: str | None = None, draft: bool = False) -> RunNote:
    """A run's note; with ``draft`` also the drafted result line (see :func:`draft_note`)."""
    run = book.run(ref, project)
    note = book.store.get_notes([run.id]).get(run.id)
    line = draft_parts(book, run)[0] if draft else None
    return {"run": run.name, "project": run.project, "note": note_view(note), "draft": line}


def draft_parts(book: Book, run: RunRecord) -> tuple[str, RunRecord | None, str, str | None, str]:
    """``(line, parent, metric, parent's source, run's source)`` of the result draft."""
    proto = book.store.get_project(run.project).protocol
    parent = book.store.get_run_by_id(run.parent_id) if run.parent_id else None
    ids = [run.id] + ([parent.id] if parent else [])
    evaluations = open_evaluations(book, ids)
    summaries = book.store.get_summaries(ids, [proto.metric])

    def numbers(r: RunRecord) -> tuple[float | None, str, dict[str, float]]:
        s = summaries[r.id].get(proto.metric)
        value, source, _ = rules.comparison_value(evaluations[r.id], proto.metric, s.best if s else None)
        return value, source, rules.per_class_ap(evaluations[r.id])

    value, source, per_class = numbers(run)
    p_value, p_source, p_per_class = numbers(parent) if parent else (None, None, {})
    line = draft_result(proto.metric, p_value, value, p_per_class, per_class, proto.noise)
    return line, parent, proto.metric, p_source, source


def draft_note(book: Book, ref: str, *, project: str | None = None, save: bool = False) -> NoteDraft:
    """A result line from the numbers against the parent run (val evaluation, else the
    best epoch; per-class AP from the val evaluation); ``save`` writes it in the note."""
    run = book.run(ref, project)
    line, parent, metric, p_source, source = draft_parts(book, run)
    if save:
        book.store.set_note(run.id, {"result": line}, who=settings.who())
    return {
        "run": run.name,
        "project": run.project,
        "parent": parent.name if parent else None,
        "metric": metric,
        "draft": line,
        "saved": save,
        "sources": {"run": source, "parent": p_source},
    }


def note_history(book: Book, ref: str, *, project: str | None = None) -> NoteHistory:
    """Every version of a run's note, oldest first."""
    run = book.run(ref, project)
    versions: list[NoteVersion] = [
        {
            "hypothesis": n.hypothesis,
            "change": n.change,
            "result": n.result,
            "next": n.next,
            "text": n.text,
            "version": n.version,
            "at": n.updated_at,
        }
        for n in book.store.note_history(run.id)
    ]
    return {"run": run.name, "project": run.project, "history": versions}


def search_notes(book: Book, text: str, *, project: str | None = None, limit: int = 50) -> NoteSearch:
    """Notes matching every word of ``text`` (the database's full-text search)."""
    found = book.store.search_notes(text, project=project, limit=limit)
    runs = {r.id: r for r in book.store.list_runs(project)}
    hits: list[NoteHit] = []
    for note in found:
        run = runs.get(note.run_id)
        view = note_view(note)
        if run is None or view is None:
            continue
        hits.append({**view, "run": run.name, "project": run.project})
    return {"query": text, "project": project, "hits": hits}
