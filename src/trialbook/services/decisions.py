"""Decide (the four gates; the only reader of sealed test numbers), the stored decisions
with the test-split use of each project, and ship.

Sealed test numbers appear only in what :func:`decide` returns and in stored decisions
(:func:`list_decisions`): nothing else in trialbook reads evaluations with ``reveal=True``.

Deciding again on the same evidence (``core.gates.evidence_digest``: the same candidate,
baseline, protocol and numbers) returns the decision already recorded, with
``recorded_before`` true, and reveals and counts nothing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from typing_extensions import NotRequired, TypedDict

from trialbook import settings
from trialbook.api import Book
from trialbook.core import discipline as rules
from trialbook.core.entities import DatasetVersion, Decision, Evaluation, Protocol, RunRecord, has_text
from trialbook.core.gates import WIN, DecisionInputs, DecisionResult, evidence_digest, render_decision_text
from trialbook.core.gates import decide as decide_gates
from trialbook.core.metrics import finite_number, is_latency
from trialbook.core.ranking import measured_latency
from trialbook.errors import Conflict, InvalidInput, NotFound
from trialbook.services.projects import ShipView, TestSplitUse, ship_view, test_splits


class GateView(TypedDict):
    gate: str
    passed: bool
    detail: str
    inputs: dict[str, Any]
    hint: str | None


class DecisionView(TypedDict):
    """``decide --json``, ``decisions --json`` ``decisions[]`` and the API's decisions."""

    id: str
    project: str
    who: str
    at: float
    candidate: str
    baseline: str
    metric: str
    direction: str
    verdict: str
    gates: list[GateView]
    comparable: bool
    warnings: list[str]
    test_reveals_used: int
    test_budget: int
    burned: bool
    revealed: bool
    test_split_digest: str | None
    protocol: dict[str, Any]
    text: str
    # decide only: true when the same evidence was decided before, and this is that
    # decision (nothing revealed or counted again)
    recorded_before: NotRequired[bool]


class DecisionsList(TypedDict):
    """``decisions --json`` and ``GET /api/v1/decisions``."""

    project: str | None
    decisions: list[DecisionView]
    test_splits: list[TestSplitUse]
    burned: list[TestSplitUse]


class ShipResult(TypedDict):
    project: str
    run: str
    already_shipped: bool
    previous: str | None
    forced: bool
    decision_id: str | None
    reason: str | None
    ships: list[ShipView]


def candidate_and_baseline(
    book: Book, candidate: str, baseline: str, project: str | None, what: str
) -> tuple[RunRecord, RunRecord, str]:
    """The two runs ``what`` (``decide``, ``review``) sets against each other, and their
    one project; ``InvalidInput`` when they are one run or of two projects."""
    cand, base = book.run(candidate, project), book.run(baseline, project)
    if cand.id == base.id:
        raise InvalidInput(
            f"{what}: candidate and baseline are the same run ({cand.name}); "
            "name the run to set it against with --baseline"
        )
    return cand, base, same_project([cand, base], what)


def same_project(runs: Sequence[RunRecord], what: str) -> str:
    """The one project of ``runs``; ``InvalidInput`` naming them when they are in several."""
    projects = sorted({r.project for r in runs})
    if len(projects) > 1:
        listed = ", ".join(f"{r.project}/{r.name}" for r in runs)
        raise InvalidInput(f"{what} needs runs of one project (one protocol); got {listed}")
    return projects[0]


def decision_view(
    result: DecisionResult, *, id: str, project: str, who: str, at: float, note_has_result: bool = False
) -> DecisionView:
    """A decision for output; its text asks for the candidate's result line only when
    its note has none (``note_has_result``)."""
    return {
        "id": id,
        "project": project,
        "who": who,
        "at": at,
        "candidate": result.candidate,
        "baseline": result.baseline,
        "metric": result.metric,
        "direction": result.direction,
        "verdict": result.verdict,
        "gates": [
            {"gate": g.gate, "passed": g.passed, "detail": g.detail, "inputs": dict(g.inputs), "hint": g.hint}
            for g in result.gates
        ],
        "comparable": result.comparable,
        "warnings": list(result.warnings),
        "test_reveals_used": result.test_reveals_used,
        "test_budget": result.test_budget,
        "burned": result.burned,
        "revealed": result.revealed,
        "test_split_digest": result.test_split_digest,
        "protocol": dict(result.protocol),
        "text": render_decision_text(result, note_has_result=note_has_result),
    }


# --------------------------------------------------------------------------- decide
@dataclass(frozen=True)
class _Side:
    """What the gates need of one run."""

    value: float | None
    source: str
    val_digest: str | None
    per_class: dict[str, float]
    per_class_eval: Evaluation | None
    test: Evaluation | None
    test_value: float | None
    latency: Evaluation | None


def _side(run: RunRecord, evaluations: Sequence[Evaluation], best: float | None, proto: Protocol) -> _Side:
    mine = [e for e in evaluations if e.run_id == run.id]
    open_ = [e for e in mine if not e.sealed]
    tests = [e for e in mine if e.split == "test"]
    if is_latency(proto.metric):
        # the latency measured on the protocol's device; it is the weights', not a split's:
        # the test gate needs the test evaluation to exist, and its value stands for it (0
        # when no latency is measured, which fails the improvement gate anyway)
        measured = measured_latency(open_, proto.device)
        value = finite_number(measured.latency_ms) if measured else None
        source = _latency_source(proto.device, measured)
        digest = None
        test = rules.latest_evaluation(tests, "test")
        test_value = (0.0 if value is None else value) if test else None
    else:
        value, source, digest = rules.comparison_value(open_, proto.metric, best)
        test = rules.latest_evaluation(tests, "test", metric=proto.metric)
        test_value = finite_number(test.metrics.get(proto.metric)) if test else None
    return _Side(
        value=value,
        source=source,
        val_digest=digest or run.split_digests.get("val"),
        per_class=rules.per_class_ap(open_),
        per_class_eval=rules.latest_evaluation(open_, "val", per_class=True),
        test=test,
        test_value=test_value,
        latency=rules.latency_evaluation(open_, proto.device),
    )


def _latency_source(device: str | None, measured: Evaluation | None) -> str:
    """Where a run's value on the latency metric comes from, for the improvement gate."""
    if measured is None:
        return f"no latency measurement on {device or 'the protocol device'}"
    return f"p50 measured on {device} with trialbook yolo latency"


def _pinned_version(book: Book, run: RunRecord) -> DatasetVersion | None:
    """The dataset version ``run`` is pinned to; ``None`` for an unpinned run, or one whose
    version is not in this book."""
    if not run.pinned or not run.dataset:
        return None
    try:
        return book.dataset_version(run.dataset)
    except (NotFound, InvalidInput):
        return None


def _refs(cand: RunRecord, base: RunRecord, c: _Side, b: _Side) -> dict[str, str | None]:
    """The ids the gates' inputs come from, for the evidence digest."""
    return {
        "candidate": cand.id,
        "baseline": base.id,
        "candidate_test": c.test.id if c.test else None,
        "baseline_test": b.test.id if b.test else None,
        "latency": c.latency.id if c.latency else None,
    }


def _inputs(
    book: Book, cand: RunRecord, base: RunRecord, proto: Protocol, used_by: Sequence[Decision]
) -> tuple[DecisionInputs, Evaluation | None, str]:
    """The gates' inputs. This is the one place that reads sealed test numbers. Returns
    also the candidate's test evaluation (for a latency measured only there) and the
    evidence digest of the inputs."""
    evaluations = book.store.list_evaluations([cand.id, base.id], reveal=True)
    summaries = book.store.get_summaries([cand.id, base.id], [proto.metric])

    def best(run: RunRecord) -> float | None:
        s = summaries[run.id].get(proto.metric)
        return s.best if s else None

    c, b = _side(cand, evaluations, best(cand), proto), _side(base, evaluations, best(base), proto)
    pinned = cand.split_digests.get("test") if cand.pinned else None
    digest = (c.test.split_digest if c.test else None) or pinned
    class_names, val_instances = rules.dataset_classes(_pinned_version(book, cand), c.per_class_eval)
    inputs = DecisionInputs(
        candidate=cand.name,
        baseline=base.name,
        protocol=proto,
        project=cand.project,
        candidate_value=c.value,
        baseline_value=b.value,
        candidate_source=c.source,
        baseline_source=b.source,
        candidate_val_digest=c.val_digest,
        baseline_val_digest=b.val_digest,
        candidate_per_class=c.per_class,
        baseline_per_class=b.per_class,
        class_names=class_names,
        val_instances=val_instances,
        candidate_test_value=c.test_value,
        baseline_test_value=b.test_value,
        candidate_test_digest=c.test.split_digest if c.test else None,
        baseline_test_digest=b.test.split_digest if b.test else None,
        pinned_test_digest=pinned,
        test_reveals_used=rules.reveals_used(used_by, digest, cand.project),
        candidate_latency_ms=c.latency.latency_ms if c.latency else None,
        candidate_device=c.latency.device if c.latency else None,
        candidate_latency_source=rules.latency_source(c.latency) if c.latency else None,
    )
    return inputs, c.test, evidence_digest(inputs, _refs(cand, base, c, b))


# How many times ``decide`` recomputes the gates when the test split's last reveal was
# spent by another decision between its count and its store (each retry follows one
# more stored reveal, so a few are enough; past them the Conflict is raised).
DECIDE_TRIES = 8


def decide(
    book: Book, candidate: str, baseline: str, *, project: str | None = None, who: str | None = None
) -> DecisionView:
    """The four gates of DESIGN.md for ``candidate`` against ``baseline``; the decision is
    stored (immutable, with the protocol snapshot and its evidence digest), naming ``who``
    (default ``settings.who()``; the team server passes the authenticated user). A decision
    that reveals the test numbers counts one reveal against the test split.

    When a decision on the same evidence is recorded already (the same runs, protocol and
    numbers: ``core.gates.evidence_digest``), that decision is returned with
    ``recorded_before`` true, and nothing is stored, revealed or counted.

    The reveals are counted again where the decision is stored, in one serialised
    transaction (``Store.add_decision(..., reveal_budget=..., evidence=...)``): when
    decisions made at once would spend more reveals than the budget, the later ones are
    decided again on the fresh count, so they reveal nothing and say the split is
    burned; identical ones made at once store one decision, which they all return."""
    cand, base, name = candidate_and_baseline(book, candidate, baseline, project, "decide")
    note_done = _note_has_result(book, cand)
    for attempt in range(DECIDE_TRIES):
        proto = book.store.get_project(name).protocol
        result, evidence = _gates(book, cand, base, proto)
        known = book.store.find_decision(name, evidence)
        if known is not None:
            return _recorded(known, result, cand, base, note_done)
        decision = Decision(
            id=uuid.uuid4().hex,
            project=name,
            candidate_id=cand.id,
            baseline_id=base.id,
            verdict=result.verdict,
            gates=[g.to_dict() for g in result.gates],
            protocol=result.protocol,
            test_split_digest=result.test_split_digest,
            revealed=result.revealed,
            who=who or settings.who(),
            at=time.time(),
        )
        try:
            record = book.store.add_decision(
                decision, reveal_budget=proto.test_budget if result.revealed else None, evidence=evidence
            )
        except Conflict:
            if not result.revealed or attempt == DECIDE_TRIES - 1:
                raise
            continue  # the split's reveals were spent meanwhile: decide on the fresh count
        if record.id != decision.id:  # the same evidence was stored meanwhile
            return _recorded(record, result, cand, base, note_done)
        view = decision_view(
            result, id=record.id, project=name, who=record.who, at=record.at, note_has_result=note_done
        )
        view["recorded_before"] = False
        return view
    raise AssertionError("unreachable")  # pragma: no cover


def _note_has_result(book: Book, run: RunRecord) -> bool:
    """Whether ``run``'s note has its result line written."""
    note = book.store.get_notes([run.id]).get(run.id)
    return note is not None and has_text(note.result)


def _recorded(
    record: Decision, fresh: DecisionResult, cand: RunRecord, base: RunRecord, note_done: bool
) -> DecisionView:
    """The stored decision on the evidence just read, as ``decide`` returns it: its gates
    and counts as recorded, with the warnings of the same evidence read again."""
    result = replace(rules.result_from_record(record, cand.name, base.name), warnings=fresh.warnings)
    view = decision_view(
        result, id=record.id, project=record.project, who=record.who, at=record.at, note_has_result=note_done
    )
    view["recorded_before"] = True
    return view


def _gates(book: Book, cand: RunRecord, base: RunRecord, proto: Protocol) -> tuple[DecisionResult, str]:
    """The gates on the decisions stored now, and the evidence digest they read."""
    inputs, c_test, evidence = _inputs(book, cand, base, proto, book.store.list_decisions())
    result = decide_gates(inputs)
    if (
        result.revealed
        and inputs.candidate_latency_ms is None
        and c_test is not None
        and finite_number(c_test.latency_ms) is not None
    ):
        # the only latency is the test evaluation's: usable once the decision reveals it
        result = decide_gates(
            replace(
                inputs,
                candidate_latency_ms=c_test.latency_ms,
                candidate_device=c_test.device,
                candidate_latency_source=rules.latency_source(c_test),
            )
        )
    return result, evidence


# --------------------------------------------------------------------------- stored decisions
def decision_views(
    book: Book,
    project: str | None = None,
    *,
    run_id: str | None = None,
    stored: Sequence[Decision] | None = None,
) -> list[DecisionView]:
    """Stored decisions, oldest first (of ``project``, involving ``run_id``), with the
    numbers each revealed, naming only the runs they involve."""
    found = [
        d
        for d in (stored if stored is not None else book.store.list_decisions(project))
        if (project is None or d.project == project)
        and (run_id is None or run_id in (d.candidate_id, d.baseline_id))
    ]
    names = book.store.run_names({i for d in found for i in (d.candidate_id, d.baseline_id)})
    notes = book.store.get_notes({d.candidate_id for d in found})
    out = []
    for d in found:
        cand, base = names.get(d.candidate_id, d.candidate_id), names.get(d.baseline_id, d.baseline_id)
        result = rules.result_from_record(d, cand, base)
        note = notes.get(d.candidate_id)
        done = note is not None and has_text(note.result)
        out.append(
            decision_view(result, id=d.id, project=d.project, who=d.who, at=d.at, note_has_result=done)
        )
    return out


def list_decisions(book: Book, project: str | None = None, run: str | None = None) -> DecisionsList:
    """Every decision (of ``project``, or on ``run``), oldest first, with the numbers each
    revealed; and per project the test reveals used on each test split, and which are burned."""
    run_id = None
    if run is not None:
        record = book.run(run, project)
        project, run_id = record.project, record.id
    projects = [book.store.get_project(project)] if project else book.store.list_projects()
    every = book.store.list_decisions()
    splits: list[TestSplitUse] = []
    for p in projects:
        splits += test_splits(rules.reveals_by_split(every, p.name), p.protocol.test_budget, p.name)
    return {
        "project": project,
        "decisions": decision_views(book, project, run_id=run_id, stored=every),
        "test_splits": splits,
        "burned": [s for s in splits if s["burned"]],
    }


# --------------------------------------------------------------------------- ship
def ship(
    book: Book, ref: str, *, project: str | None = None, force: bool = False, reason: str | None = None
) -> ShipResult:
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
    shipped = [proj.shipped_run_id] if proj.shipped_run_id else []
    names = book.store.run_names(
        [run.id, *shipped, *(d.baseline_id for d in mine), *(s.run_id for s in ships)]
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
            "ships": [ship_view(s, names) for s in ships],
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
    previous = names.get(proj.shipped_run_id) if proj.shipped_run_id else None
    book.store.ship_run(
        run.project, run.id, decision_id=decision_id, forced=not wins, reason=reason, who=settings.who()
    )
    return {
        "project": run.project,
        "run": run.name,
        "already_shipped": False,
        "previous": previous,
        "forced": not wins,
        "decision_id": decision_id,
        "reason": reason,
        "ships": [ship_view(s, names) for s in book.store.list_ships(run.project)],
    }
