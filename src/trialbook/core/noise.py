"""The noise threshold: comparing a difference with it, and estimating it from seed repeats.

Comparisons against a threshold
-------------------------------
Differences are computed in binary floating point, where ``0.515 - 0.510`` is
``0.0050000000000000044``. A rule written "greater than the noise" must not pass on that
rounding error, so :func:`exceeds` and :func:`at_least` treat two numbers within
``REL_TOL`` (relative) or ``ABS_TOL`` (absolute) of each other as equal:

* ``exceeds(delta, threshold)`` is true when ``delta > threshold`` and the two are not
  equal in that sense (a difference exactly at the noise does not exceed it);
* ``at_least(value, bound)`` is true when ``value >= bound`` or the two are equal in that
  sense.

How much better one value is than another, :func:`gain`, is ``candidate - baseline`` for
a ``"max"`` metric and ``baseline - candidate`` for a ``"min"`` one (negative when the
candidate is worse); it is the difference compared with the noise.

Estimating the noise
--------------------
:func:`estimate_noise` takes ``(config, metric_value)`` pairs, one per run, and looks for
runs that repeat one configuration with different seeds:

1. each config is flattened (``core.config.flatten``); the key ``seed`` and the keys that
   say where and how a run is kept without changing what is trained,
   ``core.config.BOOKKEEPING_KEYS`` (``name``, ``project``, ``save_dir``, ``exist_ok``,
   ``resume``, ``device``, ``workers``, ``cache``, ``verbose``, ``plots``, ...), are set
   aside; a key is matched on its last dotted part, so ``train.seed`` counts as ``seed``.
   Every other key, whatever its value, must be equal for two runs to be repeats;
2. runs whose remaining configs are identical form a group; runs with no metric value
   (``None`` or NaN) are left out;
3. within a group only the first run of each seed value is kept (a run with no ``seed``
   key has seed ``None``, one seed value like any other);
4. the group with the most distinct seeds is used (the first one met on ties); it needs at
   least :data:`MIN_REPEATS` (3) runs;
5. ``std`` is the sample standard deviation (n - 1) of its values and ``value_range`` is
   max - min; the suggested threshold is ``2 * std`` rounded **up** to the next multiple
   of 0.001, and at least 0.001 (identical results from different seeds usually mean the
   seed was not applied, and a zero threshold would let any change count as a win).

With fewer than three such runs the estimate has ``enough=False``, no suggestion and a
message saying how many runs were found and what to run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from trialbook.core.config import flatten, is_bookkeeping
from trialbook.core.metrics import finite_number

REL_TOL = 1e-9
ABS_TOL = 1e-12

SEED_KEY = "seed"
MIN_REPEATS = 3
ROUND_TO = 0.001


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def exceeds(delta: float, threshold: float) -> bool:
    """True when ``delta`` is greater than ``threshold`` by more than rounding error."""
    return delta > threshold and not _same(delta, threshold)


def at_least(value: float, bound: float) -> bool:
    """True when ``value >= bound``, counting values within rounding error as equal."""
    return value >= bound or _same(value, bound)


def gain(candidate: float, baseline: float, direction: str) -> float:
    """How much better ``candidate`` is than ``baseline`` under ``direction`` (negative
    when worse): ``baseline - candidate`` for ``"min"``, ``candidate - baseline`` otherwise."""
    return baseline - candidate if direction == "min" else candidate - baseline


def last_part(key: str) -> str:
    """The last dotted part of a flat config key: ``"hyp.lr0"`` -> ``"lr0"``."""
    return key.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class NoiseEstimate:
    """The result of :func:`estimate_noise`."""

    enough: bool
    message: str
    runs_used: int = 0
    seeds: tuple[Any, ...] = ()
    values: tuple[float, ...] = ()
    mean: float | None = None
    std: float | None = None
    value_range: float | None = None
    suggested_noise: float | None = None
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "enough": self.enough,
            "message": self.message,
            "runs_used": self.runs_used,
            "seeds": list(self.seeds),
            "values": list(self.values),
            "mean": self.mean,
            "std": self.std,
            "range": self.value_range,
            "suggested_noise": self.suggested_noise,
            "config": dict(self.config),
        }


def round_up(value: float, step: float = ROUND_TO) -> float:
    """``value`` rounded up to a multiple of ``step`` (rounding error is not rounded up)."""
    steps = math.ceil(round(value / step, 6))
    decimals = max(0, -math.floor(math.log10(step)))
    return round(steps * step, decimals)


def _group_key(config: Mapping[str, Any]) -> str:
    import json  # here, not with ``import trialbook`` (which imports this module)

    return json.dumps(config, sort_keys=True, default=str)


def split_seed(config: Mapping[str, Any] | None) -> tuple[Any, dict[str, Any]]:
    """``(seed, the rest)`` of a config, flattened, without the bookkeeping keys (rule 1)."""
    seed = None
    rest: dict[str, Any] = {}
    for key, value in flatten(config).items():
        part = last_part(key)
        if part == SEED_KEY:
            seed = value
        elif not is_bookkeeping(key):
            rest[key] = value
    return seed, rest


def _seed_groups(runs: Iterable[tuple[Mapping[str, Any] | None, float | None]]) -> list[dict[str, Any]]:
    """Runs with a value grouped by config, first run of each seed kept (rules 2 and 3)."""
    import json

    groups: dict[str, dict[str, Any]] = {}
    for config, raw in runs:
        value = finite_number(raw)
        if value is None:
            continue
        seed, rest = split_seed(config)
        group = groups.setdefault(_group_key(rest), {"config": rest, "by_seed": {}})
        group["by_seed"].setdefault(json.dumps(seed, default=str), (seed, value))
    return list(groups.values())


def estimate_noise(runs: Iterable[tuple[Mapping[str, Any] | None, float | None]]) -> NoiseEstimate:
    """Estimate the noise threshold from runs repeating one config with different seeds."""
    import statistics  # here, not with ``import trialbook`` (which it would slow down)

    groups = _seed_groups(runs)
    # the most distinct seeds, the first met on ties (rule 4)
    best = max(groups, key=lambda g: len(g["by_seed"]), default=None)
    found = len(best["by_seed"]) if best is not None else 0
    if best is None or found < MIN_REPEATS:
        return NoiseEstimate(
            enough=False,
            runs_used=found,
            message=(
                f"not enough repeats to estimate the noise: found at most {found} run(s) of "
                f"one config with distinct seeds, {MIN_REPEATS} are needed; train one config "
                f"again with other seeds (seed=1, seed=2, ...)"
            ),
        )

    seeds = tuple(s for s, _ in best["by_seed"].values())
    values = tuple(v for _, v in best["by_seed"].values())
    mean = statistics.fmean(values)
    std = statistics.stdev(values)
    spread = max(values) - min(values)
    suggested = max(ROUND_TO, round_up(2 * std))
    return NoiseEstimate(
        enough=True,
        runs_used=len(values),
        seeds=seeds,
        values=values,
        mean=mean,
        std=std,
        value_range=spread,
        suggested_noise=suggested,
        config=dict(best["config"]),
        message=(
            f"{len(values)} runs of one config with seeds "
            f"{', '.join(str(s) for s in seeds)}: mean {mean:.4f}, std {std:.4f}, "
            f"range {spread:.4f}; suggested noise threshold {suggested:.3f} "
            f"(2 × std, rounded up to {ROUND_TO})"
        ),
    )
