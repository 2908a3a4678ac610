"""RecordStore: evaluations (test ones sealed), artifacts, notes with history and search."""

from __future__ import annotations

import math
import time
import uuid
from typing import Any, cast

import pytest

from support.runs import MAP, make_run
from trialbook.core.entities import Artifact, Evaluation
from trialbook.errors import Conflict, InvalidInput, NotFound
from trialbook.store import Store
from trialbook.store.sql.notes import fts5_query


def test_evaluations_are_sealed_unless_revealed(store: Store) -> None:
    r = make_run(store)
    common: dict[str, Any] = dict(
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


def test_evaluations_and_artifacts_need_their_run_and_a_new_id(store: Store) -> None:
    r = make_run(store)
    ev = Evaluation(id=uuid.uuid4().hex, run_id=r.id, split="val", sealed=False, created_at=1.0)
    assert store.add_evaluation(ev) == ev
    with pytest.raises(Conflict):
        store.add_evaluation(ev)
    with pytest.raises(NotFound, match="no run with id"):
        store.add_evaluation(
            Evaluation(id=uuid.uuid4().hex, run_id="0" * 32, split="val", sealed=False, created_at=1.0)
        )
    art = Artifact(
        id=uuid.uuid4().hex, run_id=r.id, name="best.pt", digest="ab" * 32, size=10, created_at=1.0
    )
    store.add_artifact(art)
    with pytest.raises(Conflict):
        store.add_artifact(art)
    with pytest.raises(NotFound, match="no run with id"):
        store.add_artifact(
            Artifact(id=uuid.uuid4().hex, run_id="0" * 32, name="x", digest="c" * 64, size=1, created_at=1.0)
        )
    assert store.list_evaluations([r.id]) == [ev] and store.list_evaluations(["0" * 32]) == []
    assert store.list_artifacts("0" * 32) == []


def test_artifacts_are_recorded(store: Store) -> None:
    r = make_run(store)
    store.add_artifact(
        Artifact(id=uuid.uuid4().hex, run_id=r.id, name="best.pt", digest="ab" * 32, size=10, created_at=1.0)
    )
    assert [a.name for a in store.list_artifacts(r.id)] == ["best.pt"]


def test_the_files_of_a_sealed_evaluation_are_sealed_with_it(store: Store) -> None:
    r = make_run(store)
    val = Evaluation(id=uuid.uuid4().hex, run_id=r.id, split="val", sealed=False, created_at=1.0)
    test = Evaluation(id=uuid.uuid4().hex, run_id=r.id, split="test", sealed=True, created_at=2.0)
    store.add_evaluation(val)
    store.add_evaluation(test)

    def artifact(name: str, at: float, evaluation: Evaluation | None) -> Artifact:
        ev_id = evaluation.id if evaluation else None
        return Artifact(uuid.uuid4().hex, r.id, name, "ab" * 32, 10, at, evaluation_id=ev_id)

    own, val_plot = artifact("best.pt", 1, None), artifact("BoxPR_curve.png", 2, val)
    test_plot = artifact("BoxPR_curve.png", 3, test)
    for a in (own, val_plot, test_plot):
        assert store.add_artifact(a) == a
    assert store.list_artifacts(r.id) == [own, val_plot]
    assert store.list_artifacts(r.id, reveal=True) == [own, val_plot, test_plot]


def test_notes_keep_history(store: Store) -> None:
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


def test_notes_of_runs_without_one(store: Store) -> None:
    r, other = make_run(store, "v1_a"), make_run(store, "v2_b")
    store.set_note(r.id, {"text": "x"}, who="ana")
    assert set(store.get_notes([r.id, other.id, "0" * 32])) == {r.id}
    assert store.note_history(other.id) == []
    with pytest.raises(InvalidInput, match="must be text"):
        store.set_note(r.id, cast(Any, {"result": 3}), who="ana")  # not text, on purpose


def test_notes_search_uses_the_database_text_search(store: Store) -> None:
    a = make_run(store, "v1_base", status="finished")
    b = make_run(store, "v2_more_pallets", status="finished")
    c = make_run(store, "v1_other", project="forklifts", status="finished")
    store.set_note(a.id, {"hypothesis": "A stock model is a fair baseline"}, who="x")
    store.set_note(b.id, {"hypothesis": "Small pallets are missed", "change": "added pallet images"}, who="x")
    store.set_note(c.id, {"result": "forklift AP up; pallets unchanged"}, who="x")
    # stemming: "pallet" finds "pallets"; every word must occur
    assert {n.run_id for n in store.search_notes("pallet")} == {b.id, c.id}
    assert [n.run_id for n in store.search_notes("pallet images")] == [b.id]
    assert [n.run_id for n in store.search_notes("pallets", project="forklifts")] == [c.id]
    assert store.search_notes("nothing-like-this") == []
    # operators and punctuation are plain words, never a syntax error
    assert store.search_notes('pallet AND "images" OR (NEAR* -') == []
    assert [n.run_id for n in store.search_notes("pallet: images!")] == [b.id]
    # an edited note is found by its new words only (the index follows the notes table)
    store.set_note(b.id, {"hypothesis": "Resolution is the bottleneck", "change": "imgsz 1024"}, who="x")
    assert store.search_notes("images") == []
    assert [n.run_id for n in store.search_notes("bottleneck")] == [b.id]
    assert store.search_notes("bottleneck")[0].version == 2
    with pytest.raises(InvalidInput, match="no words"):
        store.search_notes(" -- ")
    with pytest.raises(NotFound, match="no project named 'nope'"):
        store.search_notes("pallet", project="nope")


def test_fts5_query_quotes_every_word() -> None:
    assert fts5_query('pallet AND "x" (y*') == '"pallet" "AND" "x" "y"'
