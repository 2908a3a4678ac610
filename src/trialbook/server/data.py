"""Read models of the web UI and the JSON API: plain dicts built from the store, the
services (``trialbook.discipline``, ``trialbook.versions``, ``trialbook.views``) and the
rules in ``trialbook.core``. No SQL here; the discipline's rules are core's, applied as
the CLI applies them.

Sealed test numbers never appear in anything built here: evaluations are read without
``reveal``; only a decision (``decide``, ``decisions``) shows what it revealed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from trialbook import discipline, versions
from trialbook.api import Book, _who
from trialbook.core import discipline as rules
from trialbook.core import ranking
from trialbook.core.curves import curve_stats_for
from trialbook.core.entities import Decision, Evaluation, Protocol, RunRecord
from trialbook.core.gates import render_decision_text, short_digest
from trialbook.core.metrics import direction_of, resolve_alias
from trialbook.core.noise import at_least
from trialbook.core.notes import NOTE_FIELDS, note_debt
from trialbook.core.runs import HEARTBEAT_TIMEOUT_S, effective_status
from trialbook.errors import InvalidInput, NotFound
from trialbook.views import run_detail

STATUSES = ("running", "finished", "failed", "crashed")
SPARK_POINTS = 48
DIFF_FILES_SHOWN = 100

# The run page's groups of curves, in order (see ``curve_group``).
CURVE_GROUPS = ("Metrics", "Train losses", "Val losses", "Learning rates", "Other")


def finite(value: Any) -> float | None:
    """A float that JSON can carry, or None (NaN and infinities are no value)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def points_json(points: Iterable[tuple[int, float]]) -> list[list[Any]]:
    """``[[epoch, value], ...]`` with NaN as null (a gap in a chart)."""
    return [[e, v if v == v else None] for e, v in points]


def _stale_before() -> float:
    return time.time() - HEARTBEAT_TIMEOUT_S


def _key_and_direction(protocol: Protocol, metric: str | None) -> tuple[str, str, bool]:
    key = resolve_alias(metric) if metric else protocol.metric
    exploratory = key != protocol.metric
    return key, (direction_of(key) if exploratory else protocol.direction), exploratory


def _downsample(values: Sequence[float], n: int = SPARK_POINTS) -> list[float]:
    if len(values) <= n:
        return list(values)
    step = (len(values) - 1) / (n - 1)
    return [values[round(i * step)] for i in range(n)]


def curve_group(key: str) -> str:
    """The run page's group of a metric key: Ultralytics' ``metrics/``, ``train/`` and
    ``val/`` prefixes, learning rates (keys with no better direction that name an lr),
    else ``Other``."""
    lowered = key.lower()
    for prefix, title in (("metrics/", "Metrics"), ("train/", "Train losses"), ("val/", "Val losses")):
        if lowered.startswith(prefix):
            return title
    if direction_of(key) == "none" and "lr" in lowered:
        return "Learning rates"
    return "Other"


# --------------------------------------------------------------------------- projects
def projects_overview(book: Book) -> dict[str, Any]:
    """Every project with its run counts, shipped run and note debt."""
    projects = book.store.list_projects()
    counts = book.store.project_counts(_stale_before())
    shipped = book.store.run_names(p.shipped_run_id for p in projects if p.shipped_run_id)
    decisions: dict[str, int] = {}
    for d in book.store.list_decisions():
        decisions[d.project] = decisions.get(d.project, 0) + 1
    out = []
    for p in projects:
        c = counts.get(p.name)
        out.append(
            {
                "name": p.name,
                "metric": p.protocol.metric,
                "direction": p.protocol.direction,
                "runs": c.runs if c else 0,
                "running": c.running if c else 0,
                "note_debt": c.note_debt if c else 0,
                "shipped": shipped.get(p.shipped_run_id or "") if p.shipped_run_id else None,
                "decisions": decisions.get(p.name, 0),
                "created_at": p.created_at,
            }
        )
    return {"book": book.uri, "projects": out}


def project_summary(book: Book, name: str) -> dict[str, Any]:
    """The project's protocol with its audit history, ships, test-split use and counts
    (``discipline.project_info`` without reading every run)."""
    project = book.store.get_project(name)
    proto = project.protocol
    first = discipline.compared_at(book, name)
    history = book.store.protocol_history(name)
    after = {id(h) for h in rules.metric_changes_after_comparison(history, first)}
    ships = book.store.list_ships(name)
    names = book.store.run_names(
        [s.run_id for s in ships] + ([project.shipped_run_id] if project.shipped_run_id else [])
    )
    counts = book.store.project_counts(_stale_before()).get(name)
    decisions = book.store.list_decisions()
    used = rules.reveals_by_split(decisions, name)
    return {
        "name": project.name,
        "created_at": project.created_at,
        "protocol": proto.to_dict(),
        "history": [
            {
                "field": h.field,
                "old": h.old,
                "new": h.new,
                "reason": h.reason,
                "who": h.who,
                "at": h.at,
                "after_comparison": id(h) in after,
            }
            for h in history
        ],
        "compared_at": first,
        "shipped": names.get(project.shipped_run_id or "") if project.shipped_run_id else None,
        "ships": [
            {
                "run": names.get(s.run_id, s.run_id),
                "forced": s.forced,
                "reason": s.reason,
                "who": s.who,
                "at": s.at,
            }
            for s in ships
        ],
        "runs": counts.runs if counts else 0,
        "running": counts.running if counts else 0,
        "note_debt": counts.note_debt if counts else 0,
        "decisions": sum(1 for d in decisions if d.project == name),
        "test_splits": _test_splits(used, proto.test_budget, name),
    }


def _test_splits(used: Mapping[str | None, int], budget: int, project: str) -> list[dict[str, Any]]:
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


# --------------------------------------------------------------------------- runs table
def runs_page(
    book: Book,
    project: str,
    *,
    metric: str | None = None,
    status: Sequence[str] = (),
    dataset: str | None = None,
    tag: str | None = None,
    q: str | None = None,
    sort: str = "rank",
    order: str | None = None,
    offset: int = 0,
    limit: int = 50,
    sparkline: bool = True,
) -> dict[str, Any]:
    """One page of the project's runs, ranked by the protocol metric (or sorted and
    filtered as asked), with note debt and a sparkline of the ranking key."""
    proto = book.store.get_project(project).protocol
    key, direction, exploratory = _key_and_direction(proto, metric)
    bad = [s for s in status if s not in STATUSES]
    if bad:
        raise InvalidInput(f"status {bad[0]!r} is not one of {', '.join(STATUSES)}")
    if order not in (None, "", "asc", "desc"):
        raise InvalidInput(f"order {order!r} must be asc or desc")
    page = book.store.runs_page(
        project,
        key,
        direction,
        statuses=list(status),
        dataset=dataset,
        tag=tag,
        text=q,
        sort=sort,
        descending=None if not order else order == "desc",
        offset=offset,
        limit=limit,
        stale_before=_stale_before(),
    )
    ids = [r.id for r in page.runs]
    notes = book.store.get_notes(ids)
    parents = book.store.run_names(r.parent_id for r in page.runs if r.parent_id)
    spark = book.store.sparklines(ids, key, SPARK_POINTS) if sparkline and ids else {}
    now = time.time()
    rows = []
    for rank, r in enumerate(page.runs, start=offset + 1):
        s = page.summaries.get(r.id)
        status_now = effective_status(r, now)
        note = notes.get(r.id)
        row: dict[str, Any] = {
            "rank": rank,
            "name": r.name,
            "id": r.id,
            "status": status_now,
            "dataset": r.dataset,
            "pinned": r.pinned,
            "parent": parents.get(r.parent_id, r.parent_id) if r.parent_id else None,
            "best": finite(s.best) if s else None,
            "final": finite(s.final) if s else None,
            "epoch_of_best": s.best_epoch if s else None,
            "epochs": s.count if s else 0,
            "has_note": note is not None and not note.is_empty,
            "note_debt": note_debt(note, status_now),
            "legacy_name": r.legacy_name,
            "created_at": r.created_at,
            "tags": r.tags,
        }
        if sparkline:
            values = [v for _, v in spark.get(r.id, []) if v == v]
            row["spark"] = _downsample(values)
        rows.append(row)
    return {
        "project": project,
        "metric": key,
        "protocol_metric": proto.metric,
        "direction": direction,
        "exploratory": exploratory,
        "total": page.total,
        "offset": offset,
        "limit": limit,
        "sort": sort,
        "order": order or None,
        "filters": {"status": list(status), "dataset": dataset, "tag": tag, "q": q},
        "datasets": book.store.project_datasets(project),
        "runs": rows,
    }


# --------------------------------------------------------------------------- one run
def get_run(book: Book, project: str, name: str) -> RunRecord:
    return book.store.get_run(project, name)


def run_view(book: Book, project: str, name: str) -> dict[str, Any]:
    """One run: ``views.run_detail`` (test sealed) plus lineage, the note's draft result
    line, curve groups and the decisions involving it."""
    run = get_run(book, project, name)
    detail = run_detail(book, run)
    children = book.store.child_runs(run.id)
    now = time.time()
    detail["children"] = [{"name": c.name, "status": effective_status(c, now)} for c in children]
    detail["groups"] = _groups(detail["summary"])
    detail["draft"] = discipline.draft_note(book, f"{project}/{name}")["draft"]
    detail["decisions"] = _decisions(book, project, run.id)
    detail["protocol_metric"] = book.store.get_project(project).protocol.metric
    detail["note_debt"] = note_debt(detail["note"], detail["status"])
    for s in detail["summary"].values():
        for k in ("best", "final"):
            s[k] = finite(s[k])
    return detail


def _groups(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    groups: dict[str, list[str]] = {}
    for key in summary:
        groups.setdefault(curve_group(key), []).append(key)
    return [{"title": t, "keys": sorted(groups[t])} for t in CURVE_GROUPS if t in groups]


def history(
    book: Book, project: str, name: str, *, keys: Sequence[str] | None = None, since_epoch: int | None = None
) -> dict[str, Any]:
    """The run's per-epoch points (every key, or ``keys``), after ``since_epoch`` if given:
    ``{"series": {key: [[epoch, value|null], ...]}, "status", "last_epoch"}``."""
    run = get_run(book, project, name)
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


def artifact_of(book: Book, project: str, name: str, digest: str) -> tuple[str, str]:
    """``(file name, digest)`` of an artifact of the run; NotFound otherwise."""
    run = get_run(book, project, name)
    for a in book.store.list_artifacts(run.id):
        if a.digest == digest:
            return a.name, a.digest
    raise NotFound(f"run {name!r} of project {project!r} has no artifact {digest[:12]}")


# --------------------------------------------------------------------------- notes
def note_view(book: Book, project: str, name: str) -> dict[str, Any]:
    ref = f"{project}/{name}"
    out = discipline.get_note(book, ref)
    out["draft"] = discipline.draft_note(book, ref)["draft"]
    return out


def put_note(book: Book, project: str, name: str, fields: Mapping[str, str | None]) -> dict[str, Any]:
    given = {k: v for k, v in fields.items() if v is not None}
    unknown = [k for k in given if k not in (*NOTE_FIELDS, "text")]
    if unknown:
        raise InvalidInput(f"unknown note field(s): {', '.join(unknown)}")
    return discipline.set_note(book, f"{project}/{name}", given)


# --------------------------------------------------------------------------- compare
def _latest_confusion(evaluations: Sequence[Evaluation]) -> Evaluation | None:
    for ev in reversed(evaluations):
        if ev.split == "val" and not ev.sealed and ev.confusion_matrix:
            return ev
    return None


def _matrix_labels(ev: Evaluation) -> list[str]:
    size = len(ev.confusion_matrix or [])
    names = list(ev.class_names or [])
    if len(names) == size - 1:
        names.append("background")
    if len(names) != size:
        names = [str(i) for i in range(size)]
    return names


def compare_view(
    book: Book,
    project: str,
    names: Sequence[str],
    *,
    metric: str | None = None,
    baseline: str | None = None,
    record: bool = False,
) -> dict[str, Any]:
    """The compare data of runs of one project: every run's curve of one key (the protocol
    metric unless ``metric``, which is then exploratory) with its analytics, config keys
    that differ, dataset versions and comparability, per-class AP with deltas against
    ``baseline`` (default: the shipped run if it is compared, else the oldest run) with
    below-floor cells marked, and the
    confusion matrices with their difference to the baseline's. ``record`` remembers the
    comparison (as ``trialbook compare`` does) when two or more runs are compared."""
    names = list(dict.fromkeys(n for n in names if n))
    if not names:
        raise InvalidInput("compare needs at least one run: ?runs=NAME&runs=NAME")
    runs = book.store.get_runs_by_name(project, names)
    missing = [n for n in names if n not in {r.name for r in runs}]
    if missing:
        raise NotFound(f"no run named {missing[0]!r} in project {project!r}")
    proj = book.store.get_project(project)
    proto = proj.protocol
    key, direction, exploratory = _key_and_direction(proto, metric)
    if direction not in ("max", "min"):
        raise InvalidInput(
            f"metric {key!r} has no better direction (a learning rate or a counter); "
            f"compare on a metric such as {proto.metric}"
        )
    shipped = [r.name for r in runs if r.id == proj.shipped_run_id]
    base_name = baseline or (shipped[0] if shipped else min(runs, key=lambda r: r.created_at).name)
    if base_name not in names:
        raise InvalidInput(f"baseline {base_name!r} is not one of the compared runs")
    ids = [r.id for r in runs]
    analytics = Protocol(
        metric=key,
        direction=direction,
        noise=proto.noise,
        convergence_target=None if exploratory else proto.convergence_target,
    )
    curves = book.store.get_history(ids, key)
    by_run: dict[str, list[Evaluation]] = {i: [] for i in ids}
    for ev in book.store.list_evaluations(ids):
        by_run[ev.run_id].append(ev)
    parents = book.store.run_names(r.parent_id for r in runs if r.parent_id)
    comparable, warnings = rules.val_comparability({r.name: r.split_digests.get("val") for r in runs})
    if exploratory:
        warnings.insert(
            0, f"exploratory: {key} is not the protocol metric ({proto.metric}); decisions never use it"
        )
    now = time.time()
    rows = []
    for r in runs:
        points = [(e, v) for e, v in curves[r.id] if math.isfinite(v)]
        value, source, _ = rules.comparison_value(by_run[r.id], key, None)
        rows.append(
            {
                "name": r.name,
                "id": r.id,
                **curve_stats_for(points, analytics).to_dict(),
                "status": effective_status(r, now),
                "dataset": r.dataset,
                "pinned": r.pinned,
                "val_split": short_digest(r.split_digests.get("val")) if r.split_digests.get("val") else None,
                "parent": parents.get(r.parent_id, r.parent_id) if r.parent_id else None,
                "val_value": finite(value) if source == rules.VAL_SOURCE else None,
                "test_sealed": any(e.sealed for e in by_run[r.id]),
                "baseline": r.name == base_name,
                "curve": [[e, v] for e, v in points],
            }
        )
    ranked = ranking.rank(rows, lambda row: row["best"], direction)
    keys = sorted(book.store.series_keys(ids), key=lambda k: (k != proto.metric, k))
    if record and len(runs) > 1:
        book.store.record_comparison(project, ids, key, exploratory=exploratory, who=_who())
    return {
        "project": project,
        "metric": key,
        "protocol_metric": proto.metric,
        "direction": direction,
        "exploratory": exploratory,
        "comparable": comparable,
        "warnings": warnings,
        "noise": proto.noise,
        "class_floor": proto.class_floor,
        "convergence_target": analytics.convergence_target,
        "baseline": base_name,
        "keys": keys,
        "runs": ranked,
        "config_diff": rules.differing_config({r.name: r.config for r in runs}),
        "per_class": _per_class(runs, by_run, base_name, proto.class_floor),
        "confusion": _confusion(runs, by_run, base_name),
    }


def _per_class(
    runs: Sequence[RunRecord], by_run: Mapping[str, list[Evaluation]], base_name: str, floor: float
) -> dict[str, Any]:
    """Per-class AP (latest val evaluation) of each run, with the delta to the baseline's
    and ``below_floor`` where a class is under ``floor`` × the baseline's AP."""
    aps = {r.name: rules.per_class_ap(by_run[r.id]) for r in runs}
    base = aps.get(base_name, {})
    classes = list(dict.fromkeys(c for ap in aps.values() for c in ap))
    table = []
    for cls in classes:
        cells = {}
        b = base.get(cls)
        for r in runs:
            v = aps[r.name].get(cls)
            cell: dict[str, Any] = {"ap": v, "delta": None, "below_floor": False}
            if v is not None and b is not None and r.name != base_name:
                cell["delta"] = v - b
                cell["below_floor"] = not at_least(v, floor * b)
            elif v is None and b is not None and r.name != base_name:
                cell["below_floor"] = True
            cells[r.name] = cell
        table.append({"class": cls, "runs": cells})
    return {"baseline": base_name, "class_floor": floor, "classes": table}


def _confusion(
    runs: Sequence[RunRecord], by_run: Mapping[str, list[Evaluation]], base_name: str
) -> dict[str, Any]:
    """Each run's confusion matrix (latest val evaluation that has one; rows predicted,
    columns true) with its labels, and whether it can be set against the baseline's
    (same labels); the page draws the difference."""
    out: list[dict[str, Any]] = []
    for r in runs:
        ev = _latest_confusion(by_run[r.id])
        if ev is None or not ev.confusion_matrix:
            out.append({"run": r.name, "labels": None, "matrix": None})
        else:
            out.append({"run": r.name, "labels": _matrix_labels(ev), "matrix": ev.confusion_matrix})
    base = next((m for m in out if m["run"] == base_name and m["matrix"] is not None), None)
    for m in out:
        m["comparable_to_baseline"] = (
            base is not None and m is not base and m["matrix"] is not None and m["labels"] == base["labels"]
        )
    return {"baseline": base_name, "matrices": out}


# --------------------------------------------------------------------------- decisions
def decide(book: Book, project: str, candidate: str, baseline: str) -> dict[str, Any]:
    """Run the four gates (``discipline.decide``): stores the decision, reveals and
    counts the test numbers under the project's budget."""
    return discipline.decide(book, candidate, baseline, project=project)


def _decisions(
    book: Book,
    project: str | None = None,
    run_id: str | None = None,
    stored: Sequence[Decision] | None = None,
) -> list[dict[str, Any]]:
    """Stored decisions, oldest first, as ``discipline.decisions`` gives them (with the
    numbers each revealed), naming only the runs they involve (not every run)."""
    found = [
        d
        for d in (stored if stored is not None else book.store.list_decisions(project))
        if (project is None or d.project == project)
        and (run_id is None or run_id in (d.candidate_id, d.baseline_id))
    ]
    names = book.store.run_names({i for d in found for i in (d.candidate_id, d.baseline_id)})
    out = []
    for d in found:
        cand = names.get(d.candidate_id, d.candidate_id)
        base = names.get(d.baseline_id, d.baseline_id)
        result = rules.result_from_record(d, cand, base)
        out.append(
            {
                "id": d.id,
                "project": d.project,
                "who": d.who,
                "at": d.at,
                **result.to_dict(),
                "text": render_decision_text(result),
            }
        )
    return out


def decisions_view(book: Book, project: str | None = None) -> dict[str, Any]:
    """Every decision (with the numbers each revealed), and per project the test reveals
    used on each test split and which splits are burned."""
    projects = [book.store.get_project(project)] if project else book.store.list_projects()
    all_decisions = book.store.list_decisions()
    splits = []
    for p in projects:
        splits += _test_splits(rules.reveals_by_split(all_decisions, p.name), p.protocol.test_budget, p.name)
    return {
        "project": project,
        "decisions": _decisions(book, project, stored=all_decisions),
        "test_splits": splits,
        "burned": [s for s in splits if s["burned"]],
    }


# --------------------------------------------------------------------------- datasets
def datasets_view(book: Book) -> dict[str, Any]:
    """Dataset versions grouped by dataset, newest last, with per-split and per-class counts."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for v in versions.list_versions(book):
        grouped.setdefault(v["name"], []).append(v)
    return {"datasets": [{"name": n, "versions": vs} for n, vs in sorted(grouped.items())]}


def dataset_diff(book: Book, ref_a: str, ref_b: str, *, files: int = DIFF_FILES_SHOWN) -> dict[str, Any]:
    """``versions.diff`` with each file list cut to ``files`` names (counts kept whole)."""
    out = versions.diff(book, ref_a, ref_b)
    for split in out["splits"].values():
        for kind in ("added", "removed", "changed"):
            names = split.get(kind) or []
            split[f"{kind}_count"] = len(names)
            split[kind] = names[:files]
    for kind in ("added", "removed", "changed"):
        out[kind] = {s: names[:files] for s, names in out[kind].items()}
    return out
