"""Compare runs of one project side by side on one metric: every run's curve with its
analytics (best, convergence, stability), the config keys that differ (bookkeeping keys
such as name, save_dir, device, workers left out: ``core.config.BOOKKEEPING_KEYS``), dataset versions
and whether their val splits make them comparable, per-class AP with deltas against a
baseline run, and the confusion matrices. A metric other than the protocol's is
*exploratory*: shown, labelled, never used by a decision."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from typing_extensions import TypedDict

from trialbook import settings
from trialbook.api import Book
from trialbook.core import discipline as rules
from trialbook.core import ranking
from trialbook.core.config import flatten, is_bookkeeping
from trialbook.core.curves import curve_stats_for
from trialbook.core.entities import Evaluation, Protocol, RunRecord
from trialbook.core.metrics import choose_metric, finite_number, is_latency
from trialbook.core.noise import at_least
from trialbook.core.runs import effective_status
from trialbook.errors import InvalidInput
from trialbook.services.decisions import same_project
from trialbook.services.notes import open_evaluations


class Drop(TypedDict):
    epoch: int
    size: float


class RunStats(TypedDict):
    """One run's analytics on the compared metric (``core.curves``) and its identity."""

    name: str
    id: str
    best: float | None
    final: float | None
    epoch_of_best: int | None
    epochs: int
    convergence_epoch: int | None
    epochs_to_95pct: int | None
    drop_count: int
    drops: list[Drop]
    largest_drop: float | None
    max_drawdown: float | None
    status: str
    dataset: str | None
    pinned: bool
    val_split: str | None
    parent: str | None
    val_value: float | None
    test_sealed: bool
    baseline: bool


class ComparedRun(RunStats):
    """One run of ``compare --json`` ``runs[]``: its analytics and its curve."""

    curve: list[list[float]]


class ClassCell(TypedDict):
    ap: float | None
    delta: float | None
    below_floor: bool


# "class" is a keyword: the functional form
ClassRow = TypedDict("ClassRow", {"class": str, "runs": dict[str, ClassCell]})


class PerClass(TypedDict):
    baseline: str
    class_floor: float
    classes: list[ClassRow]


class Matrix(TypedDict):
    run: str
    labels: list[str] | None
    matrix: list[list[float]] | None
    comparable_to_baseline: bool


class Confusion(TypedDict):
    baseline: str
    matrices: list[Matrix]


class Comparison(TypedDict):
    """``compare --json`` and ``GET /api/v1/projects/P/compare``."""

    project: str
    metric: str
    protocol_metric: str
    direction: str
    exploratory: bool
    comparable: bool
    warnings: list[str]
    noise: float
    class_floor: float
    convergence_target: float | None
    baseline: str
    keys: list[str]
    runs: list[ComparedRun]
    config_diff: dict[str, dict[str, Any]]
    per_class: PerClass
    confusion: Confusion


def _resolve(book: Book, refs: Sequence[str], project: str | None) -> list[RunRecord]:
    """The runs named by ``refs``, once each, in the order given: plain names of
    ``project`` in one query, else each by ``Book.run`` (``PROJECT/NAME``, ids)."""
    wanted = list(dict.fromkeys(r for r in refs if r))
    if not wanted:
        raise InvalidInput("compare needs at least one run")
    if project is not None and not any("/" in r for r in wanted):
        found = {r.name: r for r in book.store.get_runs_by_name(project, wanted)}
        runs = [found[n] if n in found else book.run(n, project) for n in wanted]
    else:
        runs = [book.run(r, project) for r in wanted]
    unique: dict[str, RunRecord] = {}
    for r in runs:
        unique.setdefault(r.id, r)
    return list(unique.values())


def compare_runs(
    book: Book,
    refs: Sequence[str],
    *,
    project: str | None = None,
    metric: str | None = None,
    baseline: str | None = None,
    record: bool = False,
    who: str | None = None,
) -> Comparison:
    """Runs side by side on one metric (the protocol's unless ``metric``, then
    exploratory). Deltas of per-class AP and confusion matrices are against ``baseline``
    (default: the shipped run if it is compared, else the oldest run). ``record``
    remembers the comparison (as ``trialbook compare`` does) when two or more runs are
    compared on the protocol metric; that makes a later metric change need a reason. The
    record names ``who`` (default ``settings.who()``; the team server passes the
    authenticated user)."""
    runs = _resolve(book, refs, project)
    name = same_project(runs, "compare")
    proj = book.store.get_project(name)
    proto = proj.protocol
    choice = choose_metric(proto, metric, need_direction=True)
    shipped = [r.name for r in runs if r.id == proj.shipped_run_id]
    base_name = baseline or (shipped[0] if shipped else min(runs, key=lambda r: r.created_at).name)
    if base_name not in {r.name for r in runs}:
        raise InvalidInput(f"baseline {base_name!r} is not one of the compared runs")
    ids = [r.id for r in runs]
    analytics = Protocol(
        metric=choice.key,
        direction=choice.direction,
        noise=proto.noise,
        convergence_target=None if choice.exploratory else proto.convergence_target,
    )
    curves = book.store.get_history(ids, choice.key)
    by_run = open_evaluations(book, ids)
    parents = book.store.run_names(r.parent_id for r in runs if r.parent_id)
    comparable, warnings = rules.val_comparability({r.name: r.split_digests.get("val") for r in runs})
    if choice.exploratory:
        warnings.insert(
            0,
            f"exploratory: {choice.key} is not the protocol metric ({proto.metric}); decisions never use it",
        )
    now = time.time()
    rows: list[ComparedRun] = []
    unmeasured: list[str] = []
    for r in runs:
        points = [(e, v) for e, v in curves[r.id] if math.isfinite(v)]
        value, source, _ = rules.comparison_value(by_run[r.id], choice.key, None)
        stats = curve_stats_for(points, analytics)
        if is_latency(choice.key):
            # no series: the run's value is its latency measured on the protocol's device
            measured = ranking.measured_latency(by_run[r.id], proto.device)
            value, source = (measured.latency_ms if measured else None), rules.VAL_SOURCE
            stats = replace(stats, best=value, final=value)
            if measured is None:
                unmeasured.append(r.name)
        rows.append(
            {
                "name": r.name,
                "id": r.id,
                "best": stats.best,
                "final": stats.final,
                "epoch_of_best": stats.epoch_of_best,
                "epochs": stats.epochs,
                "convergence_epoch": stats.convergence_epoch,
                "epochs_to_95pct": stats.epochs_to_95pct,
                "drop_count": stats.drop_count,
                "drops": [{"epoch": e, "size": size} for e, size in stats.drops],
                "largest_drop": stats.largest_drop,
                "max_drawdown": stats.max_drawdown,
                "status": effective_status(r, now),
                "dataset": r.dataset,
                "pinned": r.pinned,
                "val_split": r.split_digests.get("val"),
                "parent": parents.get(r.parent_id, r.parent_id) if r.parent_id else None,
                "val_value": finite_number(value) if source == rules.VAL_SOURCE else None,
                "test_sealed": any(e.sealed for e in by_run[r.id]),
                "baseline": r.name == base_name,
                "curve": [[e, v] for e, v in points],
            }
        )
    if unmeasured:
        warnings.append(ranking.latency_fix(unmeasured, proto.device))
    ranked = ranking.rank(rows, lambda row: row["best"], choice.direction)
    if record and len(runs) > 1 and not book.store.read_only:  # a read-only book is still compared
        book.store.record_comparison(
            name, ids, choice.key, exploratory=choice.exploratory, who=who or settings.who()
        )
    return {
        "project": name,
        "metric": choice.key,
        "protocol_metric": proto.metric,
        "direction": choice.direction,
        "exploratory": choice.exploratory,
        "comparable": comparable,
        "warnings": warnings,
        "noise": proto.noise,
        "class_floor": proto.class_floor,
        "convergence_target": analytics.convergence_target,
        "baseline": base_name,
        "keys": sorted(book.store.series_keys(ids), key=lambda k: (k != proto.metric, k)),
        "runs": ranked,
        "config_diff": training_config_diff(runs),
        "per_class": per_class_table(runs, by_run, base_name, proto.class_floor),
        "confusion": confusion_matrices(runs, by_run, base_name),
    }


def training_config_diff(runs: Sequence[RunRecord]) -> dict[str, dict[str, Any]]:
    """``{key: {run: value}}`` for the config keys that differ between the runs, without
    the bookkeeping keys (where a run is kept, on which device, with how many workers)."""
    every = rules.differing_config({r.name: flatten(r.config) for r in runs})
    return {k: values for k, values in every.items() if not is_bookkeeping(k)}


def per_class_table(
    runs: Sequence[RunRecord], by_run: Mapping[str, list[Evaluation]], base_name: str, floor: float
) -> PerClass:
    """Per-class AP (latest val evaluation) of each run, with the delta to the baseline's
    and ``below_floor`` where a class is under ``floor`` x the baseline's AP (or missing)."""
    aps = {r.name: rules.per_class_ap(by_run[r.id]) for r in runs}
    base = aps.get(base_name, {})
    classes = list(dict.fromkeys(c for ap in aps.values() for c in ap))
    table: list[ClassRow] = []
    for cls in classes:
        cells: dict[str, ClassCell] = {}
        b = base.get(cls)
        for r in runs:
            v = aps[r.name].get(cls)
            cell: ClassCell = {"ap": v, "delta": None, "below_floor": False}
            if r.name != base_name and b is not None:
                if v is not None:
                    cell["delta"] = v - b
                cell["below_floor"] = v is None or not at_least(v, floor * b)
            cells[r.name] = cell
        table.append({"class": cls, "runs": cells})
    return {"baseline": base_name, "class_floor": floor, "classes": table}


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


def confusion_matrices(
    runs: Sequence[RunRecord], by_run: Mapping[str, list[Evaluation]], base_name: str
) -> Confusion:
    """Each run's confusion matrix (latest val evaluation that has one; rows predicted,
    columns true) with its labels, and whether it can be set against the baseline's
    (same labels); the page draws the difference."""
    out: list[Matrix] = []
    for r in runs:
        ev = _latest_confusion(by_run[r.id])
        if ev is None or not ev.confusion_matrix:
            out.append({"run": r.name, "labels": None, "matrix": None, "comparable_to_baseline": False})
        else:
            out.append(
                {
                    "run": r.name,
                    "labels": _matrix_labels(ev),
                    "matrix": ev.confusion_matrix,
                    "comparable_to_baseline": False,
                }
            )
    base = next((m for m in out if m["run"] == base_name and m["matrix"] is not None), None)
    for m in out:
        m["comparable_to_baseline"] = (
            base is not None and m is not base and m["matrix"] is not None and m["labels"] == base["labels"]
        )
    return {"baseline": base_name, "matrices": out}
