"""Curve analytics on the comparison metric: best, speed of convergence, stability.

Input is one series as ``(epoch, value)`` pairs in any order, the direction of the metric
(``"max"`` or ``"min"``), the protocol's noise threshold and its convergence target (or
``None``). Definitions:

* **Cleaning.** Pairs are ordered by epoch. If an epoch appears twice the later pair in
  the input wins (as when one ``(key, epoch)`` is logged twice). NaN (and infinite) values
  are skipped: they are never a best, a final value or a step of a drop; the points on
  either side of a NaN are compared with each other.
* ``epochs``: the number of points left (non-NaN epochs).
* ``best``, ``epoch_of_best``: the best value under the direction, the earliest epoch on
  ties. ``final``: the value at the highest epoch. (``core.metrics.summarize``.)
* **Closeness to the best.** "Within a fraction *f* of the best" means
  ``value >= best - f * |best|`` for ``"max"`` and ``value <= best + f * |best|`` for
  ``"min"``. For a positive ``"max"`` metric that is ``value >= (1 - f) * best``; for a
  positive loss it is ``value <= (1 + f) * best``.
* ``convergence_epoch``: the first epoch whose value reaches the convergence target,
  ``value >= target`` for ``"max"`` and ``value <= target`` for ``"min"``; ``None`` when
  no target is set or it is never reached.
* ``epochs_to_95pct``: the first epoch within 5 % of the best (f = 0.05): for mAP, the
  first epoch reaching 95 % of the run's own best; for a loss, the first epoch at most 5 %
  above its lowest value. Like ``convergence_epoch`` it is an epoch as logged, not a count.
* **Half its best** is the same closeness with f = 0.5 (``value >= best / 2`` for a
  positive ``"max"`` metric, ``value <= 1.5 * best`` for a positive loss). The stability
  figures below look only at the curve from the first epoch that is within half its best,
  ``h``, so that the noisy start of training does not count as instability.
* ``drops``: every step between consecutive points, both at epoch ``h`` or later, that
  worsens the value by more than the noise (``core.noise.exceeds``: a worsening exactly
  equal to the noise is not a drop). Each drop is ``(epoch, size)``: the epoch of the
  worse point and the size of the worsening, always positive.
  ``drop_count`` is their number, ``largest_drop`` the largest size (``None`` if none).
* ``max_drawdown``: the largest worsening of a point at epoch ``h`` or later from the
  best value seen up to that point (peak to trough); ``0.0`` if the curve never worsens,
  whatever the noise.

An empty series (or one with only NaN) gives ``epochs == 0``, ``drop_count == 0``, no
drops and ``None`` for every other field.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from trialbook.core.entities import Protocol
from trialbook.core.metrics import finite_number, summarize
from trialbook.core.noise import at_least, exceeds, gain
from trialbook.errors import InvalidInput

DIRECTIONS = ("max", "min")
NEAR_BEST_FRACTION = 0.05
HALF_BEST_FRACTION = 0.5


@dataclass(frozen=True)
class CurveStats:
    """Curve analytics of one series (see the module docstring for the definitions)."""

    best: float | None = None
    final: float | None = None
    epoch_of_best: int | None = None
    epochs: int = 0
    convergence_epoch: int | None = None
    epochs_to_95pct: int | None = None
    drops: tuple[tuple[int, float], ...] = ()
    drop_count: int = 0
    largest_drop: float | None = None
    max_drawdown: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "final": self.final,
            "epoch_of_best": self.epoch_of_best,
            "epochs": self.epochs,
            "convergence_epoch": self.convergence_epoch,
            "epochs_to_95pct": self.epochs_to_95pct,
            "drops": [{"epoch": e, "size": s} for e, s in self.drops],
            "drop_count": self.drop_count,
            "largest_drop": self.largest_drop,
            "max_drawdown": self.max_drawdown,
        }


def clean_series(points: Iterable[tuple[int, float]]) -> list[tuple[int, float]]:
    """Points ordered by epoch, one per epoch (the last given wins), NaN/inf left out."""
    by_epoch: dict[int, float | None] = {}
    for epoch, value in points:
        by_epoch[int(epoch)] = finite_number(float(value))
    return [(e, v) for e, v in sorted(by_epoch.items()) if v is not None]


def reaches(value: float, target: float, direction: str) -> bool:
    """True when ``value`` is at ``target`` or better under ``direction``."""
    return at_least(target, value) if direction == "min" else at_least(value, target)


def near_best_bound(best: float, fraction: float, direction: str) -> float:
    """The value a point must reach to be within ``fraction`` of ``best``."""
    if direction == "min":
        return best + fraction * abs(best)
    return best - fraction * abs(best)


def worsening(before: float, after: float, direction: str) -> float:
    """How much worse ``after`` is than ``before`` (negative when it is better): how much
    better ``before`` is, ``core.noise.gain``."""
    return gain(before, after, direction)


def _first_reaching(series: list[tuple[int, float]], target: float, direction: str) -> tuple[int, int] | None:
    """``(index, epoch)`` of the first point reaching ``target``, or ``None``."""
    for i, (epoch, value) in enumerate(series):
        if reaches(value, target, direction):
            return i, epoch
    return None


def curve_stats(
    points: Iterable[tuple[int, float]],
    direction: str = "max",
    noise: float = 0.005,
    convergence_target: float | None = None,
) -> CurveStats:
    """Curve analytics of one series; see the module docstring for the definitions."""
    if direction not in DIRECTIONS:
        raise InvalidInput(f"curve analytics need a metric direction of 'max' or 'min', got {direction!r}")
    series = clean_series(points)
    if not series:
        return CurveStats()

    summary = summarize(series, direction)
    best, best_epoch, final = summary["best"], summary["best_epoch"], summary["final"]
    assert isinstance(best, float) and isinstance(best_epoch, int) and isinstance(final, float)

    convergence_epoch = None
    if convergence_target is not None:
        hit = _first_reaching(series, convergence_target, direction)
        convergence_epoch = hit[1] if hit else None

    near = _first_reaching(series, near_best_bound(best, NEAR_BEST_FRACTION, direction), direction)
    half = _first_reaching(series, near_best_bound(best, HALF_BEST_FRACTION, direction), direction)
    # The best point always reaches both bounds, so neither search can come back empty.
    assert near is not None and half is not None
    start = half[0]

    drops: list[tuple[int, float]] = []
    tail = series[start:]
    for (_, before), (epoch, after) in pairwise(tail):
        size = worsening(before, after, direction)
        if exceeds(size, noise):
            drops.append((epoch, size))

    pick = min if direction == "min" else max
    running_best = tail[0][1]
    max_drawdown = 0.0
    for _, value in tail:
        running_best = pick(running_best, value)
        max_drawdown = max(max_drawdown, worsening(running_best, value, direction))

    return CurveStats(
        best=best,
        final=final,
        epoch_of_best=best_epoch,
        epochs=len(series),
        convergence_epoch=convergence_epoch,
        epochs_to_95pct=near[1],
        drops=tuple(drops),
        drop_count=len(drops),
        largest_drop=max((s for _, s in drops), default=None),
        max_drawdown=max_drawdown,
    )


def curve_stats_for(points: Iterable[tuple[int, float]], protocol: Protocol) -> CurveStats:
    """:func:`curve_stats` with the direction, noise and target of ``protocol``."""
    return curve_stats(
        points,
        direction=protocol.direction,
        noise=protocol.noise,
        convergence_target=protocol.convergence_target,
    )


_BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int = 24) -> str:
    """A unicode sparkline of ``values`` (NaN skipped), resampled to at most ``width``
    cells, the last value always shown."""
    vals = [v for v in values if v == v]
    if not vals:
        return ""
    if len(vals) > width:
        step = len(vals) / width
        vals = [vals[int(i * step)] for i in range(width - 1)] + [vals[-1]]
    lo, hi = min(vals), max(vals)
    span = (hi - lo) or 1.0
    return "".join(_BLOCKS[int((v - lo) / span * (len(_BLOCKS) - 1))] for v in vals)
