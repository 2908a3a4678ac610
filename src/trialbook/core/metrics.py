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

Aliases (:func:`resolve_alias`; the alias part is matched ignoring case, a class name is
kept as given)
    ``map50-95``, ``map50`` ... (:data:`ALIASES`); ``ap50-95:CLASS`` and ``ap50:CLASS`` are
    one class's AP (``metrics/AP50-95(B)/CLASS``, ``core.classkeys.ap_key``; ``(m)`` or
    ``(p)`` after the alias part for masks and poses: ``ap50-95(m):CLASS``);
    ``r@pLEVEL`` and ``r@pLEVEL:CLASS`` the recall at precision >= LEVEL
    (``metrics/R@P0.95(B)``, ``core.classkeys.recall_key``), which must be the protocol's
    ``precision_level`` to be its metric (:func:`check_precision_level`); ``latency`` is
    :data:`LATENCY_METRIC`, the p50 of the latest latency measurement on the protocol's
    device (lower is better; a run has no series of it, ``core.ranking.measured_latency``).
"""

from __future__ import annotations

import contextlib
import math
import numbers
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trialbook.core.classkeys import ap_key, level_text, recall_key
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
    "latency": "latency/p50_ms",
}
# The protocol metric "latency": the p50 (``Evaluation.latency_ms``) of the latest latency
# measurement (``Run.log_latency``, ``trialbook yolo latency``) on the protocol's device.
LATENCY_METRIC = ALIASES["latency"]
# A latency protocol's noise threshold (ms) when none is given with the switch to it, and
# an accuracy protocol's when it switches back from latency without one.
LATENCY_NOISE_MS = 0.5
ACCURACY_NOISE = 0.005

# ``ap50-95:pallet``, ``AP50(m):pallet``, ``r@p0.95``, ``r@p0.9:pallet``
_CLASS_ALIAS = re.compile(
    r"^\s*(?P<what>ap50-95|ap50|r@p(?P<level>\d*\.?\d+))(?:\((?P<part>[bmp])\))?\s*(?::(?P<cls>.*))?$",
    re.IGNORECASE,
)
# ``metrics/AP50-95(B)/pallet``, ``metrics/R@P0.95(B)``, ``metrics/R@P0.9(M)/pallet``
_CLASS_KEY = re.compile(
    r"^metrics/(?P<what>AP50-95|AP50|R@P(?P<level>[0-9.]+))\((?P<part>[BMP])\)(?:/(?P<cls>.+))?$"
)


def resolve_alias(key: str) -> str:
    """Return the full metric key for a short alias (module docstring); other keys
    unchanged. ``InvalidInput`` for a class alias with no class, or a level out of (0, 1]."""
    known = ALIASES.get(key.strip().lower())
    if known is not None:
        return known
    match = _CLASS_ALIAS.match(key)
    if match is None:
        return key
    what, part = match["what"].lower(), (match["part"] or "b").upper()
    cls = match["cls"].strip() if match["cls"] is not None else None
    if cls == "":
        raise InvalidInput(f"metric alias {key.strip()!r} names no class after ':' (e.g. {what}:pallet)")
    if what.startswith("r@p"):
        level = float(match["level"])
        if not 0 < level <= 1:
            raise InvalidInput(f"metric alias {key.strip()!r}: a precision level is in (0, 1], e.g. r@p0.95")
        return recall_key(level, cls, part=part)
    if cls is None:
        return key  # "ap50-95" alone is no alias (map50-95 is the overall one)
    return ap_key(cls, iou=what.removeprefix("ap"), part=part)


@dataclass(frozen=True)
class ClassMetric:
    """What a per-class AP or recall-at-precision key names (:func:`parse_class_key`):
    ``kind`` ``"ap"`` or ``"recall"``, ``iou`` (``"50-95"``, ``"50"``; ``None`` for
    recall), ``level`` (recall only), ``part`` (``B``, ``M``, ``P``) and ``cls`` (``None``:
    every class)."""

    kind: str
    iou: str | None
    level: float | None
    part: str
    cls: str | None

    def with_class(self, cls: str) -> str:
        """The same kind of key for class ``cls``."""
        if self.level is not None:
            return recall_key(self.level, cls, part=self.part)
        return ap_key(cls, iou=self.iou or "50-95", part=self.part)


def parse_class_key(key: str) -> ClassMetric | None:
    """The parts of a per-class AP or recall-at-precision key; ``None`` for other keys."""
    match = _CLASS_KEY.match(key)
    if match is None:
        return None
    what = match["what"]
    if what.startswith("R@P"):
        try:
            level = float(match["level"])
        except ValueError:
            return None
        return ClassMetric("recall", None, level, match["part"], match["cls"])
    return ClassMetric("ap", what.removeprefix("AP"), None, match["part"], match["cls"])


def check_precision_level(key: str, level: float) -> None:
    """Refuse a recall-at-precision ``key`` whose level is not ``level`` (the protocol's
    ``precision_level``), naming the key that matches it and the other way out."""
    parsed = parse_class_key(key)
    if parsed is None or parsed.level is None or math.isclose(parsed.level, level):
        return
    right = recall_key(level, parsed.cls, part=parsed.part)
    alias = f"r@p{level_text(level)}" + (f":{parsed.cls}" if parsed.cls is not None else "")
    raise InvalidInput(
        f"metric {key!r} is the recall at precision {level_text(parsed.level)}, but the protocol's "
        f"precision level is {level_text(level)}: use --metric {alias} ({right}), or set "
        f"--precision-level {level_text(parsed.level)} with it"
    )


def is_latency(key: str) -> bool:
    """True for the latency metric (:data:`LATENCY_METRIC`, lower is better)."""
    return key == LATENCY_METRIC


def direction_of(key: str) -> str:
    """Which way is better for ``key``: ``"min"`` (losses), ``"none"`` (lr) or ``"max"``;
    one class's AP or recall is ``"max"`` whatever the class is called."""
    if parse_class_key(key) is not None:
        return "max"
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
