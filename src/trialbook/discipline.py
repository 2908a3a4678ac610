"""The decision discipline as services on a :class:`~trialbook.api.Book`: the protocol and
its audit, name suggestions, compare, decide (the only reader of sealed test numbers),
ship, notes, lint and the noise estimate.

Each function takes a book and plain arguments, applies the rules of ``trialbook.core``
and returns plain dicts (the CLI's ``--json`` documents; the human output renders them).
Sealed test numbers appear only in what :func:`decide` returns and in stored decisions
(:func:`decisions`): nothing else here reads evaluations with ``reveal=True``.
"""

from __future__ import annotations

import json
import math
import os
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from trialbook.api import Book, _who
from trialbook.core import discipline as rules
from trialbook.core import ranking
from trialbook.core.config import diff, flatten
from trialbook.core.curves import curve_stats_for
from trialbook.core.entities import Decision, Evaluation, Protocol, RunRecord
from trialbook.core.gates import WIN, DecisionInputs, render_decision_text
from trialbook.core.gates import decide as decide_gates
from trialbook.core.metrics import direction_of, resolve_alias
from trialbook.core.noise import estimate_noise
from trialbook.core.notes import NOTE_FIELDS, draft_result
from trialbook.core.runs import effective_status
from trialbook.core.suggest import suggest_name
from trialbook.errors import Conflict, InvalidInput, NotFound
from trialbook.views import note_dict, pick_project

__all__ = [
    "compare",
    "compared_at",
    "create_project",
    "decide",
    "decisions",
    "draft_note",
    "get_note",
    "lint",
    "load_config",
    "noise",
    "note_history",
    "project_info",
    "search_notes",
    "set_note",
    "set_protocol",
    "ship",
    "suggest_run_name",
]


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _run_names(book: Book, ids: Iterable[str | None]) -> dict[str, str]:
    """Names of the runs with these ids (one narrow query, not every run of a project)."""
    return book.store.run_names(i for i in ids if i)


# --------------------------------------------------------------------------- protocol
def compared_at(book: Book, project: str) -> float | None:
    """When runs of ``project`` were first compared on the protocol metric: the first
    recorded (non-exploratory) compare or the first decision, whichever came first."""
    times = [d.at for d in book.store.list_decisions(project)]
    first = book.store.first_comparison_at(project)
    if first is not None:
        times.append(first)
    return min(times, default=None)


def _change_dict(change: Any, after: float | None) -> dict[str, Any]:
    return {
        "field": change.field,
        "old": change.old,
        "new": change.new,
        "reason": change.reason,
        "who": change.who,
        "at": change.at,
        "after_comparison": change.field == "metric" and after is not None and change.at >= after,
    }


def project_info(book: Book, name: str) -> dict[str, Any]:
    """The project's protocol, its audit history, ships and test-split use."""
    project = book.store.get_project(name)
    proto = project.protocol
    first = compared_at(book, name)
    history = book.store.protocol_history(name)
    ships = book.store.list_ships(name)
    names = _run_names(book, [project.shipped_run_id, *(s.run_id for s in ships)])
    counts = book.store.project_counts().get(name)
    used = rules.reveals_by_split(book.store.list_decisions(), name)
    return {
        "name": project.name,
        "id": project.id,
        "created_at": project.created_at,
        "protocol": proto.to_dict(),
        "history": [_change_dict(h, first) for h in history],
        "compared_at": first,
        "metric_changes_after_comparison": [
            _change_dict(h, first) for h in rules.metric_changes_after_comparison(history, first)
        ],
        "shipped": names.get(project.shipped_run_id or "") if project.shipped_run_id else None,
        "ships": [_ship_dict(s, names) for s in ships],
        "runs": counts.runs if counts else 0,
        "decisions": len(book.store.list_decisions(name)),
        "test_splits": [
            {
                "digest": d,
                "reveals_used": n,
                "test_budget": proto.test_budget,
                "burned": n >= proto.test_budget,
            }
            for d, n in used.items()
        ],
    }


def create_project(
    book: Book, name: str, changes: Mapping[str, Any] | None = None, reason: str | None = None
) -> dict[str, Any]:
    """Create a project with the default protocol, then apply ``changes`` (audited)."""
    book.store.create_project(name)
    if changes:
        set_protocol(book, name, changes, reason or "set when the project was created")
    return project_info(book, name)


def set_protocol(
    book: Book, name: str, changes: Mapping[str, Any], reason: str | None = None
) -> dict[str, Any]:
    """Change protocol fields; each change is an audit record with who, when, old, new
    and ``reason``. A new comparison metric after runs were compared needs a reason."""
    project = book.store.get_project(name)
    if not changes:
        raise InvalidInput(
            f"project set {name}: nothing to change; give e.g. --noise 0.01 "
            "or --latency-budget 8 --device jetson-orin-nx"
        )
    reason = (reason or "").strip() or None
    checked = rules.check_protocol_changes(
        project.protocol, changes, project=name, reason=reason, compared=compared_at(book, name) is not None
    )
    before = project.protocol.to_dict()
    updated = book.store.update_protocol(name, checked, reason=reason, who=_who())
    after = updated.protocol.to_dict()
    changed = [
        {"field": k, "old": before.get(k), "new": after.get(k)}
        for k in checked
        if before.get(k) != after.get(k)
    ]
    return {**project_info(book, name), "changed": changed}


# --------------------------------------------------------------------------- names
def load_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A run config from a YAML or JSON file (an Ultralytics ``args.yaml`` works)."""
    import yaml

    file = Path(path)
    try:
        text = file.read_text()
    except OSError as exc:
        raise NotFound(f"cannot read config file {file}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text) if file.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise InvalidInput(
            f"config file {file} is not valid {'JSON' if file.suffix.lower() == '.json' else 'YAML'}: {exc}"
        ) from None
    if not isinstance(data, Mapping):
        raise InvalidInput(
            f"config file {file} must hold a mapping of keys to values, not {type(data).__name__}"
        )
    return dict(data)


def suggest_run_name(
    book: Book, parent: str, config_path: str | os.PathLike[str], project: str | None = None
) -> dict[str, Any]:
    """``<next version>_<what changed>`` from the config's difference to the parent's."""
    run = book.run(parent, project)
    config = load_config(config_path)
    proto = book.store.get_project(run.project).protocol
    existing = {r.name for r in book.store.list_runs(run.project)}
    name = suggest_name(run.name, run.config, config, existing=existing, pattern=proto.naming_pattern)
    changed = diff(flatten(run.config), flatten(config))
    return {
        "name": name,
        "project": run.project,
        "parent": run.name,
        "changed": {k: [old, new] for k, (old, new) in changed.items()},
    }


# --------------------------------------------------------------------------- compare
def _same_project(runs: Sequence[RunRecord], what: str) -> str:
    projects = sorted({r.project for r in runs})
    if len(projects) > 1:
        listed = ", ".join(f"{r.project}/{r.name}" for r in runs)
        raise InvalidInput(f"{what} needs runs of one project (one protocol); got {listed}")
    return projects[0]


def _open_evaluations(book: Book, ids: Sequence[str]) -> dict[str, list[Evaluation]]:
    """Evaluations by run, sealed ones without numbers."""
    out: dict[str, list[Evaluation]] = {i: [] for i in ids}
    for ev in book.store.list_evaluations(ids):
        out[ev.run_id].append(ev)
    return out


def compare(
    book: Book,
    refs: Sequence[str],
    *,
    metric: str | None = None,
    project: str | None = None,
    record: bool = True,
) -> dict[str, Any]:
    """Runs side by side on one metric: curve analytics, config keys that differ,
    dataset versions and val splits. A metric other than the protocol's is exploratory.
    Comparing two or more runs on the protocol metric is recorded (see ``compared_at``)."""
    if not refs:
        raise InvalidInput("compare needs at least one run")
    runs: list[RunRecord] = []
    for ref in dict.fromkeys(refs):
        run = book.run(ref, project)
        if run.id not in {r.id for r in runs}:
            runs.append(run)
    name = _same_project(runs, "compare")
    proto = book.store.get_project(name).protocol
    key = resolve_alias(metric) if metric else proto.metric
    exploratory = key != proto.metric
    direction = proto.direction if not exploratory else direction_of(key)
    if direction not in ("max", "min"):
        raise InvalidInput(
            f"metric {key!r} has no better direction (a learning rate or a "
            f"counter); compare on a metric such as {proto.metric}"
        )
    analytics = Protocol(
        metric=key,
        direction=direction,
        noise=proto.noise,
        convergence_target=None if exploratory else proto.convergence_target,
    )
    ids = [r.id for r in runs]
    history = book.store.get_history(ids, key)
    evaluations = _open_evaluations(book, ids)
    names = _run_names(book, [r.parent_id for r in runs])
    comparable, warnings = rules.val_comparability({r.name: r.split_digests.get("val") for r in runs})
    rows = []
    for r in runs:
        points = [(e, v) for e, v in history[r.id] if math.isfinite(v)]
        stats = curve_stats_for(points, analytics).to_dict()
        value, source, _ = rules.comparison_value(evaluations[r.id], key, None)
        rows.append(
            {
                "name": r.name,
                **stats,
                "status": effective_status(r, time.time()),
                "dataset": r.dataset,
                "pinned": r.pinned,
                "val_split": r.split_digests.get("val"),
                "parent": names.get(r.parent_id or "", r.parent_id),
                "val_value": value if source == rules.VAL_SOURCE else None,
                "curve": [[e, v] for e, v in points],
            }
        )
    ranked = ranking.rank(rows, lambda row: row["best"], direction)
    if exploratory:
        warnings.insert(
            0, f"exploratory: {key} is not the protocol metric ({proto.metric}); decisions never use it"
        )
    if record and len(runs) > 1:
        book.store.record_comparison(name, ids, key, exploratory=exploratory, who=_who())
    return {
        "project": name,
        "metric": key,
        "protocol_metric": proto.metric,
        "direction": direction,
        "exploratory": exploratory,
        "comparable": comparable,
        "warnings": warnings,
        "noise": proto.noise,
        "convergence_target": analytics.convergence_target,
        "runs": ranked,
        "config_diff": rules.differing_config({r.name: r.config for r in runs}),
    }


# --------------------------------------------------------------------------- decide
def _inputs(
    book: Book, cand: RunRecord, base: RunRecord, proto: Protocol, used_by: Sequence[Decision]
) -> tuple[DecisionInputs, Evaluation | None]:
    """The gates' inputs. This is the one place that reads sealed test numbers. Returns
    also the candidate's test evaluation (for a latency measured only there)."""
    metric = proto.metric
    evaluations = book.store.list_evaluations([cand.id, base.id], reveal=True)
    summaries = book.store.get_summaries([cand.id, base.id], [metric])

    def side(run: RunRecord) -> dict[str, Any]:
        mine = [e for e in evaluations if e.run_id == run.id]
        open_ = [e for e in mine if not e.sealed]
        best = summaries[run.id].get(metric)
        value, source, digest = rules.comparison_value(open_, metric, best.best if best else None)
        test = rules.latest_evaluation([e for e in mine if e.split == "test"], "test", metric=metric)
        return {
            "value": value,
            "source": source,
            "val_digest": digest or run.split_digests.get("val"),
            "per_class": rules.per_class_ap(open_),
            "test": test,
            "test_value": rules.finite_number(test.metrics.get(metric)) if test else None,
            "latency": rules.latency_evaluation(open_, proto.device),
        }

    c, b = side(cand), side(base)
    pinned = cand.split_digests.get("test") if cand.pinned else None
    c_test: Evaluation | None = c["test"]
    digest = (c_test.split_digest if c_test else None) or pinned
    latency: Evaluation | None = c["latency"]
    b_test: Evaluation | None = b["test"]
    inputs = DecisionInputs(
        candidate=cand.name,
        baseline=base.name,
        protocol=proto,
        project=cand.project,
        candidate_value=c["value"],
        baseline_value=b["value"],
        candidate_source=c["source"],
        baseline_source=b["source"],
        candidate_val_digest=c["val_digest"],
        baseline_val_digest=b["val_digest"],
        candidate_per_class=c["per_class"],
        baseline_per_class=b["per_class"],
        candidate_test_value=c["test_value"],
        baseline_test_value=b["test_value"],
        candidate_test_digest=c_test.split_digest if c_test else None,
        baseline_test_digest=b_test.split_digest if b_test else None,
        pinned_test_digest=pinned,
        test_reveals_used=rules.reveals_used(used_by, digest, cand.project),
        candidate_latency_ms=latency.latency_ms if latency else None,
        candidate_device=latency.device if latency else None,
    )
    return inputs, c_test


def decide(book: Book, candidate: str, baseline: str, *, project: str | None = None) -> dict[str, Any]:
    """The four gates of DESIGN.md for ``candidate`` against ``baseline``; the decision is
    stored (immutable, with the protocol snapshot). A decision that reveals the test
    numbers counts one reveal against the test split."""
    cand, base = book.run(candidate, project), book.run(baseline, project)
    if cand.id == base.id:
        raise InvalidInput(
            f"decide: candidate and baseline are the same run ({cand.name}); "
            "name the run it should beat with --baseline"
        )
    name = _same_project([cand, base], "decide")
    proto = book.store.get_project(name).protocol
    inputs, c_test = _inputs(book, cand, base, proto, book.store.list_decisions())
    result = decide_gates(inputs)
    if (
        result.revealed
        and inputs.candidate_latency_ms is None
        and c_test is not None
        and rules.finite_number(c_test.latency_ms) is not None
    ):
        # the only latency is the test evaluation's: usable once the decision reveals it
        from dataclasses import replace

        result = decide_gates(
            replace(inputs, candidate_latency_ms=c_test.latency_ms, candidate_device=c_test.device)
        )
    record = book.store.add_decision(
        Decision(
            id=uuid.uuid4().hex,
            project=name,
            candidate_id=cand.id,
            baseline_id=base.id,
            verdict=result.verdict,
            gates=[g.to_dict() for g in result.gates],
            protocol=result.protocol,
            test_split_digest=result.test_split_digest,
            revealed=result.revealed,
            who=_who(),
            at=time.time(),
        )
    )
    return {
        "id": record.id,
        "project": name,
        "who": record.who,
        "at": record.at,
        **result.to_dict(),
        "text": render_decision_text(result),
    }


def decisions(book: Book, project: str | None = None, run: str | None = None) -> dict[str, Any]:
    """Stored decisions, oldest first, each with the test numbers it revealed (if any)."""
    run_id = None
    if run is not None:
        record = book.run(run, project)
        project, run_id = record.project, record.id
    elif project is not None:
        book.store.get_project(project)
    stored = book.store.list_decisions(project)
    names = _run_names(book, [i for d in stored for i in (d.candidate_id, d.baseline_id)])
    out = []
    for d in stored:
        if run_id is not None and run_id not in (d.candidate_id, d.baseline_id):
            continue
        cand, base = names.get(d.candidate_id, d.candidate_id), names.get(d.baseline_id, d.baseline_id)
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
    return {"project": project, "decisions": out}


# --------------------------------------------------------------------------- ship
def _ship_dict(ship: Any, names: Mapping[str, str]) -> dict[str, Any]:
    return {
        "run": names.get(ship.run_id, ship.run_id),
        "decision_id": ship.decision_id,
        "forced": ship.forced,
        "reason": ship.reason,
        "who": ship.who,
        "at": ship.at,
    }


def ship(
    book: Book, ref: str, *, project: str | None = None, force: bool = False, reason: str | None = None
) -> dict[str, Any]:
    """Mark ``ref`` the project's deployed run: it needs a WIN decision as candidate, or
    ``force`` with a ``reason`` (recorded). One shipped run per project; earlier ones stay
    in the history."""
    run = book.run(ref, project)
    reason = (reason or "").strip() or None
    if force and reason is None:
        raise InvalidInput(
            f'ship {run.name} --force needs --reason "...": why it ships '
            "without a WIN decision (kept in the ship history)"
        )
    proj = book.store.get_project(run.project)
    mine = [d for d in book.store.list_decisions(run.project) if d.candidate_id == run.id]
    ships = book.store.list_ships(run.project)
    names = _run_names(
        book, [run.id, proj.shipped_run_id, *(d.baseline_id for d in mine), *(s.run_id for s in ships)]
    )
    wins = [d for d in mine if d.verdict == WIN]
    if proj.shipped_run_id == run.id:
        return {
            "project": run.project,
            "run": run.name,
            "already_shipped": True,
            "previous": None,
            "forced": False,
            "decision_id": None,
            "reason": None,
            "ships": [_ship_dict(s, names) for s in book.store.list_ships(run.project)],
        }
    if not wins and not force:
        if mine:
            last = mine[-1]
            why = f"its last decision (against {names.get(last.baseline_id, '?')}) was {last.verdict}"
        else:
            why = "it has no decision"
        raise Conflict(
            f"cannot ship {run.name}: {why}. Decide first (trialbook decide "
            f"{run.name} --baseline BASELINE), or ship it anyway with --force "
            f'--reason "..."'
        )
    decision_id = wins[-1].id if wins else None
    previous = names.get(proj.shipped_run_id or "") if proj.shipped_run_id else None
    book.store.ship_run(
        run.project, run.id, decision_id=decision_id, forced=not wins, reason=reason, who=_who()
    )
    return {
        "project": run.project,
        "run": run.name,
        "already_shipped": False,
        "previous": previous,
        "forced": not wins,
        "decision_id": decision_id,
        "reason": reason,
        "ships": [_ship_dict(s, names) for s in book.store.list_ships(run.project)],
    }


# --------------------------------------------------------------------------- notes
def set_note(
    book: Book, ref: str, fields: Mapping[str, str | None], *, project: str | None = None
) -> dict[str, Any]:
    """Write some fields of a run's note; every version stays in the history."""
    run = book.run(ref, project)
    given = {k: v for k, v in fields.items() if v is not None}
    if not given:
        raise InvalidInput(
            f"note {run.name}: give at least one of --hypothesis, --change, --result, --next, --text"
        )
    note = book.store.set_note(run.id, given, who=_who())
    return {"run": run.name, "project": run.project, "note": note_dict(note)}


def get_note(book: Book, ref: str, *, project: str | None = None) -> dict[str, Any]:
    run = book.run(ref, project)
    note = book.store.get_notes([run.id]).get(run.id)
    return {"run": run.name, "project": run.project, "note": note_dict(note)}


def draft_note(book: Book, ref: str, *, project: str | None = None, save: bool = False) -> dict[str, Any]:
    """A result line from the numbers against the parent run (val evaluation, else the
    best epoch; per-class AP from the val evaluation); ``save`` writes it in the note."""
    run = book.run(ref, project)
    proto = book.store.get_project(run.project).protocol
    parent = book.store.get_run_by_id(run.parent_id) if run.parent_id else None
    ids = [run.id] + ([parent.id] if parent else [])
    evaluations = _open_evaluations(book, ids)
    summaries = book.store.get_summaries(ids, [proto.metric])

    def numbers(r: RunRecord) -> tuple[float | None, str, dict[str, float]]:
        s = summaries[r.id].get(proto.metric)
        value, source, _ = rules.comparison_value(evaluations[r.id], proto.metric, s.best if s else None)
        return value, source, rules.per_class_ap(evaluations[r.id])

    value, source, per_class = numbers(run)
    p_value, p_source, p_per_class = numbers(parent) if parent else (None, "", {})
    line = draft_result(proto.metric, p_value, value, p_per_class, per_class, proto.noise)
    if save:
        book.store.set_note(run.id, {"result": line}, who=_who())
    return {
        "run": run.name,
        "project": run.project,
        "parent": parent.name if parent else None,
        "metric": proto.metric,
        "draft": line,
        "saved": save,
        "sources": {"run": source, "parent": p_source or None},
    }


def note_history(book: Book, ref: str, *, project: str | None = None) -> dict[str, Any]:
    run = book.run(ref, project)
    versions = [
        {**{f: getattr(n, f) for f in (*NOTE_FIELDS, "text")}, "version": n.version, "at": n.updated_at}
        for n in book.store.note_history(run.id)
    ]
    return {"run": run.name, "project": run.project, "history": versions}


def search_notes(book: Book, text: str, *, project: str | None = None, limit: int = 50) -> dict[str, Any]:
    """Notes matching every word of ``text`` (the database's full-text search)."""
    found = book.store.search_notes(text, project=project, limit=limit)
    runs = {r.id: r for r in book.store.list_runs(project)}
    hits = []
    for note in found:
        run = runs.get(note.run_id)
        if run is None:
            continue
        hits.append({"run": run.name, "project": run.project, **(note_dict(note) or {})})
    return {"query": text, "project": project, "hits": hits}


# --------------------------------------------------------------------------- lint
def lint(book: Book, project: str | None = None) -> dict[str, Any]:
    """Bad names, note debt, unpinned runs, burned test splits and metric changes after
    comparison; runs imported with their old names are listed apart as notices."""
    names = (
        [book.store.get_project(project).name] if project else [p.name for p in book.store.list_projects()]
    )
    all_decisions = book.store.list_decisions()
    now = time.time()
    found: list[rules.Problem] = []
    for name in names:
        proto = book.store.get_project(name).protocol
        runs = book.store.list_runs(name)
        notes = book.store.get_notes([r.id for r in runs])
        for r in runs:
            found += rules.lint_run(r, effective_status(r, now), notes.get(r.id), proto.naming_pattern)
        found += rules.burned_splits(rules.reveals_by_split(all_decisions, name), proto.test_budget, name)
        changes = rules.metric_changes_after_comparison(
            book.store.protocol_history(name), compared_at(book, name)
        )
        found += rules.metric_change_problems(changes, name)
    problems = [p.to_dict() for p in found if p.kind != rules.LEGACY_NAME]
    notices = [p.to_dict() for p in found if p.kind == rules.LEGACY_NAME]
    return {"projects": names, "problems": problems, "notices": notices}


# --------------------------------------------------------------------------- noise
def noise(book: Book, project: str | None = None, *, apply: bool = False) -> dict[str, Any]:
    """Estimate the run-to-run spread of the protocol metric from finished runs whose
    configs differ only in ``seed`` (``core.noise``), and suggest a threshold; ``apply``
    sets it in the protocol (audited) when there is enough evidence."""
    name = pick_project(book, project)
    proto = book.store.get_project(name).protocol
    now = time.time()
    runs = [r for r in book.store.list_runs(name) if effective_status(r, now) == "finished"]
    ids = [r.id for r in runs]
    summaries = book.store.get_summaries(ids, [proto.metric])
    evaluations = _open_evaluations(book, ids)
    pairs = []
    for r in runs:
        s = summaries[r.id].get(proto.metric)
        value, _, _ = rules.comparison_value(evaluations[r.id], proto.metric, s.best if s else None)
        pairs.append((r.config, value))
    estimate = estimate_noise(pairs)
    applied = False
    if (
        apply
        and estimate.enough
        and estimate.suggested_noise is not None
        and estimate.suggested_noise != proto.noise
    ):
        set_protocol(
            book, name, {"noise": estimate.suggested_noise}, reason=f"trialbook noise: {estimate.message}"
        )
        applied = True
    return {
        "project": name,
        "metric": proto.metric,
        "current_noise": proto.noise,
        **estimate.to_dict(),
        "applied": applied,
    }
