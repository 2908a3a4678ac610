"""Threshold comparisons and the noise estimate from seed repeats (trialbook.core.noise)."""

from __future__ import annotations

import statistics
from typing import Any

import pytest

from trialbook.core.config import BOOKKEEPING_KEYS
from trialbook.core.noise import at_least, estimate_noise, exceeds, gain, round_up

CFG = {"model": "yolo11n.pt", "imgsz": 640, "lr0": 0.01}


def run(seed: int, value: float | None, **extra: Any) -> tuple[dict[str, Any], float | None]:
    return ({**CFG, "seed": seed, **extra}, value)


def test_exceeds_treats_rounding_error_as_equal() -> None:
    assert 0.515 - 0.510 > 0.005  # what binary floating point says
    assert not exceeds(0.515 - 0.510, 0.005)
    assert exceeds(0.0051, 0.005)
    assert not exceeds(0.004, 0.005)


def test_at_least_treats_rounding_error_as_equal() -> None:
    assert at_least(0.9 * 0.6, 0.54)
    assert at_least(0.55, 0.54)
    assert not at_least(0.539, 0.54)


def test_round_up() -> None:
    assert round_up(0.0041) == 0.005
    assert round_up(0.004) == 0.004
    assert round_up(0.002 * 2) == 0.004


def test_estimate_from_three_seeds() -> None:
    runs = [run(0, 0.510), run(1, 0.514), run(2, 0.506)]
    est = estimate_noise(runs)
    assert est.enough is True
    assert est.runs_used == 3
    assert est.seeds == (0, 1, 2)
    assert est.values == (0.510, 0.514, 0.506)
    assert est.std == pytest.approx(statistics.stdev([0.510, 0.514, 0.506]))  # 0.004
    assert est.value_range == pytest.approx(0.008)
    assert est.mean == pytest.approx(0.510)
    assert est.suggested_noise == 0.008  # 2 × 0.004
    assert "suggested noise threshold 0.008" in est.message
    assert est.config == CFG


def test_suggestion_is_rounded_up() -> None:
    est = estimate_noise([run(0, 0.5100), run(1, 0.5131), run(2, 0.5080)])
    assert est.std == pytest.approx(0.00257, abs=1e-5)
    assert est.suggested_noise == 0.006  # 2 × 0.00257 = 0.00514 -> 0.006


def test_identical_results_suggest_the_smallest_step() -> None:
    assert estimate_noise([run(0, 0.5), run(1, 0.5), run(2, 0.5)]).suggested_noise == 0.001


def test_fewer_than_three_seeds_is_not_enough() -> None:
    est = estimate_noise([run(0, 0.51), run(1, 0.52)])
    assert est.enough is False
    assert est.suggested_noise is None
    assert est.std is None
    assert "found at most 2" in est.message and "3 are needed" in est.message


def test_no_runs() -> None:
    est = estimate_noise([])
    assert est.enough is False and est.runs_used == 0


def test_repeated_seed_counts_once() -> None:
    est = estimate_noise([run(0, 0.51), run(0, 0.60), run(1, 0.52)])
    assert est.enough is False
    assert est.runs_used == 2


def test_runs_without_value_are_left_out() -> None:
    est = estimate_noise([run(0, 0.51), run(1, None), run(2, float("nan")), run(3, 0.52)])
    assert est.enough is False


def test_bookkeeping_keys_are_ignored() -> None:
    assert {"name", "project", "save_dir", "exist_ok", "resume", "device", "workers"} <= BOOKKEEPING_KEYS
    assert not {"seed", "lr0", "imgsz", "epochs", "time", "batch"} & BOOKKEEPING_KEYS  # they change training
    runs = [
        run(0, 0.51, name="v2_seed0", save_dir="runs/a", exist_ok=True),
        run(1, 0.52, name="v2_seed1", save_dir="runs/b", project="p", resume=False),
        run(2, 0.53, name="v2_seed2", save_dir="runs/c", device="cuda:1", workers=2),
    ]
    assert estimate_noise(runs).enough is True


def test_other_config_differences_split_the_groups() -> None:
    runs = [run(0, 0.51), run(1, 0.52), run(2, 0.53, lr0=0.001)]
    assert estimate_noise(runs).enough is False


def test_largest_group_wins() -> None:
    small = [run(s, 0.40 + s / 100, imgsz=320) for s in range(3)]
    large = [run(s, 0.50 + s / 1000) for s in range(4)]
    est = estimate_noise(small + large)
    assert est.runs_used == 4
    assert est.config["imgsz"] == 640


def test_nested_configs_and_nested_seed() -> None:
    runs = [({"train": {"seed": s, "lr0": 0.01}}, 0.5 + s / 1000) for s in range(3)]
    est = estimate_noise(runs)
    assert est.enough is True
    assert est.config == {"train.lr0": 0.01}


def test_to_dict() -> None:
    d = estimate_noise([run(0, 0.510), run(1, 0.514), run(2, 0.506)]).to_dict()
    assert d["enough"] is True
    assert d["suggested_noise"] == 0.008
    assert d["seeds"] == [0, 1, 2]
    assert set(d) >= {"std", "range", "mean", "values", "message", "runs_used"}


# --------------------------------------------------------------------------- gain
def test_gain_is_how_much_better_under_the_direction() -> None:
    assert gain(0.59, 0.51, "max") == pytest.approx(0.08)
    assert gain(0.51, 0.59, "max") == pytest.approx(-0.08)
    assert gain(1.10, 1.20, "min") == pytest.approx(0.10)
    assert gain(1.30, 1.20, "min") == pytest.approx(-0.10)
    assert gain(0.5, 0.5, "max") == 0.0 == gain(0.5, 0.5, "min")
    # the difference a threshold is compared with, rounding error and all
    assert not exceeds(gain(0.515, 0.510, "max"), 0.005)
    assert not exceeds(gain(0.510, 0.515, "min"), 0.005)


def test_runs_without_a_finite_value_are_left_out_of_the_estimate() -> None:
    runs = [run(1, 0.5), run(2, 0.52), run(3, float("inf")), run(4, None), run(5, True)]
    assert estimate_noise(runs).enough is False
    assert estimate_noise([*runs, run(6, 0.51)]).runs_used == 3
