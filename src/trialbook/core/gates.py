"""The four-gate decision: does a candidate run beat its baseline?

:func:`decide` takes plain numbers (:class:`DecisionInputs`; the caller picks them from the
store) and the project's :class:`~trialbook.core.entities.Protocol`, and returns a
:class:`DecisionResult`. The verdict is ``"WIN"`` when all four gates pass, otherwise
``"MORE_EXPERIMENTS"``; every gate says why it passed or failed, with the numbers.

Numbers are compared with ``core.noise.exceeds`` / ``core.noise.at_least``, so a value
exactly at a threshold (up to floating-point rounding) counts as equal to it.

Comparability
    The val split digests of the two runs must be equal. If both are known and differ, or
    one is known and the other is not, the runs are *not comparable*: ``comparable`` is
    false, a warning says so and the improvement gate fails with that reason. If neither
    is known (imported runs) they are assumed comparable, with a warning.

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

from trialbook.core.entities import Protocol
from trialbook.core.noise import at_least, exceeds
from trialbook.errors import InvalidInput

GATES = ("improvement", "per_class", "test_set", "latency")
WIN = "WIN"
MORE_EXPERIMENTS = "MORE_EXPERIMENTS"
SHORT_DIGEST = 12


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


def short_digest(digest: str | None) -> str:
    """A short prefix of a digest for display (``"unknown"`` for ``None``)."""
    if not digest:
        return "unknown"
    return digest.rsplit(":", 1)[-1][:SHORT_DIGEST]


def is_map_like(metric: str) -> bool:
    """True for mAP metrics, whose differences are also shown in mAP points (× 100)."""
    return "map" in metric.lower()


def _amount(value: float, metric: str) -> str:
    """``0.0800`` or ``0.0800 (8.00 mAP points)`` for mAP-like metrics."""
    text = f"{value:.4f}"
    if is_map_like(metric):
        text += f" ({value * 100:.2f} mAP points)"
    return text


def _gain(candidate: float, baseline: float, direction: str) -> float:
    """How much better ``candidate`` is than ``baseline`` (negative when worse)."""
    return baseline - candidate if direction == "min" else candidate - baseline


def _comparability(inputs: DecisionInputs) -> tuple[str | None, str | None]:
    """``(reason they are not comparable, warning)``; both ``None`` when all is well."""
    cd, bd = inputs.candidate_val_digest, inputs.baseline_val_digest
    if cd is None and bd is None:
        return None, (
            "the val split of neither run is recorded; the comparison assumes both were "
            "validated on the same split"
        )
    if cd != bd:
        reason = (
            f"not comparable: validated on different val splits (candidate "
            f"{inputs.candidate}: {short_digest(cd)}, baseline {inputs.baseline}: "
            f"{short_digest(bd)}); evaluate both on one split"
        )
        return reason, reason
    return None, None


def _improvement(inputs: DecisionInputs, not_comparable: str | None) -> GateResult:
    p = inputs.protocol
    cand, base = inputs.candidate_value, inputs.baseline_value
    facts: dict[str, Any] = {
        "metric": p.metric,
        "direction": p.direction,
        "noise": p.noise,
        "candidate_value": cand,
        "baseline_value": base,
        "candidate_source": inputs.candidate_source,
        "baseline_source": inputs.baseline_source,
        "candidate_val_split": inputs.candidate_val_digest,
        "baseline_val_split": inputs.baseline_val_digest,
    }
    missing = [
        f"{role} {name}"
        for role, name, value in (
            ("candidate", inputs.candidate, cand),
            ("baseline", inputs.baseline, base),
        )
        if value is None
    ]
    if cand is None or base is None:
        return GateResult(
            "improvement",
            False,
            f"no value of {p.metric} for {' or '.join(missing)}: nothing to compare",
            facts,
            "log a val evaluation (run.log_eval(split='val', metrics=...)) or the "
            "per-epoch metric for both runs",
        )
    if inputs.candidate_source == inputs.baseline_source:
        numbers = (
            f"{p.metric} ({inputs.candidate_source}): candidate {inputs.candidate} "
            f"{cand:.4f} vs baseline {inputs.baseline} {base:.4f}"
        )
    else:
        numbers = (
            f"{p.metric}: candidate {inputs.candidate} {cand:.4f} ({inputs.candidate_source}) "
            f"vs baseline {inputs.baseline} {base:.4f} ({inputs.baseline_source})"
        )
    gain = _gain(cand, base, p.direction)
    facts["gain"] = gain
    if not_comparable:
        return GateResult(
            "improvement",
            False,
            f"{not_comparable} ({numbers})",
            facts,
            "evaluate the candidate and the baseline on one val split, then decide again",
        )
    better = "higher" if p.direction == "max" else "lower"
    threshold = f"the noise threshold {p.noise:.4f}"
    if exceeds(gain, p.noise):
        return GateResult(
            "improvement",
            True,
            f"{numbers}: better by {_amount(gain, p.metric)}, more than {threshold}",
            facts,
        )
    if gain > 0:
        verdict = f"better by only {_amount(gain, p.metric)}, not more than {threshold}"
    elif gain == 0:
        verdict = f"no change, not more than {threshold}"
    else:
        verdict = f"worse by {_amount(-gain, p.metric)}; {better} is better"
    return GateResult(
        "improvement",
        False,
        f"{numbers}: {verdict}",
        facts,
        "the candidate is not better than the baseline by more than the noise; try another "
        "change (or measure the noise with repeated seeds if the threshold looks wrong)",
    )


def _per_class(inputs: DecisionInputs) -> GateResult:
    floor = inputs.protocol.class_floor
    cand, base = dict(inputs.candidate_per_class), dict(inputs.baseline_per_class)
    facts: dict[str, Any] = {"class_floor": floor, "candidate": cand, "baseline": base}
    empty = [
        f"{role} {name}"
        for role, name, aps in (
            ("candidate", inputs.candidate, cand),
            ("baseline", inputs.baseline, base),
        )
        if not aps
    ]
    if empty:
        return GateResult(
            "per_class",
            False,
            f"no per-class AP recorded for {' and '.join(empty)}",
            facts,
            "log per-class AP with run.log_eval(split='val', per_class_ap={...}) for both runs",
        )
    missing = sorted(c for c in base if c not in cand)
    below: list[tuple[float, str]] = []
    lowest: tuple[float, str] | None = None
    for cls in sorted(base):
        if cls not in cand:
            continue
        b, c = base[cls], cand[cls]
        if not at_least(c, floor * b):
            below.append((c / b if b > 0 else 0.0, cls))
        if b > 0 and (lowest is None or c / b < lowest[0]):
            lowest = (c / b, cls)
    below.sort()
    only_cand = sorted(c for c in cand if c not in base)
    facts["failing"] = [
        {"class": cls, "candidate": None, "baseline": base[cls], "floor": floor * base[cls]}
        for cls in missing
    ] + [
        {"class": cls, "candidate": cand[cls], "baseline": base[cls], "floor": floor * base[cls]}
        for _, cls in below
    ]
    facts["only_in_candidate"] = only_cand
    extra = ""
    if only_cand:
        extra = "; only in the candidate (not checked): " + ", ".join(
            f"{cls} {cand[cls]:.4f}" for cls in only_cand
        )
    n = len(base)
    if not missing and not below:
        closest = ""
        if lowest is not None:
            closest = f" (lowest: {lowest[1]} at {lowest[0]:.2f} × its baseline AP)"
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


def _test_set(inputs: DecisionInputs) -> tuple[GateResult, bool, int, str | None]:
    """The gate, whether the test numbers were revealed, reveals used after, split digest."""
    p = inputs.protocol
    used, budget = inputs.test_reveals_used, p.test_budget
    cand_digest, pinned = inputs.candidate_test_digest, inputs.pinned_test_digest
    digest = cand_digest or pinned
    facts: dict[str, Any] = {
        "test_split": cand_digest,
        "pinned_test_split": pinned,
        "baseline_test_split": inputs.baseline_test_digest,
        "test_budget": budget,
        "reveals_used_before": used,
        "revealed": False,
    }
    cand = inputs.candidate_test_value
    if cand is None:
        return (
            GateResult(
                "test_set",
                False,
                f"candidate {inputs.candidate} has no test-split evaluation with {p.metric}",
                facts,
                "evaluate the candidate's weights on the test split: run.log_eval(split='test', metrics=...)",
            ),
            False,
            used,
            digest,
        )
    if cand_digest and pinned and cand_digest != pinned:
        return (
            GateResult(
                "test_set",
                False,
                f"the test evaluation of {inputs.candidate} is on test split "
                f"{short_digest(cand_digest)}, not on its pinned dataset version's test split "
                f"{short_digest(pinned)}; nothing was revealed",
                facts,
                f"evaluate the candidate on the pinned test split {short_digest(pinned)}",
            ),
            False,
            used,
            digest,
        )
    if used >= budget:
        return (
            GateResult(
                "test_set",
                False,
                f"test split {short_digest(digest)} is burned ({used} of {budget} reveals "
                f"used); tag a new test split",
                facts,
                "tag a new dataset version with a fresh test split (trialbook data tag ...) "
                "and evaluate both runs on it",
            ),
            False,
            used,
            digest,
        )
    used += 1
    facts.update(revealed=True, reveals_used_after=used, candidate_test_value=cand)
    reveal = f"reveal {used} of {budget} for test split {short_digest(digest)}"
    if used >= budget:
        reveal += "; the test split is now burned"
    base = inputs.baseline_test_value
    facts["baseline_test_value"] = base
    head = f"test {p.metric}: candidate {inputs.candidate} {cand:.4f}"
    if base is None:
        return (
            GateResult(
                "test_set",
                True,
                f"{head}; baseline {inputs.baseline} has no test result to compare; {reveal}",
                facts,
            ),
            True,
            used,
            digest,
        )
    base_digest = inputs.baseline_test_digest
    if base_digest and digest and base_digest != digest:
        return (
            GateResult(
                "test_set",
                False,
                f"{head}, but the baseline {inputs.baseline} was tested on another test split "
                f"({short_digest(base_digest)}), so the results cannot be compared; {reveal}",
                facts,
                f"evaluate the baseline's weights on test split {short_digest(digest)}",
            ),
            True,
            used,
            digest,
        )
    head += f" vs baseline {inputs.baseline} {base:.4f}"
    shortfall = -_gain(cand, base, p.direction)
    facts["shortfall"] = shortfall
    if exceeds(shortfall, p.noise):
        return (
            GateResult(
                "test_set",
                False,
                f"{head}: worse by {_amount(shortfall, p.metric)}, more than the noise "
                f"threshold {p.noise:.4f}; {reveal}",
                facts,
                "the val improvement does not hold on the test split; look for overfitting to the val split",
            ),
            True,
            used,
            digest,
        )
    if shortfall > 0:
        how = f"worse by {_amount(shortfall, p.metric)}, within the noise threshold {p.noise:.4f}"
    elif shortfall < 0:
        how = f"better by {_amount(-shortfall, p.metric)}"
    else:
        how = "equal"
    return GateResult("test_set", True, f"{head}: {how}; {reveal}", facts), True, used, digest


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
    noise = result.protocol.get("noise")
    noise_text = f"; noise {noise:.4f}" if isinstance(noise, (int, float)) else ""
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
