"""Projects and their protocol: create, show, change (audited; ``project set`` on a
project that does not exist yet creates it, the changes audited as any), and the
overview of every project of a book with its run counts."""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from typing_extensions import TypedDict

from trialbook import settings
from trialbook.api import Book
from trialbook.core import discipline as rules
from trialbook.core import runs as runs_rules
from trialbook.core.entities import Project, Protocol, ProtocolChange, Ship
from trialbook.core.format import short_digest
from trialbook.core.metrics import (
    ACCURACY_NOISE,
    LATENCY_NOISE_MS,
    ClassMetric,
    check_precision_level,
    is_latency,
    parse_class_key,
    resolve_alias,
)
from trialbook.errors import InvalidInput, NotFound


class ProtocolChangeView(TypedDict):
    field: str
    old: Any
    new: Any
    reason: str | None
    who: str
    at: float
    after_comparison: bool


class ShipView(TypedDict):
    run: str
    decision_id: str | None
    forced: bool
    reason: str | None
    who: str
    at: float


class TestSplitUse(TypedDict):
    project: str
    digest: str | None
    short: str
    reveals_used: int
    test_budget: int
    burned: bool


class ProjectInfo(TypedDict):
    """``project show --json`` and ``GET /api/v1/projects/P``."""

    name: str
    id: str
    created_at: float
    protocol: dict[str, Any]
    history: list[ProtocolChangeView]
    compared_at: float | None
    metric_changes_after_comparison: list[ProtocolChangeView]
    shipped: str | None
    ships: list[ShipView]
    runs: int
    running: int
    note_debt: int
    decisions: int
    test_splits: list[TestSplitUse]


class FieldChange(TypedDict):
    field: str
    old: Any
    new: Any


class ProtocolChanged(ProjectInfo):
    """``project set --json``: the project after the change, what changed, and whether
    this call created the project."""

    changed: list[FieldChange]
    created: bool
    # what was set without being asked (the noise in ms when switching to latency)
    notes: list[str]


class ProjectLine(TypedDict):
    name: str
    metric: str
    direction: str
    runs: int
    running: int
    note_debt: int
    shipped: str | None
    decisions: int
    created_at: float


class ProjectsOverview(TypedDict):
    """``projects --json`` and ``GET /api/v1/projects``."""

    book: str
    projects: list[ProjectLine]


def stale_before(now: float | None = None) -> float:
    """Runs stored as running whose heartbeat is older than this are shown as crashed
    (``core.runs.stale_before`` at ``now``, default the current time)."""
    return runs_rules.stale_before(time.time() if now is None else now)


def get_project(book: Book, name: str) -> Project:
    """The project ``name``; ``NotFound`` names the projects there are, or how to make one."""
    try:
        return book.store.get_project(name)
    except NotFound:
        names = [p.name for p in book.store.list_projects()]
        there = (
            f"the book has {', '.join(names)} (trialbook projects)"
            if names
            else "the book has no projects yet"
        )
        raise NotFound(
            f"no project named {name!r}: {there}; create it with `trialbook project create {name}` "
            f"or `trialbook project set {name} --latency-budget MS --device NAME ...`"
        ) from None


def pick_project(book: Book, project: str | None) -> str:
    """``project``, or the book's only project; a clear error when there are several."""
    if project:
        get_project(book, project)
        return project
    names = [p.name for p in book.store.list_projects()]
    if len(names) == 1:
        return names[0]
    if not names:
        raise InvalidInput(f"the book at {book.uri} has no projects yet")
    raise InvalidInput(f"the book holds several projects ({', '.join(names)}): choose one with --project")


def compared_at(book: Book, project: str) -> float | None:
    """When runs of ``project`` were first compared on the protocol metric: the first
    recorded (non-exploratory) compare or the first decision, whichever came first."""
    times = [d.at for d in book.store.list_decisions(project)]
    first = book.store.first_comparison_at(project)
    if first is not None:
        times.append(first)
    return min(times, default=None)


def _change_view(change: ProtocolChange, after: float | None) -> ProtocolChangeView:
    return {
        "field": change.field,
        "old": change.old,
        "new": change.new,
        "reason": change.reason,
        "who": change.who,
        "at": change.at,
        "after_comparison": change.field == "metric" and after is not None and change.at >= after,
    }


def ship_view(ship: Ship, names: Mapping[str, str]) -> ShipView:
    return {
        "run": names.get(ship.run_id, ship.run_id),
        "decision_id": ship.decision_id,
        "forced": ship.forced,
        "reason": ship.reason,
        "who": ship.who,
        "at": ship.at,
    }


def test_splits(used: Mapping[str | None, int], budget: int, project: str) -> list[TestSplitUse]:
    """Reveals used per test split of ``project`` (``core.discipline.reveals_by_split``)."""
    return [
        {
            "project": project,
            "digest": d,
            "short": short_digest(d),
            "reveals_used": n,
            "test_budget": budget,
            "burned": n >= budget,
        }
        for d, n in used.items()
    ]


def project_info(book: Book, name: str) -> ProjectInfo:
    """The project's protocol, its audit history, ships, counts and test-split use."""
    project = get_project(book, name)
    proto = project.protocol
    first = compared_at(book, name)
    history = book.store.protocol_history(name)
    ships = book.store.list_ships(name)
    shipped_ids: Sequence[str] = [project.shipped_run_id] if project.shipped_run_id else []
    names = book.store.run_names([*shipped_ids, *(s.run_id for s in ships)])
    counts = book.store.project_counts(stale_before()).get(name)
    decisions = book.store.list_decisions()
    return {
        "name": project.name,
        "id": project.id,
        "created_at": project.created_at,
        "protocol": proto.to_dict(),
        "history": [_change_view(h, first) for h in history],
        "compared_at": first,
        "metric_changes_after_comparison": [
            _change_view(h, first) for h in rules.metric_changes_after_comparison(history, first)
        ],
        "shipped": names.get(project.shipped_run_id) if project.shipped_run_id else None,
        "ships": [ship_view(s, names) for s in ships],
        "runs": counts.runs if counts else 0,
        "running": counts.running if counts else 0,
        "note_debt": counts.note_debt if counts else 0,
        "decisions": sum(1 for d in decisions if d.project == name),
        "test_splits": test_splits(rules.reveals_by_split(decisions, name), proto.test_budget, name),
    }


def known_keys(book: Book, project: str) -> set[str]:
    """The metric keys the runs of ``project`` logged, or were evaluated on."""
    return _known(book, project)[0]


def _known(book: Book, project: str) -> tuple[set[str], set[str]]:
    """``(metric keys, class names)`` of the runs of ``project``: the keys they logged or
    were evaluated on, and the classes of their evaluations (per-class AP, class names)."""
    ids = [r.id for r in book.store.list_runs(project)]
    keys = set(book.store.series_keys(ids))
    classes: set[str] = set()
    for ev in book.store.list_evaluations(ids):
        keys.update(ev.metrics)
        classes.update(ev.per_class_ap)
        classes.update(ev.class_names or ())
    return keys, classes


def _listed(items: Collection[str], limit: int = 30) -> str:
    ordered = sorted(set(items))
    more = f" ... ({len(ordered)} in all)" if len(ordered) > limit else ""
    return (", ".join(ordered[:limit]) + more) if ordered else "none"


def _same_kind(wanted: ClassMetric, key: str) -> str | None:
    """The class of ``key`` when it is the same kind of per-class key as ``wanted``."""
    parsed = parse_class_key(key)
    if parsed is None or parsed.cls is None:
        return None
    same = (parsed.kind, parsed.iou, parsed.level, parsed.part) == (
        wanted.kind,
        wanted.iou,
        wanted.level,
        wanted.part,
    )
    return parsed.cls if same else None


def check_class_key(key: str, project: str, keys: Collection[str], classes: Collection[str]) -> None:
    """Refuse a per-class AP or recall ``key`` that no run of ``project`` has (``keys``),
    listing the classes that have that kind of key, and those known only from per-class
    AP in evaluations (``classes``)."""
    parsed = parse_class_key(key)
    if parsed is None or key in keys:
        return
    if parsed.cls is None:  # the recall at a precision over every class
        recall = [k for k in keys if (p := parse_class_key(k)) is not None and p.kind == "recall"]
        raise InvalidInput(
            f"metric {key!r}: no run of project {project!r} has logged or been evaluated on it "
            f"(recall keys there: {_listed(recall)}); known keys: {_listed(keys)}"
        )
    having = {c for k in keys if (c := _same_kind(parsed, k)) is not None}
    text = (
        f"metric {key!r}: no run of project {project!r} has logged or been evaluated on class "
        f"{parsed.cls!r}; known classes (with {parsed.with_class('CLASS')}): {_listed(having)}"
    )
    only_ap = set(classes) - having
    if parsed.cls in only_ap:
        text += (
            f"; class {parsed.cls!r} has per-class AP in an evaluation, but no {key} (recorded "
            f"before per-class series): evaluate a run again with trialbook yolo val RUN --split val"
        )
    elif only_ap:
        text += f"; other classes in evaluations: {_listed(only_ap)}"
    raise InvalidInput(text)


def _prepare(
    book: Book, name: str, current: Protocol, changes: Mapping[str, Any], *, has_runs: bool
) -> tuple[dict[str, Any], list[str]]:
    """What is checked across fields before ``core.discipline.check_protocol_changes``:
    ``(the changes for it, the metric alias resolved and a latency noise filled in; notes
    for the user)``.

    * ``precision_level`` is in (0, 1]; a recall-at-precision metric (new or kept) must be
      at the protocol's level (the new one when given: ``core.metrics.check_precision_level``);
    * a per-class AP or recall key must be one that a run of the project has logged or been
      evaluated on (its classes listed otherwise); a project with no runs, or none with a
      metric, accepts any: choosing the metric before the first run is the point;
    * ``latency`` needs the protocol's device (given with it or set); switching to or from
      it without ``--noise`` sets the noise to ``LATENCY_NOISE_MS`` (0.5 ms) or back to
      ``ACCURACY_NOISE`` (0.005), and a note says so."""
    out = dict(changes)
    notes: list[str] = []
    level = current.precision_level
    if "precision_level" in out:
        level = out["precision_level"] = rules.check_protocol_field("precision_level", out["precision_level"])
    metric = current.metric
    if isinstance(out.get("metric"), str) and out["metric"].strip():
        metric = out["metric"] = resolve_alias(out["metric"].strip())
    check_precision_level(metric, level)
    if metric != current.metric and parse_class_key(metric) is not None and has_runs:
        keys, classes = _known(book, name)
        if keys:
            check_class_key(metric, name, keys, classes)
    if "metric" in out and is_latency(metric) != is_latency(current.metric):
        if is_latency(metric) and not (out.get("device") or current.device):
            raise InvalidInput(
                f"--metric latency ranks on the latency measured on the protocol's device, and project "
                f"{name!r} names none: trialbook project set {name} --metric latency --device NAME"
            )
        if "noise" not in out:
            out["noise"] = LATENCY_NOISE_MS if is_latency(metric) else ACCURACY_NOISE
            unit = " ms (the latency default)" if is_latency(metric) else " (the accuracy default)"
            notes.append(f"noise threshold set to {out['noise']:g}{unit}; give --noise to choose another")
    return out, notes


def create_project(
    book: Book, name: str, changes: Mapping[str, Any] | None = None, reason: str | None = None
) -> ProjectInfo:
    """Create a project with the default protocol, then apply ``changes`` (audited);
    the changes are checked first, so that refused ones create nothing."""
    if changes:
        prepared, _ = _prepare(book, name, Protocol(), changes, has_runs=False)
        rules.check_protocol_changes(Protocol(), prepared, project=name, reason=reason, compared=False)
    book.store.create_project(name)
    if changes:
        set_protocol(book, name, changes, reason or "set when the project was created")
    return project_info(book, name)


def set_protocol(
    book: Book, name: str, changes: Mapping[str, Any], reason: str | None = None, *, create: bool = False
) -> ProtocolChanged:
    """Change protocol fields; each change is an audit record with who, when, old, new
    and ``reason``. A new comparison metric after runs were compared needs a reason.

    With ``create``, a project that does not exist yet is created with the default
    protocol and then changed (audited the same way; ``reason`` defaults to "set when the
    project was created"); everything is checked first, so a refused change creates
    nothing. Without it an unknown project is ``NotFound``."""
    if not changes:
        raise InvalidInput(
            f"project set {name}: nothing to change; give e.g. --noise 0.01 "
            "or --latency-budget 8 --device jetson-orin-nx"
        )
    try:
        project: Project | None = book.store.get_project(name)
    except NotFound:
        if not create:
            raise
        project = None
    reason = (reason or "").strip() or None
    current = project.protocol if project else Protocol()
    prepared, notes = _prepare(book, name, current, changes, has_runs=project is not None)
    checked = rules.check_protocol_changes(
        current,
        prepared,
        project=name,
        reason=reason,
        compared=project is not None and compared_at(book, name) is not None,
        known_keys=known_keys(book, name) if project and "metric" in prepared else None,
    )
    created = project is None
    if project is None:
        project = book.store.ensure_project(name)  # checks the name; may exist by now
        reason = reason or "set when the project was created"
    before = project.protocol.to_dict()
    updated = book.store.update_protocol(name, checked, reason=reason, who=settings.who())
    after = updated.protocol.to_dict()
    changed: list[FieldChange] = [
        {"field": k, "old": before.get(k), "new": after.get(k)}
        for k in checked
        if before.get(k) != after.get(k)
    ]
    return {**project_info(book, name), "changed": changed, "created": created, "notes": notes}


def list_projects(book: Book) -> ProjectsOverview:
    """Every project with its run counts, shipped run and decisions."""
    projects = book.store.list_projects()
    counts = book.store.project_counts(stale_before())
    shipped = book.store.run_names(p.shipped_run_id for p in projects if p.shipped_run_id)
    decisions: dict[str, int] = {}
    for d in book.store.list_decisions():
        decisions[d.project] = decisions.get(d.project, 0) + 1
    lines: list[ProjectLine] = []
    for p in projects:
        c = counts.get(p.name)
        lines.append(
            {
                "name": p.name,
                "metric": p.protocol.metric,
                "direction": p.protocol.direction,
                "runs": c.runs if c else 0,
                "running": c.running if c else 0,
                "note_debt": c.note_debt if c else 0,
                "shipped": shipped.get(p.shipped_run_id) if p.shipped_run_id else None,
                "decisions": decisions.get(p.name, 0),
                "created_at": p.created_at,
            }
        )
    return {"book": book.uri, "projects": lines}
