"""DecisionStore: decisions, comparisons and ships."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace

import pytest

from support.runs import make_run
from trialbook.core.entities import Decision
from trialbook.errors import Conflict, NotFound
from trialbook.store import Store


def decision(run_id: str, project: str = "pallets", at: float = 2.0) -> Decision:
    return Decision(
        id=uuid.uuid4().hex,
        project=project,
        candidate_id=run_id,
        baseline_id=run_id,
        verdict="WIN",
        gates=[{"gate": "improvement", "passed": True}],
        protocol={"noise": 0.005},
        test_split_digest="cd" * 32,
        revealed=True,
        who="ana",
        at=at,
    )


def test_decisions_are_kept_as_given(store: Store) -> None:
    r = make_run(store)
    d = decision(r.id)
    store.add_decision(d)
    assert store.list_decisions("pallets") == [d]


def test_decisions_are_listed_oldest_first_and_never_replaced(store: Store) -> None:
    r, o = make_run(store), make_run(store, project="other")
    late, early, elsewhere = decision(r.id, at=5.0), decision(r.id, at=1.0), decision(o.id, "other", 3.0)
    for d in (late, early, elsewhere):
        store.add_decision(d)
    assert store.list_decisions("pallets") == [early, late]
    assert store.list_decisions() == [early, elsewhere, late]
    assert store.list_decisions("nope") == []
    with pytest.raises(Conflict):
        store.add_decision(late)
    with pytest.raises(NotFound, match="no project named 'nope'"):
        store.add_decision(decision(r.id, project="nope"))


def test_a_decision_on_recorded_evidence_is_not_stored_again(store: Store) -> None:
    r, o = make_run(store), make_run(store, project="other")
    evidence, other = "e" * 64, "f" * 64
    assert store.find_decision("pallets", evidence) is None
    first = decision(r.id, at=1.0)
    assert store.add_decision(first, reveal_budget=1, evidence=evidence) == first
    assert store.find_decision("pallets", evidence) == first
    # the same evidence again: the recorded decision back, nothing stored, no budget
    # checked (the one reveal of the budget is spent)
    again = decision(r.id, at=2.0)
    assert store.add_decision(again, reveal_budget=1, evidence=evidence) == first
    assert store.list_decisions("pallets") == [first]
    # other evidence is another decision (here past the budget: refused)
    with pytest.raises(Conflict, match="burned: 1 of 1 reveals"):
        store.add_decision(decision(r.id, at=3.0), reveal_budget=1, evidence=other)
    unrevealing = replace(decision(r.id, at=4.0), revealed=False)
    assert store.add_decision(unrevealing, evidence=other) == unrevealing
    assert store.find_decision("pallets", other) == unrevealing
    # without evidence a decision is stored as before, and never found by one
    plain = decision(r.id, at=5.0)
    assert store.add_decision(plain) == plain
    assert store.list_decisions("pallets") == [first, unrevealing, plain]
    # each read says what it was stored on (a copy of the book stores it the same)
    assert [d.evidence for d in store.list_decisions("pallets")] == [evidence, other, None]
    copied = replace(decision(o.id, project="other", at=6.0), evidence="c" * 64)
    assert store.add_decision(copied).evidence == "c" * 64
    assert store.find_decision("other", "c" * 64) == copied
    # evidence is per project
    assert store.find_decision("other", evidence) is None
    elsewhere = decision(o.id, "other", 6.0)
    assert store.add_decision(elsewhere, evidence=evidence) == elsewhere
    with pytest.raises(NotFound, match="no project named 'nope'"):
        store.find_decision("nope", evidence)


def test_comparisons_are_recorded(store: Store) -> None:
    a, b = make_run(store, "v1_a", status="finished"), make_run(store, "v2_b", status="finished")
    assert store.first_comparison_at("pallets") is None
    store.record_comparison("pallets", [a.id, b.id], "val/box_loss", exploratory=True, who="x")
    assert store.first_comparison_at("pallets") is None  # exploratory compares do not count
    before = time.time()
    store.record_comparison("pallets", [a.id, b.id], "metrics/mAP50-95(B)", exploratory=False, who="x")
    first = store.first_comparison_at("pallets")
    assert first is not None and first >= before - 1
    with pytest.raises(NotFound):
        store.record_comparison("nope", [], "m", exploratory=False, who="x")
    with pytest.raises(NotFound):
        store.first_comparison_at("nope")


def test_ships_keep_history_and_one_shipped_run(store: Store) -> None:
    a, b = make_run(store, "v1_a", status="finished"), make_run(store, "v2_b", status="finished")
    other = make_run(store, "v1_z", project="other", status="finished")
    assert store.list_ships("pallets") == []
    first = store.ship_run("pallets", a.id, decision_id="d1", forced=False, reason=None, who="ana")
    assert first.run_id == a.id and first.decision_id == "d1" and not first.forced
    assert store.get_project("pallets").shipped_run_id == a.id
    store.ship_run("pallets", b.id, decision_id=None, forced=True, reason="hotfix", who="bo")
    assert store.get_project("pallets").shipped_run_id == b.id
    history = store.list_ships("pallets")
    assert [(s.run_id, s.forced, s.reason, s.who) for s in history] == [
        (a.id, False, None, "ana"),
        (b.id, True, "hotfix", "bo"),
    ]
    with pytest.raises(NotFound, match="in project 'pallets'"):
        store.ship_run("pallets", other.id, decision_id=None, forced=True, reason="r", who="x")
    with pytest.raises(NotFound):
        store.list_ships("nope")
