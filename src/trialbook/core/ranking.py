"""Ranking runs on the protocol's one comparison metric.

The rule, shared by every list of runs and by the store's ranked pages
(``QueryStore.runs_page(sort="rank")``, whose SQL orders the same way):

* runs with a value come first, best first: highest first unless ``direction`` is
  ``"min"`` (``"none"`` ranks like ``"max"``);
* runs with no value (``None``) come after every run with one;
* ties, among equal values and among the runs with no value, keep the order of the
  items as given, or the order of ``tiebreak`` (ascending) when one is passed. The store
  breaks ties oldest first, by ``core.runs.run_order`` (``created_at``, then ``id``): pass
  ``tiebreak=run_order`` (or give the runs oldest first) to rank the same way.

The latency metric (``--metric latency``, ``core.metrics.LATENCY_METRIC``) has no series:
a run's value is the p50 of its newest latency measurement on the protocol's device
(:func:`measured_latency`); a run without one has no value, and is told how to measure it
(:func:`latency_fix`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from trialbook.core.entities import LATENCY, Evaluation
from trialbook.core.metrics import finite_number

T = TypeVar("T")


def rank(
    items: Sequence[T],
    value: Callable[[T], Any],
    direction: str,
    *,
    tiebreak: Callable[[T], Any] | None = None,
) -> list[T]:
    """``items`` ranked by ``value`` under ``direction`` (see the module docstring)."""
    ordered = sorted(items, key=tiebreak) if tiebreak is not None else list(items)
    have = [i for i in ordered if value(i) is not None]
    missing = [i for i in ordered if value(i) is None]
    # sorted() is stable: equal values keep the tie order established above
    have.sort(key=value, reverse=direction != "min")
    return have + missing


def measured_latency(evaluations: Sequence[Evaluation], device: str | None) -> Evaluation | None:
    """The evaluation a run's value on the latency metric comes from: its newest latency
    measurement (``Run.log_latency``, ``trialbook yolo latency``; ``evaluations`` oldest
    first) on ``device`` (names compared ignoring case and surrounding spaces) with a finite
    ``latency_ms``; ``None`` without a device or a measurement there (an evaluation's
    per-image speed does not count)."""
    if not device:
        return None
    target = device.strip().casefold()
    for ev in reversed(evaluations):
        if (
            ev.split == LATENCY
            and (ev.device or "").strip().casefold() == target
            and finite_number(ev.latency_ms) is not None
        ):
            return ev
    return None


def latency_fix(runs: Sequence[str], device: str | None) -> str:
    """What to say of ``runs`` that have no latency measured on ``device``, with the fix."""
    if not device:
        return f"no latency for {', '.join(runs)}: the protocol names no device (project set P --device NAME)"
    run = runs[0] if len(runs) == 1 else "RUN"
    return (
        f"no latency measured on {device} for {', '.join(runs)}: measure it on that machine with "
        f"trialbook yolo latency {run} --device {device}"
    )
