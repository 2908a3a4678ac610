"""QueryStore: the runs table's lines, ranked and filtered pages, counts, sparklines."""

from __future__ import annotations

import math
import time
import uuid
from typing import Any

import pytest

from support.runs import LOSS, MAP, make_run
from trialbook.core.entities import RunRecord
from trialbook.errors import InvalidInput, NotFound
from trialbook.store import Store


def make(
    store: Store,
    name: str,
    *,
    project: str = "pallets",
    best: float | None = None,
    status: str = "finished",
    heartbeat: float | None = None,
    dataset: str | None = "pallets:v1",
    tags: dict[str, str] | None = None,
    parent: str | None = None,
    created: float = 0.0,
    epochs: int = 10,
) -> RunRecord:
    store.ensure_project(project)
    now = time.time()
    run = store.create_run(
        RunRecord(
            id=uuid.uuid4().hex,
            project=project,
            name=name,
            status=status,
            created_at=1000.0 + created,
            heartbeat_at=heartbeat if heartbeat is not None else now,
            dataset=dataset,
            pinned=dataset is not None,
            tags=tags or {},
            parent_id=parent,
        )
    )
    if best is not None:
        store.log_batch(
            run.id,
            {
                MAP: {e: best * (e + 1) / epochs for e in range(epochs)},
                LOSS: {e: 2.0 - best * e / epochs for e in range(epochs)},
            },
        )
    return run


@pytest.fixture
def filled(store: Store) -> Store:
    make(store, "v1_base", best=0.5, created=1, tags={"sweep": "a"})
    make(store, "v2_big", best=0.7, created=2, tags={"sweep": "b", "gpu": "1"}, dataset="pallets:v2")
    make(store, "v3_50%_off", best=0.6, created=3, dataset=None)
    make(store, "v4_none", created=4)  # no values at all
    make(store, "v5_live", best=0.2, created=5, status="running")
    make(store, "v6_gone", best=0.3, created=6, status="running", heartbeat=time.time() - 3600)
    make(store, "v1_elsewhere", project="other", best=0.9)
    return store


def names(page: Any) -> list[str]:
    return [r.name for r in page.runs]


def test_ranked_page_with_nulls_last_and_count(filled: Store) -> None:
    page = filled.runs_page("pallets", MAP, "max")
    assert page.total == 6
    assert names(page) == ["v2_big", "v3_50%_off", "v1_base", "v6_gone", "v5_live", "v4_none"]
    assert page.summaries[page.runs[0].id].best == pytest.approx(0.7)
    assert page.runs[-1].id not in page.summaries
    low = filled.runs_page("pallets", LOSS, "min")  # lower is better, still NULLs last
    assert names(low) == ["v2_big", "v3_50%_off", "v1_base", "v6_gone", "v5_live", "v4_none"]
    second = filled.runs_page("pallets", MAP, "max", offset=2, limit=2)
    assert names(second) == ["v1_base", "v6_gone"] and second.total == 6
    across = filled.runs_page("pallets", MAP, "max", offset=4, limit=2)  # ranked, then unranked
    assert names(across) == ["v5_live", "v4_none"]
    past = filled.runs_page("pallets", MAP, "max", offset=5, limit=5)  # only unranked ones left
    assert names(past) == ["v4_none"] and past.total == 6
    assert names(filled.runs_page("pallets", MAP, "max", offset=6)) == []
    asc = filled.runs_page("pallets", MAP, "max", sort="best", descending=False)
    assert names(asc) == ["v5_live", "v6_gone", "v1_base", "v3_50%_off", "v2_big", "v4_none"]
    by_name = filled.runs_page("pallets", MAP, "max", sort="name", descending=True)
    assert names(by_name)[0] == "v6_gone"
    newest = filled.runs_page("pallets", MAP, "max", sort="created", descending=True, limit=1)
    assert names(newest) == ["v6_gone"]


def test_filters(filled: Store) -> None:
    stale = time.time() - 60
    running = filled.runs_page("pallets", MAP, "max", statuses=["running"], stale_before=stale)
    assert names(running) == ["v5_live"]
    crashed = filled.runs_page("pallets", MAP, "max", statuses=["crashed"], stale_before=stale)
    assert names(crashed) == ["v6_gone"]
    both = filled.runs_page("pallets", MAP, "max", statuses=["running", "crashed"], stale_before=stale)
    assert both.total == 2
    assert filled.runs_page("pallets", MAP, "max", statuses=["finished"]).total == 4
    assert names(filled.runs_page("pallets", MAP, "max", dataset="pallets:v2")) == ["v2_big"]
    assert names(filled.runs_page("pallets", MAP, "max", dataset="")) == ["v3_50%_off"]
    assert names(filled.runs_page("pallets", MAP, "max", tag="gpu")) == ["v2_big"]
    assert names(filled.runs_page("pallets", MAP, "max", tag="sweep=a")) == ["v1_base"]
    assert filled.runs_page("pallets", MAP, "max", tag="sweep=c").total == 0
    assert names(filled.runs_page("pallets", MAP, "max", text="50%")) == ["v3_50%_off"]
    assert names(filled.runs_page("pallets", MAP, "max", text="V1_")) == ["v1_base"]
    assert filled.runs_page("pallets", MAP, "max", text="_").total == 6  # no wildcard
    with pytest.raises(InvalidInput, match="sort"):
        filled.runs_page("pallets", MAP, "max", sort="nope")
    with pytest.raises(InvalidInput, match="limit"):
        filled.runs_page("pallets", MAP, "max", limit=0)
    with pytest.raises(NotFound):
        filled.runs_page("nope", MAP, "max")


def test_counts_names_children_datasets(filled: Store) -> None:
    base = filled.get_run("pallets", "v1_base")
    child = make(filled, "v7_child", parent=base.id, created=7)
    filled.set_note(base.id, {"hypothesis": "something"}, who="t")
    filled.set_note(child.id, {"hypothesis": "   "}, who="t")  # blank: still note debt
    counts = filled.project_counts(time.time() - 60)
    assert counts["pallets"].runs == 7 and counts["pallets"].running == 1
    assert counts["pallets"].note_debt == 4  # v2, v3, v4, v7: finished without a written note
    assert counts["other"].runs == 1 and counts["other"].note_debt == 1
    filled.create_project("empty")
    assert filled.project_counts()["empty"].runs == 0
    got = filled.get_runs_by_name("pallets", ["v2_big", "v9_missing", "v1_base"])
    assert [r.name for r in got] == ["v2_big", "v1_base"]
    assert filled.run_names([base.id, child.id, "nope"]) == {base.id: "v1_base", child.id: "v7_child"}
    assert filled.run_names([]) == {}
    assert [r.name for r in filled.child_runs(base.id)] == ["v7_child"]
    assert filled.project_datasets("pallets") == ["pallets:v1", "pallets:v2"]


def test_sparklines_and_history_since(store: Store) -> None:
    run = make(store, "v1_long", best=0.8, epochs=300)
    short = make(store, "v2_short", best=0.4, epochs=5)
    store.log_batch(short.id, {MAP: {5: math.nan}})
    lines = store.sparklines([run.id, short.id], MAP, 48)
    assert 48 <= len(lines[run.id]) <= 96
    assert lines[run.id][-1][0] == 299 and lines[run.id][0][0] == 0
    assert [e for e, _ in lines[short.id]] == [0, 1, 2, 3, 4, 5] and math.isnan(lines[short.id][-1][1])
    since = store.history_since([run.id, short.id], [MAP], 297)
    assert [e for e, _ in since[run.id][MAP]] == [298, 299] and since[short.id] == {}
    assert store.series_keys([run.id, short.id]) == [MAP, LOSS] and store.series_keys([]) == []
    every = store.history_since([short.id])
    assert sorted(every[short.id]) == [MAP, LOSS] and len(every[short.id][MAP]) == 6


def test_run_rows_carry_one_series_summary_parent_and_note_state(store: Store) -> None:
    a = make_run(store, "v1_a")
    b = make_run(store, "v2_b", parent_id=a.id)
    c = make_run(store, "v3_c")
    store.log_batch(a.id, [(MAP, 0, 0.2), (MAP, 1, 0.4), ("train/box_loss", 0, 1.0)])
    store.log_batch(b.id, [(MAP, 0, 0.5)])
    store.set_note(a.id, {"hypothesis": "h"}, who="ana")
    store.set_note(c.id, {"result": "   "}, who="ana")  # only blanks: still note debt
    rows = {r.name: r for r in store.run_rows("pallets", MAP)}
    assert (rows["v1_a"].best, rows["v1_a"].best_epoch, rows["v1_a"].count) == (0.4, 1, 2)
    assert rows["v2_b"].parent_name == "v1_a" and rows["v2_b"].final == 0.5
    assert rows["v3_c"].best is None and rows["v3_c"].count == 0
    assert (rows["v1_a"].has_note, rows["v2_b"].has_note, rows["v3_c"].has_note) == (True, False, False)
    with pytest.raises(NotFound):
        store.run_rows("nope", MAP)


def test_run_rows_are_oldest_first_and_blank_means_ascii_whitespace(store: Store) -> None:
    tab = make_run(store, "v2_tab", created_at=2.0)
    nbsp = make_run(store, "v1_nbsp", created_at=1.0)
    store.set_note(tab.id, {"hypothesis": "\n\t", "text": "\r\f\v "}, who="ana")
    store.set_note(nbsp.id, {"next": "\u00a0"}, who="ana")  # a no-break space is text
    rows = store.run_rows("pallets", MAP)
    assert [(r.name, r.has_note) for r in rows] == [("v1_nbsp", True), ("v2_tab", False)]
    for run in (tab, nbsp):
        store.set_run_status(run.id, "finished")
    assert store.project_counts()["pallets"].note_debt == 1
