"""The latency gate's evidence: a dedicated measurement on the target device comes before
a validator's per-image speed, the gate says which it used, and without a measurement on
the target it says how to make one there."""

from __future__ import annotations

from dataclasses import replace

from trialbook.core.discipline import latency_evaluation, latency_source
from trialbook.core.entities import LATENCY, Evaluation, Protocol
from trialbook.core.gates import DecisionInputs, decide


def ev(split: str, at: float, latency: float | None, device: str | None, **metrics: float) -> Evaluation:
    return Evaluation(
        id=f"{split}-{at}",
        run_id="r",
        split=split,
        sealed=split == "test",
        created_at=at,
        metrics=dict(metrics),
        latency_ms=latency,
        device=device,
    )


MEASURED = ev(LATENCY, 1, 12.0, "Jetson-Orin", **{"latency/iters": 100, "latency/p95_ms": 14.25})
SPEED = ev("val", 2, 8.0, "jetson-orin ")
ELSEWHERE = ev(LATENCY, 3, 3.0, "cpu", **{"latency/iters": 10})


def test_a_measurement_on_the_target_beats_a_newer_validator_speed() -> None:
    assert latency_evaluation([MEASURED, SPEED, ELSEWHERE], "jetson-orin") is MEASURED
    assert latency_evaluation([SPEED, ELSEWHERE], "jetson-orin") is SPEED
    assert latency_evaluation([ELSEWHERE], "jetson-orin") is ELSEWHERE  # the gate names its device
    assert latency_evaluation([], "jetson-orin") is None


def test_the_source_is_said_in_words() -> None:
    assert latency_source(MEASURED) == "measured with trialbook yolo latency: p50 of 100 runs, p95 14.2 ms"
    assert latency_source(SPEED).startswith("the val evaluation's per-image speed")


def inputs(**changes: object) -> DecisionInputs:
    base = DecisionInputs(
        candidate="v2_x",
        baseline="v1_x",
        protocol=Protocol(latency_budget_ms=20.0, device="jetson-orin"),
        project="p",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_the_gate_says_which_latency_it_used_and_how_to_measure_one() -> None:
    used = decide(
        inputs(
            candidate_latency_ms=12.0,
            candidate_device="Jetson-Orin",
            candidate_latency_source=latency_source(MEASURED),
        )
    ).gate("latency")
    assert (
        used.passed
        and "12.0 ms on jetson-orin (measured with trialbook yolo latency: p50 of 100" in used.detail
    )
    missing = decide(inputs()).gate("latency")
    assert not missing.passed and "not measured" in missing.detail
    assert missing.hint is not None and "trialbook yolo latency v2_x --device jetson-orin" in missing.hint
    elsewhere = decide(
        inputs(
            candidate_latency_ms=3.0,
            candidate_device="cpu",
            candidate_latency_source=latency_source(ELSEWHERE),
        )
    ).gate("latency")
    assert not elsewhere.passed and "not on the target device 'jetson-orin'" in elsewhere.detail
    assert elsewhere.hint is not None and "trialbook yolo latency v2_x --device jetson-orin" in elsewhere.hint
