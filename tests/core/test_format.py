"""Numbers, times, sizes and digests as text (trialbook.core.format)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from trialbook.core import format as fmt
from trialbook.core import gates


@pytest.mark.parametrize(
    ("value", "digits", "text"),
    [
        (None, 4, "-"),
        (float("nan"), 4, "-"),
        (float("inf"), 4, "-"),
        (float("-inf"), 2, "-"),
        (True, 4, "yes"),
        (False, 4, "no"),
        (0, 4, "0"),
        (-12, 4, "-12"),
        (0.5, 4, "0.5000"),
        (0.51234, 2, "0.51"),
        (-0.00004, 4, "-0.0000"),
        (2.0, 0, "2"),
        ("v4_x", 4, "v4_x"),
        ([1, 2], 4, "[1, 2]"),
    ],
)
def test_num(value: bool | float | int | list[Any] | str | None, digits: int, text: str) -> None:
    assert fmt.num(value, digits) == text


def test_num_default_is_four_decimals() -> None:
    assert fmt.num(0.123456) == "0.1235"


@pytest.mark.parametrize(
    ("value", "digits", "text"),
    [
        (0.012, 4, "+0.0120"),
        (-0.003, 4, "-0.0030"),
        (0.0, 4, "+0.0000"),
        (3, 1, "+3.0"),
        (0.126, 2, "+0.13"),
        (None, 4, ""),
        (float("nan"), 4, ""),
        (float("inf"), 4, ""),
        (True, 4, ""),
        ("0.1", 4, ""),
    ],
)
def test_delta(value: bool | float | int | str | None, digits: int, text: str) -> None:
    assert fmt.delta(value, digits) == text


def test_when_is_local_time_to_the_minute() -> None:
    ts = 1_700_000_000.7
    assert fmt.when(ts) == time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))
    assert fmt.when(int(ts)) == fmt.when(ts)
    assert len(fmt.when(0)) == len("1970-01-01 00:00")


@pytest.mark.parametrize("ts", [None, "2024-01-01", True, float("nan"), float("inf"), 1e300])
def test_when_without_a_time(ts: bool | float | str | None) -> None:
    assert fmt.when(ts) == "-"


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (512, "512 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (int(3.2 * 1024**2), "3.2 MiB"),
        (1024**3, "1.0 GiB"),
        (5 * 1024**4, "5120.0 GiB"),
        (1024 * 1024 - 1, "1.0 MiB"),  # 1023.999 KiB would read "1024.0 KiB"
        (2048.0, "2.0 KiB"),
    ],
)
def test_size(n: float, text: str) -> None:
    assert fmt.size(n) == text


@pytest.mark.parametrize("n", [None, "12", True, float("nan")])
def test_size_without_a_number(n: bool | float | str | None) -> None:
    assert fmt.size(n) == "-"


def test_short_digest() -> None:
    assert fmt.short_digest("blake3:0123456789abcdef0123") == "0123456789ab"
    assert fmt.short_digest("0123456789abcdef") == "0123456789ab"
    assert fmt.short_digest("abc") == "abc"
    assert fmt.short_digest(None) == "unknown"
    assert fmt.short_digest("") == "unknown"
    assert len(fmt.short_digest("x" * 64)) == fmt.SHORT_DIGEST


def test_short_digest_is_still_importable_from_gates() -> None:
    assert gates.short_digest is fmt.short_digest


# --- one rule per kind of number (issue 11: "18.2232 ms", "18.2 ms", "25.34 ms") ----------
@pytest.mark.parametrize(
    ("value", "text"),
    [
        (18.2232, "18.2 ms"),
        (25.34, "25.3 ms"),
        (50, "50.0 ms"),
        (None, "-"),
        (float("nan"), "-"),
        (True, "-"),
    ],
)
def test_ms(value: Any, text: str) -> None:
    assert fmt.ms(value) == text


@pytest.mark.parametrize(("value", "text"), [(0.5, "0.5000"), (50, "50.0000"), (None, "-"), ("x", "-")])
def test_metric(value: Any, text: str) -> None:
    assert fmt.metric(value) == text


@pytest.mark.parametrize(
    ("field", "value", "text"),
    [
        ("latency_budget_ms", 50, "50.0 ms"),
        ("latency_budget_ms", 18.2232, "18.2 ms"),
        ("noise", 0.005, "0.0050"),
        ("convergence_target", 0.45, "0.4500"),
        ("class_floor", 0.9, "0.90"),
        ("test_budget", 5, "5"),
        ("device", "jetson-orin-nx", "jetson-orin-nx"),
        ("device", None, "not set"),
        ("latency_budget_ms", None, "not set"),
    ],
)
def test_protocol_value(field: str, value: Any, text: str) -> None:
    assert fmt.protocol_value(field, value) == text


def test_the_gates_print_latency_and_budgets_one_way() -> None:
    from trialbook.core.entities import Protocol
    from trialbook.core.gates import DecisionInputs, decide

    inputs = DecisionInputs(
        candidate="v2_b",
        baseline="v1_a",
        protocol=Protocol(latency_budget_ms=50, device="cpu"),
        candidate_latency_ms=18.2232,
        candidate_device="cpu",
    )
    assert decide(inputs).gate("latency").detail == "latency 18.2 ms on cpu is within the budget of 50.0 ms"
