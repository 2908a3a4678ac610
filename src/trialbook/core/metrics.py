"""Metric keys and values: validation and the direction of each key.

Rules (documented in the README):

* a key is a non-empty string of at most 250 characters;
* a value is an int or float (bools are refused); infinities are refused; NaN is stored
  and flagged (``SeriesSummary.nan_count``) and never counts as a best or final value;
* an epoch is an int >= 0;
* logging one (key, epoch) twice keeps the last value.

Reading values back, :func:`finite_number` is the one test of "a number to use": a finite
int or float that is not a bool (NaN, infinities, ``None`` and anything else are not).

Choosing the metric to compare on (:func:`choose_metric`)
    No metric given means the protocol's metric and direction. A given metric is first
    resolved from its alias (``map50`` -> ``metrics/mAP50(B)``); if it is not the
    protocol's metric it is *exploratory* (shown, never used by a decision) and its
    direction is that of its key (:func:`direction_of`). Where a ranking is needed
    (``need_direction``), a key with no better direction (a learning rate, a counter) is
    refused with a hint to use a metric such as the protocol's.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trialbook.core.text import MAX_INT
from trialbook.core.text import problem as text_problem
from trialbook.errors import InvalidInput

if TYPE_CHECKING:
    from trialbook.core.entities import Protocol

MAX_KEY_LENGTH = 250
MAX_EPOCH = MAX_INT
DIRECTIONS = ("max", "min")  # the directions a ranking or a decision can use

_MIN_HINTS = re.compile(r"loss|error|err\b|latency|time", re.IGNORECASE)
_NONE_HINTS = re.compile(r"^system/|(^|/)(lr|learning_rate)(\b|/|$)|lr/pg\d|^lr\b|epoch|^x/lr", re.IGNORECASE)

# Short names for the Ultralytics keys people type most.
ALIASES: dict[str, str] = {
    "map50-95": "metrics/mAP50-95(B)",
    "map50": "metrics/mAP50(B)",
    "precision": "metrics/precision(B)",
    "recall": "metrics/recall(B)",
    "map50-95(m)": "metrics/mAP50-95(M)",
    "map50(m)": "metrics/mAP50(M)",
    "map50-95(p)": "metrics/mAP50-95(P)",
    "map50(p)": "metrics/mAP50(P)",
    "accuracy_top1": "metrics/accuracy_top1",
    "accuracy_top5": "metrics/accuracy_top5",
}


def resolve_alias(key: str) -> str:
    """Return the full metric key for a short alias (``map50-95``); other keys unchanged."""
    return ALIASES.get(key.lower(), key)


def direction_of(key: str) -> str:
    """Which way is better for ``key``: ``"min"`` (losses), ``"none"`` (lr) or ``"max"``."""
    if _NONE_HINTS.search(key):
        return "none"
    if _MIN_HINTS.search(key):
        return "min"
    return "max"


def finite_number(value: Any) -> float | None:
    """``value`` as a float when it is a finite number (not a bool); otherwise ``None``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class MetricChoice:
    """The metric key to compare on, its direction, and whether it is exploratory (not
    the protocol's metric, so never used by a decision)."""

    key: str
    direction: str
    exploratory: bool


def choose_metric(protocol: Protocol, metric: str | None, *, need_direction: bool = False) -> MetricChoice:
    """The metric to compare on (see the module docstring); raises ``InvalidInput`` for a
    key with no better direction when ``need_direction``."""
    key = resolve_alias(metric) if metric else protocol.metric
    exploratory = key != protocol.metric
    direction = direction_of(key) if exploratory else protocol.direction
    if need_direction and direction not in DIRECTIONS:
        raise InvalidInput(
            f"metric {key!r} has no better direction (a learning rate or a counter); "
            f"compare on a metric such as {protocol.metric}"
        )
    return MetricChoice(key, direction, exploratory)


def check_key(key: object, *, epoch: object = None) -> str:
    where = f" at epoch {epoch}" if epoch is not None else ""
    if not isinstance(key, str) or not key.strip():
        raise InvalidInput(f"metric key {key!r}{where} must be a non-empty string")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(
            f"metric key {key[:40]!r}...{where} is {len(key)} characters long; the limit is {MAX_KEY_LENGTH}"
        )
    why = text_problem(key)
    if why is not None:
        raise InvalidInput(f"metric key {key!r}{where} {why}")
    return key


def check_epoch(epoch: object) -> int:
    """An epoch: an integer in ``[0, MAX_EPOCH]`` (what every backend's column holds)."""
    if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral):
        raise InvalidInput(f"epoch {epoch!r} must be an integer >= 0")
    number = int(epoch)
    if number < 0:
        raise InvalidInput(f"epoch {number} is negative; epochs are integers >= 0")
    if number > MAX_EPOCH:
        raise InvalidInput(f"epoch {number} is too large; epochs go up to {MAX_EPOCH}")
    return number


def check_value(key: str, value: object, *, epoch: object = None) -> float:
    """Return ``value`` as a float, or raise naming the key and epoch."""
    where = f" at epoch {epoch}" if epoch is not None else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        # numpy / torch scalars expose __float__ but are not always numbers.Real
        if hasattr(value, "item") and not isinstance(value, (str, bytes)):
            with contextlib.suppress(Exception):  # fall through to the error below
                value = value.item()
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise InvalidInput(
                f"metric {key!r}{where}: value {value!r} ({type(value).__name__}) is not a number"
            )
    try:
        f = float(value)
    except OverflowError:
        raise InvalidInput(f"metric {key!r}{where}: value {value!r:.40} is too large for a float") from None
    if math.isinf(f):
        raise InvalidInput(f"metric {key!r}{where}: value {f} is infinite; infinities are refused")
    return f


def check_metrics(metrics: Mapping[str, object], *, epoch: object = None) -> dict[str, float]:
    """Validate a whole ``{key: value}`` mapping; return clean floats."""
    if not isinstance(metrics, Mapping):
        raise InvalidInput(f"metrics must be a mapping of key to number, got {type(metrics).__name__}")
    out: dict[str, float] = {}
    isinf = math.isinf
    for k, v in metrics.items():
        # fast path for the common case: a short str key and a finite float or int
        if (
            type(k) is str
            and type(v) is float
            and 0 < len(k) <= MAX_KEY_LENGTH
            and not isinf(v)
            and k.isascii()
            and "\x00" not in k
            and not k.isspace()
        ):
            out[k] = float(v)
        else:
            out[check_key(k, epoch=epoch)] = check_value(k, v, epoch=epoch)
    return out


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values``, linear between the closest ranks
    (NumPy's default rule); ``InvalidInput`` for no values."""
    if not values:
        raise InvalidInput("a percentile needs at least one value")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * min(max(q, 0.0), 100.0) / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def is_better(a: float, b: float, direction: str) -> bool:
    """True if ``a`` is strictly better than ``b`` under ``direction``."""
    if direction == "min":
        return a < b
    return a > b


def summarize(points: Iterable[tuple[int, float]], direction: str) -> dict[str, object]:
    """Summary of a series given as ``(epoch, value)`` pairs (any order).

    Best is the best non-NaN value (earliest epoch on ties); final is the value at the
    highest epoch that holds a non-NaN value. ``direction == "none"`` has no best.
    """
    count = nan_count = 0
    best = best_epoch = final = final_epoch = first_epoch = None
    for epoch, value in sorted(points):
        count += 1
        if first_epoch is None:
            first_epoch = epoch
        if value != value:  # NaN
            nan_count += 1
            continue
        final, final_epoch = value, epoch
        if direction != "none" and (best is None or is_better(value, best, direction)):
            best, best_epoch = value, epoch
    return {
        "count": count,
        "nan_count": nan_count,
        "best": best,
        "best_epoch": best_epoch,
        "final": final,
        "final_epoch": final_epoch,
        "first_epoch": first_epoch,
    }
