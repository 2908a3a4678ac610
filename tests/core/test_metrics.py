"""Metric keys and values, directions, aliases and the choice of metric
(trialbook.core.metrics)."""

from __future__ import annotations

import math
from dataclasses import FrozenInstanceError
from typing import Any

import pytest

from trialbook.core import discipline
from trialbook.core.entities import Protocol
from trialbook.core.metrics import (
    ALIASES,
    MAX_KEY_LENGTH,
    MetricChoice,
    check_epoch,
    check_key,
    check_metrics,
    check_value,
    choose_metric,
    direction_of,
    finite_number,
    is_better,
    resolve_alias,
    summarize,
)
from trialbook.errors import InvalidInput

MAP = "metrics/mAP50-95(B)"


class _Scalar:
    """Like a numpy / torch scalar: not a numbers.Real, but has ``item()``."""

    def __init__(self, value: object) -> None:
        self.value = value

    def item(self) -> object:
        return self.value


# --------------------------------------------------------------------------- finite_number
@pytest.mark.parametrize(
    ("value", "number"),
    [(0, 0.0), (3, 3.0), (-2.5, -2.5), (1e-300, 1e-300), (0.0, 0.0)],
)
def test_finite_number_of_numbers(value: float, number: float) -> None:
    out = finite_number(value)
    assert out == number and type(out) is float


@pytest.mark.parametrize(
    "value", [None, True, False, math.nan, math.inf, -math.inf, "1.0", [1.0], _Scalar(1.0), 10**400]
)
def test_finite_number_of_anything_else_is_none(value: Any) -> None:
    assert finite_number(value) is None


def test_finite_number_is_still_importable_from_discipline() -> None:
    assert discipline.finite_number is finite_number


# --------------------------------------------------------------------------- aliases
def test_aliases_resolve_case_insensitively() -> None:
    assert resolve_alias("map50-95") == MAP
    assert resolve_alias("MAP50") == "metrics/mAP50(B)"
    assert resolve_alias("map50-95(m)") == "metrics/mAP50-95(M)"
    assert resolve_alias("accuracy_top1") == "metrics/accuracy_top1"


def test_other_keys_are_unchanged() -> None:
    assert resolve_alias(MAP) == MAP
    assert resolve_alias("val/box_loss") == "val/box_loss"
    assert resolve_alias("my metric") == "my metric"


def test_every_alias_is_a_full_key_that_resolves_to_itself() -> None:
    for alias, key in ALIASES.items():
        assert alias == alias.lower()
        assert resolve_alias(key) == key


# --------------------------------------------------------------------------- direction_of
@pytest.mark.parametrize(
    ("key", "direction"),
    [
        (MAP, "max"),
        ("metrics/precision(B)", "max"),
        ("metrics/accuracy_top1", "max"),
        ("train/box_loss", "min"),
        ("val/dfl_loss", "min"),
        ("error", "min"),
        ("latency_ms", "min"),
        ("fit_time", "min"),
        ("lr/pg0", "none"),
        ("lr/pg2", "none"),
        ("x/lr0", "none"),
        ("lr", "none"),
        ("learning_rate", "none"),
        ("train/learning_rate", "none"),
        ("epoch", "none"),
    ],
)
def test_direction_of(key: str, direction: str) -> None:
    assert direction_of(key) == direction


# --------------------------------------------------------------------------- choose_metric
def test_no_metric_is_the_protocols() -> None:
    p = Protocol(metric="val/box_loss", direction="min")
    assert choose_metric(p, None) == MetricChoice("val/box_loss", "min", False)
    assert choose_metric(p, "") == MetricChoice("val/box_loss", "min", False)


def test_the_protocol_metric_by_alias_is_not_exploratory() -> None:
    p = Protocol()
    assert choose_metric(p, "map50-95") == MetricChoice(MAP, "max", False)
    assert choose_metric(p, MAP) == MetricChoice(MAP, "max", False)


def test_the_protocol_metric_keeps_the_protocols_direction() -> None:
    # a protocol may say "max" for a key whose name looks like a loss
    p = Protocol(metric="val/score_loss", direction="max")
    assert choose_metric(p, "val/score_loss", need_direction=True).direction == "max"


def test_another_metric_is_exploratory_with_its_own_direction() -> None:
    p = Protocol()
    assert choose_metric(p, "map50") == MetricChoice("metrics/mAP50(B)", "max", True)
    assert choose_metric(p, "val/box_loss") == MetricChoice("val/box_loss", "min", True)


def test_a_metric_without_direction_is_allowed_unless_one_is_needed() -> None:
    p = Protocol()
    assert choose_metric(p, "lr/pg0") == MetricChoice("lr/pg0", "none", True)
    with pytest.raises(InvalidInput) as err:
        choose_metric(p, "lr/pg0", need_direction=True)
    assert str(err.value) == (
        "metric 'lr/pg0' has no better direction (a learning rate or a counter); "
        f"compare on a metric such as {MAP}"
    )


def test_metric_choice_is_frozen() -> None:
    with pytest.raises(FrozenInstanceError):
        choose_metric(Protocol(), None).key = "x"  # type: ignore[misc]


# --------------------------------------------------------------------------- checks
def test_check_key() -> None:
    assert check_key("a") == "a"
    assert check_key("k" * MAX_KEY_LENGTH) == "k" * MAX_KEY_LENGTH
    for bad in ("", "   ", None, 3):
        with pytest.raises(InvalidInput, match="must be a non-empty string"):
            check_key(bad)
    with pytest.raises(InvalidInput, match=f"{MAX_KEY_LENGTH + 1} characters long; the limit is 250"):
        check_key("k" * (MAX_KEY_LENGTH + 1))
    with pytest.raises(InvalidInput, match="at epoch 7"):
        check_key("", epoch=7)


def test_check_epoch() -> None:
    assert check_epoch(0) == 0
    assert check_epoch(12) == 12
    for bad in (1.0, "1", True, None):
        with pytest.raises(InvalidInput, match="must be an integer >= 0"):
            check_epoch(bad)
    with pytest.raises(InvalidInput, match="negative"):
        check_epoch(-1)


def test_check_value() -> None:
    assert check_value("k", 1) == 1.0 and type(check_value("k", 1)) is float
    assert check_value("k", 0.25) == 0.25
    assert math.isnan(check_value("k", math.nan))  # NaN is stored (and flagged)
    assert check_value("k", _Scalar(0.5)) == 0.5


@pytest.mark.parametrize("value", [True, "0.5", None, [1.0], _Scalar("x")])
def test_check_value_refuses_what_is_not_a_number(value: Any) -> None:
    with pytest.raises(InvalidInput, match=r"metric 'k' at epoch 3: value .* is not a number"):
        check_value("k", value, epoch=3)


@pytest.mark.parametrize("value", [math.inf, -math.inf])
def test_check_value_refuses_infinities(value: float) -> None:
    with pytest.raises(InvalidInput, match="infinities are refused"):
        check_value("k", value)


def test_check_metrics() -> None:
    assert check_metrics({"a": 1, "b": 0.5, "c": _Scalar(2)}) == {"a": 1.0, "b": 0.5, "c": 2.0}
    with pytest.raises(InvalidInput, match="must be a mapping"):
        check_metrics([("a", 1)])  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="infinite"):
        check_metrics({"a": math.inf})
    with pytest.raises(InvalidInput, match="non-empty"):
        check_metrics({" ": 1.0})


# --------------------------------------------------------------------------- summaries
def test_is_better() -> None:
    assert is_better(0.6, 0.5, "max") and not is_better(0.5, 0.6, "max")
    assert is_better(0.4, 0.5, "min") and not is_better(0.6, 0.5, "min")
    assert not is_better(0.5, 0.5, "max") and not is_better(0.5, 0.5, "min")


def test_summarize() -> None:
    points = [(2, 0.5), (0, 0.1), (1, 0.5), (3, math.nan), (4, 0.3)]
    assert summarize(points, "max") == {
        "count": 5,
        "nan_count": 1,
        "best": 0.5,
        "best_epoch": 1,  # earliest on ties
        "final": 0.3,
        "final_epoch": 4,
        "first_epoch": 0,
    }
    assert summarize(points, "min")["best"] == 0.1
    assert summarize(points, "none")["best"] is None
    assert summarize([], "max")["count"] == 0
