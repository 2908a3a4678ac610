"""The store contract: the same tests on SQLite and on PostgreSQL."""

from __future__ import annotations

import math
import time
import uuid

import pytest

from trialbook.core.entities import (
    Artifact,
    DatasetVersion,
    Decision,
    Evaluation,
    RunRecord,
)
from trialbook.errors import Conflict, InvalidInput, NotFound

MAP = "metrics/mAP50-95(B)"


def make_run(store, name="v1_base", project="pallets", **kw):
    store.ensure_project(project)
    return store.create_run(
        RunRecord(
            id=uuid.uuid4().hex, project=project, name=name, status="running", created_at=time.time(), **kw
        )
    )


def test_projects_and_protocol_audit(store):
    p = store.create_project("pallets")
    assert p.protocol.metric == MAP and p.protocol.noise == 0.005
    assert p.protocol.class_floor == 0.9 and p.protocol.test_budget == 5
    with pytest.raises(Conflict, match="already exists"):
        store.create_project("pallets")
    assert store.ensure_project("pallets").id == p.id
    store.update_protocol(
        "pallets", {"noise": 0.01, "latency_budget_ms": 8.0}, reason="measured spread", who="ana"
    )
    store.update_protocol("pallets", {"noise": 0.01}, reason="same again", who="ana")  # no-op
    assert store.get_project("pallets").protocol.noise == 0.01
    history = store.protocol_history("pallets")
    assert [(h.field, h.old, h.new) for h in history] == [
        ("noise", 0.005, 0.01),
        ("latency_budget_ms", None, 8.0),
    ]
    assert history[0].reason == "measured spread" and history[0].who == "ana"
    with pytest.raises(InvalidInput, match="bogus"):
        store.update_protocol("pallets", {"bogus": 1}, reason=None, who="ana")
    with pytest.raises(NotFound):
        store.get_project("nope")
    assert [p.name for p in store.list_projects()] == ["pallets"]


def test_runs_unique_per_project(store):
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


def test_log_batch_keeps_summary_on_write(store):
    r = make_run(store)
    store.log_batch(
        r.id,
        [(MAP, e, v) for e, v in enumerate([0.1, 0.3, 0.25])]
        + [("train/box_loss", e, v) for e, v in enumerate([2.0, 1.5, 1.7])],
        heartbeat_at=time.time(),
    )
    s = store.get_summaries([r.id])[r.id]
    assert (s[MAP].best, s[MAP].best_epoch, s[MAP].final, s[MAP].final_epoch) == (0.3, 1, 0.25, 2)
    assert s[MAP].direction == "max" and s["train/box_loss"].direction == "min"
    assert (s["train/box_loss"].best, s["train/box_loss"].best_epoch) == (1.5, 1)
    store.log_batch(r.id, [(MAP, 3, 0.4), (MAP, 4, math.nan)])  # append
    s = store.get_summaries([r.id], [MAP])[r.id][MAP]
    assert (s.best, s.best_epoch, s.final, s.final_epoch, s.count, s.nan_count) == (0.4, 3, 0.4, 3, 5, 1)
    hist = store.get_history([r.id], MAP)[r.id]
    assert [e for e, _ in hist] == [0, 1, 2, 3, 4] and math.isnan(hist[4][1])


def test_relogging_an_epoch_keeps_the_last_value_and_fixes_the_summary(store):
    r = make_run(store)
    store.log_batch(r.id, [(MAP, 0, 0.1), (MAP, 1, 0.9), (MAP, 2, 0.3)])
    store.log_batch(r.id, [(MAP, 1, 0.2), (MAP, 1, 0.25)])  # rewrite: last wins
    s = store.get_summaries([r.id])[r.id][MAP]
    assert (s.best, s.best_epoch, s.count) == (0.3, 2, 3)
    assert store.get_history([r.id], MAP)[r.id] == [(0, 0.1), (1, 0.25), (2, 0.3)]


def test_history_of_several_runs_and_all_keys(store):
    a, b = make_run(store, "v1_a"), make_run(store, "v2_b")
    store.log_batch(a.id, [(MAP, e, e / 10) for e in range(3)] + [("lr/pg0", 0, 0.01)])
    store.log_batch(b.id, [(MAP, e, e / 20) for e in range(2)])
    h = store.get_history([a.id, b.id], MAP)
    assert len(h[a.id]) == 3 and len(h[b.id]) == 2
    assert set(store.get_all_history(a.id)) == {MAP, "lr/pg0"}
    assert store.get_summaries([a.id])[a.id]["lr/pg0"].best is None  # lr has no direction


def test_unknown_run_in_log_batch(store):
    with pytest.raises(NotFound):
        store.log_batch("0" * 32, [(MAP, 0, 0.1)], heartbeat_at=1.0)


def test_evaluations_are_sealed_unless_revealed(store):
    r = make_run(store)
    common = dict(
        run_id=r.id,
        created_at=time.time(),
        per_class_ap={"pallet": 0.31},
        latency_ms=4.0,
        confusion_matrix=[[1.0, 0.0], [0.0, 1.0]],
    )
    store.add_evaluation(
        Evaluation(
            id=uuid.uuid4().hex, split="val", sealed=False, metrics={MAP: 0.5, "x": math.nan}, **common
        )
    )
    store.add_evaluation(
        Evaluation(id=uuid.uuid4().hex, split="test", sealed=True, metrics={MAP: 0.4321}, **common)
    )
    val, test = store.list_evaluations([r.id])
    assert val.metrics[MAP] == 0.5 and val.metrics["x"] is None and val.latency_ms == 4.0
    assert test.sealed and test.metrics == {} and test.per_class_ap == {}
    assert test.latency_ms is None and test.confusion_matrix is None
    revealed = store.list_evaluations([r.id], reveal=True)[1]
    assert revealed.metrics == {MAP: 0.4321}


def test_notes_keep_history(store):
    r = make_run(store)
    n1 = store.set_note(r.id, {"hypothesis": "bigger images help"}, who="ana")
    n2 = store.set_note(r.id, {"result": "they did", "next": "more data"}, who="bo")
    assert (n1.version, n2.version) == (1, 2)
    note = store.get_notes([r.id])[r.id]
    assert note.hypothesis == "bigger images help" and note.result == "they did"
    assert [h.result for h in store.note_history(r.id)] == ["", "they did"]
    with pytest.raises(InvalidInput, match="unknown note field"):
        store.set_note(r.id, {"mood": "good"}, who="ana")
    with pytest.raises(NotFound):
        store.set_note("0" * 32, {"result": "x"}, who="ana")


def test_artifacts_and_decisions(store):
    r = make_run(store)
    store.add_artifact(
        Artifact(id=uuid.uuid4().hex, run_id=r.id, name="best.pt", digest="ab" * 32, size=10, created_at=1.0)
    )
    assert [a.name for a in store.list_artifacts(r.id)] == ["best.pt"]
    d = Decision(
        id=uuid.uuid4().hex,
        project="pallets",
        candidate_id=r.id,
        baseline_id=r.id,
        verdict="WIN",
        gates=[{"gate": "improvement", "passed": True}],
        protocol={"noise": 0.005},
        test_split_digest="cd" * 32,
        revealed=True,
        who="ana",
        at=2.0,
    )
    store.add_decision(d)
    assert store.list_decisions("pallets") == [d]


def test_dataset_tags_never_move(store):
    v = DatasetVersion(
        digest="a" * 64,
        name="pallets",
        created_at=1.0,
        class_names=["pallet"],
        splits={"val": {"digest": "b" * 64, "images": 3}},
    )
    assert store.add_dataset_version(v).digest == "a" * 64
    store.add_dataset_version(v)  # same content again: no-op
    assert store.get_dataset_version("pallets", "aaaa").splits["val"]["images"] == 3
    store.set_tag("pallets", "v1", "a" * 64)
    store.set_tag("pallets", "v1", "a" * 64)  # same content: no-op
    with pytest.raises(Conflict, match="already points to version aaaaaaaaaaaa"):
        store.set_tag("pallets", "v1", "c" * 64)
    assert store.get_tag("pallets", "v1").digest == "a" * 64
    assert [t.tag for t in store.list_tags("pallets")] == ["v1"]
    with pytest.raises(NotFound):
        store.get_tag("pallets", "v9")


def test_a_key_without_points_adds_nothing(store):
    r = make_run(store)
    store.log_batch(r.id, {MAP: {}, "train/box_loss": {0: 1.0}})
    assert set(store.get_summaries([r.id])[r.id]) == {"train/box_loss"}


def test_run_rows_carry_one_series_summary_parent_and_note_state(store):
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
