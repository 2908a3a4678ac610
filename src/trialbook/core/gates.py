"""The four-gate decision: does a candidate run beat its baseline?

:func:`decide` takes plain numbers (:class:`DecisionInputs`; the caller picks them from the
store) and the project's :class:`~trialbook.core.entities.Protocol`, and returns a
:class:`DecisionResult`. The verdict is ``"WIN"`` when all four gates pass, otherwise
``"MORE_EXPERIMENTS"``; every gate says why it passed or failed, with the numbers.

Numbers are compared with ``core.noise.exceeds`` / ``core.noise.at_least``, so a value
exactly at a threshold (up to floating-point rounding) counts as equal to it.

Comparability
    The val split digests of the two runs must be equal (``core.comparability``, the rule
    a compare view uses too). If both are known and differ, or one is known and the other
    is not, the runs are *not comparable*: ``comparable`` is false, a warning says so and
    the improvement gate fails with that reason. If neither is known (imported runs) they
    are assumed comparable, with a warning.

1. ``improvement``
    The candidate's comparison-metric value is better than the baseline's by strictly more
    than ``protocol.noise`` (higher for ``"max"``, lower for ``"min"``). The values are the
    caller's (a val evaluation, else the best of the per-epoch series), each labelled
    with its source; different sources on the two sides add a warning. A missing value
    fails the gate.
2. ``per_class``
    Which classes can be judged: Ultralytics' per-class AP covers exactly the classes that
    have instances in the val split, so a class in either run's per-class AP has val
    instances. A class has *no val instances*, and is listed as **not evaluable**
    (reported, never failing, left out of every check below), when ``val_instances`` (the
    candidate's pinned version's per-class instance counts of the val split, when known)
    counts 0 for it, or when it is one of ``class_names`` (every class of the dataset) and
    neither run has an AP for it. Every other class fails the gate, named, when:
    it is in the baseline's per-class AP, or ``val_instances`` counts instances of it, and
    the candidate has no AP for it (*missing*); its candidate AP is 0 (up to floating-point
    rounding: *never detected*, whatever the baseline's); or it is in both and the
    candidate's AP is below ``class_floor`` × the baseline's. A class only in the
    candidate with an AP above 0 is reported and passes. No per-class AP on either side
    fails the gate.
3. ``test_set``
    The candidate has a test-split evaluation with a value of the metric; if both its
    split digest and the pinned dataset version's test split digest are known they are
    equal; the test split is not burned (reveals already used < ``test_budget``); and the
    candidate's test value is not worse than the baseline's by more than the noise (a
    shortfall exactly at the noise passes). Without a baseline test value the gate passes
    on existence and says there was nothing to compare; a baseline test evaluation on
    another test split (both digests known) fails the gate.
    **Reveals**: a decision reveals the test numbers, and counts one reveal against the
    test split, only when the candidate's test evaluation exists, is on the pinned split
    and the split is not burned. A refused decision reveals and counts nothing.
    ``test_reveals_used`` is the count after this decision; ``burned`` is true when no
    reveal is left after it (``test_reveals_used >= test_budget``).
4. ``latency``
    A latency budget and a target device are set in the protocol, the candidate's
    latency is known and was measured on that device (names compared ignoring case and
    surrounding spaces), and it is <= the budget. The latency used is, on the target
    device, the newest dedicated measurement (``trialbook yolo latency``, its p50), else an
    evaluation's per-image speed (``core.discipline.latency_evaluation``); the gate says
    which (``candidate_latency_source``), and without one on the target device it says how
    to measure one there.

Latency as the metric (``core.metrics.LATENCY_METRIC``, lower is better)
    The values are each run's latency measured on the protocol's device
    (``core.ranking.measured_latency``), the noise is in ms, and the improvement gate says
    "faster by more than N ms"; a run without one is told how to measure it. The val
    splits do not matter to a latency, so they do not fail the improvement gate. The test
    gate needs the candidate's test evaluation (on the pinned split, the split not
    burned), counts the reveal, and compares nothing: a latency is the weights', not a
    split's.

Numbers in the texts: metric values with 4 decimals, latencies and budgets in ms with 1
(``core.format.metric`` / ``core.format.ms``), the class floor with 2.

Evidence (:func:`evidence_digest`)
    A decision's evidence is everything the gates read, except the count of reveals
    already used: the protocol, both runs, their values and sources, val split digests,
    per-class AP, class names and val instances, test values and split digests, the
    latency and its device, and the ids of the evaluations they come from (``refs``). A
    decision on the evidence of one already recorded would judge the same numbers again
    and spend another reveal: the caller returns the recorded decision instead. New
    evidence (a new test evaluation, a changed protocol, another value) is a new digest.

Text (:func:`render_decision_text`)
    The gates, the test split's reveals, the verdict and the next step: for a WIN, ship it,
    and write the result in the candidate's note unless it already has one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from trialbook.core import format as fmt
from trialbook.core.comparability import check_val_splits
from trialbook.core.entities import Protocol
from trialbook.core.format import SHORT_DIGEST, short_digest
from trialbook.core.metrics import finite_number, is_latency, parse_class_key
from trialbook.core.noise import at_least, exceeds, gain
from trialbook.errors import InvalidInput

__all__ = [
    "GATES",
    "MORE_EXPERIMENTS",
    "SHORT_DIGEST",
    "WIN",
    "DecisionInputs",
    "DecisionResult",
    "GateResult",
    "decide",
    "evidence_digest",
    "is_map_like",
    "not_evaluable",
    "render_decision_text",
    "short_digest",  # kept here for callers; it lives in core.format
]

GATES = ("improvement", "per_class", "test_set", "latency")
WIN = "WIN"
MORE_EXPERIMENTS = "MORE_EXPERIMENTS"


@dataclass(frozen=True)
class DecisionInputs:
    """Everything :func:`decide` needs, as plain values."""

    candidate: str
    baseline: str
    protocol: Protocol = field(default_factory=Protocol)
    project: str | None = None
    candidate_value: float | None = None
    baseline_value: float | None = None
    candidate_source: str = "val evaluation"
    baseline_source: str = "val evaluation"
    candidate_val_digest: str | None = None
    baseline_val_digest: str | None = None
    candidate_per_class: dict[str, float] = field(default_factory=dict)
    baseline_per_class: dict[str, float] = field(default_factory=dict)
    # every class of the candidate's dataset (its pinned version, else its evaluation's
    # class names); () when unknown
    class_names: tuple[str, ...] = ()
    # instances per class in the candidate's val split, when its pinned version counts the
    # split the per-class AP was measured on; None when unknown
    val_instances: dict[str, int] | None = None
    candidate_test_value: float | None = None
    baseline_test_value: float | None = None
    candidate_test_digest: str | None = None
    baseline_test_digest: str | None = None
    pinned_test_digest: str | None = None
    test_reveals_used: int = 0
    candidate_latency_ms: float | None = None
    candidate_device: str | None = None
    # where the latency comes from, e.g. "trialbook yolo latency: p50 of 100 runs, p95 14.2 ms"
    # or "the val evaluation's per-image speed"
    candidate_latency_source: str | None = None


@dataclass(frozen=True)
class GateResult:
    """One gate's outcome: a sentence with the numbers, the inputs used, and a next step."""

    gate: str
    passed: bool
    detail: str
    inputs: dict[str, Any] = field(default_factory=dict)
    hint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "gate": self.gate,
            "passed": self.passed,
            "detail": self.detail,
            "inputs": dict(self.inputs),
            "hint": self.hint,
        }


@dataclass(frozen=True)
class DecisionResult:
    """The verdict of :func:`decide` with each gate's outcome."""

    candidate: str
    baseline: str
    metric: str
    direction: str
    verdict: str
    gates: tuple[GateResult, ...]
    comparable: bool
    warnings: tuple[str, ...]
    test_reveals_used: int
    test_budget: int
    burned: bool
    revealed: bool
    test_split_digest: str | None
    protocol: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> list[str]:
        """Names of the gates that failed, in gate order."""
        return [g.gate for g in self.gates if not g.passed]

    def gate(self, name: str) -> GateResult:
        for g in self.gates:
            if g.gate == name:
                return g
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "baseline": self.baseline,
            "metric": self.metric,
            "direction": self.direction,
            "verdict": self.verdict,
            "gates": [g.to_dict() for g in self.gates],
            "comparable": self.comparable,
            "warnings": list(self.warnings),
            "test_reveals_used": self.test_reveals_used,
            "test_budget": self.test_budget,
            "burned": self.burned,
            "revealed": self.revealed,
            "test_split_digest": self.test_split_digest,
            "protocol": dict(self.protocol),
        }


def evidence_digest(inputs: DecisionInputs, refs: Mapping[str, str | None]) -> str:
    """The digest of a decision's evidence (module docstring): 64 hex characters of the
    SHA-256 of ``inputs`` without ``test_reveals_used``, and ``refs`` (the ids of the
    runs and evaluations the inputs come from)."""
    data = dataclasses.asdict(inputs)
    del data["test_reveals_used"]
    if data["protocol"].get("precision_level") == Protocol().precision_level:
        # the default, as in decisions recorded before the field existed: the same digest
        del data["protocol"]["precision_level"]
    text = json.dumps({"inputs": data, "refs": dict(refs)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def is_map_like(metric: str) -> bool:
    """True for mAP metrics, whose differences are also shown in mAP points (× 100)."""
    return "map" in metric.lower()


def _amount(value: float, metric: str) -> str:
    """``0.0800``, ``0.0800 (8.00 mAP points)`` for mAP-like metrics, ``(8.00 AP points)``
    for one class's AP, ``8.0 ms`` for the latency."""
    if is_latency(metric):
        return fmt.ms(value)
    text = f"{value:.4f}"
    parsed = parse_class_key(metric)
    if parsed is not None and parsed.kind == "ap":
        text += f" ({value * 100:.2f} AP points)"
    elif is_map_like(metric):
        text += f" ({value * 100:.2f} mAP points)"
    return text


def _value(value: float, metric: str) -> str:
    """A value of ``metric``: ``0.5100``, or ``4.1 ms`` for the latency."""
    return fmt.ms(value) if is_latency(metric) else f"{value:.4f}"


def noise_text(noise: float, metric: str) -> str:
    """The noise threshold as the gates write it: ``0.0050``, or ``0.5 ms`` for the latency."""
    return f"{noise:g} ms" if is_latency(metric) else f"{noise:.4f}"


def _comparability(inputs: DecisionInputs) -> tuple[str | None, str | None]:
    """``(reason they are not comparable, warning)``; both ``None`` when all is well."""
    comparable, warning = check_val_splits(
        {
            f"candidate {inputs.candidate}": inputs.candidate_val_digest,
            f"baseline {inputs.baseline}": inputs.baseline_val_digest,
        },
        fix="evaluate both on one split",
    )
    return (None if comparable else warning), warning


# --------------------------------------------------------------------------- 1. improvement
def _improvement_facts(inputs: DecisionInputs) -> dict[str, Any]:
    p = inputs.protocol
    return {
        "metric": p.metric,
        "direction": p.direction,
        "noise": p.noise,
        "candidate_value": inputs.candidate_value,
        "baseline_value": inputs.baseline_value,
        "candidate_source": inputs.candidate_source,
        "baseline_source": inputs.baseline_source,
        "candidate_val_split": inputs.candidate_val_digest,
        "baseline_val_split": inputs.baseline_val_digest,
    }


def _no_value(inputs: DecisionInputs, facts: dict[str, Any]) -> GateResult:
    """The improvement gate failing for a missing value on either side."""
    missing = [
        f"{role} {name}"
        for role, name, value in (
            ("candidate", inputs.candidate, inputs.candidate_value),
            ("baseline", inputs.baseline, inputs.baseline_value),
        )
        if value is None
    ]
    p = inputs.protocol
    if is_latency(p.metric):
        target = p.device or "the protocol's device"
        return GateResult(
            "improvement",
            False,
            f"no latency ({p.metric}) measured on {target} for {' or '.join(missing)}: nothing to compare",
            facts,
            f"measure it on {target}: run `trialbook yolo latency RUN --device {target}` there for "
            f"{' and '.join(m.split(' ', 1)[1] for m in missing)}",
        )
    return GateResult(
        "improvement",
        False,
        f"no value of {p.metric} for {' or '.join(missing)}: nothing to compare",
        facts,
        "log a val evaluation (run.log_eval(split='val', metrics=...)) or the per-epoch metric for both runs",
    )


def _compared_values(inputs: DecisionInputs, cand: float, base: float) -> str:
    """``metric (source): candidate X 0.5100 vs baseline Y 0.5000``, sources named once
    when they are the same."""
    metric = inputs.protocol.metric
    c, b = _value(cand, metric), _value(base, metric)
    if inputs.candidate_source == inputs.baseline_source:
        return (
            f"{metric} ({inputs.candidate_source}): candidate {inputs.candidate} "
            f"{c} vs baseline {inputs.baseline} {b}"
        )
    return (
        f"{metric}: candidate {inputs.candidate} {c} ({inputs.candidate_source}) "
        f"vs baseline {inputs.baseline} {b} ({inputs.baseline_source})"
    )


def _not_better(amount: float, p: Protocol, threshold: str) -> str:
    """Why a gain of ``amount`` does not pass: too small, none, or worse."""
    faster = is_latency(p.metric)
    if amount > 0:
        better = "faster" if faster else "better"
        return f"{better} by only {_amount(amount, p.metric)}, not more than {threshold}"
    if amount == 0:
        return f"no change, not more than {threshold}"
    if faster:
        return f"slower by {_amount(-amount, p.metric)}; lower is better"
    better = "higher" if p.direction == "max" else "lower"
    return f"worse by {_amount(-amount, p.metric)}; {better} is better"


def _improvement(inputs: DecisionInputs, not_comparable: str | None) -> GateResult:
    p = inputs.protocol
    cand, base = inputs.candidate_value, inputs.baseline_value
    facts = _improvement_facts(inputs)
    if cand is None or base is None:
        return _no_value(inputs, facts)
    numbers = _compared_values(inputs, cand, base)
    amount = gain(cand, base, p.direction)
    facts["gain"] = amount
    if not_comparable and not is_latency(p.metric):  # a latency does not depend on the val split
        return GateResult(
            "improvement",
            False,
            f"{not_comparable} ({numbers})",
            facts,
            "evaluate the candidate and the baseline on one val split, then decide again",
        )
    threshold = f"the noise threshold {noise_text(p.noise, p.metric)}"
    if exceeds(amount, p.noise):
        better = "faster" if is_latency(p.metric) else "better"
        return GateResult(
            "improvement",
            True,
            f"{numbers}: {better} by {_amount(amount, p.metric)}, more than {threshold}",
            facts,
        )
    return GateResult(
        "improvement",
        False,
        f"{numbers}: {_not_better(amount, p, threshold)}",
        facts,
        "the candidate is not better than the baseline by more than the noise; try another "
        "change (or measure the noise with repeated seeds if the threshold looks wrong)",
    )


# --------------------------------------------------------------------------- 2. per class
def not_evaluable(inputs: DecisionInputs) -> list[str]:
    """The classes that have no instances in the val split, so no AP can be judged (see
    the module docstring), sorted."""
    known = inputs.val_instances or {}
    seen = set(inputs.candidate_per_class) | set(inputs.baseline_per_class)
    out = {cls for cls, n in known.items() if n <= 0}
    out |= {cls for cls in inputs.class_names if cls not in seen and cls not in known}
    return sorted(out)


def _below_floor(
    cand: dict[str, float], base: dict[str, float], floor: float
) -> tuple[list[tuple[float, str]], tuple[float, str] | None]:
    """``(classes below the floor as (ratio, class), lowest ratio)`` of the classes in both
    whose candidate AP is above 0, the failing ones sorted by ratio (a zero baseline AP
    counts as ratio 0)."""
    below: list[tuple[float, str]] = []
    lowest: tuple[float, str] | None = None
    for cls in sorted(c for c in base if c in cand and not _never_detected(cand[c])):
        b, c = base[cls], cand[cls]
        if not at_least(c, floor * b):
            below.append((c / b if b > 0 else 0.0, cls))
        if b > 0 and (lowest is None or c / b < lowest[0]):
            lowest = (c / b, cls)
    below.sort()
    return below, lowest


def _never_detected(ap: float) -> bool:
    """An AP of 0 (up to floating-point rounding): the class was never detected."""
    return at_least(0.0, ap)


def _no_per_class(inputs: DecisionInputs, facts: dict[str, Any]) -> GateResult | None:
    """The per-class gate failing when either side has no per-class AP, else ``None``."""
    empty = [
        f"{role} {name}"
        for role, name, aps in (
            ("candidate", inputs.candidate, inputs.candidate_per_class),
            ("baseline", inputs.baseline, inputs.baseline_per_class),
        )
        if not aps
    ]
    if not empty:
        return None
    return GateResult(
        "per_class",
        False,
        f"no per-class AP recorded for {' and '.join(empty)}",
        facts,
        "log per-class AP with run.log_eval(split='val', per_class_ap={...}) for both runs",
    )


def _only_in_candidate(cand: dict[str, float], only: list[str]) -> str:
    if not only:
        return ""
    return "; only in the candidate (not checked): " + ", ".join(
        f"{cls} {fmt.metric(cand[cls])}" for cls in only
    )


def _not_evaluable_text(classes: list[str]) -> str:
    if not classes:
        return ""
    return "; not evaluable (no val instances): " + ", ".join(classes)


@dataclass(frozen=True)
class _PerClass:
    """The per-class findings: the classes judged and why each failing one fails."""

    judged: int
    missing: list[str]  # with val instances, but no AP in the candidate
    never: list[str]  # with val instances, AP 0 in the candidate
    below: list[tuple[float, str]]  # under the floor, (ratio, class)
    lowest: tuple[float, str] | None
    only_candidate: list[str]
    not_evaluable: list[str]


def _findings(inputs: DecisionInputs, floor: float) -> _PerClass:
    skip = set(not_evaluable(inputs))
    cand = {k: v for k, v in inputs.candidate_per_class.items() if k not in skip}
    base = {k: v for k, v in inputs.baseline_per_class.items() if k not in skip}
    with_instances = {k for k, n in (inputs.val_instances or {}).items() if n > 0}
    below, lowest = _below_floor(cand, base, floor)
    return _PerClass(
        judged=len(set(cand) | set(base) | with_instances),
        missing=sorted(c for c in set(base) | with_instances if c not in cand),
        never=sorted(c for c, ap in cand.items() if _never_detected(ap)),
        below=below,
        lowest=lowest,
        only_candidate=sorted(c for c in cand if c not in base and not _never_detected(cand[c])),
        not_evaluable=sorted(skip),
    )


def _failing_facts(f: _PerClass, inputs: DecisionInputs, floor: float) -> list[dict[str, Any]]:
    cand, base = inputs.candidate_per_class, inputs.baseline_per_class

    def row(cls: str, why: str) -> dict[str, Any]:
        b = base.get(cls)
        return {
            "class": cls,
            "candidate": cand.get(cls),
            "baseline": b,
            "floor": None if b is None else floor * b,
            "why": why,
        }

    return (
        [row(cls, "missing") for cls in f.missing]
        + [row(cls, "never_detected") for cls in f.never]
        + [row(cls, "below_floor") for _, cls in f.below]
    )


def _failing_parts(f: _PerClass, inputs: DecisionInputs, floor: float) -> list[str]:
    cand, base = inputs.candidate_per_class, inputs.baseline_per_class

    def baseline_of(cls: str) -> str:
        return f"baseline {fmt.metric(base[cls])}" if cls in base else "not in the baseline's AP"

    parts = [f"{cls} missing in the candidate ({baseline_of(cls)})" for cls in f.missing]
    parts += [
        f"{cls} never detected: AP 0 in the candidate though it has val instances ({baseline_of(cls)})"
        for cls in f.never
    ]
    parts += [
        f"{cls} {fmt.metric(cand[cls])} vs baseline {fmt.metric(base[cls])} "
        f"(below the floor {fmt.ratio(floor)} × {fmt.metric(base[cls])} = {fmt.metric(floor * base[cls])})"
        for _, cls in f.below
    ]
    return parts


def _per_class(inputs: DecisionInputs) -> GateResult:
    floor = inputs.protocol.class_floor
    cand, base = dict(inputs.candidate_per_class), dict(inputs.baseline_per_class)
    facts: dict[str, Any] = {"class_floor": floor, "candidate": cand, "baseline": base}
    facts["not_evaluable"] = not_evaluable(inputs)
    empty = _no_per_class(inputs, facts)
    if empty is not None:
        return empty
    f = _findings(inputs, floor)
    facts["failing"] = _failing_facts(f, inputs, floor)
    facts["only_in_candidate"] = f.only_candidate
    extra = _only_in_candidate(cand, f.only_candidate) + _not_evaluable_text(f.not_evaluable)
    count = len(f.missing) + len(f.never) + len(f.below)
    if not count:
        closest = (
            f" (lowest: {f.lowest[1]} at {fmt.ratio(f.lowest[0])} × its baseline AP)" if f.lowest else ""
        )
        return GateResult(
            "per_class",
            True,
            f"all {f.judged} classes have AP above 0 and at least {fmt.ratio(floor)} × the baseline's"
            f"{closest}{extra}",
            facts,
        )
    return GateResult(
        "per_class",
        False,
        f"{count} of {f.judged} classes fail: " + "; ".join(_failing_parts(f, inputs, floor)) + extra,
        facts,
        f"look at {', '.join(row['class'] for row in facts['failing'])} (more or better-labelled "
        "data for them) before calling this a win",
    )


# --------------------------------------------------------------------------- 3. test set
def _test_split(inputs: DecisionInputs) -> str | None:
    """The test split a decision reveals and counts on: the candidate's, else the pinned one."""
    return inputs.candidate_test_digest or inputs.pinned_test_digest


def _test_refused(inputs: DecisionInputs, facts: dict[str, Any]) -> GateResult | None:
    """The test-set gate failing before anything is revealed (no test evaluation, one on
    another split than the pinned one, a burned split); ``None`` when the numbers can be
    revealed."""
    p = inputs.protocol
    used, budget = inputs.test_reveals_used, p.test_budget
    cand_digest, pinned = inputs.candidate_test_digest, inputs.pinned_test_digest
    if inputs.candidate_test_value is None:
        what = "" if is_latency(p.metric) else f" with {p.metric}"
        return GateResult(
            "test_set",
            False,
            f"candidate {inputs.candidate} has no test-split evaluation{what}",
            facts,
            "evaluate the candidate's weights on the test split: run.log_eval(split='test', metrics=...)",
        )
    if cand_digest and pinned and cand_digest != pinned:
        return GateResult(
            "test_set",
            False,
            f"the test evaluation of {inputs.candidate} is on test split "
            f"{short_digest(cand_digest)}, not on its pinned dataset version's test split "
            f"{short_digest(pinned)}; nothing was revealed",
            facts,
            f"evaluate the candidate on the pinned test split {short_digest(pinned)}",
        )
    if used >= budget:
        return GateResult(
            "test_set",
            False,
            f"test split {short_digest(_test_split(inputs))} is burned ({used} of {budget} reveals "
            f"used); tag a new test split",
            facts,
            "tag a new dataset version with a fresh test split (trialbook data tag ...) "
            "and evaluate both runs on it",
        )
    return None


def _test_shortfall(inputs: DecisionInputs, facts: dict[str, Any], head: str, reveal: str) -> GateResult:
    """The revealed test values compared: the candidate may fall short by the noise."""
    p = inputs.protocol
    cand, base = inputs.candidate_test_value, inputs.baseline_test_value
    assert cand is not None and base is not None
    shortfall = -gain(cand, base, p.direction)
    facts["shortfall"] = shortfall
    if exceeds(shortfall, p.noise):
        return GateResult(
            "test_set",
            False,
            f"{head}: worse by {_amount(shortfall, p.metric)}, more than the noise "
            f"threshold {p.noise:.4f}; {reveal}",
            facts,
            "the candidate falls short of the baseline on the test split; if it beat it on val, look "
            "for overfitting to the val split",
        )
    if shortfall > 0:
        how = f"worse by {_amount(shortfall, p.metric)}, within the noise threshold {p.noise:.4f}"
    elif shortfall < 0:
        how = f"better by {_amount(-shortfall, p.metric)}"
    else:
        how = "equal"
    return GateResult("test_set", True, f"{head}: {how}; {reveal}", facts)


def _test_revealed(inputs: DecisionInputs, facts: dict[str, Any], used: int) -> GateResult:
    """The test-set gate once the numbers are revealed (``used`` reveals, this one included)."""
    p = inputs.protocol
    digest = _test_split(inputs)
    reveal = f"reveal {used} of {p.test_budget} for test split {short_digest(digest)}"
    if used >= p.test_budget:
        reveal += "; the test split is now burned"
    base = inputs.baseline_test_value
    facts["baseline_test_value"] = base
    if is_latency(p.metric):
        return GateResult(
            "test_set",
            True,
            f"candidate {inputs.candidate} has a test-split evaluation on test split "
            f"{short_digest(digest)}; a latency is the weights' on {p.device}, not a split's, so "
            f"there is no test latency to compare; {reveal}",
            facts,
        )
    head = f"test {p.metric}: candidate {inputs.candidate} {inputs.candidate_test_value:.4f}"
    if base is None:
        return GateResult(
            "test_set",
            True,
            f"{head}; baseline {inputs.baseline} has no test result to compare; {reveal}",
            facts,
        )
    base_digest = inputs.baseline_test_digest
    if base_digest and digest and base_digest != digest:
        return GateResult(
            "test_set",
            False,
            f"{head}, but the baseline {inputs.baseline} was tested on another test split "
            f"({short_digest(base_digest)}), so the results cannot be compared; {reveal}",
            facts,
            f"evaluate the baseline's weights on test split {short_digest(digest)}",
        )
    return _test_shortfall(inputs, facts, f"{head} vs baseline {inputs.baseline} {base:.4f}", reveal)


def _test_set(inputs: DecisionInputs) -> tuple[GateResult, bool, int, str | None]:
    """The gate, whether the test numbers were revealed, reveals used after, split digest."""
    used, digest = inputs.test_reveals_used, _test_split(inputs)
    facts: dict[str, Any] = {
        "test_split": inputs.candidate_test_digest,
        "pinned_test_split": inputs.pinned_test_digest,
        "baseline_test_split": inputs.baseline_test_digest,
        "test_budget": inputs.protocol.test_budget,
        "reveals_used_before": used,
        "revealed": False,
    }
    refused = _test_refused(inputs, facts)
    if refused is not None:
        return refused, False, used, digest
    used += 1
    facts.update(revealed=True, reveals_used_after=used, candidate_test_value=inputs.candidate_test_value)
    return _test_revealed(inputs, facts, used), True, used, digest


# --------------------------------------------------------------------------- 4. latency
def _same_device(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()


def _measure_hint(candidate: str, target: str) -> str:
    return (
        f"measure it on {target}: run `trialbook yolo latency {candidate} --device {target}` on that "
        f"machine (or run.log_latency({target!r}, timings_ms))"
    )


def _latency(inputs: DecisionInputs) -> GateResult:
    p = inputs.protocol
    latency, device = inputs.candidate_latency_ms, inputs.candidate_device
    budget, target = p.latency_budget_ms, p.device
    source = inputs.candidate_latency_source
    facts: dict[str, Any] = {
        "latency_ms": latency,
        "device": device,
        "budget_ms": budget,
        "target_device": target,
        "source": source,
    }
    project = inputs.project or "<project>"
    if budget is None or target is None:
        missing = "latency budget" if budget is None else "target device"
        command = f"trialbook project set {project} --latency-budget MS --device NAME"
        return GateResult(
            "latency",
            False,
            f"no {missing} set: {command}",
            facts,
            f"set the latency budget and target device: {command}",
        )
    if latency is None:
        return GateResult(
            "latency",
            False,
            f"latency of candidate {inputs.candidate} on {target} is not measured (budget {fmt.ms(budget)})",
            facts,
            _measure_hint(inputs.candidate, target),
        )
    used = f" ({source})" if source else ""
    if device is None or not _same_device(device, target):
        where = "an unknown device" if device is None else f"device {device!r}"
        return GateResult(
            "latency",
            False,
            f"latency {fmt.ms(latency)} of {inputs.candidate}{used} was measured on {where}, not on the "
            f"target device {target!r}",
            facts,
            _measure_hint(inputs.candidate, target),
        )
    if at_least(budget, latency):
        return GateResult(
            "latency",
            True,
            f"latency {fmt.ms(latency)} on {target}{used} is within the budget of {fmt.ms(budget)}",
            facts,
        )
    return GateResult(
        "latency",
        False,
        f"latency {fmt.ms(latency)} on {target}{used} is over the budget of {fmt.ms(budget)} "
        f"by {fmt.ms(latency - budget)}",
        facts,
        "make it faster (smaller model or image size, an exported engine) or revisit the budget",
    )


def decide(inputs: DecisionInputs) -> DecisionResult:
    """Apply the four gates to ``inputs``; see the module docstring for the rules."""
    p = inputs.protocol
    if p.direction not in ("max", "min"):
        raise InvalidInput(
            f"the protocol's metric {p.metric!r} has direction {p.direction!r}; "
            "a decision needs 'max' or 'min'"
        )
    not_comparable, warning = _comparability(inputs)
    warnings = [warning] if warning else []
    if inputs.candidate_source != inputs.baseline_source:
        warnings.append(
            f"the values come from different sources: candidate from "
            f"{inputs.candidate_source}, baseline from {inputs.baseline_source}"
        )
    improvement = _improvement(inputs, not_comparable)
    test_gate, revealed, used, digest = _test_set(inputs)
    gates = (improvement, _per_class(inputs), test_gate, _latency(inputs))
    verdict = WIN if all(g.passed for g in gates) else MORE_EXPERIMENTS
    return DecisionResult(
        candidate=inputs.candidate,
        baseline=inputs.baseline,
        metric=p.metric,
        direction=p.direction,
        verdict=verdict,
        gates=gates,
        comparable=not_comparable is None,
        warnings=tuple(warnings),
        test_reveals_used=used,
        test_budget=p.test_budget,
        burned=used >= p.test_budget,
        revealed=revealed,
        test_split_digest=digest,
        protocol=p.to_dict(),
    )


def render_decision_text(result: DecisionResult, *, note_has_result: bool = False) -> str:
    """The decision as a filled-in template, for a terminal or a report. A WIN's next step
    asks for the note's result line only when the candidate's note has none
    (``note_has_result``)."""
    better = "higher" if result.direction == "max" else "lower"
    noise = finite_number(result.protocol.get("noise"))
    noise_part = f"; noise {noise_text(noise, result.metric)}" if noise is not None else ""
    lines = [
        f"Candidate: {result.candidate}",
        f"Baseline:  {result.baseline}",
        f"Metric:    {result.metric} ({better} is better{noise_part})",
    ]
    lines += [f"Warning:   {w}" for w in result.warnings]
    width = max(len(g.gate) for g in result.gates) if result.gates else 0
    for g in result.gates:
        mark = "✓" if g.passed else "✗"
        lines.append(f"  {mark} {g.gate.ljust(width)}  {g.detail}")
    split = short_digest(result.test_split_digest)
    lines.append(
        f"Test split: {split}, {result.test_reveals_used} of {result.test_budget} reveals used"
        + (" (burned)" if result.burned else "")
    )
    if result.verdict == WIN:
        lines.append("Verdict:   WIN")
        ship = f"ship it (trialbook ship {result.candidate})"
        if not note_has_result:
            ship += f" and write the result in its note (trialbook note {result.candidate} --draft)"
        lines.append(f"Next:      {ship}")
    else:
        lines.append(f"Verdict:   MORE EXPERIMENTS (failed: {', '.join(result.failed)})")
        lines.append("Next:")
        lines += [f"  - {g.gate}: {g.hint or g.detail}" for g in result.gates if not g.passed]
    return "\n".join(lines)
