"""The four-gate decision (rules in trialbook.core.gates and DESIGN.md)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from trialbook.core.entities import Protocol
from trialbook.core.gates import (
    GATES,
    DecisionInputs,
    DecisionResult,
    decide,
    evidence_digest,
    not_evaluable,
    render_decision_text,
    short_digest,
)
from trialbook.errors import InvalidInput

PROTOCOL = Protocol(latency_budget_ms=5.0, device="jetson-orin-nx", test_budget=5)
TEST_SPLIT = "0123456789abcdef0123"


def passing(**changes: Any) -> DecisionInputs:
    """Inputs on which all four gates pass; ``changes`` break one thing at a time."""
    base = DecisionInputs(
        candidate="v4_lr0_0.0005",
        baseline="v3_pallets_added",
        protocol=PROTOCOL,
        project="pallets",
        candidate_value=0.59,
        baseline_value=0.51,
        candidate_val_digest="valsplit1",
        baseline_val_digest="valsplit1",
        candidate_per_class={"pallet": 0.58, "forklift": 0.61},
        baseline_per_class={"pallet": 0.31, "forklift": 0.60},
        candidate_test_value=0.57,
        baseline_test_value=0.50,
        candidate_test_digest=TEST_SPLIT,
        pinned_test_digest=TEST_SPLIT,
        test_reveals_used=1,
        candidate_latency_ms=4.1,
        candidate_device="jetson-orin-nx",
    )
    return replace(base, **changes)


def failed(result: DecisionResult) -> list[str]:
    return [g.gate for g in result.gates if not g.passed]


def test_all_gates_pass_is_a_win() -> None:
    r = decide(passing())
    assert r.verdict == "WIN"
    assert [g.gate for g in r.gates] == list(GATES)
    assert all(g.passed for g in r.gates)
    assert r.comparable is True
    assert r.warnings == ()
    assert r.revealed is True
    assert r.test_reveals_used == 2
    assert r.test_budget == 5
    assert r.burned is False
    assert r.test_split_digest == TEST_SPLIT
    improvement = r.gate("improvement")
    assert "0.5900" in improvement.detail and "0.5100" in improvement.detail
    assert "0.0800" in improvement.detail and "8.00 mAP points" in improvement.detail


def test_json_shape() -> None:
    d = decide(passing()).to_dict()
    json.dumps(d)  # plain values only
    keys = {"candidate", "baseline", "verdict", "gates", "test_reveals_used", "test_budget"}
    assert keys <= set(d)
    assert d["verdict"] == "WIN"
    for gate in d["gates"]:
        assert {"gate", "passed", "detail"} <= set(gate)


# --- each gate failing alone -----------------------------------------------------------


def test_improvement_fails_alone() -> None:
    r = decide(passing(candidate_value=0.512))
    assert r.verdict == "MORE_EXPERIMENTS"
    assert failed(r) == ["improvement"]
    detail = r.gate("improvement").detail
    assert "better by only 0.0020" in detail and "0.20 mAP points" in detail
    assert "not more than the noise threshold 0.0050" in detail


def test_improvement_worse_candidate() -> None:
    r = decide(passing(candidate_value=0.50))
    assert failed(r) == ["improvement"]
    assert "worse by 0.0100" in r.gate("improvement").detail


def test_improvement_exactly_at_noise_fails() -> None:
    # 0.515 - 0.510 is 0.0050000000000000044 in binary floating point
    r = decide(passing(candidate_value=0.515, baseline_value=0.510))
    assert failed(r) == ["improvement"]
    assert "not more than the noise threshold 0.0050" in r.gate("improvement").detail


def test_improvement_just_above_noise_passes() -> None:
    r = decide(passing(candidate_value=0.5151, baseline_value=0.510))
    assert r.verdict == "WIN"


def test_per_class_fails_alone_listing_both_values() -> None:
    r = decide(passing(candidate_per_class={"pallet": 0.58, "forklift": 0.50}))
    assert failed(r) == ["per_class"]
    g = r.gate("per_class")
    assert "1 of 2 classes fail: " in g.detail
    assert "forklift 0.5000 vs baseline 0.6000 (below the floor 0.90 × 0.6000 = 0.5400)" in g.detail
    assert g.inputs["failing"] == [
        {
            "class": "forklift",
            "candidate": 0.50,
            "baseline": 0.60,
            "floor": pytest.approx(0.54),
            "why": "below_floor",
        }
    ]


def test_per_class_exactly_at_floor_passes() -> None:
    r = decide(passing(candidate_per_class={"pallet": 0.58, "forklift": 0.54}))
    assert r.gate("per_class").passed


def test_per_class_baseline_class_missing_in_candidate_fails() -> None:
    r = decide(passing(candidate_per_class={"pallet": 0.58}))
    assert failed(r) == ["per_class"]
    assert "forklift missing in the candidate (baseline 0.6000)" in r.gate("per_class").detail


def test_per_class_class_only_in_candidate_is_reported_and_passes() -> None:
    r = decide(passing(candidate_per_class={"pallet": 0.58, "forklift": 0.61, "crate": 0.2}))
    g = r.gate("per_class")
    assert g.passed
    assert "only in the candidate (not checked): crate 0.2000" in g.detail
    assert g.inputs["only_in_candidate"] == ["crate"]


def test_per_class_a_class_never_detected_in_both_runs_fails_by_name() -> None:
    # AP 0 in both runs passed "0 >= 0.90 x 0" before; a class with val instances
    # (it has an AP, so it has instances) that is never detected fails
    r = decide(
        passing(
            candidate_per_class={"pallet": 0.58, "forklift": 0.61, "crate": 0.0},
            baseline_per_class={"pallet": 0.31, "forklift": 0.60, "crate": 0.0},
        )
    )
    assert failed(r) == ["per_class"]
    g = r.gate("per_class")
    assert g.detail.startswith("1 of 3 classes fail: crate never detected: AP 0 in the candidate")
    assert "(baseline 0.0000)" in g.detail
    assert [(x["class"], x["why"]) for x in g.inputs["failing"]] == [("crate", "never_detected")]


def test_per_class_a_class_only_in_the_candidate_at_ap_0_fails() -> None:
    r = decide(passing(candidate_per_class={"pallet": 0.58, "forklift": 0.61, "crate": 1e-17}))
    g = r.gate("per_class")
    assert not g.passed  # 1e-17 is 0 up to rounding
    assert "crate never detected" in g.detail and "not in the baseline's AP" in g.detail
    assert g.inputs["only_in_candidate"] == []


def test_per_class_a_class_without_val_instances_is_not_evaluable_and_passes() -> None:
    # "crate" is a class of the dataset, but no run has an AP for it: no val instances
    r = decide(passing(class_names=("pallet", "forklift", "crate")))
    g = r.gate("per_class")
    assert g.passed
    assert g.detail.startswith("all 2 classes have AP above 0")
    assert g.detail.endswith("; not evaluable (no val instances): crate")
    assert g.inputs["not_evaluable"] == ["crate"]


def test_per_class_counted_val_instances_decide_what_is_evaluable() -> None:
    # the pinned version counts no val instance of crate: its AP 0 is not judged
    zero = passing(
        candidate_per_class={"pallet": 0.58, "forklift": 0.61, "crate": 0.0},
        baseline_per_class={"pallet": 0.31, "forklift": 0.60, "crate": 0.0},
        val_instances={"pallet": 12, "forklift": 7, "crate": 0},
    )
    g = decide(zero).gate("per_class")
    assert g.passed and "not evaluable (no val instances): crate" in g.detail
    # ... and a class it counts instances of, with no AP in the candidate, is missing
    missing = decide(passing(val_instances={"pallet": 12, "forklift": 7, "crate": 3})).gate("per_class")
    assert not missing.passed
    assert "crate missing in the candidate (not in the baseline's AP)" in missing.detail


def test_not_evaluable_lists_dataset_classes_without_ap_and_zero_counts() -> None:
    inputs = passing(
        class_names=("pallet", "forklift", "crate", "box"), val_instances={"box": 0, "pallet": 3}
    )
    assert not_evaluable(inputs) == ["box", "crate"]


@pytest.mark.parametrize(
    ("changes", "who"),
    [
        ({"candidate_per_class": {}}, "candidate v4_lr0_0.0005"),
        ({"baseline_per_class": {}}, "baseline v3_pallets_added"),
        (
            {"candidate_per_class": {}, "baseline_per_class": {}},
            "candidate v4_lr0_0.0005 and baseline v3_pallets_added",
        ),
    ],
)
def test_per_class_without_any_ap_fails(changes: dict[str, Any], who: str) -> None:
    r = decide(passing(**changes))
    assert failed(r) == ["per_class"]
    assert r.gate("per_class").detail == f"no per-class AP recorded for {who}"


def test_test_set_fails_alone_when_worse_than_baseline_by_more_than_noise() -> None:
    r = decide(passing(candidate_test_value=0.49, baseline_test_value=0.50))
    assert failed(r) == ["test_set"]
    g = r.gate("test_set")
    assert "worse by 0.0100" in g.detail and "more than the noise" in g.detail
    assert r.revealed is True and r.test_reveals_used == 2


def test_test_set_shortfall_exactly_at_noise_passes() -> None:
    r = decide(passing(candidate_test_value=0.505, baseline_test_value=0.510))
    assert r.gate("test_set").passed
    assert "within the noise threshold" in r.gate("test_set").detail


def test_test_set_missing_evaluation_fails_and_reveals_nothing() -> None:
    r = decide(passing(candidate_test_value=None))
    assert failed(r) == ["test_set"]
    assert "has no test-split evaluation" in r.gate("test_set").detail
    assert r.revealed is False
    assert r.test_reveals_used == 1  # unchanged
    assert "candidate_test_value" not in r.gate("test_set").inputs


def test_test_set_without_baseline_result_passes_on_existence() -> None:
    r = decide(passing(baseline_test_value=None))
    g = r.gate("test_set")
    assert g.passed
    assert "has no test result to compare" in g.detail
    assert r.test_reveals_used == 2


def test_test_set_on_another_split_than_the_pinned_one_fails() -> None:
    r = decide(passing(candidate_test_digest="ffffffffffffffff"))
    assert failed(r) == ["test_set"]
    detail = r.gate("test_set").detail
    assert "ffffffffffff" in detail and short_digest(TEST_SPLIT) in detail
    assert r.revealed is False and r.test_reveals_used == 1


def test_test_set_baseline_tested_on_another_split_fails() -> None:
    r = decide(passing(baseline_test_digest="eeeeeeeeeeeeeeee"))
    assert failed(r) == ["test_set"]
    assert "cannot be compared" in r.gate("test_set").detail


def test_burned_test_split_fails_and_reveals_nothing() -> None:
    r = decide(passing(test_reveals_used=5))
    assert failed(r) == ["test_set"]
    assert r.gate("test_set").detail == (
        f"test split {TEST_SPLIT[:12]} is burned (5 of 5 reveals used); tag a new test split"
    )
    assert r.revealed is False
    assert r.test_reveals_used == 5
    assert r.burned is True


def test_last_reveal_burns_the_split() -> None:
    r = decide(passing(test_reveals_used=4))
    assert r.verdict == "WIN"
    assert r.test_reveals_used == 5
    assert r.burned is True
    assert "now burned" in r.gate("test_set").detail


def test_latency_over_budget_fails_alone() -> None:
    r = decide(passing(candidate_latency_ms=6.5))
    assert failed(r) == ["latency"]
    detail = r.gate("latency").detail
    assert detail == "latency 6.5 ms on jetson-orin-nx is over the budget of 5.0 ms by 1.5 ms"


def test_latency_exactly_at_budget_passes() -> None:
    assert decide(passing(candidate_latency_ms=5.0)).gate("latency").passed


def test_latency_budget_unset_fails_with_the_command() -> None:
    r = decide(passing(protocol=replace(PROTOCOL, latency_budget_ms=None)))
    assert failed(r) == ["latency"]
    assert r.gate("latency").detail == (
        "no latency budget set: trialbook project set pallets --latency-budget MS --device NAME"
    )


def test_latency_unknown_fails() -> None:
    r = decide(passing(candidate_latency_ms=None))
    assert failed(r) == ["latency"]
    assert "not measured" in r.gate("latency").detail


def test_latency_on_another_device_fails_naming_both() -> None:
    r = decide(passing(candidate_device="rtx-4090"))
    assert failed(r) == ["latency"]
    detail = r.gate("latency").detail
    assert "rtx-4090" in detail and "jetson-orin-nx" in detail


def test_latency_device_names_ignore_case() -> None:
    assert decide(passing(candidate_device=" Jetson-Orin-NX ")).gate("latency").passed


# --- direction, comparability ------------------------------------------------------------


def test_min_direction_metric() -> None:
    protocol = replace(PROTOCOL, metric="val/box_loss", direction="min", noise=0.01)
    ok = decide(
        passing(
            protocol=protocol,
            candidate_value=1.10,
            baseline_value=1.20,
            candidate_test_value=1.16,
            baseline_test_value=1.15,
        )
    )
    assert ok.verdict == "WIN", [g.detail for g in ok.gates]
    assert "mAP points" not in ok.gate("improvement").detail
    higher = decide(
        passing(
            protocol=protocol,
            candidate_value=1.30,
            baseline_value=1.20,
            candidate_test_value=1.15,
            baseline_test_value=1.15,
        )
    )
    assert failed(higher) == ["improvement"]
    assert "lower is better" in higher.gate("improvement").detail
    worse_test = decide(
        passing(
            protocol=protocol,
            candidate_value=1.10,
            baseline_value=1.20,
            candidate_test_value=1.20,
            baseline_test_value=1.15,
        )
    )
    assert failed(worse_test) == ["test_set"]


def test_different_val_splits_are_not_comparable() -> None:
    r = decide(passing(baseline_val_digest="valsplit2"))
    assert r.comparable is False
    assert failed(r) == ["improvement"]
    assert r.warnings[0] == (
        "not comparable: validated on different val splits (candidate v4_lr0_0.0005 on "
        "valsplit1; baseline v3_pallets_added on valsplit2); evaluate both on one split"
    )
    assert r.gate("improvement").detail.startswith(r.warnings[0])


def test_one_val_split_unknown_is_not_comparable() -> None:
    r = decide(passing(baseline_val_digest=None))
    assert r.comparable is False
    assert (
        "(candidate v4_lr0_0.0005 on valsplit1; baseline v3_pallets_added on an unknown val split)"
        in (r.warnings[0])
    )
    assert failed(r) == ["improvement"]


def test_comparability_is_the_compare_views_rule() -> None:
    """The decision and a compare view of the same two runs agree (one rule)."""
    from trialbook.core.discipline import val_comparability

    for cand, base in [("a", "a"), ("a", "b"), ("a", None), (None, "b"), (None, None)]:
        r = decide(passing(candidate_val_digest=cand, baseline_val_digest=base))
        comparable, _ = val_comparability({"v4": cand, "v3": base})
        assert r.comparable is comparable, (cand, base)


def test_no_val_split_known_is_assumed_comparable_with_a_warning() -> None:
    r = decide(passing(candidate_val_digest=None, baseline_val_digest=None))
    assert r.comparable is True
    assert r.verdict == "WIN"
    assert "neither run" in r.warnings[0]


def test_missing_metric_value_fails_improvement() -> None:
    r = decide(passing(baseline_value=None))
    assert failed(r) == ["improvement"]
    assert "no value of metrics/mAP50-95(B) for baseline v3_pallets_added" in (r.gate("improvement").detail)


def test_different_value_sources_are_named() -> None:
    r = decide(passing(baseline_source="best of per-epoch series"))
    assert r.verdict == "WIN"
    assert "best of per-epoch series" in r.gate("improvement").detail
    assert any("different sources" in w for w in r.warnings)


def test_several_gates_fail_together() -> None:
    r = decide(passing(candidate_value=0.50, candidate_test_value=None, candidate_latency_ms=None))
    assert failed(r) == ["improvement", "test_set", "latency"]


def test_direction_none_is_refused() -> None:
    with pytest.raises(InvalidInput):
        decide(passing(protocol=replace(PROTOCOL, direction="none")))


# --- text -------------------------------------------------------------------------------


def test_render_win() -> None:
    text = render_decision_text(decide(passing()))
    assert "Candidate: v4_lr0_0.0005" in text
    assert "Baseline:  v3_pallets_added" in text
    assert "Metric:    metrics/mAP50-95(B)" in text
    assert text.count("✓") == 4
    assert "Verdict:   WIN" in text
    assert "trialbook ship v4_lr0_0.0005" in text
    assert "trialbook note v4_lr0_0.0005 --draft" in text  # the note has no result yet


def test_render_win_does_not_ask_for_a_result_the_note_already_has() -> None:
    text = render_decision_text(decide(passing()), note_has_result=True)
    next_line = [line for line in text.splitlines() if line.startswith("Next:")]
    assert next_line == ["Next:      ship it (trialbook ship v4_lr0_0.0005)"]
    assert "--draft" not in text


def test_render_more_experiments_names_each_failed_gate_and_what_to_do() -> None:
    r = decide(passing(candidate_per_class={"pallet": 0.58}, candidate_latency_ms=9.0))
    text = render_decision_text(r)
    assert text.count("✗") == 2
    assert "Verdict:   MORE EXPERIMENTS (failed: per_class, latency)" in text
    assert "  - per_class:" in text and "  - latency:" in text


def test_render_shows_warnings() -> None:
    text = render_decision_text(decide(passing(baseline_val_digest="other")))
    assert "Warning:   not comparable" in text


# --- evidence ---------------------------------------------------------------------------
REFS = {"candidate": "c1", "baseline": "b1", "candidate_test": "e1", "baseline_test": "e2", "latency": "e3"}


def test_evidence_is_the_same_for_the_same_numbers_whatever_the_reveals_used() -> None:
    digest = evidence_digest(passing(), REFS)
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert evidence_digest(passing(test_reveals_used=4), dict(REFS)) == digest


@pytest.mark.parametrize(
    "changes",
    [
        {"candidate_value": 0.591},
        {"candidate_per_class": {"pallet": 0.58, "forklift": 0.62}},
        {"candidate_test_value": 0.571},
        {"baseline_test_digest": "another"},
        {"candidate_latency_ms": 4.2},
        {"protocol": replace(PROTOCOL, test_budget=6)},
        {"class_names": ("pallet", "forklift", "crate")},
    ],
)
def test_evidence_changes_with_any_number_the_gates_read(changes: dict[str, Any]) -> None:
    assert evidence_digest(passing(**changes), REFS) != evidence_digest(passing(), REFS)


def test_evidence_changes_with_a_new_evaluation_of_the_same_numbers() -> None:
    assert evidence_digest(passing(), {**REFS, "candidate_test": "e9"}) != evidence_digest(passing(), REFS)
