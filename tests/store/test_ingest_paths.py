"""The bulk write paths of ``log_batch`` (SQLite: multi-row upserts of 333 rows a
statement; PostgreSQL: a binary COPY of appends, an ``unnest`` upsert otherwise), on both
dialects: a batch big enough to take several statements or the COPY round-trips exactly,
keeps NaN as NaN, lets the last value win, and a failure in the middle of a batch
(a trigger of the database refusing one row) leaves nothing of it written."""

from __future__ import annotations

import math
import struct
import time
from collections.abc import Iterator

import pytest

from support.runs import MAP, make_run
from trialbook.core.entities import RunEnding
from trialbook.core.metrics import direction_of, summarize
from trialbook.errors import TrialbookError
from trialbook.store import Store

LOSS = "train/box_loss"
LR = "lr/pg0"
EPOCHS = 1000  # 3 keys x 1000 epochs: ten SQLite statements (the last a short one), one COPY

# values whose text or float forms are easy to get wrong (not -0.0: SQLite stores it as 0.0,
# whatever the statement)
AWKWARD = (0.1 + 0.2, 1e-300, 5e-324, 0.0, 1.7976931348623157e308, -2.5, 1 / 3, 123456789.123456789)


def value(key: str, epoch: int) -> float:
    if epoch % 97 == 13:
        return math.nan
    base = AWKWARD[epoch % len(AWKWARD)]
    return base if key != LR else base / 7


def batch(keys: tuple[str, ...], epochs: range) -> dict[str, dict[int, float]]:
    return {k: {e: value(k, e) for e in epochs} for k in keys}


def bits(x: float) -> bytes:
    """A float's bytes (exact: 0.0 and -0.0 differ; every NaN is one NaN here)."""
    return b"nan" if math.isnan(x) else struct.pack(">d", x)


def assert_stored(store: Store, run_id: str, want: dict[str, dict[int, float]]) -> None:
    """The points read back bit for bit, and each summary that of ``core.metrics.summarize``."""
    history = store.get_all_history(run_id)
    summaries = store.get_summaries([run_id])[run_id]
    for key, points in want.items():
        got = history[key]
        assert [e for e, _ in got] == sorted(points)
        assert [bits(v) for _, v in got] == [bits(points[e]) for e, _ in got]
        expected = summarize(points.items(), direction_of(key))
        s = summaries[key]
        found = {f: getattr(s, f) for f in expected}
        assert {f: bits(v) if isinstance(v, float) else v for f, v in found.items()} == {
            f: bits(v) if isinstance(v, float) else v for f, v in expected.items()
        }


def test_a_big_batch_round_trips_exactly_with_nan_flagged(store: Store) -> None:
    r = make_run(store)
    want = batch((MAP, LOSS, LR), range(EPOCHS))
    store.log_batch(r.id, want, heartbeat_at=time.time())
    assert_stored(store, r.id, want)
    s = store.get_summaries([r.id])[r.id][MAP]
    assert s.count == EPOCHS and s.nan_count == sum(1 for e in range(EPOCHS) if e % 97 == 13)
    # a second big append (the COPY again on PostgreSQL), its epochs given out of order
    more = {k: dict(reversed(list(batch((k,), range(EPOCHS, 2 * EPOCHS))[k].items()))) for k in (MAP, LOSS)}
    store.log_batch(r.id, more)
    assert_stored(store, r.id, {k: {**want[k], **more.get(k, {})} for k in want})


def test_a_series_without_nan_takes_the_packed_copy_and_keeps_every_bit(store: Store) -> None:
    r = make_run(store)
    want = {k: {e: AWKWARD[e % len(AWKWARD)] * (1 + e) for e in range(700)} for k in (MAP, LOSS)}
    store.log_batch(r.id, want)
    assert_stored(store, r.id, want)


def test_the_last_value_wins_in_a_big_rewrite(store: Store) -> None:
    r = make_run(store)
    first = batch((MAP, LOSS), range(EPOCHS))
    store.log_batch(r.id, first)
    # a rewrite of every other epoch plus new ones, as tuples with each point given twice
    rewrite = [(k, e, v) for k in (MAP, LOSS) for e in range(0, EPOCHS + 200, 2) for v in (9.0, e / 1e4)]
    store.log_batch(r.id, rewrite)
    want = {k: dict(first[k]) for k in first}
    for k, e, v in rewrite:
        want[k][e] = v
    assert_stored(store, r.id, want)
    assert store.get_summaries([r.id])[r.id][MAP].best == max(
        v for v in want[MAP].values() if not math.isnan(v)
    )


@pytest.fixture
def refusing(store: Store) -> Iterator[Store]:
    """The store, its database refusing a point at epoch 777 and a summary update of the
    key ``boom`` (real triggers, dropped after the test)."""
    db = store.db  # type: ignore[attr-defined]
    if db.dialect == "sqlite":
        setup = [
            "CREATE TRIGGER refuse_point BEFORE INSERT ON points WHEN new.epoch = 777 "
            "BEGIN SELECT RAISE(ABORT, 'refused point'); END",
            "CREATE TRIGGER refuse_summary BEFORE UPDATE ON series WHEN new.key = 'boom' "
            "BEGIN SELECT RAISE(ABORT, 'refused summary'); END",
        ]
        teardown = ["DROP TRIGGER refuse_point", "DROP TRIGGER refuse_summary"]
    else:
        setup = [
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused' USING ERRCODE = 'check_violation'; END $$",
            "CREATE TRIGGER refuse_point BEFORE INSERT ON points FOR EACH ROW "
            "WHEN (new.epoch = 777) EXECUTE FUNCTION refuse()",
            "CREATE TRIGGER refuse_summary BEFORE UPDATE ON series FOR EACH ROW "
            "WHEN (new.key = 'boom') EXECUTE FUNCTION refuse()",
        ]
        teardown = [
            "DROP TRIGGER refuse_point ON points",
            "DROP TRIGGER refuse_summary ON series",
            "DROP FUNCTION refuse()",
        ]
    with db.write() as conn:
        for sql in setup:
            conn.exec_driver_sql(sql)
    try:
        yield store
    finally:
        with db.write() as conn:
            for sql in teardown:
                conn.exec_driver_sql(sql)


def snapshot(store: Store, run_id: str) -> tuple[object, ...]:
    """What the book holds of the run: its points (as bytes), summaries and heartbeat."""
    points = {k: [(e, bits(v)) for e, v in h] for k, h in store.get_all_history(run_id).items()}
    return points, store.get_summaries([run_id]), store.get_run_by_id(run_id).heartbeat_at


@pytest.mark.parametrize(
    "fault",
    [
        "a point refused in the middle of a big append",
        "a point refused in the middle of a big rewrite",
        "a summary refused after the points were written",
    ],
)
def test_a_failure_mid_batch_leaves_nothing_half_written(refusing: Store, fault: str) -> None:
    store = refusing
    r = make_run(store)
    store.log_batch(r.id, batch((MAP, LOSS, "boom"), range(500)), heartbeat_at=1.0)
    before = snapshot(store, r.id)
    if "append" in fault:
        bad = batch((MAP, LOSS), range(500, 1500))  # epoch 777 of LOSS, after MAP's 1000 points
    elif "rewrite" in fault:
        bad = batch((MAP, LOSS), range(400, 1500))
    else:
        bad = batch((MAP, "boom"), range(500, 700))
    with pytest.raises(TrialbookError):  # the run's last batch: its ending goes with it
        store.log_batch(r.id, bad, heartbeat_at=2.0, ending=RunEnding("finished", 2.0))
    assert snapshot(store, r.id) == before
    assert store.get_run_by_id(r.id).status == "running"
    # the book takes the next batch as before
    store.log_batch(r.id, {MAP: {500: 0.5}}, heartbeat_at=3.0)
    assert store.get_history([r.id], MAP)[r.id][-1] == (500, 0.5)
