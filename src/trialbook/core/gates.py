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
    Every class in the baseline's per-class AP has candidate AP >= ``class_floor`` × the
    baseline's AP. A baseline class missing from the candidate fails; a class only in the
    candidate is reported and passes. No per-class AP on either side fails the gate.
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
    surrounding spaces), and it is <= the budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trialbook.core.comparability import check_val_splits
from trialbook.core.entities import Protocol
from trialbook.core.format import SHORT_DIGEST, short_digest
from trialbook.core.metrics import finite_number
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
    "is_map_like",
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
    candidate_test_value: float | None = None
    baseline_test_value: float | None = None
    candidate_test_digest: str | None = None
    baseline_test_digest: str | None = None
    pinned_test_digest: str | None = None
    test_reveals_used: int = 0
    candidate_latency_ms: float | None = None
    candidate_device: str | None = None


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


def is_map_like(metric: str) -> bool:
    """True for mAP metrics, whose differences are also shown in mAP points (× 100)."""
    return "map" in metric.lower()


def _amount(value: float, metric: str) -> str:
    """``0.0800`` or ``0.0800 (8.00 mAP points)`` for mAP-like metrics."""
    text = f"{value:.4f}"
    if is_map_like(metric):
        text += f" ({value * 100:.2f} mAP points)"
    return text


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
    return GateResult(
        "improvement",
        False,
        f"no value of {inputs.protocol.metric} for {' or '.join(missing)}: nothing to compare",
        facts,
        "log a val evaluation (run.log_eval(split='val', metrics=...)) or the per-epoch metric for both runs",
    )


def _compared_values(inputs: DecisionInputs, cand: float, base: float) -> str:
    """``metric (source): candidate X 0.5100 vs baseline Y 0.5000``, sources named once
    when they are the same."""
    metric = inputs.protocol.metric
    if inputs.candidate_source == inputs.baseline_source:
        return (
            f"{metric} ({inputs.candidate_source}): candidate {inputs.candidate} "
            f"{cand:.4f} vs baseline {inputs.baseline} {base:.4f}"
        )
    return (
        f"{metric}: candidate {inputs.candidate} {cand:.4f} ({inputs.candidate_source}) "
        f"vs baseline {inputs.baseline} {base:.4f} ({inputs.baseline_source})"
    )


def _not_better(amount: float, p: Protocol, threshold: str) -> str:
    """Why a gain of ``amount`` does not pass: too small, none, or worse."""
    if amount > 0:
        return f"better by only {_amount(amount, p.metric)}, not more than {threshold}"
    if amount == 0:
        return f"no change, not more than {threshold}"
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
    if not_comparable:
        return GateResult(
            "improvement",
            False,
            f"{not_comparable} ({numbers})",
            facts,
            "evaluate the candidate and the baseline on one val split, then decide again",
        )
    threshold = f"the noise threshold {p.noise:.4f}"
    if exceeds(amount, p.noise):
        return GateResult(
            "improvement",
            True,
            f"{numbers}: better by {_amount(amount, p.metric)}, more than {threshold}",
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
def _below_floor(
    cand: dict[str, float], base: dict[str, float], floor: float
) -> tuple[list[tuple[float, str]], tuple[float, str] | None]:
    """``(classes below the floor as (ratio, class), lowest ratio)`` of the classes in both,
    the failing ones sorted by ratio (a zero baseline AP counts as ratio 0)."""
    below: list[tuple[float, str]] = []
    lowest: tuple[float, str] | None = None
    for cls in sorted(c for c in base if c in cand):
        b, c = base[cls], cand[cls]
        if not at_least(c, floor * b):
            below.append((c / b if b > 0 else 0.0, cls))
        if b > 0 and (lowest is None or c / b < lowest[0]):
            lowest = (c / b, cls)
    below.sort()
    return below, lowest


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
    return "; only in the candidate (not checked): " + ", ".join(f"{cls} {cand[cls]:.4f}" for cls in only)


def _per_class(inputs: DecisionInputs) -> GateResult:
    floor = inputs.protocol.class_floor
    cand, base = dict(inputs.candidate_per_class), dict(inputs.baseline_per_class)
    facts: dict[str, Any] = {"class_floor": floor, "candidate": cand, "baseline": base}
    empty = _no_per_class(inputs, facts)
    if empty is not None:
        return empty
    missing = sorted(c for c in base if c not in cand)
    below, lowest = _below_floor(cand, base, floor)
    only_cand = sorted(c for c in cand if c not in base)
    facts["failing"] = [
        {"class": cls, "candidate": None, "baseline": base[cls], "floor": floor * base[cls]}
        for cls in missing
    ] + [
        {"class": cls, "candidate": cand[cls], "baseline": base[cls], "floor": floor * base[cls]}
        for _, cls in below
    ]
    facts["only_in_candidate"] = only_cand
    extra = _only_in_candidate(cand, only_cand)
    n = len(base)
    if not missing and not below:
        closest = f" (lowest: {lowest[1]} at {lowest[0]:.2f} × its baseline AP)" if lowest else ""
        return GateResult(
            "per_class",
            True,
            f"all {n} classes have AP at least {floor:.2f} × the baseline's{closest}{extra}",
            facts,
        )
    parts = [f"{cls} missing in the candidate (baseline {base[cls]:.4f})" for cls in missing]
    parts += [
        f"{cls} {cand[cls]:.4f} vs baseline {base[cls]:.4f} (floor {floor * base[cls]:.4f})"
        for _, cls in below
    ]
    count = len(missing) + len(below)
    return GateResult(
        "per_class",
        False,
        f"{count} of {n} classes below {floor:.2f} × the baseline's AP: " + "; ".join(parts) + extra,
        facts,
        "look at the failing classes (more or better-labelled data for them) before calling this a win",
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
        return GateResult(
            "test_set",
            False,
            f"candidate {inputs.candidate} has no test-split evaluation with {p.metric}",
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
            "the val improvement does not hold on the test split; look for overfitting to the val split",
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


def _latency(inputs: DecisionInputs) -> GateResult:
    p = inputs.protocol
    latency, device = inputs.candidate_latency_ms, inputs.candidate_device
    budget, target = p.latency_budget_ms, p.device
    facts: dict[str, Any] = {
        "latency_ms": latency,
        "device": device,
        "budget_ms": budget,
        "target_device": target,
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
            f"latency of candidate {inputs.candidate} is unknown (budget {budget:g} ms on {target})",
            facts,
            f"measure it on {target} and log it: run.log_eval(..., latency_ms=..., device={target!r})",
        )
    if device is None or not _same_device(device, target):
        where = "an unknown device" if device is None else f"device {device!r}"
        return GateResult(
            "latency",
            False,
            f"latency {latency:g} ms of {inputs.candidate} was measured on {where}, not on the "
            f"target device {target!r}",
            facts,
            f"measure the latency on {target} and log it with device={target!r}",
        )
    if at_least(budget, latency):
        return GateResult(
            "latency",
            True,
            f"latency {latency:g} ms on {target} is within the budget of {budget:g} ms",
            facts,
        )
    return GateResult(
        "latency",
        False,
        f"latency {latency:g} ms on {target} is over the budget of {budget:g} ms by {latency - budget:g} ms",
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


def render_decision_text(result: DecisionResult) -> str:
    """The decision as a filled-in template, for a terminal or a report."""
    better = "higher" if result.direction == "max" else "lower"
    noise = finite_number(result.protocol.get("noise"))
    noise_text = f"; noise {noise:.4f}" if noise is not None else ""
    lines = [
        f"Candidate: {result.candidate}",
        f"Baseline:  {result.baseline}",
        f"Metric:    {result.metric} ({better} is better{noise_text})",
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
        lines.append(
            f"Next:      ship it (trialbook ship {result.candidate}) and write the result in "
            f"its note (trialbook note {result.candidate} --draft)"
        )
    else:
        lines.append(f"Verdict:   MORE EXPERIMENTS (failed: {', '.join(result.failed)})")
        lines.append("Next:")
        lines += [f"  - {g.gate}: {g.hint or g.detail}" for g in result.gates if not g.passed]
    return "\n".join(lines)
