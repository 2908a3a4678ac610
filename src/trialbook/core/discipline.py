"""Rules of the discipline that sit between the gates and the store: which numbers a
decision uses, when runs can be compared, test-split reveals, protocol changes and lint.

Values of a run on a metric (:func:`comparison_value`)
    The run's latest val evaluation that has a value of the metric (source ``"val
    evaluation"``, with that evaluation's split digest); otherwise the best of the run's
    per-epoch series (source :data:`SERIES_SOURCE`, split digest unknown); otherwise
    ``None``. A NaN or missing value does not count as a value. Per-class AP comes from
    the latest val evaluation that has any; the latency from the latest evaluation
    measured on the protocol's device, else the latest with a latency
    (:func:`latency_evaluation`); a NaN latency is no latency.

Classes of a decision (:func:`dataset_classes`)
    The per-class gate's class names are the candidate's pinned dataset version's, else
    the class names its per-class evaluation recorded (with a confusion matrix). Its val
    instances per class are the pinned version's counts of the val split, used only when
    the per-class AP was measured on that split (the evaluation's split digest equal to
    the version's val split digest, or unknown); otherwise they are unknown.

Comparability of several runs (:func:`val_comparability`)
    The decision's rule (``core.comparability.check_val_splits``), over any number of
    runs: all val split digests known and equal is comparable; none known is assumed
    comparable, with a warning; some known and some not, or two different known digests,
    is *not comparable*, with the runs on each split named and the way out (evaluate them
    on one split).

Config keys that differ (:func:`differing_config`)
    Every key for which ``core.config.diff`` finds a difference between the first run's
    flat config and any other's, with each run's value (``None`` where a run lacks it).

Test-split reveals (:func:`reveals_by_split`, :func:`reveals_used`)
    A reveal is a stored decision with ``revealed`` true. A test split is its digest: the
    reveals of a known digest count across the whole book, whichever project spent them
    (one split, one budget); decisions on a test split of unknown digest (unpinned runs)
    count within their project. A split is burned once its reveals reach the project's
    ``test_budget``.

Protocol changes (:func:`check_protocol_changes`)
    Values are checked (direction ``max``/``min``, noise >= 0, 0 < class floor <= 1,
    latency budget > 0, test budget >= 1, a naming pattern that compiles). A new metric
    given without a direction takes the direction of its key (``core.metrics.direction_of``);
    a key with no better direction (a learning rate) needs an explicit one. Changing the
    metric once runs of the project have been compared (a decision exists, or a compare
    on the protocol metric was recorded) needs a reason. :func:`metric_changes_after_comparison`
    lists such changes for ``lint`` and reports.

Lint (:func:`lint_run`)
    Per run: ``bad_name`` (the name does not follow the naming pattern; runs imported
    with their old names, ``legacy_name``, are a ``legacy_name`` notice instead),
    ``note_debt`` (``core.notes.note_debt``) and ``unpinned``. Per project:
    ``burned_test_split`` and ``metric_changed_after_comparison``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trialbook.core.comparability import check_val_splits
from trialbook.core.config import diff
from trialbook.core.entities import (
    LATENCY,
    DatasetVersion,
    Decision,
    Evaluation,
    Note,
    Protocol,
    ProtocolChange,
    RunRecord,
)
from trialbook.core.format import ms as format_ms
from trialbook.core.format import short_digest
from trialbook.core.gates import DecisionResult, GateResult
from trialbook.core.metrics import ALIASES, DIRECTIONS, check_key, choose_metric, finite_number, resolve_alias
from trialbook.core.naming import is_valid_name, suggest_fix
from trialbook.core.notes import note_debt
from trialbook.core.text import check_text
from trialbook.errors import InvalidInput

VAL_SOURCE = "val evaluation"
SERIES_SOURCE = "best of the per-epoch series"

BAD_NAME = "bad_name"
LEGACY_NAME = "legacy_name"
NOTE_DEBT = "note_debt"
UNPINNED = "unpinned"
BURNED_TEST_SPLIT = "burned_test_split"
METRIC_CHANGED = "metric_changed_after_comparison"
PROBLEM_KINDS = (BAD_NAME, NOTE_DEBT, UNPINNED, BURNED_TEST_SPLIT, METRIC_CHANGED)


# --------------------------------------------------------------------------- values
def latest_evaluation(
    evaluations: Sequence[Evaluation],
    split: str | None,
    *,
    metric: str | None = None,
    per_class: bool = False,
    latency: bool = False,
) -> Evaluation | None:
    """The newest evaluation on ``split`` (any split for ``None``; ``evaluations`` oldest
    first) that has a value of ``metric`` / per-class AP / a latency, as asked."""
    for ev in reversed(evaluations):
        if split is not None and ev.split != split:
            continue
        if metric is not None and finite_number(ev.metrics.get(metric)) is None:
            continue
        if per_class and not ev.per_class_ap:
            continue
        if latency and finite_number(ev.latency_ms) is None:
            continue
        return ev
    return None


def comparison_value(
    evaluations: Sequence[Evaluation], metric: str, series_best: float | None
) -> tuple[float | None, str, str | None]:
    """``(value, source, val split digest)`` of a run on ``metric`` (module docstring)."""
    ev = latest_evaluation(evaluations, "val", metric=metric)
    if ev is not None:
        return finite_number(ev.metrics[metric]), VAL_SOURCE, ev.split_digest
    return finite_number(series_best), SERIES_SOURCE, None


def per_class_ap(evaluations: Sequence[Evaluation], split: str = "val") -> dict[str, float]:
    """Per-class AP of the newest evaluation on ``split`` that has any (NaN left out)."""
    ev = latest_evaluation(evaluations, split, per_class=True)
    if ev is None:
        return {}
    return {k: v for k, v in ((k, finite_number(v)) for k, v in ev.per_class_ap.items()) if v is not None}


def latency_evaluation(evaluations: Sequence[Evaluation], device: str | None) -> Evaluation | None:
    """The evaluation whose latency a decision uses: on ``device`` (names compared ignoring
    case and surrounding spaces), the newest latency measurement (``Run.log_latency``,
    ``trialbook yolo latency``), else the newest evaluation with a per-image speed; with no
    latency on ``device``, the newest with any latency (the gate then says where it was
    measured)."""
    if device:
        target = device.strip().casefold()
        on_target = [
            ev
            for ev in evaluations
            if finite_number(ev.latency_ms) is not None and (ev.device or "").strip().casefold() == target
        ]
        measured = [ev for ev in on_target if ev.split == LATENCY]
        if measured or on_target:
            return (measured or on_target)[-1]
    return latest_evaluation(evaluations, None, latency=True)


def latency_source(ev: Evaluation) -> str:
    """Where a latency comes from, in words, for the latency gate."""
    if ev.split != LATENCY:
        return f"the {ev.split} evaluation's per-image speed; a dedicated measurement is better"
    iters = finite_number(ev.metrics.get("latency/iters"))
    p95 = finite_number(ev.metrics.get("latency/p95_ms"))
    fmt_key = next((k for k in ev.metrics if k.startswith("latency/format_")), "")
    parts = [f"p50 of {iters:.0f} runs" if iters is not None else "p50"]
    if p95 is not None:
        parts.append(f"p95 {format_ms(p95)}")
    if fmt_key:
        parts.append(fmt_key.removeprefix("latency/format_"))
    return "measured with trialbook yolo latency: " + ", ".join(parts)


def dataset_classes(
    version: DatasetVersion | None, per_class_eval: Evaluation | None
) -> tuple[tuple[str, ...], dict[str, int] | None]:
    """``(class names, val instances per class or None)`` for the per-class gate, from the
    candidate's pinned ``version`` and the evaluation its per-class AP comes from (module
    docstring)."""
    recorded = tuple(per_class_eval.class_names or ()) if per_class_eval is not None else ()
    if version is None:
        return recorded, None
    names = tuple(version.class_names) or recorded
    val = version.splits.get("val") or {}
    measured_on = per_class_eval.split_digest if per_class_eval is not None else None
    if measured_on is not None and measured_on != val.get("digest"):
        return names, None
    counts = {
        str(c["name"]): int(c.get("instances") or 0)
        for c in val.get("classes") or []
        if isinstance(c, dict) and "name" in c
    }
    return names, counts or None


# --------------------------------------------------------------------------- comparing
def val_comparability(val_digests: Mapping[str, str | None]) -> tuple[bool, list[str]]:
    """``(comparable, warnings)`` for runs named by their val split digests."""
    comparable, warning = check_val_splits(val_digests)
    return comparable, [warning] if warning else []


def differing_config(configs: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{key: {run: value}}`` for the config keys that differ between the runs."""
    names = list(configs)
    if len(names) < 2:
        return {}
    first = configs[names[0]]
    keys: set[str] = set()
    for other in names[1:]:
        keys.update(diff(first, configs[other]))
    return {k: {n: configs[n].get(k) for n in names} for k in sorted(keys)}


# --------------------------------------------------------------------------- reveals
def reveals_by_split(decisions: Iterable[Decision], project: str) -> dict[str | None, int]:
    """Reveals used on each test split that ``project``'s decisions revealed
    (see the module docstring for how they are counted)."""
    decisions = list(decisions)
    counts: dict[str | None, int] = {}
    for d in decisions:
        if d.revealed and d.project == project:
            counts.setdefault(d.test_split_digest, 0)
    for digest in counts:
        counts[digest] = reveals_used(decisions, digest, project)
    return counts


def reveals_used(decisions: Iterable[Decision], digest: str | None, project: str) -> int:
    """Reveals already used on test split ``digest`` (``None``: unknown, per project)."""
    return sum(
        1
        for d in decisions
        if d.revealed and d.test_split_digest == digest and (digest is not None or d.project == project)
    )


# --------------------------------------------------------------------------- protocol
def _positive(field: str, value: Any, *, zero_ok: bool = False) -> float:
    number = finite_number(value)
    if number is None or number < 0 or (number == 0 and not zero_ok):
        bound = ">= 0" if zero_ok else "> 0"
        raise InvalidInput(f"protocol {field} must be a number {bound}, got {value!r}")
    return number


def _metric(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("protocol metric must be a metric key, e.g. map50-95")
    return check_key(resolve_alias(value.strip()))


def _direction(field: str, value: Any) -> Any:
    if value not in DIRECTIONS:
        raise InvalidInput(f"protocol direction must be 'max' or 'min', got {value!r}")
    return value


def _noise(field: str, value: Any) -> float:
    return _positive(field, value, zero_ok=True)


def _class_floor(field: str, value: Any) -> float:
    floor = finite_number(value)
    if floor is None or not 0 < floor <= 1:
        raise InvalidInput(f"protocol class_floor must be in (0, 1], got {value!r}")
    return floor


def _latency_budget(field: str, value: Any) -> float:
    return _positive(field, value)


def _device(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("protocol device must be a device name, e.g. jetson-orin-nx")
    return check_text("protocol device", value.strip(), max_len=200)


MAX_TEST_BUDGET = 1000


def _test_budget(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TEST_BUDGET:
        raise InvalidInput(
            f"protocol test_budget must be a whole number from 1 to {MAX_TEST_BUDGET}, got {value!r:.40}"
        )
    return value


def _precision_level(field: str, value: Any) -> float:
    level = finite_number(value)
    if level is None or not 0 < level <= 1:
        raise InvalidInput(f"protocol precision_level must be in (0, 1], e.g. 0.95; got {value!r:.40}")
    return level


def _convergence_target(field: str, value: Any) -> float:
    target = finite_number(value)
    if target is None:
        raise InvalidInput(f"protocol convergence_target must be a number, got {value!r}")
    return target


def _naming_pattern(field: str, value: Any) -> Any:
    try:
        re.compile(value)
    except (re.error, TypeError) as exc:
        raise InvalidInput(f"protocol naming_pattern {value!r} is not a regular expression: {exc}") from None
    return value


# How each settable field is checked: (field, value) -> the value to store, or InvalidInput.
FIELD_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "metric": _metric,
    "direction": _direction,
    "noise": _noise,
    "class_floor": _class_floor,
    "latency_budget_ms": _latency_budget,
    "device": _device,
    "test_budget": _test_budget,
    "convergence_target": _convergence_target,
    "naming_pattern": _naming_pattern,
    "precision_level": _precision_level,
}
SETTABLE_FIELDS = tuple(FIELD_CHECKS)


def check_protocol_field(field: str, value: Any) -> Any:
    """``value`` checked (and normalised) for protocol ``field``; raises ``InvalidInput``."""
    check = FIELD_CHECKS.get(field)
    if check is None:
        raise InvalidInput(f"unknown protocol field {field}; settable: {', '.join(SETTABLE_FIELDS)}")
    return check(field, value)


def _complete_metric_change(
    current: Protocol,
    out: dict[str, Any],
    *,
    project: str,
    compared: bool,
    reason: str | None,
    known_keys: Collection[str] | None,
) -> None:
    """A new metric: take its key's direction when none is given, and ask for a reason
    when runs were already compared on the current one."""
    choice = choose_metric(current, out["metric"])
    if not choice.exploratory:  # the metric it already is
        return
    if known_keys and choice.key not in known_keys and choice.key not in ALIASES.values():
        listed = sorted(set(known_keys))
        shown = ", ".join(listed[:30]) + (f" ... ({len(listed)} keys)" if len(listed) > 30 else "")
        raise InvalidInput(
            f"metric {choice.key!r} is not a key the runs of project {project!r} have logged or been "
            f"evaluated on, nor a known alias ({', '.join(ALIASES)}); known keys: {shown}"
        )
    if "direction" not in out:
        if choice.direction not in DIRECTIONS:
            raise InvalidInput(
                f"metric {choice.key!r} has no better direction (it looks like a learning "
                f"rate or a counter); give one with --direction max or --direction min"
            )
        out["direction"] = choice.direction
    if compared and not (reason or "").strip():
        raise InvalidInput(
            f"runs of project {project!r} have already been compared on {current.metric}; "
            f"changing the comparison metric to {choice.key} needs a reason, which is kept "
            f"in the audit and shown by lint and in reports: trialbook project set "
            f'{project} --metric {choice.key} --reason "..."'
        )


def check_protocol_changes(
    current: Protocol,
    changes: Mapping[str, Any],
    *,
    project: str,
    compared: bool,
    reason: str | None,
    known_keys: Collection[str] | None = None,
) -> dict[str, Any]:
    """Checked and completed protocol ``changes`` (see the module docstring); raises
    ``InvalidInput`` naming the field, or the rule, that refuses them. With
    ``known_keys`` (the keys the project's runs logged or were evaluated on; empty while
    it has none, when any key may be chosen in advance), a new metric must be one of
    them or a known alias."""
    unknown = [k for k in changes if k not in SETTABLE_FIELDS]
    if unknown:
        raise InvalidInput(
            f"unknown protocol field(s) {', '.join(unknown)}; settable: {', '.join(SETTABLE_FIELDS)}"
        )
    out = {field: check_protocol_field(field, value) for field, value in changes.items()}
    if "metric" in out:
        _complete_metric_change(
            current, out, project=project, compared=compared, reason=reason, known_keys=known_keys
        )
    return out


def metric_changes_after_comparison(
    history: Iterable[ProtocolChange], compared_at: float | None
) -> list[ProtocolChange]:
    """Changes of the comparison metric made after runs were first compared."""
    if compared_at is None:
        return []
    return [h for h in history if h.field == "metric" and h.at >= compared_at]


# --------------------------------------------------------------------------- lint
@dataclass(frozen=True)
class Problem:
    """One lint finding. ``run`` is ``None`` for a finding about the project."""

    project: str
    run: str | None
    kind: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"project": self.project, "run": self.run, "kind": self.kind, "detail": self.detail}


def _name_problem(run: RunRecord, pattern: str) -> Problem | None:
    """``bad_name`` for a name that does not follow ``pattern`` (``legacy_name`` for a run
    imported with its old name); ``None`` for a good name."""
    if is_valid_name(run.name, pattern):
        return None
    if run.legacy_name:
        return Problem(
            run.project,
            run.name,
            LEGACY_NAME,
            f"imported with its old name (legacy-named); new runs follow {pattern}",
        )
    return Problem(
        run.project,
        run.name,
        BAD_NAME,
        f"does not follow the naming rule {pattern}; e.g. {suggest_fix(run.name)}",
    )


def lint_run(run: RunRecord, status: str, note: Note | None, pattern: str) -> list[Problem]:
    """The run's findings: bad or legacy name, note debt, unpinned (in that order)."""
    name = _name_problem(run, pattern)
    found: list[Problem] = [name] if name is not None else []
    if note_debt(note, status):
        found.append(
            Problem(
                run.project,
                run.name,
                NOTE_DEBT,
                f"finished without a note: trialbook note {run.name} --hypothesis "
                f"... --change ... --result ... --next ...",
            )
        )
    if not run.pinned:
        claimed = f" (claimed {run.dataset})" if run.dataset else ""
        found.append(
            Problem(
                run.project,
                run.name,
                UNPINNED,
                f"not pinned to a tagged dataset version{claimed}; its numbers "
                f"cannot be tied to the data it saw",
            )
        )
    return found


def burned_splits(counts: Mapping[str | None, int], budget: int, project: str) -> list[Problem]:
    """A ``burned_test_split`` finding for each split whose reveals reached ``budget``."""
    return [
        Problem(
            project,
            None,
            BURNED_TEST_SPLIT,
            f"test split {short_digest(digest)} is burned ({used} of {budget} reveals "
            f"used); tag a new dataset version with a fresh test split",
        )
        for digest, used in counts.items()
        if used >= budget
    ]


def metric_change_problems(changes: Iterable[ProtocolChange], project: str) -> list[Problem]:
    return [
        Problem(
            project,
            None,
            METRIC_CHANGED,
            f"comparison metric changed from {c.old} to {c.new} after runs were "
            f"compared (by {c.who}; reason: {c.reason or 'none given'}); earlier "
            f"comparisons and decisions used {c.old}",
        )
        for c in changes
    ]


# --------------------------------------------------------------------------- decisions
def result_from_record(decision: Decision, candidate: str, baseline: str) -> DecisionResult:
    """A stored decision as a :class:`DecisionResult` (for display; warnings not kept)."""
    gates = tuple(
        GateResult(
            gate=g.get("gate", "?"),
            passed=bool(g.get("passed")),
            detail=str(g.get("detail", "")),
            inputs=dict(g.get("inputs") or {}),
            hint=g.get("hint"),
        )
        for g in decision.gates
    )
    protocol = Protocol.from_dict(decision.protocol)
    used = 0
    comparable = True
    for g in gates:
        if g.gate == "test_set":
            key = "reveals_used_after" if decision.revealed else "reveals_used_before"
            used = int(g.inputs.get(key) or 0)
        if g.gate == "improvement":
            comparable, _ = check_val_splits(
                {
                    "candidate": g.inputs.get("candidate_val_split"),
                    "baseline": g.inputs.get("baseline_val_split"),
                }
            )
    return DecisionResult(
        candidate=candidate,
        baseline=baseline,
        metric=protocol.metric,
        direction=protocol.direction,
        verdict=decision.verdict,
        gates=gates,
        comparable=comparable,
        warnings=(),
        test_reveals_used=used,
        test_budget=protocol.test_budget,
        burned=used >= protocol.test_budget,
        revealed=decision.revealed,
        test_split_digest=decision.test_split_digest,
        protocol=dict(decision.protocol),
    )
