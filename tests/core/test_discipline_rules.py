"""Protocol changes, lint findings and stored decisions (trialbook.core.discipline); the
store-backed behaviour is tested in tests/discipline."""

from __future__ import annotations

import re

import pytest

from trialbook.core import discipline as rules
from trialbook.core.entities import Decision, Protocol, RunRecord
from trialbook.core.gates import DecisionInputs, decide
from trialbook.errors import InvalidInput

MAP = "metrics/mAP50-95(B)"


def change(changes, *, protocol=None, compared=False, reason=None):
    return rules.check_protocol_changes(
        protocol or Protocol(), changes, project="pallets", compared=compared, reason=reason
    )


# --------------------------------------------------------------------------- protocol fields
def test_every_settable_field_has_a_check():
    assert set(rules.SETTABLE_FIELDS) == set(rules.FIELD_CHECKS)
    assert set(rules.SETTABLE_FIELDS) <= set(Protocol().to_dict())


@pytest.mark.parametrize(
    ("field", "value", "stored"),
    [
        ("metric", " map50 ", "metrics/mAP50(B)"),
        ("direction", "min", "min"),
        ("noise", 0, 0.0),
        ("noise", 0.01, 0.01),
        ("class_floor", 1, 1.0),
        ("latency_budget_ms", 5, 5.0),
        ("device", "  jetson-orin-nx ", "jetson-orin-nx"),
        ("test_budget", 3, 3),
        ("convergence_target", -1, -1.0),
        ("naming_pattern", r"^exp\d+$", r"^exp\d+$"),
    ],
)
def test_good_values_are_normalised(field, value, stored):
    out = rules.check_protocol_field(field, value)
    assert out == stored and type(out) is type(stored)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("metric", 3, "protocol metric must be a metric key"),
        ("direction", "none", "protocol direction must be 'max' or 'min', got 'none'"),
        ("noise", True, "protocol noise must be a number >= 0, got True"),
        ("noise", float("nan"), "protocol noise must be a number >= 0"),
        ("class_floor", -0.5, r"protocol class_floor must be in \(0, 1\]"),
        ("latency_budget_ms", -1, "protocol latency_budget_ms must be a number > 0"),
        ("device", 7, "protocol device must be a device name"),
        ("test_budget", True, "protocol test_budget must be a whole number >= 1, got True"),
        ("convergence_target", None, "protocol convergence_target must be a number"),
        ("naming_pattern", None, "is not a regular expression"),
        ("colour", "red", "unknown protocol field colour; settable: metric, direction"),
    ],
)
def test_bad_values_name_the_field(field, value, message):
    with pytest.raises(InvalidInput, match=message):
        rules.check_protocol_field(field, value)


def test_the_first_bad_field_is_the_one_reported():
    with pytest.raises(InvalidInput, match="noise"):
        change({"device": "x", "noise": -1, "test_budget": 0})


def test_unknown_fields_are_all_named_before_any_check():
    with pytest.raises(InvalidInput, match=re.escape("unknown protocol field(s) a, b")):
        change({"a": 1, "noise": -1, "b": 2})


# --------------------------------------------------------------------------- metric changes
def test_a_new_metric_takes_its_keys_direction():
    assert change({"metric": "val/box_loss"}) == {"metric": "val/box_loss", "direction": "min"}
    assert change({"metric": "map50"}, protocol=Protocol(metric="val/box_loss", direction="min")) == {
        "metric": "metrics/mAP50(B)",
        "direction": "max",
    }


def test_a_given_direction_wins():
    assert change({"metric": "val/box_loss", "direction": "max"})["direction"] == "max"


def test_the_same_metric_again_changes_nothing_else():
    assert change({"metric": "map50-95"}, compared=True) == {"metric": MAP}


def test_a_metric_without_direction_needs_one():
    with pytest.raises(InvalidInput, match="give one with --direction max or --direction min"):
        change({"metric": "lr/pg0"})
    assert change({"metric": "lr/pg0", "direction": "max"}) == {"metric": "lr/pg0", "direction": "max"}


def test_changing_the_metric_after_a_comparison_needs_a_reason():
    with pytest.raises(InvalidInput, match=r"trialbook project set pallets --metric val/box_loss --reason"):
        change({"metric": "val/box_loss"}, compared=True, reason=" ")
    assert change({"metric": "val/box_loss"}, compared=True, reason="the loss is what we ship")["metric"] == (
        "val/box_loss"
    )
    # a direction alone needs none
    assert change({"direction": "min"}, compared=True) == {"direction": "min"}


# --------------------------------------------------------------------------- lint
def record(name, *, legacy=False, pinned=True, dataset=None):
    return RunRecord(
        id="r1",
        project="pallets",
        name=name,
        status="finished",
        created_at=1.0,
        pinned=pinned,
        dataset=dataset,
        legacy_name=legacy,
    )


def kinds(problems):
    return [p.kind for p in problems]


def test_lint_a_good_run_with_a_note_finds_nothing():
    from trialbook.core.entities import Note

    note = Note(run_id="r1", hypothesis="h", change="c", result="r", next="n", text="", updated_at=1.0)
    assert rules.lint_run(record("v1_base"), "finished", note, Protocol().naming_pattern) == []


def test_lint_findings_in_order():
    pattern = Protocol().naming_pattern
    found = rules.lint_run(record("train3", pinned=False, dataset="pallets:v1"), "finished", None, pattern)
    assert kinds(found) == [rules.BAD_NAME, rules.NOTE_DEBT, rules.UNPINNED]
    assert "e.g. v3_what_changed" in found[0].detail
    assert "(claimed pallets:v1)" in found[2].detail
    assert found[0].to_dict() == {
        "project": "pallets",
        "run": "train3",
        "kind": rules.BAD_NAME,
        "detail": found[0].detail,
    }


def test_lint_a_legacy_name_is_a_notice_not_a_bad_name():
    found = rules.lint_run(record("train3", legacy=True), "running", None, Protocol().naming_pattern)
    assert kinds(found) == [rules.LEGACY_NAME]


def test_burned_splits():
    found = rules.burned_splits({"blake3:" + "a" * 64: 5, "blake3:" + "b" * 64: 2, None: 7}, 5, "pallets")
    assert [p.detail.split()[2] for p in found] == ["aaaaaaaaaaaa", "unknown"]
    assert all(p.kind == rules.BURNED_TEST_SPLIT and p.run is None for p in found)


# --------------------------------------------------------------------------- stored decisions
def stored(cand_val, base_val):
    result = decide(
        DecisionInputs(
            candidate="v2_x",
            baseline="v1_x",
            candidate_value=0.6,
            baseline_value=0.5,
            candidate_val_digest=cand_val,
            baseline_val_digest=base_val,
        )
    )
    decision = Decision(
        id="d",
        project="pallets",
        candidate_id="c",
        baseline_id="b",
        verdict=result.verdict,
        gates=[g.to_dict() for g in result.gates],
        protocol=result.protocol,
        test_split_digest=result.test_split_digest,
        revealed=result.revealed,
        who="me",
        at=1.0,
    )
    return result, rules.result_from_record(decision, "v2_x", "v1_x")


@pytest.mark.parametrize(
    ("cand_val", "base_val"), [("a", "a"), ("a", "b"), (None, "b"), ("a", None), (None, None)]
)
def test_a_stored_decision_keeps_its_comparability(cand_val, base_val):
    result, again = stored(cand_val, base_val)
    assert again.comparable is result.comparable
    assert again.verdict == result.verdict
    assert [g.to_dict() for g in again.gates] == [g.to_dict() for g in result.gates]
    assert again.metric == MAP and again.direction == "max"
