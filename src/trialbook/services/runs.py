"""The runs table (ranked by the protocol metric, filtered and paged as asked; the
project's shipped run marked), one run's view (test evaluations sealed) and a run's
per-epoch history.

A book with no project yet has an empty runs table (``project`` ``None``), not an error:
its first run is still to be recorded."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from typing_extensions import NotRequired, TypedDict

from trialbook.api import Book
from trialbook.core import ranking
from trialbook.core.entities import (
    RUN_STATUSES,
    Evaluation,
    Protocol,
    RunRecord,
    RunRow,
    RunsPage,
    SeriesSummary,
)
from trialbook.core.metrics import choose_metric, direction_of, finite_number
from trialbook.core.notes import in_debt, note_debt
from trialbook.core.runs import effective_status
from trialbook.errors import InvalidInput
from trialbook.services import decisions as decision_service
from trialbook.services.notes import NoteView, draft_parts, note_view
from trialbook.services.projects import pick_project, stale_before

SPARK_POINTS = 48
MAX_PAGE = 500  # the most runs one store page holds
ORDERS = ("asc", "desc")

# The run page's groups of curves, in order (see ``curve_group``).
CURVE_GROUPS = ("Metrics", "Train losses", "Val losses", "Learning rates", "System", "Other")


class RunLine(TypedDict):
    """One row of the runs table (``runs --json`` ``runs[]``; the API's runs page)."""

    rank: int
    name: str
    id: str
    status: str
    dataset: str | None
    pinned: bool
    parent: str | None
    best: float | None
    final: float | None
    epoch_of_best: int | None
    epochs: int
    has_note: bool
    note_debt: bool
    legacy_name: bool
    shipped: bool  # the project's shipped (deployed) run
    created_at: float
    end_reason: str | None
    unwritten: int
    tags: NotRequired[dict[str, str]]
    spark: NotRequired[list[float]]


class RunFilters(TypedDict):
    status: list[str]
    dataset: str | None
    tag: str | None
    q: str | None


class RunsTable(TypedDict):
    """``runs --json`` and ``GET /api/v1/projects/P/runs``; ``project`` is ``None`` only
    for a book with no project yet (no runs)."""

    project: str | None
    metric: str
    protocol_metric: str
    direction: str
    exploratory: bool
    total: int
    offset: int
    limit: int | None
    sort: str
    order: str | None
    filters: RunFilters
    datasets: list[str]
    runs: list[RunLine]


class SummaryView(TypedDict):
    best: float | None
    final: float | None
    epoch_of_best: int | None
    epochs: int
    nan_count: int
    direction: str


class EvaluationView(TypedDict):
    """An evaluation for output; a sealed one carries no numbers at all."""

    split: str
    sealed: bool
    created_at: float
    device: str | None
    split_digest: str | None
    metrics: dict[str, float] | None
    per_class_ap: dict[str, float] | None
    latency_ms: float | None
    confusion_matrix: list[list[float]] | None
    class_names: list[str] | None


class ArtifactView(TypedDict):
    name: str
    digest: str
    size: int


class ChildRun(TypedDict):
    name: str
    status: str


class CurveGroup(TypedDict):
    title: str
    keys: list[str]


class RunView(TypedDict):
    """``show RUN --json`` and ``GET /api/v1/projects/P/runs/R``."""

    name: str
    id: str
    project: str
    status: str
    dataset: str | None
    pinned: bool
    split_digests: dict[str, str]
    parent: str | None
    children: list[ChildRun]
    created_at: float
    ended_at: float | None
    end_reason: str | None
    unwritten: int
    legacy_name: bool
    shipped: bool  # the project's shipped (deployed) run
    config: dict[str, Any]
    env: dict[str, Any]
    tags: dict[str, str]
    summary: dict[str, SummaryView]
    groups: list[CurveGroup]
    evaluations: list[EvaluationView]
    artifacts: list[ArtifactView]
    note: NoteView | None
    note_debt: bool
    draft: str
    protocol_metric: str
    decisions: NotRequired[list[decision_service.DecisionView]]


class History(TypedDict):
    run: str
    project: str
    status: str
    since_epoch: int | None
    last_epoch: int | None
    series: dict[str, list[list[Any]]]


# --------------------------------------------------------------------------- helpers
def summary_view(s: SeriesSummary) -> SummaryView:
    return {
        "best": finite_number(s.best),
        "final": finite_number(s.final),
        "epoch_of_best": s.best_epoch,
        "epochs": s.count,
        "nan_count": s.nan_count,
        "direction": s.direction,
    }


def evaluation_view(ev: Evaluation) -> EvaluationView:
    """An evaluation for output. A sealed one carries no numbers at all."""
    if ev.sealed:
        return {
            "split": ev.split,
            "sealed": True,
            "created_at": ev.created_at,
            "device": ev.device,
            "split_digest": ev.split_digest,
            "metrics": None,
            "per_class_ap": None,
            "latency_ms": None,
            "confusion_matrix": None,
            "class_names": None,
        }
    return {
        "split": ev.split,
        "sealed": False,
        "created_at": ev.created_at,
        "device": ev.device,
        "split_digest": ev.split_digest,
        "metrics": ev.metrics,
        "per_class_ap": ev.per_class_ap,
        "latency_ms": ev.latency_ms,
        "confusion_matrix": ev.confusion_matrix,
        "class_names": ev.class_names,
    }


def points_json(points: Iterable[tuple[int, float]]) -> list[list[Any]]:
    """``[[epoch, value], ...]`` with NaN as null (a gap in a chart)."""
    return [[e, v if v == v else None] for e, v in points]


def downsample(values: Sequence[float], n: int = SPARK_POINTS) -> list[float]:
    """At most ``n`` of ``values``, evenly spaced, first and last kept."""
    if len(values) <= n:
        return list(values)
    step = (len(values) - 1) / (n - 1)
    return [values[round(i * step)] for i in range(n)]


def curve_group(key: str) -> str:
    """The run page's group of a metric key: Ultralytics' ``metrics/``, ``train/`` and
    ``val/`` prefixes, the machine's ``system/`` figures, learning rates (keys with no
    better direction that name an lr), else ``Other``."""
    lowered = key.lower()
    for prefix, title in (
        ("metrics/", "Metrics"),
        ("train/", "Train losses"),
        ("val/", "Val losses"),
        ("system/", "System"),
    ):
        if lowered.startswith(prefix):
            return title
    if direction_of(key) == "none" and "lr" in lowered:
        return "Learning rates"
    return "Other"


def _groups(keys: Iterable[str]) -> list[CurveGroup]:
    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(curve_group(key), []).append(key)
    return [{"title": t, "keys": sorted(groups[t])} for t in CURVE_GROUPS if t in groups]


# --------------------------------------------------------------------------- the runs table
def _check_filters(status: Sequence[str], order: str | None, limit: int | None, offset: int) -> None:
    bad = [s for s in status if s not in RUN_STATUSES]
    if bad:
        raise InvalidInput(f"status {bad[0]!r} is not one of {', '.join(RUN_STATUSES)}")
    if order not in (None, "", *ORDERS):
        raise InvalidInput(f"order {order!r} must be asc or desc")
    if offset < 0:
        raise InvalidInput(f"offset {offset} must be >= 0")
    if limit is not None and limit < 1:
        raise InvalidInput(f"limit {limit} must be >= 1")


def _line(
    rank: int,
    record: RunRecord,
    summary: SeriesSummary | RunRow | None,
    parent: str | None,
    has_note: bool,
    now: float,
) -> RunLine:
    """One row of the table; ``summary`` holds the ranking key's best, final, epoch of
    best and count (a ``RunRow`` carries them too), ``None`` when the run has none
    (``shipped`` is set by the caller, which knows the project)."""
    status = effective_status(record, now)
    if summary is not None and not summary.count:
        summary = None
    return {
        "rank": rank,
        "name": record.name,
        "id": record.id,
        "status": status,
        "dataset": record.dataset,
        "pinned": record.pinned,
        "parent": parent,
        "best": finite_number(summary.best) if summary else None,
        "final": finite_number(summary.final) if summary else None,
        "epoch_of_best": summary.best_epoch if summary else None,
        "epochs": summary.count if summary else 0,
        "has_note": has_note,
        "note_debt": in_debt(has_note, status),
        "legacy_name": record.legacy_name,
        "shipped": False,
        "created_at": record.created_at,
        "end_reason": record.end_reason,
        "unwritten": record.unwritten,
        "tags": record.tags,
    }


def runs_table(
    book: Book,
    project: str | None = None,
    *,
    metric: str | None = None,
    status: Sequence[str] = (),
    dataset: str | None = None,
    tag: str | None = None,
    q: str | None = None,
    sort: str = "rank",
    order: str | None = None,
    offset: int = 0,
    limit: int | None = None,
    sparkline: bool = False,
) -> RunsTable:
    """The project's runs ranked by the protocol metric (or by ``metric``, then labelled
    exploratory), best first, runs without a value last. The web UI's extras are options:
    ``status`` / ``dataset`` (``NAME:TAG``, ``""`` for none) / ``tag`` (``KEY`` or
    ``KEY=VALUE``) / ``q`` (text in the name) filter; ``sort`` and ``order`` sort by another
    column; ``offset`` and ``limit`` page (``limit=None``: every run); ``sparkline`` adds
    a downsampled curve of the ranking key to each row."""
    _check_filters(status, order, limit, offset)
    if project is None and not book.store.list_projects():
        return _empty_table(metric, status, dataset, tag, q, sort, order, offset, limit)
    name = pick_project(book, project)
    found = book.store.get_project(name)
    proto = found.protocol
    choice = choose_metric(proto, metric)
    now = time.time()
    filtered = bool(status or dataset is not None or tag or (q and q.strip()))
    if limit is None and not filtered and sort == "rank":
        lines, total = _whole_table(book, name, choice.key, choice.direction, offset, now)
    else:
        lines, total = _page(
            book,
            name,
            choice.key,
            choice.direction,
            status=status,
            dataset=dataset,
            tag=tag,
            q=q,
            sort=sort,
            order=order,
            offset=offset,
            limit=limit,
            now=now,
        )
    for row in lines:
        row["shipped"] = row["id"] == found.shipped_run_id
    if sparkline and lines:
        spark = book.store.sparklines([r["id"] for r in lines], choice.key, SPARK_POINTS)
        for row in lines:
            row["spark"] = downsample([v for _, v in spark.get(row["id"], []) if v == v])
    return {
        "project": name,
        "metric": choice.key,
        "protocol_metric": proto.metric,
        "direction": choice.direction,
        "exploratory": choice.exploratory,
        "total": total,
        "offset": offset,
        "limit": limit,
        "sort": sort,
        "order": order or None,
        "filters": {"status": list(status), "dataset": dataset, "tag": tag, "q": q},
        "datasets": book.store.project_datasets(name),
        "runs": lines,
    }


def _empty_table(
    metric: str | None,
    status: Sequence[str],
    dataset: str | None,
    tag: str | None,
    q: str | None,
    sort: str,
    order: str | None,
    offset: int,
    limit: int | None,
) -> RunsTable:
    """The runs table of a book with no project yet, on the default protocol."""
    proto = Protocol()
    choice = choose_metric(proto, metric)
    return {
        "project": None,
        "metric": choice.key,
        "protocol_metric": proto.metric,
        "direction": choice.direction,
        "exploratory": choice.exploratory,
        "total": 0,
        "offset": offset,
        "limit": limit,
        "sort": sort,
        "order": order or None,
        "filters": {"status": list(status), "dataset": dataset, "tag": tag, "q": q},
        "datasets": [],
        "runs": [],
    }


def _whole_table(
    book: Book, project: str, key: str, direction: str, offset: int, now: float
) -> tuple[list[RunLine], int]:
    """Every run in one prepared query (``Store.run_rows``), ranked here."""
    rows = book.store.run_rows(project, key)  # oldest first: the rank's order on ties
    ranked = ranking.rank(rows, lambda r: finite_number(r.best), direction)
    lines: list[RunLine] = []
    for i, r in enumerate(ranked[offset:], start=offset + 1):
        line = _line(i, r.as_record, r, r.parent_name or r.parent_id, r.has_note, now)
        del line["tags"]  # the one-query table reads no tags
        lines.append(line)
    return lines, len(rows)


def _page(
    book: Book,
    project: str,
    key: str,
    direction: str,
    *,
    status: Sequence[str],
    dataset: str | None,
    tag: str | None,
    q: str | None,
    sort: str,
    order: str | None,
    offset: int,
    limit: int | None,
    now: float,
) -> tuple[list[RunLine], int]:
    """One page from the database (``Store.runs_page``): filters, sort and paging there
    (``limit=None``: page after page until every matching run is read)."""
    from trialbook.core.notes import has_text

    def read(at: int, size: int) -> RunsPage:
        return book.store.runs_page(
            project,
            key,
            direction,
            statuses=list(status),
            dataset=dataset,
            tag=tag,
            text=q,
            sort=sort,
            descending=None if not order else order == "desc",
            offset=at,
            limit=size,
            stale_before=stale_before(now),
        )

    page = read(offset, limit or MAX_PAGE)
    while limit is None and offset + len(page.runs) < page.total and page.runs:
        more = read(offset + len(page.runs), MAX_PAGE)
        if not more.runs:
            break
        page = RunsPage(
            total=more.total, runs=page.runs + more.runs, summaries={**page.summaries, **more.summaries}
        )
    ids = [r.id for r in page.runs]
    notes = book.store.get_notes(ids)
    parents = book.store.run_names(r.parent_id for r in page.runs if r.parent_id)
    lines = [
        _line(
            i,
            r,
            page.summaries.get(r.id),
            parents.get(r.parent_id, r.parent_id) if r.parent_id else None,
            has_text(notes.get(r.id)),
            now,
        )
        for i, r in enumerate(page.runs, start=offset + 1)
    ]
    return lines, page.total


# --------------------------------------------------------------------------- one run
def show_run(book: Book, ref: str, *, project: str | None = None, decisions: bool = False) -> RunView:
    """One run: config, dataset, summaries, evaluations (test sealed), artifacts, note
    (with its draft result line), lineage and curve groups; with ``decisions``, also the
    decisions involving it, with the test numbers each revealed (the run page shows them;
    ``show`` does not, so that its output carries no test number)."""
    run = book.run(ref, project)
    found = book.store.get_project(run.project)
    summaries = book.store.get_summaries([run.id])[run.id]
    parent = book.store.get_run_by_id(run.parent_id).name if run.parent_id else None
    note = note_view(book.store.get_notes([run.id]).get(run.id))
    now = time.time()
    status = effective_status(run, now)
    view: RunView = {
        "name": run.name,
        "id": run.id,
        "project": run.project,
        "status": status,
        "dataset": run.dataset,
        "pinned": run.pinned,
        "split_digests": run.split_digests,
        "parent": parent,
        "children": [
            {"name": c.name, "status": effective_status(c, now)} for c in book.store.child_runs(run.id)
        ],
        "created_at": run.created_at,
        "ended_at": run.ended_at,
        "end_reason": run.end_reason,
        "unwritten": run.unwritten,
        "legacy_name": run.legacy_name,
        "shipped": found.shipped_run_id == run.id,
        "config": run.config,
        "env": run.env,
        "tags": run.tags,
        "summary": {k: summary_view(s) for k, s in sorted(summaries.items())},
        "groups": _groups(summaries),
        "evaluations": [evaluation_view(e) for e in book.store.list_evaluations([run.id])],
        "artifacts": [
            {"name": a.name, "digest": a.digest, "size": a.size} for a in book.store.list_artifacts(run.id)
        ],
        "note": note,
        "note_debt": note_debt(note, status),
        "draft": draft_parts(book, run)[0],
        "protocol_metric": found.protocol.metric,
    }
    if decisions:
        view["decisions"] = decision_service.decision_views(book, run.project, run_id=run.id)
    return view


def history(
    book: Book,
    ref: str,
    *,
    project: str | None = None,
    keys: Sequence[str] | None = None,
    since_epoch: int | None = None,
) -> History:
    """The run's per-epoch points (every key, or ``keys``), after ``since_epoch`` if given:
    ``{"series": {key: [[epoch, value|null], ...]}, "status", "last_epoch"}``."""
    run = book.run(ref, project)
    found = book.store.history_since([run.id], list(keys) if keys else None, since_epoch)[run.id]
    last = max((pts[-1][0] for pts in found.values() if pts), default=since_epoch)
    return {
        "run": run.name,
        "project": run.project,
        "status": effective_status(run, time.time()),
        "since_epoch": since_epoch,
        "last_epoch": last,
        "series": {k: points_json(v) for k, v in sorted(found.items())},
    }
