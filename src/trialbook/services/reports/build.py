"""The report of a project, or of some of its runs, as one document (the ``json``
format; the md, html and csv renderers draw it).

A report holds the protocol and its audit history (metric changes made after runs were
compared are flagged), the runs ranked by the protocol metric with their curve analytics,
the curves, the config keys that differ (without bookkeeping keys: ``services.compare``),
the decisions and the notes. Sealed test
numbers appear only inside decisions, which are where reveals live.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from typing_extensions import TypedDict

from trialbook.api import Book
from trialbook.errors import InvalidInput
from trialbook.services.compare import RunStats, compare_runs
from trialbook.services.decisions import DecisionView, list_decisions
from trialbook.services.notes import NoteView, note_view
from trialbook.services.projects import (
    ProtocolChangeView,
    ShipView,
    TestSplitUse,
    pick_project,
    project_info,
)
from trialbook.services.runs import EvaluationView, evaluation_view


class ReportRun(RunStats):
    config: dict[str, Any]
    evaluations: list[EvaluationView]
    note: NoteView | None
    shipped: bool


class Report(TypedDict):
    """``export --format json``."""

    title: str
    generated_at: float
    project: str
    metric: str
    direction: str
    protocol: dict[str, Any]
    protocol_history: list[ProtocolChangeView]
    metric_changes_after_comparison: list[ProtocolChangeView]
    shipped: str | None
    ships: list[ShipView]
    test_splits: list[TestSplitUse]
    comparable: bool
    warnings: list[str]
    runs: list[ReportRun]
    curves: dict[str, list[list[float]]]
    config_diff: dict[str, dict[str, Any]]
    decisions: list[DecisionView]


def build_report(book: Book, runs: Sequence[str] = (), *, project: str | None = None) -> Report:
    """The report of all of ``project``'s runs, or of ``runs`` (of one project)."""
    if runs:
        records = [book.run(r, project) for r in dict.fromkeys(runs)]
        names = sorted({r.project for r in records})
        if len(names) > 1:
            raise InvalidInput(
                f"export: the runs are in several projects ({', '.join(names)}); export one project at a time"
            )
        name = names[0]
    else:
        name = pick_project(book, project)
        records = book.store.list_runs(name)
    info = project_info(book, name)
    proto = info["protocol"]
    compared = compare_runs(book, [r.name for r in records], project=name, record=False) if records else None
    by_name = {r.name: r for r in records}
    ids = [r.id for r in records]
    notes = book.store.get_notes(ids)
    evaluations: dict[str, list[EvaluationView]] = {i: [] for i in ids}
    for ev in book.store.list_evaluations(ids):
        evaluations[ev.run_id].append(evaluation_view(ev))
    rows: list[ReportRun] = []
    for row in compared["runs"] if compared else []:
        record = by_name[row["name"]]
        stats: dict[str, Any] = {k: v for k, v in row.items() if k != "curve"}
        rows.append(
            {
                **stats,  # type: ignore[typeddict-item]
                "config": record.config,
                "evaluations": evaluations[record.id],
                "note": note_view(notes.get(record.id)),
                "shipped": info["shipped"] == record.name,
            }
        )
    every = list_decisions(book, name)["decisions"]
    chosen = (
        every if not runs else [d for d in every if d["candidate"] in by_name or d["baseline"] in by_name]
    )
    return {
        "title": f"trialbook report: {name}",
        "generated_at": time.time(),
        "project": name,
        "metric": proto["metric"],
        "direction": proto["direction"],
        "protocol": proto,
        "protocol_history": info["history"],
        "metric_changes_after_comparison": info["metric_changes_after_comparison"],
        "shipped": info["shipped"],
        "ships": info["ships"],
        "test_splits": info["test_splits"],
        "comparable": compared["comparable"] if compared else True,
        "warnings": compared["warnings"] if compared else [],
        "runs": rows,
        "curves": {row["name"]: row["curve"] for row in compared["runs"]} if compared else {},
        "config_diff": compared["config_diff"] if compared else {},
        "decisions": chosen,
    }
