"""``project set`` refuses what it would store wrongly: a comparison metric no run of the
project has logged (once it has runs), a test budget no one can mean."""

from __future__ import annotations

import pytest

import trialbook as tb
from trialbook.api import Book
from trialbook.services import projects

MAP = "metrics/mAP50-95(B)"


def test_a_metric_the_runs_never_logged_is_refused_with_the_known_keys(book: Book) -> None:
    # before any run, a metric is chosen in advance: any well-formed key
    projects.create_project(book, "pallets", {"metric": "metrics/mAP50(B)"})
    with book.start("pallets", "v1_base", allow_unpinned=True) as run:
        run.log({MAP: 0.5, "custom/pallet_recall": 0.7}, epoch=0)
        run.log_eval("val", {"eval/only_here": 0.4})
    with pytest.raises(
        tb.InvalidInput, match=r"'metrics/mAP5O\(B\)' is not a key the runs of project"
    ) as err:
        projects.set_protocol(book, "pallets", {"metric": "metrics/mAP5O(B)"})  # a letter O, not a zero
    assert "custom/pallet_recall" in str(err.value) and MAP in str(err.value)
    for key in ("custom/pallet_recall", "eval/only_here", "map50-95"):
        changed = projects.set_protocol(book, "pallets", {"metric": key}, reason="testing")
        assert changed["protocol"]["metric"] in (key, MAP)
    assert book.store.get_project("pallets").protocol.metric == MAP


@pytest.mark.parametrize("budget", [0, 1001, 99999999999999999999, True, 2.5])
def test_test_budgets_outside_1_to_1000_are_refused(book: Book, budget: object) -> None:
    projects.create_project(book, "pallets")
    with pytest.raises(tb.InvalidInput, match="test_budget must be a whole number from 1 to 1000"):
        projects.set_protocol(book, "pallets", {"test_budget": budget})
    assert book.store.get_project("pallets").protocol.test_budget == 5
