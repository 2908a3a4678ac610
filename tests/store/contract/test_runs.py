"""RunStore: runs unique per project, lookups, status, lineage."""

from __future__ import annotations

import uuid

import pytest

from support.runs import make_run
from trialbook.core.entities import RunRecord
from trialbook.errors import Conflict, InvalidInput, NotFound
from trialbook.store import Store


def test_runs_unique_per_project(store: Store) -> None:
    r = make_run(store, config={"lr0": 0.01, "model.name": "yolo11n"}, env={"python": "3.11"})
    assert store.get_run("pallets", "v1_base").config == {"lr0": 0.01, "model.name": "yolo11n"}
    with pytest.raises(Conflict, match="already has a run named 'v1_base'"):
        make_run(store)
    make_run(store, project="other")  # same name, other project: fine
    assert len(store.find_runs("v1_base")) == 2
    assert [x.name for x in store.list_runs("pallets")] == ["v1_base"]
    store.set_run_status(r.id, "finished", ended_at=123.0)
    got = store.get_run_by_id(r.id)
    assert got.status == "finished" and got.ended_at == 123.0
    with pytest.raises(InvalidInput):
        store.set_run_status(r.id, "done")
    with pytest.raises(NotFound):
        store.set_run_status("f" * 32, "failed")


def test_a_run_is_stored_as_given_and_its_id_is_its_own(store: Store) -> None:
    store.ensure_project("pallets")
    run = RunRecord(
        id=uuid.uuid4().hex,
        project="pallets",
        name="v1_base",
        status="running",
        created_at=10.0,
        heartbeat_at=11.0,
        dataset="pallets:v1",
        pinned=True,
        split_digests={"val": "a" * 64},
        tags={"sweep": "a"},
        legacy_name=True,
    )
    assert store.create_run(run) == run
    with pytest.raises(Conflict, match="is already taken"):
        store.create_run(
            RunRecord(id=run.id, project="pallets", name="v2_other", status="running", created_at=1.0)
        )
    with pytest.raises(NotFound, match="no project named 'nope'"):
        store.create_run(
            RunRecord(id=uuid.uuid4().hex, project="nope", name="v1", status="running", created_at=1.0)
        )
    with pytest.raises(NotFound):
        store.get_run("pallets", "v9_missing")
    with pytest.raises(NotFound):
        store.get_run_by_id("0" * 32)
    with pytest.raises(NotFound):
        store.list_runs("nope")
    assert store.find_runs("v9_missing") == []


def test_runs_are_listed_oldest_first_and_status_keeps_the_heartbeat(store: Store) -> None:
    make_run(store, "v2_late", created_at=20.0)
    early = make_run(store, "v1_early", created_at=10.0, heartbeat_at=12.0)
    make_run(store, "v1_elsewhere", project="other", created_at=15.0)
    assert [r.name for r in store.list_runs("pallets")] == ["v1_early", "v2_late"]
    assert [r.name for r in store.list_runs()] == ["v1_early", "v1_elsewhere", "v2_late"]
    store.set_run_status(early.id, "finished", ended_at=30.0)
    assert store.get_run_by_id(early.id).heartbeat_at == 12.0  # not given: kept
    store.set_run_status(early.id, "running", heartbeat_at=40.0)  # resumed: no end
    got = store.get_run_by_id(early.id)
    assert (got.status, got.ended_at, got.heartbeat_at) == ("running", None, 40.0)


def test_lookups_by_name_and_lineage(store: Store) -> None:
    parent = make_run(store, "v1_base", created_at=1.0)
    b = make_run(store, "v2_b", parent_id=parent.id, created_at=3.0)
    a = make_run(store, "v2_a", parent_id=parent.id, created_at=2.0)
    got = store.get_runs_by_name("pallets", ["v2_b", "v9_missing", "v1_base", "v2_b"])
    assert [r.name for r in got] == ["v2_b", "v1_base"]
    with pytest.raises(NotFound):
        store.get_runs_by_name("nope", ["v1_base"])
    assert [r.id for r in store.child_runs(parent.id)] == [a.id, b.id]
    assert store.child_runs(b.id) == [] and store.child_runs("0" * 32) == []
    assert store.run_names([a.id, "nope", a.id]) == {a.id: "v2_a"}
