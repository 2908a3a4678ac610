"""The aliases and rules of issue 16 in ``core``: one class's AP, the recall at a fixed
precision and the latency as the comparison metric, and how the gates write them."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from trialbook.core.classkeys import ap_key, recall_key
from trialbook.core.entities import LATENCY, Evaluation, Protocol
from trialbook.core.gates import DecisionInputs, decide, evidence_digest, noise_text
from trialbook.core.metrics import (
    LATENCY_METRIC,
    check_precision_level,
    direction_of,
    parse_class_key,
    resolve_alias,
)
from trialbook.core.ranking import latency_fix, measured_latency
from trialbook.errors import InvalidInput


@pytest.mark.parametrize(
    ("alias", "key"),
    [
        ("AP50-95:pallet", "metrics/AP50-95(B)/pallet"),
        ("ap50-95:Pallet", "metrics/AP50-95(B)/Pallet"),  # the class as given
        ("ap50:traffic light", "metrics/AP50(B)/traffic light"),
        ("AP50-95(m):pallet", "metrics/AP50-95(M)/pallet"),
        ("ap50-95: a:b ", "metrics/AP50-95(B)/a:b"),  # split at the first ':'
        ("r@p0.95", "metrics/R@P0.95(B)"),
        ("R@P0.90:pallet", "metrics/R@P0.9(B)/pallet"),
        ("r@p1:pallet", "metrics/R@P1(B)/pallet"),
        ("Latency", LATENCY_METRIC),
        ("map50-95", "metrics/mAP50-95(B)"),
        ("ap50-95", "ap50-95"),  # no class: not an alias
        ("metrics/AP50-95(B)/pallet", "metrics/AP50-95(B)/pallet"),
        ("custom/key", "custom/key"),
    ],
)
def test_aliases(alias: str, key: str) -> None:
    assert resolve_alias(alias) == key
    assert resolve_alias(key) == key  # a full key is its own alias


@pytest.mark.parametrize(
    ("alias", "why"), [("ap50:", "names no class"), ("r@p0:x", r"in \(0, 1\]"), ("r@p1.5", r"in \(0, 1\]")]
)
def test_bad_class_aliases_are_refused(alias: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why):
        resolve_alias(alias)


@pytest.mark.parametrize("cls", ["timer", "lr", "epoch", "error", "pallet"])
def test_one_class_is_higher_is_better_whatever_its_name(cls: str) -> None:
    assert direction_of(ap_key(cls)) == "max" and direction_of(recall_key(0.95, cls)) == "max"
    assert direction_of(LATENCY_METRIC) == "min"


def test_parse_class_key() -> None:
    parsed = parse_class_key("metrics/R@P0.9(M)/pallet")
    assert parsed is not None and (parsed.kind, parsed.level, parsed.part, parsed.cls) == (
        "recall",
        0.9,
        "M",
        "pallet",
    )
    assert parsed.with_class("box") == "metrics/R@P0.9(M)/box"
    assert parse_class_key("metrics/mAP50-95(B)") is None


def test_the_recall_key_must_be_at_the_protocol_level() -> None:
    check_precision_level(recall_key(0.95, "pallet"), 0.95)
    check_precision_level("metrics/mAP50-95(B)", 0.5)  # not a recall: nothing to check
    with pytest.raises(InvalidInput) as err:
        check_precision_level(recall_key(0.95, "pallet"), 0.9)
    assert "use --metric r@p0.9:pallet (metrics/R@P0.9(B)/pallet), or set --precision-level 0.95" in str(
        err.value
    )


def _latency(device: str, ms: float, split: str = LATENCY) -> Evaluation:
    return Evaluation(
        id=f"{device}{ms}", run_id="r", split=split, sealed=False, created_at=0, latency_ms=ms, device=device
    )


def test_measured_latency_is_the_newest_on_the_device_only() -> None:
    evs = [
        _latency("Jetson ", 9.0),
        _latency("jetson", 8.0),
        _latency("laptop", 1.0),
        _latency("jetson", 2.0, "val"),
    ]
    found = measured_latency(evs, "JETSON")
    assert found is not None and found.latency_ms == 8.0  # not the val evaluation's per-image speed
    assert measured_latency(evs, "phone") is None and measured_latency(evs, None) is None
    assert "trialbook yolo latency v2 --device jetson" in latency_fix(["v2"], "jetson")
    assert "trialbook yolo latency RUN --device jetson" in latency_fix(["v2", "v3"], "jetson")


LATENCY_PROTOCOL = Protocol(
    metric=LATENCY_METRIC, direction="min", noise=0.5, latency_budget_ms=20.0, device="jetson"
)


def _inputs(cand: float | None, base: float | None, **changes: object) -> DecisionInputs:
    values: dict[str, object] = {
        "candidate": "v2_fast",
        "baseline": "v1_base",
        "protocol": LATENCY_PROTOCOL,
        "candidate_value": cand,
        "baseline_value": base,
        "candidate_source": "p50 measured on jetson with trialbook yolo latency",
        "baseline_source": "p50 measured on jetson with trialbook yolo latency",
        "candidate_val_digest": "a" * 64,
        "baseline_val_digest": "b" * 64,  # other val splits: no matter for a latency
        "candidate_test_value": cand,
        "candidate_latency_ms": cand,
        "candidate_device": "jetson",
        **changes,
    }
    return DecisionInputs(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cand", "passed", "text"),
    [
        (9.0, True, "faster by 3.0 ms, more than the noise threshold 0.5 ms"),
        (11.75, False, "faster by only 0.2 ms, not more than the noise threshold 0.5 ms"),
        (13.0, False, "slower by 1.0 ms; lower is better"),
    ],
)
def test_the_improvement_gate_on_latency_speaks_ms(cand: float, passed: bool, text: str) -> None:
    result = decide(_inputs(cand, 12.0))
    gate = result.gate("improvement")
    assert gate.passed is passed and text in gate.detail, gate.detail
    assert f"{LATENCY_METRIC} (p50 measured on jetson" in gate.detail
    test_set = result.gate("test_set")
    assert test_set.passed and "no test latency to compare" in test_set.detail and result.revealed


def test_no_latency_says_how_to_measure_it() -> None:
    gate = decide(_inputs(None, 12.0, candidate_test_value=0.0)).gate("improvement")
    assert (
        not gate.passed
        and "no latency (latency/p50_ms) measured on jetson for candidate v2_fast" in gate.detail
    )
    assert (
        gate.hint
        == "measure it on jetson: run `trialbook yolo latency RUN --device jetson` there for v2_fast"
    )


def test_noise_and_amounts_in_the_text() -> None:
    assert noise_text(0.5, LATENCY_METRIC) == "0.5 ms" and noise_text(0.005, ap_key("x")) == "0.0050"
    proto = Protocol(metric=ap_key("pallet"))
    inputs = _inputs(0.52, 0.40, protocol=proto, candidate_val_digest=None, baseline_val_digest=None)
    gate = decide(inputs).gate("improvement")
    assert "metrics/AP50-95(B)/pallet" in gate.detail and "better by 0.1200 (12.00 AP points)" in gate.detail


def test_a_default_precision_level_leaves_the_evidence_digest_as_before() -> None:
    refs = {"candidate": "c", "baseline": "b"}
    default = evidence_digest(_inputs(9.0, 12.0), refs)
    other = evidence_digest(_inputs(9.0, 12.0, protocol=Protocol(precision_level=0.9)), refs)
    assert default != other
    # the digest of the default protocol is the one computed before the field existed
    data = dataclasses.asdict(_inputs(9.0, 12.0))
    del data["test_reveals_used"]
    del data["protocol"]["precision_level"]
    text = json.dumps({"inputs": data, "refs": refs}, sort_keys=True, default=str)
    assert default == hashlib.sha256(text.encode("utf-8")).hexdigest()
