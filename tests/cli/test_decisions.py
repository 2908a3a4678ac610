"""decide end to end through the CLI: each gate failing alone, WIN, the stored decision,
reveals counted against the test split, and the split burned past the budget; ship: a
WIN decision or --force --reason, one shipped run per project, with history."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from support.cli import CLI, as_json
from support.runs import DEVICE, DIGESTS, MAP, TEST_B, VAL_B, add_run, set_protocol
from trialbook.api import Book
from trialbook.core.entities import DatasetVersion, Evaluation

BASE: dict[str, Any] = {"val": 0.50, "per_class": {"pallet": 0.40, "box": 0.60}, "test": 0.49, "latency": 4.0}
CAND: dict[str, Any] = {"val": 0.56, "per_class": {"pallet": 0.52, "box": 0.61}, "test": 0.55, "latency": 4.5}


def candidate_and_baseline(book: Book, budget: bool = True, **cand: Any) -> None:
    """v1_base and its child v2_cand (``cand`` changes the candidate's values)."""
    if budget:
        set_protocol(book, latency_budget_ms=8.0, device=DEVICE)
    add_run(book, "v1_base", curve=[0.3, 0.5], **BASE)
    add_run(book, "v2_cand", parent="v1_base", curve=[0.3, 0.56], **{**CAND, **cand})


def gates(out: Any) -> dict[str, Any]:
    return {g["gate"]: g for g in out["gates"]}


def test_win_end_to_end(tb: CLI, sqlite_book: Book) -> None:
    candidate_and_baseline(sqlite_book)
    result = tb("decide", "v2_cand", "--baseline", "v1_base", "--json")
    out = as_json(result)
    for key in ("candidate", "baseline", "verdict", "gates", "test_reveals_used", "test_budget"):
        assert key in out
    assert out["candidate"] == "v2_cand" and out["baseline"] == "v1_base"
    assert out["verdict"] == "WIN" and out["test_reveals_used"] == 1 and out["test_budget"] == 5
    assert [g["gate"] for g in out["gates"]] == ["improvement", "per_class", "test_set", "latency"]
    assert all(g["passed"] and g["detail"] for g in out["gates"])
    assert "(val evaluation)" in gates(out)["improvement"]["detail"]
    stored = as_json(tb("decisions", "--json"))["decisions"]
    assert len(stored) == 1 and stored[0]["id"] == out["id"] and stored[0]["verdict"] == "WIN"
    assert stored[0]["protocol"]["latency_budget_ms"] == 8.0  # the protocol snapshot
    assert stored[0]["test_reveals_used"] == 1 and stored[0]["revealed"] is True
    assert out["recorded_before"] is False
    # deciding again on the same evidence is the decision already recorded: no second reveal
    human = tb("decide", "v2_cand", "--baseline", "v1_base").stdout
    assert human.startswith(f"Already decided: this is decision {out['id'][:12]}, recorded ")
    assert "by tester" in human and "nothing was revealed or counted again" in human
    assert "trialbook decisions --run v2_cand" in human
    assert "Verdict:   WIN" in human and "Candidate: v2_cand" in human
    assert "1 of 5 reveals used" in human
    assert "Verdict:   WIN" in tb("decisions", "--run", "v2_cand").stdout
    assert len(as_json(tb("decisions", "--json"))["decisions"]) == 1


@pytest.mark.parametrize(
    "change, gate, words",
    [
        ({"val": 0.503}, "improvement", "better by only"),
        ({"val": 0.45}, "improvement", "worse by"),
        ({"per_class": {"pallet": 0.52, "box": 0.50}}, "per_class", "box 0.5000 vs baseline 0.6000"),
        ({"per_class": {"pallet": 0.52}}, "per_class", "box missing in the candidate"),
        ({"test": None}, "test_set", "has no test-split evaluation"),
        ({"test": 0.40}, "test_set", "worse by 0.0900"),
        (
            {"latency": 9.5},
            "latency",
            "latency 9.5 ms on jetson-orin-nx (the val evaluation's per-image speed; a dedicated "
            "measurement is better) is over the budget of 8.0 ms by 1.5 ms",
        ),
        ({"latency": None}, "latency", "is not measured"),
    ],
)
def test_each_gate_failing_alone(
    tb: CLI, sqlite_book: Book, change: dict[str, Any], gate: str, words: str
) -> None:
    candidate_and_baseline(sqlite_book, **change)
    result = tb("decide", "v2_cand", "--baseline", "v1_base", "--json")  # exit 0: an answer
    out = as_json(result)
    assert out["verdict"] == "MORE_EXPERIMENTS"
    failed = [g["gate"] for g in out["gates"] if not g["passed"]]
    assert failed == [gate]
    assert words in gates(out)[gate]["detail"]
    human = tb("decide", "v2_cand", "--baseline", "v1_base").stdout
    assert f"MORE EXPERIMENTS (failed: {gate})" in human


def test_an_unset_latency_budget_says_how_to_set_it(tb: CLI, sqlite_book: Book) -> None:
    candidate_and_baseline(sqlite_book, budget=False)
    out = as_json(tb("decide", "v2_cand", "--baseline", "v1_base", "--json"))
    detail = gates(out)["latency"]["detail"]
    assert "no latency budget set" in detail
    assert "trialbook project set pallets --latency-budget MS --device NAME" in detail


def test_different_val_splits_fail_improvement(tb: CLI, sqlite_book: Book) -> None:
    set_protocol(sqlite_book, latency_budget_ms=8.0, device=DEVICE)
    add_run(sqlite_book, "v1_base", **BASE)
    add_run(sqlite_book, "v2_cand", digests={**DIGESTS, "val": VAL_B}, **CAND)
    out = as_json(tb("decide", "v2_cand", "--baseline", "v1_base", "--json"))
    assert out["comparable"] is False
    assert "not comparable" in gates(out)["improvement"]["detail"]


def test_values_from_the_series_are_labelled(tb: CLI, sqlite_book: Book) -> None:
    set_protocol(sqlite_book, latency_budget_ms=8.0, device=DEVICE)
    add_run(sqlite_book, "v1_base", curve=[0.3, 0.5], per_class=BASE["per_class"], test=0.49)
    add_run(sqlite_book, "v2_cand", curve=[0.4, 0.6], per_class=CAND["per_class"], test=0.55, latency=4.0)
    out = as_json(tb("decide", "v2_cand", "--baseline", "v1_base", "--json"))
    assert "(best of the per-epoch series)" in gates(out)["improvement"]["detail"]
    assert out["verdict"] == "WIN"


def test_a_latency_measured_only_on_the_test_split_is_used_once_revealed(tb: CLI, sqlite_book: Book) -> None:
    candidate_and_baseline(sqlite_book, latency=None, test_latency=5.0)
    out = as_json(tb("decide", "v2_cand", "--baseline", "v1_base", "--json"))
    assert gates(out)["latency"]["passed"] and "latency 5.0 ms" in gates(out)["latency"]["detail"]


def new_test_evaluation(book: Book, run: str, value: float, digest: str = DIGESTS["test"]) -> str:
    """A new sealed test evaluation of ``run`` (new evidence for a decision); its id."""
    record = book.run(run)
    ev = Evaluation(
        id=uuid.uuid4().hex,
        run_id=record.id,
        split="test",
        sealed=True,
        created_at=time.time() + 10,
        metrics={MAP: value},
        split_digest=digest,
    )
    book.store.add_evaluation(ev)
    return ev.id


def test_reveals_are_counted_and_the_split_burns(tb: CLI, sqlite_book: Book) -> None:
    candidate_and_baseline(sqlite_book)
    tb("project", "set", "pallets", "--test-budget", "2")
    first = as_json(tb("decide", "v2_cand", "--baseline", "v1_base", "--json"))
    assert first["test_reveals_used"] == 1 and first["revealed"] is True
    burned = [p for p in as_json(tb("lint", "--json"))["problems"] if p["kind"] == "burned_test_split"]
    assert burned == []
    new_test_evaluation(sqlite_book, "v2_cand", 0.551)  # new evidence: a new decision
    second = as_json(tb("decide", "v2_cand", "--baseline", "v1_base", "--json"))
    assert second["test_reveals_used"] == 2 and second["burned"] is True
    assert second["verdict"] == "WIN"  # the last reveal still decides
    new_test_evaluation(sqlite_book, "v2_cand", 0.552)
    third = as_json(tb("decide", "v2_cand", "--baseline", "v1_base", "--json"))
    assert third["verdict"] == "MORE_EXPERIMENTS" and third["revealed"] is False
    test_gate = gates(third)["test_set"]
    assert "is burned (2 of 2 reveals used); tag a new test split" in test_gate["detail"]
    assert "0.55" not in test_gate["detail"]  # nothing revealed past the budget
    problems = as_json(tb("lint", "--json"))["problems"]
    burned = [p for p in problems if p["kind"] == "burned_test_split"]
    assert len(burned) == 1 and burned[0]["run"] is None and "c" * 12 in burned[0]["detail"]
    shown = as_json(tb("project", "show", "pallets", "--json"))
    assert shown["test_splits"] == [
        {
            "project": "pallets",
            "digest": DIGESTS["test"],
            "short": DIGESTS["test"][:12],
            "reveals_used": 2,
            "test_budget": 2,
            "burned": True,
        }
    ]
    assert len(as_json(tb("decisions", "--json"))["decisions"]) == 3
    # another test split has its own budget
    add_run(
        sqlite_book, "v3_new_test", curve=[0.6], digests={**DIGESTS, "test": TEST_B}, **{**CAND, "val": 0.6}
    )
    fresh = as_json(tb("decide", "v3_new_test", "--baseline", "v1_base", "--json"))
    assert fresh["test_reveals_used"] == 1 and fresh["revealed"] is True
    assert fresh["test_split_digest"] == TEST_B
    assert "another test split" in gates(fresh)["test_set"]["detail"]


def test_decide_errors(tb: CLI, sqlite_book: Book) -> None:
    candidate_and_baseline(sqlite_book)
    add_run(sqlite_book, "v1_other", project="other")
    assert "same run" in tb("decide", "v2_cand", "--baseline", "v2_cand", code=1).stderr
    assert "one project" in tb("decide", "v2_cand", "--baseline", "other/v1_other", code=1).stderr
    assert "no run named 'v9_x'" in tb("decide", "v9_x", "--baseline", "v1_base", code=1).stderr
    assert as_json(tb("decisions", "--json"))["decisions"] == []


# --------------------------------------------------------------------------- deciding again
def test_deciding_again_on_the_same_evidence_spends_nothing(tb: CLI, sqlite_book: Book) -> None:
    candidate_and_baseline(sqlite_book)
    first = as_json(tb("decide", "v2_cand", "--baseline", "v1_base", "--json"))
    again = as_json(tb("decide", "v2_cand", "--baseline", "v1_base", "--json"))
    assert (first["recorded_before"], again["recorded_before"]) == (False, True)
    same = ("id", "who", "at", "verdict", "gates", "test_reveals_used", "revealed", "protocol", "text")
    assert {k: again[k] for k in same} == {k: first[k] for k in same}
    shown = as_json(tb("project", "show", "pallets", "--json"))
    assert shown["decisions"] == 1 and shown["test_splits"][0]["reveals_used"] == 1
    # new evidence, each kind: a new decision, revealing again
    new_test_evaluation(sqlite_book, "v2_cand", 0.55)  # the same value, a new evaluation
    second = as_json(tb("decide", "v2_cand", "--baseline", "v1_base", "--json"))
    assert second["recorded_before"] is False and second["id"] != first["id"]
    assert second["test_reveals_used"] == 2
    tb("project", "set", "pallets", "--noise", "0.01")  # a changed protocol
    third = as_json(tb("decide", "v2_cand", "--baseline", "v1_base", "--json"))
    assert third["recorded_before"] is False and third["test_reveals_used"] == 3
    assert third["protocol"]["noise"] == 0.01
    # the other way round is another pair
    swapped = as_json(tb("decide", "v1_base", "--baseline", "v2_cand", "--json"))
    assert swapped["recorded_before"] is False and swapped["test_reveals_used"] == 4
    assert as_json(tb("decide", "v2_cand", "--baseline", "v1_base", "--json"))["id"] == third["id"]
    assert len(as_json(tb("decisions", "--json"))["decisions"]) == 4


def test_a_refused_decision_made_again_is_the_recorded_one(tb: CLI, sqlite_book: Book) -> None:
    candidate_and_baseline(sqlite_book, test=None)
    first = as_json(tb("decide", "v2_cand", "--baseline", "v1_base", "--json"))
    assert first["verdict"] == "MORE_EXPERIMENTS" and first["revealed"] is False
    again = as_json(tb("decide", "v2_cand", "--baseline", "v1_base", "--json"))
    assert again["recorded_before"] is True and again["id"] == first["id"]
    # the test evaluation the gate asked for is new evidence
    new_test_evaluation(sqlite_book, "v2_cand", 0.55)
    now = as_json(tb("decide", "v2_cand", "--baseline", "v1_base", "--json"))
    assert now["recorded_before"] is False and now["revealed"] is True and now["verdict"] == "WIN"


def test_a_win_whose_note_has_a_result_does_not_ask_for_one(tb: CLI, sqlite_book: Book) -> None:
    candidate_and_baseline(sqlite_book)
    sqlite_book.store.set_note(sqlite_book.run("v2_cand").id, {"result": "mAP 0.50 -> 0.56"}, who="tester")
    human = tb("decide", "v2_cand", "--baseline", "v1_base").stdout
    assert "Next:      ship it (trialbook ship v2_cand)\n" in human
    assert "--draft" not in human
    assert "--draft" not in tb("decisions").stdout


# --------------------------------------------------------------------------- per class
def tag_classes(book: Book, instances: dict[str, int]) -> None:
    """Tag pallets:v1 (the runs' pinned version) with these val instances per class."""
    classes = [
        {"id": i, "name": n, "images": k, "instances": k} for i, (n, k) in enumerate(instances.items())
    ]
    version = DatasetVersion(
        digest=DIGESTS["dataset"],
        name="pallets",
        created_at=time.time(),
        class_names=list(instances),
        splits={"val": {"digest": DIGESTS["val"], "classes": classes}, "test": {"digest": DIGESTS["test"]}},
    )
    book.store.add_tagged_version(version, "v1")


def test_a_class_never_detected_fails_the_per_class_gate_by_name(tb: CLI, sqlite_book: Book) -> None:
    set_protocol(sqlite_book, latency_budget_ms=8.0, device=DEVICE)
    add_run(sqlite_book, "v1_base", **{**BASE, "per_class": {"pallet": 0.4, "box": 0.6, "crate": 0.0}})
    cand = {"pallet": 0.52, "box": 0.61, "crate": 0.0}
    add_run(sqlite_book, "v2_cand", parent="v1_base", **{**CAND, "per_class": cand})
    out = as_json(tb("decide", "v2_cand", "--baseline", "v1_base", "--json"))
    assert out["verdict"] == "MORE_EXPERIMENTS"
    detail = gates(out)["per_class"]["detail"]
    assert detail.startswith("1 of 3 classes fail: crate never detected: AP 0 in the candidate")
    human = tb("decide", "v2_cand", "--baseline", "v1_base").stdout
    assert "✗ per_class    1 of 3 classes fail: crate never detected" in human
    assert "  - per_class: look at crate (more or better-labelled data" in human


@pytest.mark.parametrize(("crate_val_instances", "passed"), [(0, True), (4, False)])
def test_the_pinned_version_says_which_classes_can_be_judged(
    tb: CLI, sqlite_book: Book, crate_val_instances: int, passed: bool
) -> None:
    tag_classes(sqlite_book, {"pallet": 12, "box": 9, "crate": crate_val_instances, "barrel": 0})
    set_protocol(sqlite_book, latency_budget_ms=8.0, device=DEVICE)
    add_run(sqlite_book, "v1_base", **{**BASE, "per_class": {"pallet": 0.4, "box": 0.6, "crate": 0.0}})
    cand = {"pallet": 0.52, "box": 0.61, "crate": 0.0}
    add_run(sqlite_book, "v2_cand", parent="v1_base", **{**CAND, "per_class": cand})
    gate = gates(as_json(tb("decide", "v2_cand", "--baseline", "v1_base", "--json")))["per_class"]
    assert gate["passed"] is passed
    if passed:  # no val instance of crate: its AP 0 is not judged, and is said so
        assert gate["detail"].endswith("; not evaluable (no val instances): barrel, crate")
        assert gate["inputs"]["not_evaluable"] == ["barrel", "crate"]
    else:
        assert "crate never detected" in gate["detail"]
        assert gate["detail"].endswith("; not evaluable (no val instances): barrel")


# --------------------------------------------------------------------------- ship
def three_runs(book: Book) -> None:
    """v1_base, v2_better and v3_worse of pallets, with val and test values; v1_z elsewhere."""
    set_protocol(book, latency_budget_ms=8.0, device=DEVICE)
    common: dict[str, Any] = {"per_class": {"pallet": 0.5}, "latency": 4.0}
    add_run(book, "v1_base", val=0.50, test=0.5, **common)
    add_run(book, "v2_better", val=0.60, test=0.6, **common)
    add_run(book, "v3_worse", val=0.40, test=0.4, **common)
    add_run(book, "v1_z", project="other")


def test_ship_needs_a_win(tb: CLI, sqlite_book: Book) -> None:
    three_runs(sqlite_book)
    refused = tb("ship", "v2_better", code=1)
    assert "cannot ship v2_better: it has no decision" in refused.stderr
    assert "trialbook decide v2_better --baseline" in refused.stderr and "--force" in refused.stderr
    tb("decide", "v3_worse", "--baseline", "v1_base")
    lost = tb("ship", "v3_worse", code=1)
    assert "its last decision (against v1_base) was MORE_EXPERIMENTS" in lost.stderr
    no_reason = tb("ship", "v3_worse", "--force", code=1)
    assert "--force needs --reason" in no_reason.stderr
    assert as_json(tb("project", "show", "pallets", "--json"))["shipped"] is None


def test_ship_on_win_then_forced_one_per_project_with_history(tb: CLI, sqlite_book: Book) -> None:
    three_runs(sqlite_book)
    win = as_json(tb("decide", "v2_better", "--baseline", "v1_base", "--json"))
    assert win["verdict"] == "WIN"
    out = as_json(tb("ship", "v2_better", "--json"))
    assert out["run"] == "v2_better" and out["forced"] is False
    assert out["decision_id"] == win["id"] and out["previous"] is None
    again = as_json(tb("ship", "v2_better", "--json"))
    assert again["already_shipped"] is True and len(again["ships"]) == 1
    human = tb("ship", "v3_worse", "--force", "--reason", "rollback: v2 misses night pallets").stdout
    assert "shipped v3_worse" in human and "was v2_better" in human and "forced" in human
    shown = as_json(tb("project", "show", "pallets", "--json"))
    assert shown["shipped"] == "v3_worse"
    assert [(s["run"], s["forced"], s["reason"]) for s in shown["ships"]] == [
        ("v2_better", False, None),
        ("v3_worse", True, "rollback: v2 misses night pallets"),
    ]
    assert all(s["who"] == "tester" for s in shown["ships"])
    assert "rollback: v2 misses night pallets" in tb("project", "show", "pallets").stdout
    # the other project is untouched
    assert as_json(tb("project", "show", "other", "--json"))["shipped"] is None
    report = tb("export", "--project", "pallets", "--format", "md").stdout
    assert "Shipped run: **v3_worse**" in report
