"""core.ranking.rank: best first, no value last, ties in a stated order."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from trialbook.core.entities import RunRecord
from trialbook.core.ranking import rank
from trialbook.core.runs import run_order


@dataclass(frozen=True)
class Item:
    name: str
    value: float | None


def names(items: list[Item]) -> list[str]:
    return [i.name for i in items]


ITEMS = [Item("a", 0.5), Item("b", None), Item("c", 0.7), Item("d", 0.5), Item("e", None), Item("f", 0.1)]


def value(item: Item) -> float | None:
    return item.value


def test_highest_first_for_max_and_for_none() -> None:
    assert names(rank(ITEMS, value, "max")) == ["c", "a", "d", "f", "b", "e"]
    assert names(rank(ITEMS, value, "none")) == ["c", "a", "d", "f", "b", "e"]


def test_lowest_first_for_min_and_no_value_still_last() -> None:
    assert names(rank(ITEMS, value, "min")) == ["f", "a", "d", "c", "b", "e"]


def test_ties_and_missing_values_keep_the_given_order() -> None:
    flipped = list(reversed(ITEMS))
    assert names(rank(flipped, value, "max")) == ["c", "d", "a", "f", "e", "b"]
    assert names(rank(flipped, value, "min")) == ["f", "d", "a", "c", "e", "b"]


def test_a_tiebreak_orders_ties_whatever_the_given_order() -> None:
    by_name = names(rank(list(reversed(ITEMS)), value, "max", tiebreak=lambda i: i.name))
    assert by_name == names(rank(ITEMS, value, "max", tiebreak=lambda i: i.name))
    assert by_name == ["c", "a", "d", "f", "b", "e"]


def test_zero_is_a_value_and_nothing_is_changed_in_place() -> None:
    items = [Item("none", None), Item("zero", 0.0), Item("neg", -1.0)]
    assert names(rank(items, value, "max")) == ["zero", "neg", "none"]
    assert names(rank(items, value, "min")) == ["neg", "zero", "none"]
    assert names(items) == ["none", "zero", "neg"]
    assert rank([], value, "max") == []


@pytest.mark.parametrize("direction", ["max", "min"])
def test_runs_tie_oldest_first_then_by_id_as_the_store_ranks(direction: str) -> None:
    def run(run_id: str, created: float) -> RunRecord:
        return RunRecord(id=run_id, project="p", name=run_id, status="finished", created_at=created)

    runs = [run("b", 2.0), run("c", 1.0), run("a", 2.0), run("d", 3.0)]
    best = {"a": 0.5, "b": 0.5, "c": 0.5, "d": None}
    ranked = rank(runs, lambda r: best[r.id], direction, tiebreak=run_order)
    assert [r.id for r in ranked] == ["c", "a", "b", "d"]
