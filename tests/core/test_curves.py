"""Curve analytics on hand-made curves (definitions in trialbook.core.curves)."""

from __future__ import annotations

import math

import pytest

from trialbook.core.curves import CurveStats, curve_stats, curve_stats_for
from trialbook.core.entities import Protocol
from trialbook.errors import InvalidInput

NAN = float("nan")
MONOTONE = [(0, 0.1), (1, 0.2), (2, 0.3), (3, 0.4)]


def test_monotone_curve() -> None:
    s = curve_stats(MONOTONE, "max", noise=0.005, convergence_target=0.3)
    assert s.best == 0.4
    assert s.final == 0.4
    assert s.epoch_of_best == 3
    assert s.epochs == 4
    assert s.convergence_epoch == 2  # 0.3 >= 0.3: reaching the target exactly counts
    assert s.epochs_to_95pct == 3  # 95 % of 0.4 is 0.38; only epoch 3 reaches it
    assert s.drops == ()
    assert s.drop_count == 0
    assert s.largest_drop is None
    assert s.max_drawdown == 0.0


def test_drop_exactly_at_noise_is_not_counted() -> None:
    # 0.600 -> 0.595 is 0.005 in decimal (0.0050000000000000044 in binary)
    s = curve_stats([(0, 0.1), (1, 0.5), (2, 0.6), (3, 0.595), (4, 0.62)], "max", 0.005)
    assert s.drop_count == 0
    assert s.drops == ()
    assert s.largest_drop is None
    assert s.max_drawdown == pytest.approx(0.005)


def test_drop_just_above_noise_is_counted() -> None:
    s = curve_stats([(0, 0.1), (1, 0.5), (2, 0.6), (3, 0.594), (4, 0.62)], "max", 0.005)
    assert s.drop_count == 1
    assert s.drops[0][0] == 3
    assert s.drops[0][1] == pytest.approx(0.006)
    assert s.largest_drop == pytest.approx(0.006)
    assert s.max_drawdown == pytest.approx(0.006)


def test_drop_before_half_best_is_not_counted() -> None:
    # best 0.6, half of it 0.3 is first reached at epoch 2; the 0.2 -> 0.1 fall is before it
    s = curve_stats([(0, 0.2), (1, 0.1), (2, 0.4), (3, 0.6)], "max", 0.005)
    assert s.drop_count == 0
    assert s.max_drawdown == 0.0


def test_drops_after_half_best_are_listed_in_order_with_the_largest() -> None:
    curve = [(0, 0.1), (1, 0.35), (2, 0.3), (3, 0.5), (4, 0.45), (5, 0.6)]
    s = curve_stats(curve, "max", 0.01)
    assert [e for e, _ in s.drops] == [2, 4]
    assert [size for _, size in s.drops] == pytest.approx([0.05, 0.05])
    assert s.drop_count == 2
    assert s.largest_drop == pytest.approx(0.05)


def test_max_drawdown_catches_a_slow_slide_made_of_small_steps() -> None:
    curve = [(0, 0.2), (1, 0.6), (2, 0.58), (3, 0.56), (4, 0.54), (5, 0.7)]
    s = curve_stats(curve, "max", noise=0.03)
    assert s.drop_count == 0  # each step is 0.02, under the noise
    assert s.max_drawdown == pytest.approx(0.06)  # 0.60 -> 0.54 from the running best


def test_convergence_never_reached_or_no_target() -> None:
    assert curve_stats(MONOTONE, "max", 0.005, convergence_target=0.9).convergence_epoch is None
    assert curve_stats(MONOTONE, "max", 0.005, convergence_target=None).convergence_epoch is None


def test_min_direction_on_a_loss() -> None:
    loss = [(0, 3.0), (1, 1.0), (2, 0.5), (3, 0.6), (4, 0.45), (5, 0.44)]
    s = curve_stats(loss, "min", noise=0.05, convergence_target=0.5)
    assert s.best == 0.44
    assert s.epoch_of_best == 5
    assert s.final == 0.44
    assert s.convergence_epoch == 2  # 0.5 <= 0.5
    assert s.epochs_to_95pct == 4  # within 5 % above the best: <= 0.462
    # half its best for a loss: <= 1.5 * 0.44 = 0.66, first at epoch 2; 3.0 -> 1.0 is a gain
    assert len(s.drops) == 1
    assert s.drops[0][0] == 3
    assert s.drops[0][1] == pytest.approx(0.1)
    assert s.max_drawdown == pytest.approx(0.1)


def test_min_direction_rise_before_half_best_is_not_a_drop() -> None:
    loss = [(0, 3.0), (1, 3.5), (2, 1.0), (3, 0.9)]
    s = curve_stats(loss, "min", noise=0.05)
    assert s.drop_count == 0  # the 3.0 -> 3.5 rise is before the loss is <= 1.35
    assert s.max_drawdown == 0.0


def test_nans_in_the_middle_are_skipped() -> None:
    s = curve_stats([(0, 0.1), (1, 0.5), (2, NAN), (3, 0.4), (4, 0.6)], "max", 0.005)
    assert s.epochs == 4
    assert s.best == 0.6
    assert s.epoch_of_best == 4
    ((epoch, size),) = s.drops  # one drop, compared across the NaN
    assert epoch == 3 and size == pytest.approx(0.1)
    assert s.max_drawdown == pytest.approx(0.1)


def test_nan_as_last_value_is_not_final() -> None:
    s = curve_stats([(0, 0.1), (1, 0.5), (2, NAN)], "max", 0.005)
    assert s.final == 0.5
    assert s.epochs == 2


def test_single_point() -> None:
    s = curve_stats([(5, 0.3)], "max", 0.005, convergence_target=0.2)
    assert s == CurveStats(
        best=0.3,
        final=0.3,
        epoch_of_best=5,
        epochs=1,
        convergence_epoch=5,
        epochs_to_95pct=5,
        drops=(),
        drop_count=0,
        largest_drop=None,
        max_drawdown=0.0,
    )


def test_ties_in_best_take_the_earliest_epoch() -> None:
    s = curve_stats([(0, 0.5), (1, 0.6), (2, 0.55), (3, 0.6)], "max", 0.005)
    assert s.best == 0.6
    assert s.epoch_of_best == 1
    s = curve_stats([(0, 1.0), (1, 0.4), (2, 0.5), (3, 0.4)], "min", 0.005)
    assert s.epoch_of_best == 1


def test_unsorted_input_gives_the_same_result() -> None:
    curve = [(0, 0.1), (1, 0.5), (2, 0.6), (3, 0.594), (4, 0.62)]
    shuffled = [curve[3], curve[0], curve[4], curve[2], curve[1]]
    assert curve_stats(shuffled, "max", 0.005, 0.55) == curve_stats(curve, "max", 0.005, 0.55)


def test_a_repeated_epoch_keeps_the_last_value_given() -> None:
    s = curve_stats([(0, 0.1), (1, 0.9), (1, 0.3)], "max", 0.005)
    assert s.best == 0.3
    assert s.epochs == 2


@pytest.mark.parametrize("series", [[], [(0, NAN), (1, NAN)]])
def test_empty_series(series: list[tuple[int, float]]) -> None:
    s = curve_stats(series, "max", 0.005, convergence_target=0.5)
    assert s == CurveStats()
    assert s.epochs == 0 and s.drop_count == 0 and s.drops == ()
    assert s.best is None and s.final is None and s.epoch_of_best is None
    assert s.convergence_epoch is None and s.epochs_to_95pct is None
    assert s.largest_drop is None and s.max_drawdown is None


def test_direction_none_is_refused() -> None:
    with pytest.raises(InvalidInput, match="'max' or 'min'"):
        curve_stats(MONOTONE, "none", 0.005)


def test_to_dict_has_the_compare_keys() -> None:
    d = curve_stats([(0, 0.1), (1, 0.5), (2, 0.6), (3, 0.594)], "max", 0.005).to_dict()
    compare_keys = {"best", "final", "epoch_of_best", "convergence_epoch", "epochs_to_95pct"}
    assert compare_keys | {"drops", "max_drawdown", "drop_count", "largest_drop"} <= set(d)
    assert d["drops"][0]["epoch"] == 3
    assert math.isclose(d["drops"][0]["size"], 0.006)


def test_curve_stats_for_uses_the_protocol() -> None:
    protocol = Protocol(direction="min", noise=0.05, convergence_target=0.5)
    loss = [(0, 3.0), (1, 1.0), (2, 0.5), (3, 0.6)]
    assert curve_stats_for(loss, protocol) == curve_stats(loss, "min", 0.05, 0.5)
