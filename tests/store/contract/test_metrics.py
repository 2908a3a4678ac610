"""MetricStore: points in batches, the summary kept on write, histories."""

from __future__ import annotations

import math
import time

import pytest

from support.runs import MAP, make_run
from trialbook.core.entities import RunEnding
from trialbook.errors import InvalidInput, NotFound
from trialbook.store import Store


def test_log_batch_keeps_summary_on_write(store: Store) -> None:
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
    m = store.get_summaries([r.id], [MAP])[r.id][MAP]
    assert (m.best, m.best_epoch, m.final, m.final_epoch, m.count, m.nan_count) == (0.4, 3, 0.4, 3, 5, 1)
    hist = store.get_history([r.id], MAP)[r.id]
    assert [e for e, _ in hist] == [0, 1, 2, 3, 4] and math.isnan(hist[4][1])


def test_relogging_an_epoch_keeps_the_last_value_and_fixes_the_summary(store: Store) -> None:
    r = make_run(store)
    store.log_batch(r.id, [(MAP, 0, 0.1), (MAP, 1, 0.9), (MAP, 2, 0.3)])
    store.log_batch(r.id, [(MAP, 1, 0.2), (MAP, 1, 0.25)])  # rewrite: last wins
    s = store.get_summaries([r.id])[r.id][MAP]
    assert (s.best, s.best_epoch, s.count) == (0.3, 2, 3)
    assert store.get_history([r.id], MAP)[r.id] == [(0, 0.1), (1, 0.25), (2, 0.3)]


def test_history_of_several_runs_and_all_keys(store: Store) -> None:
    a, b = make_run(store, "v1_a"), make_run(store, "v2_b")
    store.log_batch(a.id, [(MAP, e, e / 10) for e in range(3)] + [("lr/pg0", 0, 0.01)])
    store.log_batch(b.id, [(MAP, e, e / 20) for e in range(2)])
    h = store.get_history([a.id, b.id], MAP)
    assert len(h[a.id]) == 3 and len(h[b.id]) == 2
    assert set(store.get_all_history(a.id)) == {MAP, "lr/pg0"}
    assert store.get_summaries([a.id])[a.id]["lr/pg0"].best is None  # lr has no direction


def test_unknown_run_in_log_batch(store: Store) -> None:
    with pytest.raises(NotFound):
        store.log_batch("0" * 32, [(MAP, 0, 0.1)], heartbeat_at=1.0)
    with pytest.raises(NotFound, match="no run with id"):  # without a heartbeat too
        store.log_batch("0" * 32, [(MAP, 0, 0.1)])
    store.log_batch("0" * 32, [])  # nothing to store, nothing checked


def test_a_key_without_points_adds_nothing(store: Store) -> None:
    r = make_run(store)
    store.log_batch(r.id, {MAP: {}, "train/box_loss": {0: 1.0}})
    assert set(store.get_summaries([r.id])[r.id]) == {"train/box_loss"}


def test_every_run_asked_for_is_in_the_answer(store: Store) -> None:
    r = make_run(store)
    store.log_batch(r.id, {MAP: {0: 0.5}}, heartbeat_at=5.0)
    assert store.get_run_by_id(r.id).heartbeat_at == 5.0
    unknown = "0" * 32
    assert store.get_summaries([r.id, unknown])[unknown] == {}
    assert store.get_history([r.id, unknown], MAP) == {r.id: [(0, 0.5)], unknown: []}
    assert store.get_all_history(unknown) == {}
    assert store.history_since([unknown]) == {unknown: {}}


def test_a_runs_ending_is_written_with_its_last_points_or_not_at_all(store: Store) -> None:
    r = make_run(store)
    store.log_batch(r.id, {MAP: {0: 0.5, 1: 0.6}}, heartbeat_at=7.0, ending=RunEnding("failed", 8.0, "OOM"))
    got = store.get_run_by_id(r.id)
    assert (got.status, got.ended_at, got.end_reason, got.heartbeat_at) == ("failed", 8.0, "OOM", 7.0)
    assert store.get_history([r.id], MAP)[r.id] == [(0, 0.5), (1, 0.6)]
    # no points, no heartbeat: the ending alone, its time as the heartbeat
    other = make_run(store, name="v2_ends_alone")
    store.log_batch(other.id, [], ending=RunEnding("finished", 9.0))
    got = store.get_run_by_id(other.id)
    assert (got.status, got.ended_at, got.end_reason, got.heartbeat_at) == ("finished", 9.0, None, 9.0)
    # a status the store does not know: nothing of the batch is written
    third = make_run(store, name="v3_bad_status")
    with pytest.raises(InvalidInput, match="'done' is not one of"):
        store.log_batch(third.id, {MAP: {0: 0.1}}, ending=RunEnding("done", 1.0))
    assert store.get_run_by_id(third.id).status == "running"
    assert store.get_summaries([third.id])[third.id] == {}
    with pytest.raises(NotFound, match="no run with id"):
        store.log_batch("0" * 32, [], ending=RunEnding("finished", 1.0))
