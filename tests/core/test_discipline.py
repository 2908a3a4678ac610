"""The pure rules of trialbook.core.discipline, on hand-made cases: the comparison values,
val comparability and config differences, test reveals, protocol changes, lint findings
and stored decisions. The same rules through the store and the CLI: tests/cli/."""

from __future__ import annotations

import re
from typing import Any

import pytest

from trialbook.core import discipline as rules
from trialbook.core.entities import Decision, Evaluation, Note, Protocol, ProtocolChange, RunRecord
from trialbook.core.gates import DecisionInputs, DecisionResult, decide, render_decision_text
from trialbook.errors import InvalidInput

MAP = "metrics/mAP50-95(B)"


def change(
    changes: dict[str, Any],
    *,
    protocol: Protocol | None = None,
    compared: bool = False,
    reason: str | None = None,
) -> dict[str, Any]:
    return rules.check_protocol_changes(
        protocol or Protocol(), changes, project="pallets", compared=compared, reason=reason
    )


def ev(
    split: str,
    at: float,
    metrics: dict[str, float] | None = None,
    per_class: dict[str, float] | None = None,
    latency: float | None = None,
    device: str | None = None,
    digest: str | None = None,
) -> Evaluation:
    return Evaluation(
        id=f"{split}{at}",
        run_id="r",
        split=split,
        sealed=split == "test",
        created_at=at,
        metrics=metrics or {},
        per_class_ap=per_class or {},
        latency_ms=latency,
        device=device,
        split_digest=digest,
    )


def decision(
    project: str = "p", digest: str | None = "t1", revealed: bool = True, at: float = 1.0
) -> Decision:
    return Decision(
        id=f"d{at}",
        project=project,
        candidate_id="c",
        baseline_id="b",
        verdict="WIN",
        gates=[],
        protocol={},
        test_split_digest=digest,
        revealed=revealed,
        who="x",
        at=at,
    )


# --------------------------------------------------------------------------- values
def test_comparison_value_prefers_the_latest_val_evaluation_with_the_metric() -> None:
    evs = [
        ev("val", 1, {MAP: 0.4}, digest="v1"),
        ev("val", 2, {MAP: 0.5}, digest="v2"),
        ev("val", 3, {"other": 0.9}),
        ev("test", 4, {MAP: 0.99}),
    ]
    assert rules.comparison_value(evs, MAP, 0.7) == (0.5, rules.VAL_SOURCE, "v2")


def test_comparison_value_falls_back_to_the_series_best_then_none() -> None:
    assert rules.comparison_value([ev("val", 1, {MAP: float("nan")})], MAP, 0.7) == (
        0.7,
        rules.SERIES_SOURCE,
        None,
    )
    assert rules.comparison_value([], MAP, None) == (None, rules.SERIES_SOURCE, None)


def test_per_class_ap_from_the_latest_val_evaluation_that_has_some() -> None:
    evs = [ev("val", 1, per_class={"a": 0.5, "b": float("nan")}), ev("val", 2, {MAP: 0.1})]
    assert rules.per_class_ap(evs) == {"a": 0.5}
    assert rules.per_class_ap([]) == {}


def latency_of(evs: list[Evaluation], device: str | None) -> float | None:
    found = rules.latency_evaluation(evs, device)
    assert found is not None
    return found.latency_ms


def test_latency_prefers_the_target_device() -> None:
    evs = [ev("val", 1, latency=4.0, device=" Jetson-Orin-NX "), ev("val", 2, latency=1.0, device="a100")]
    assert latency_of(evs, "jetson-orin-nx") == 4.0
    assert latency_of(evs, "other") == 1.0
    assert latency_of(evs, None) == 1.0
    assert rules.latency_evaluation([ev("val", 1)], "x") is None
    nan = [ev("val", 1, latency=3.0, device="a"), ev("val", 2, latency=float("nan"), device="x")]
    assert latency_of(nan, "x") == 3.0


# --------------------------------------------------------------------------- comparing
def test_val_comparability() -> None:
    assert rules.val_comparability({"a": "v1", "b": "v1"}) == (True, [])
    ok, warnings = rules.val_comparability({"a": None, "b": None})
    assert ok and "assumes" in warnings[0]
    assert rules.val_comparability({"a": None}) == (True, [])
    ok, warnings = rules.val_comparability({"a": "v1" * 10, "b": "v2" * 10})
    assert not ok and "not comparable" in warnings[0] and "evaluate all of them on one" in warnings[0]
    ok, warnings = rules.val_comparability({"a": "v1", "b": None})
    assert not ok and "b on an unknown val split" in warnings[0]


def test_differing_config() -> None:
    configs = {
        "a": {"lr0": 0.01, "imgsz": 640},
        "b": {"lr0": 0.01, "imgsz": 1024},
        "c": {"lr0": 0.001, "imgsz": 640, "mosaic": 0},
    }
    assert rules.differing_config(configs) == {
        "imgsz": {"a": 640, "b": 1024, "c": 640},
        "lr0": {"a": 0.01, "b": 0.01, "c": 0.001},
        "mosaic": {"a": None, "b": None, "c": 0},
    }
    assert rules.differing_config({"a": {"x": 1}}) == {}
    assert rules.differing_config({"a": {"x": 1}, "b": {"x": 1}}) == {}


# --------------------------------------------------------------------------- reveals
def test_reveals_count_per_known_split_across_projects_and_unknown_per_project() -> None:
    ds = [
        decision("p", "t1"),
        decision("q", "t1", at=2),
        decision("p", "t1", revealed=False, at=3),
        decision("p", None, at=4),
        decision("q", None, at=5),
        decision("p", "t2", at=6),
    ]
    assert rules.reveals_used(ds, "t1", "p") == 2
    assert rules.reveals_used(ds, None, "p") == 1
    assert rules.reveals_used(ds, "t9", "p") == 0
    assert rules.reveals_by_split(ds, "p") == {"t1": 2, None: 1, "t2": 1}
    assert rules.reveals_by_split(ds, "zzz") == {}
    burned = rules.burned_splits({"t1": 2, "t2": 1}, 2, "p")
    assert [(b.kind, b.run) for b in burned] == [("burned_test_split", None)]


# --------------------------------------------------------------------------- protocol fields
def test_every_settable_field_has_a_check() -> None:
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
def test_good_values_are_normalised(field: str, value: float | int | str, stored: float | int | str) -> None:
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
        ("test_budget", True, "protocol test_budget must be a whole number from 1 to 1000, got True"),
        ("convergence_target", None, "protocol convergence_target must be a number"),
        ("naming_pattern", None, "is not a regular expression"),
        ("colour", "red", "unknown protocol field colour; settable: metric, direction"),
    ],
)
def test_bad_values_name_the_field(field: str, value: bool | float | int | str | None, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        rules.check_protocol_field(field, value)


def test_the_first_bad_field_is_the_one_reported() -> None:
    with pytest.raises(InvalidInput, match="noise"):
        change({"device": "x", "noise": -1, "test_budget": 0})


def test_unknown_fields_are_all_named_before_any_check() -> None:
    with pytest.raises(InvalidInput, match=re.escape("unknown protocol field(s) a, b")):
        change({"a": 1, "noise": -1, "b": 2})


def test_protocol_changes_are_checked_and_completed() -> None:
    p = Protocol()
    out = rules.check_protocol_changes(p, {"metric": "map50"}, project="x", compared=False, reason=None)
    assert out == {"metric": "metrics/mAP50(B)", "direction": "max"}
    out = rules.check_protocol_changes(
        p, {"metric": "val/box_loss"}, project="x", compared=False, reason=None
    )
    assert out["direction"] == "min"
    out = rules.check_protocol_changes(
        p, {"metric": "val/box_loss", "direction": "max"}, project="x", compared=False, reason=None
    )
    assert out["direction"] == "max"
    assert rules.check_protocol_changes(p, {"metric": MAP}, project="x", compared=True, reason=None) == {
        "metric": MAP
    }


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"metric": "lr/pg0"}, "no better direction"),
        ({"metric": " "}, "metric key"),
        ({"direction": "up"}, "'max' or 'min'"),
        ({"noise": -0.1}, "noise must be a number >= 0"),
        ({"noise": float("inf")}, "noise"),
        ({"class_floor": 0}, "class_floor"),
        ({"class_floor": 1.5}, "class_floor"),
        ({"latency_budget_ms": 0}, "latency_budget_ms must be a number > 0"),
        ({"test_budget": 0}, "test_budget"),
        ({"test_budget": 2.5}, "test_budget"),
        ({"device": ""}, "device"),
        ({"naming_pattern": "(unclosed"}, "not a regular expression"),
        ({"convergence_target": "high"}, "convergence_target"),
        ({"bogus": 1}, "unknown protocol field"),
    ],
)
def test_bad_protocol_values_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        rules.check_protocol_changes(Protocol(), changes, project="x", compared=False, reason=None)


def test_metric_change_after_comparison_needs_a_reason() -> None:
    with pytest.raises(InvalidInput, match="needs a reason") as err:
        rules.check_protocol_changes(
            Protocol(), {"metric": "map50"}, project="pallets", compared=True, reason="  "
        )
    assert "trialbook project set pallets --metric metrics/mAP50(B) --reason" in str(err.value)
    rules.check_protocol_changes(
        Protocol(),
        {"metric": "map50"},
        project="pallets",
        compared=True,
        reason="the customer counts boxes at IoU 0.5",
    )
    # other fields need no reason
    rules.check_protocol_changes(Protocol(), {"noise": 0.01}, project="p", compared=True, reason=None)


def test_metric_changes_after_comparison() -> None:
    history = [
        ProtocolChange("p", "metric", "a", "b", None, "x", 1.0),
        ProtocolChange("p", "noise", 0.1, 0.2, None, "x", 5.0),
        ProtocolChange("p", "metric", "b", "c", "why", "x", 6.0),
    ]
    assert rules.metric_changes_after_comparison(history, None) == []
    assert [c.new for c in rules.metric_changes_after_comparison(history, 3.0)] == ["c"]
    problems = rules.metric_change_problems(rules.metric_changes_after_comparison(history, 0.5), "p")
    assert [p.kind for p in problems] == ["metric_changed_after_comparison"] * 2
    assert "reason: why" in problems[1].detail and "none given" in problems[0].detail


# --------------------------------------------------------------------------- metric changes
def test_a_new_metric_takes_its_keys_direction() -> None:
    assert change({"metric": "val/box_loss"}) == {"metric": "val/box_loss", "direction": "min"}
    assert change({"metric": "map50"}, protocol=Protocol(metric="val/box_loss", direction="min")) == {
        "metric": "metrics/mAP50(B)",
        "direction": "max",
    }


def test_a_given_direction_wins() -> None:
    assert change({"metric": "val/box_loss", "direction": "max"})["direction"] == "max"


def test_the_same_metric_again_changes_nothing_else() -> None:
    assert change({"metric": "map50-95"}, compared=True) == {"metric": MAP}


def test_a_metric_without_direction_needs_one() -> None:
    with pytest.raises(InvalidInput, match="give one with --direction max or --direction min"):
        change({"metric": "lr/pg0"})
    assert change({"metric": "lr/pg0", "direction": "max"}) == {"metric": "lr/pg0", "direction": "max"}


def test_changing_the_metric_after_a_comparison_needs_a_reason() -> None:
    with pytest.raises(InvalidInput, match=r"trialbook project set pallets --metric val/box_loss --reason"):
        change({"metric": "val/box_loss"}, compared=True, reason=" ")
    assert change({"metric": "val/box_loss"}, compared=True, reason="the loss is what we ship")["metric"] == (
        "val/box_loss"
    )
    # a direction alone needs none
    assert change({"direction": "min"}, compared=True) == {"direction": "min"}


# --------------------------------------------------------------------------- lint
def record(name: str, *, legacy: bool = False, pinned: bool = True, dataset: str | None = None) -> RunRecord:
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


def kinds(problems: list[rules.Problem]) -> list[str]:
    return [p.kind for p in problems]


def test_lint_a_good_run_with_a_note_finds_nothing() -> None:
    from trialbook.core.entities import Note

    note = Note(run_id="r1", hypothesis="h", change="c", result="r", next="n", text="", updated_at=1.0)
    assert rules.lint_run(record("v1_base"), "finished", note, Protocol().naming_pattern) == []


def test_lint_findings_in_order() -> None:
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


def test_lint_a_legacy_name_is_a_notice_not_a_bad_name() -> None:
    found = rules.lint_run(record("train3", legacy=True), "running", None, Protocol().naming_pattern)
    assert kinds(found) == [rules.LEGACY_NAME]


def test_burned_splits() -> None:
    found = rules.burned_splits({"blake3:" + "a" * 64: 5, "blake3:" + "b" * 64: 2, None: 7}, 5, "pallets")
    assert [p.detail.split()[2] for p in found] == ["aaaaaaaaaaaa", "unknown"]
    assert all(p.kind == rules.BURNED_TEST_SPLIT and p.run is None for p in found)


def run(name: str, **kw: Any) -> RunRecord:
    return RunRecord(id=name, project="p", name=name, status="finished", created_at=0.0, **kw)


def test_lint_run_kinds() -> None:
    pattern = Protocol().naming_pattern
    kinds = [p.kind for p in rules.lint_run(run("train3"), "finished", None, pattern)]
    assert kinds == ["bad_name", "note_debt", "unpinned"]
    bad = rules.lint_run(run("train3"), "finished", None, pattern)[0]
    assert "v3_what_changed" in bad.detail
    legacy = rules.lint_run(run("exp12", legacy_name=True, pinned=True), "running", None, pattern)
    assert [p.kind for p in legacy] == ["legacy_name"]
    note = Note(run_id="v1_x", hypothesis="h")
    assert rules.lint_run(run("v1_x", pinned=True), "finished", note, pattern) == []
    unpinned = rules.lint_run(run("v1_x", dataset="pallets:v1"), "failed", None, pattern)
    assert [p.kind for p in unpinned] == ["unpinned"] and "claimed pallets:v1" in unpinned[0].detail
    assert unpinned[0].to_dict() == {
        "project": "p",
        "run": "v1_x",
        "kind": "unpinned",
        "detail": unpinned[0].detail,
    }


# --------------------------------------------------------------------------- stored decisions
def stored(cand_val: str | None, base_val: str | None) -> tuple[DecisionResult, DecisionResult]:
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
def test_a_stored_decision_keeps_its_comparability(cand_val: str | None, base_val: str | None) -> None:
    result, again = stored(cand_val, base_val)
    assert again.comparable is result.comparable
    assert again.verdict == result.verdict
    assert [g.to_dict() for g in again.gates] == [g.to_dict() for g in result.gates]
    assert again.metric == MAP and again.direction == "max"


def test_a_stored_decision_renders_like_the_live_one() -> None:
    proto = Protocol(latency_budget_ms=5.0, device="d", test_budget=3)
    result = decide(
        DecisionInputs(
            candidate="v2_x",
            baseline="v1_x",
            protocol=proto,
            candidate_value=0.6,
            baseline_value=0.5,
            candidate_val_digest="v",
            baseline_val_digest="v",
            candidate_per_class={"a": 0.5},
            baseline_per_class={"a": 0.5},
            candidate_test_value=0.55,
            candidate_test_digest="t",
            pinned_test_digest="t",
            test_reveals_used=1,
            candidate_latency_ms=4.0,
            candidate_device="d",
        )
    )
    stored = Decision(
        id="x",
        project="p",
        candidate_id="c",
        baseline_id="b",
        verdict=result.verdict,
        gates=[g.to_dict() for g in result.gates],
        protocol=result.protocol,
        test_split_digest=result.test_split_digest,
        revealed=result.revealed,
        who="w",
        at=1.0,
    )
    again = rules.result_from_record(stored, "v2_x", "v1_x")
    assert again.test_reveals_used == result.test_reveals_used == 2
    assert again.comparable and again.burned is False
    assert render_decision_text(again) == render_decision_text(result)


# --------------------------------------------------------------------------- classes of a decision
def _version(val_digest: str = "val1") -> Any:
    from trialbook.core.entities import DatasetVersion

    classes = [{"id": 0, "name": "pallet", "images": 3, "instances": 5}, {"id": 1, "name": "crate"}]
    return DatasetVersion(
        digest="d" * 64,
        name="pallets",
        created_at=0.0,
        class_names=["pallet", "crate", "barrel"],
        splits={"val": {"digest": val_digest, "classes": classes}},
    )


def _per_class_eval(digest: str | None, names: list[str] | None = None) -> Evaluation:
    return Evaluation(
        id="e1",
        run_id="r1",
        split="val",
        sealed=False,
        created_at=0.0,
        per_class_ap={"pallet": 0.5},
        class_names=names,
        split_digest=digest,
    )


def test_dataset_classes_come_from_the_pinned_version_on_its_val_split() -> None:
    names, counts = rules.dataset_classes(_version(), _per_class_eval("val1", ["x"]))
    assert names == ("pallet", "crate", "barrel")  # the version's, before the evaluation's
    assert counts == {"pallet": 5, "crate": 0}  # a class without a count has none
    # measured on an unknown split: the pinned one is assumed
    assert rules.dataset_classes(_version(), _per_class_eval(None))[1] == {"pallet": 5, "crate": 0}


def test_dataset_classes_on_another_split_or_without_a_version() -> None:
    names, counts = rules.dataset_classes(_version(), _per_class_eval("val2"))
    assert names == ("pallet", "crate", "barrel") and counts is None
    assert rules.dataset_classes(None, _per_class_eval("val1", ["pallet", "box"])) == (
        ("pallet", "box"),
        None,
    )
    assert rules.dataset_classes(None, None) == ((), None)
