"""Metric series (``MetricStore``): points upserted in batches, each series' summary
kept on write.

A batch that only appends epochs after a series' last epoch updates the summary from
the batch alone; a batch that rewrites or back-fills epochs (a resumed run, a re-logged
epoch) recomputes that series' summary from its stored points. Logging one
(key, epoch) twice keeps the last value. Either way the summary equals
``core.metrics.summarize`` of the stored points (``tests/store/test_sql_twins.py``).
NaN is stored as NULL (SQLite cannot store NaN; one convention on both dialects).
The write path goes to the driver: on SQLite multi-row upserts of 333 points a statement,
on PostgreSQL a binary COPY of appends (its data packed here) or one ``unnest`` upsert;
a new series is inserted with the batch's summary, an existing one updated in one
``executemany``; all of a batch is one transaction, rolled back whole on any failure.
Batches of one run written at once by several processes are applied one after the other
(SQLite serialises its writers; on PostgreSQL the run's row is locked), so no summary
update is lost; a run's first point of a key made by two at once makes one series.
"""

from __future__ import annotations

import functools
import math
import struct
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from trialbook.core.entities import RUN_STATUSES, RunEnding, SeriesSummary
from trialbook.core.metrics import direction_of, is_better, summarize
from trialbook.errors import InvalidInput, NotFound
from trialbook.store.base import PointTuple
from trialbook.store.sql.base import SqlBase
from trialbook.store.sql.schema import points as points_t
from trialbook.store.sql.schema import series

_SUMMARY_FIELDS = (
    "count",
    "nan_count",
    "best",
    "best_epoch",
    "final",
    "final_epoch",
    "first_epoch",
    "last_epoch",
)


class _Series(NamedTuple):
    """A series' row as ``log_batch`` reads it (``n`` is the column ``count``)."""

    id: int
    direction: str
    n: int
    nan_count: int
    best: float | None
    best_epoch: int | None
    final: float | None
    final_epoch: int | None
    first_epoch: int | None
    last_epoch: int | None


_SERIES_COLUMNS = (
    "key, id, direction, count, nan_count, best, best_epoch, final, final_epoch, first_epoch, last_epoch"
)
# ``?`` marks; ``_dialect_sql`` makes them ``%s`` for psycopg
_HEARTBEAT = "UPDATE runs SET heartbeat_at = ? WHERE id = ?"
_ENDING = "UPDATE runs SET heartbeat_at = ?, status = ?, ended_at = ?, end_reason = ? WHERE id = ?"
_UPDATE_SUMMARY = (
    "UPDATE series SET count = ?, nan_count = ?, best = ?, best_epoch = ?, final = ?, "
    "final_epoch = ?, first_epoch = ?, last_epoch = ? WHERE id = ?"
)
_STORED_POINTS = "SELECT epoch, value FROM points WHERE series_id = ?"
_INSERT_SERIES = (
    "INSERT INTO series (run_id, key, direction, count, nan_count, best, best_epoch, final, "
    "final_epoch, first_epoch, last_epoch) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_PG_INSERT_SERIES = (
    "INSERT INTO series (run_id, key, direction, count, nan_count, best, best_epoch, final, "
    "final_epoch, first_epoch, last_epoch) SELECT %s::text, * FROM unnest(%s::text[], %s::text[], "
    "%s::integer[], %s::integer[], %s::double precision[], %s::integer[], %s::double precision[], "
    f"%s::integer[], %s::integer[], %s::integer[]) RETURNING {_SERIES_COLUMNS}"
)
# 999 parameters a statement: under SQLite's smallest limit of any build
_SQLITE_ROWS_PER_INSERT = 333


@functools.lru_cache(maxsize=64)
def _sqlite_upsert(rows: int) -> str:
    """The upsert of ``rows`` points in one statement (SQLite)."""
    return (
        "INSERT INTO points (series_id, epoch, value) VALUES "
        + ", ".join(["(?, ?, ?)"] * rows)
        + " ON CONFLICT (series_id, epoch) DO UPDATE SET value = excluded.value"
    )


# every (series, epoch) at most once (``log_batch`` keeps the last value of a batch first)
_PG_UPSERT_POINTS = (
    "INSERT INTO points (series_id, epoch, value) "
    "SELECT * FROM unnest(%s::integer[], %s::integer[], %s::double precision[]) "
    "ON CONFLICT (series_id, epoch) DO UPDATE SET value = excluded.value"
)
_PG_COPY_POINTS = "COPY points (series_id, epoch, value) FROM STDIN (FORMAT BINARY)"
# PostgreSQL's binary COPY format: signature, flags, header extension; a tuple is its field
# count then each field's length and bytes (length -1: NULL); the trailer is a count of -1
_PG_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_PG_COPY_TRAILER = b"\xff\xff"
_COPY_ROW = struct.Struct(">hiiiiid")
_COPY_NULL_ROW = struct.Struct(">hiiiii")


def _copy_rows(sid: int, epochs: Mapping[int, float]) -> bytes:
    """The binary COPY tuples of one series' points (NaN as NULL)."""
    n = len(epochs)
    total = sum(epochs.values())
    if total - total == 0.0:  # no NaN (see ``_appended``)
        flat: list[Any] = [3, 4, sid, 4, 0, 8, 0.0] * n
        flat[4::7] = epochs
        flat[6::7] = epochs.values()
        return struct.pack(">" + "hiiiiid" * n, *flat)
    row, null_row = _COPY_ROW.pack, _COPY_NULL_ROW.pack
    return b"".join(
        [row(3, 4, sid, 4, e, 8, v) if v == v else null_row(3, 4, sid, 4, e, -1) for e, v in epochs.items()]
    )


def _new_series(key: str) -> _Series:
    """The row of a series not made yet (no points)."""
    return _Series(0, direction_of(key), 0, 0, None, None, None, None, None, None)


def _appended(row: _Series, epochs: Mapping[int, float]) -> tuple[Any, ...]:
    """The summary of ``row`` extended by ``epochs`` (every one after ``row.last_epoch``),
    as the parameters of ``_UPDATE_SUMMARY``; the same as ``core.metrics.summarize`` of
    all the points (``tests/store/test_sql_twins.py``).

    The per-point work is done by builtins: ``sum`` tells a batch without NaN (the usual
    one: values are finite, so their sum is finite unless one is NaN or it overflows,
    and either falls back to filtering), ``max``/``min`` return the first of equal values
    and ``index`` the first equal one, so the earliest epoch wins ties as in
    ``summarize``."""
    ep = list(epochs)
    vals = list(epochs.values())
    if ep != sorted(ep):
        ordered = sorted(epochs.items())
        ep = [e for e, _ in ordered]
        vals = [v for _, v in ordered]
    total = sum(vals)
    if total - total == 0.0:
        valid_ep, valid = ep, vals
    else:
        keep = [i for i, v in enumerate(vals) if v == v]
        valid_ep, valid = [ep[i] for i in keep], [vals[i] for i in keep]
    best, best_epoch, final, final_epoch = row.best, row.best_epoch, row.final, row.final_epoch
    if valid:
        final, final_epoch = valid[-1], valid_ep[-1]
        direction = row.direction
        if direction != "none":
            pick = max(valid) if direction == "max" else min(valid)
            if best is None or is_better(pick, best, direction):
                best, best_epoch = pick, valid_ep[valid.index(pick)]
    return (
        row.n + len(vals),
        row.nan_count + len(vals) - len(valid),
        best,
        best_epoch,
        final,
        final_epoch,
        ep[0] if row.first_epoch is None else row.first_epoch,
        ep[-1],
        row.id,
    )


def _summary(run_id: str, key: str, row: Any) -> SeriesSummary:
    return SeriesSummary(
        run_id=run_id,
        key=key,
        direction=row.direction,
        count=row._mapping["count"],
        nan_count=row.nan_count,
        best=row.best,
        best_epoch=row.best_epoch,
        final=row.final,
        final_epoch=row.final_epoch,
        first_epoch=row.first_epoch,
    )


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


class MetricsMixin(SqlBase):
    def _dialect_sql(self, sql: str) -> str:
        """``sql`` (``?`` marks) with the driver's marks."""
        return sql if self.db.dialect == "sqlite" else sql.replace("?", "%s")

    def _upsert_points(
        self,
        conn: Connection,
        rows: Mapping[str, _Series],
        by_key: Mapping[str, Mapping[int, float]],
        *,
        appends: bool,
    ) -> None:
        """Write the points of ``by_key`` (series ``rows``), NaN as NULL, the last value of
        a (series, epoch) winning. ``appends``: every epoch is after its series' last one
        (under the run's lock, so no stored point can clash).

        SQLite: multi-row ``INSERT ... VALUES (...), (...) ON CONFLICT`` statements of
        ``_SQLITE_ROWS_PER_INSERT`` rows, their parameters laid out by slice assignment
        (SQLite itself stores a NaN bound as a double as NULL): a third less time than an
        ``executemany`` of the one-row upsert, which steps the statement once a row. PostgreSQL: an
        append is a binary ``COPY`` and anything else one ``INSERT ... ON CONFLICT`` over
        three arrays (``unnest``): a row per parameter set cost a round of the driver's
        protocol each, 5x the time for a run's 4,200 points."""
        if self.db.dialect == "postgresql":
            if appends:
                self._copy_points(conn, rows, by_key)
                return
            sids: list[int] = []
            epochs_: list[int] = []
            values: list[float | None] = []
            for key, epochs in by_key.items():
                sids.extend([rows[key].id] * len(epochs))
                epochs_.extend(epochs)
                values.extend([v if v == v else None for v in epochs.values()])
            conn.exec_driver_sql(_PG_UPSERT_POINTS, (sids, epochs_, values))
            return
        flat: list[Any] = []
        for key, epochs in by_key.items():
            part: list[Any] = [rows[key].id] * (3 * len(epochs))
            part[1::3] = epochs
            part[2::3] = epochs.values()
            flat += part
        step = 3 * _SQLITE_ROWS_PER_INSERT
        for i in range(0, len(flat), step):
            chunk = flat[i : i + step]
            conn.exec_driver_sql(_sqlite_upsert(len(chunk) // 3), tuple(chunk))

    @staticmethod
    def _copy_points(
        conn: Connection, rows: Mapping[str, _Series], by_key: Mapping[str, Mapping[int, float]]
    ) -> None:
        """PostgreSQL's binary ``COPY`` of new points, in the connection's transaction.

        The COPY data is laid out here, a series at a time by one ``struct.pack`` (a
        series holding a NaN: a row at a time, NaN as NULL), and sent in one ``write``:
        the driver's ``write_row`` costs two Python calls and its dumpers a row, more than
        the server's work."""
        parts = [_PG_COPY_HEADER]
        try:
            for key, epochs in by_key.items():
                parts.append(_copy_rows(rows[key].id, epochs))
        except (struct.error, OverflowError) as exc:
            raise InvalidInput(f"a point's epoch or value does not fit the points table: {exc}") from None
        parts.append(_PG_COPY_TRAILER)
        driver = conn.connection.driver_connection
        assert driver is not None
        import psycopg

        try:
            with driver.cursor() as cur, cur.copy(_PG_COPY_POINTS) as copy:
                copy.write(b"".join(parts))
        except psycopg.Error as exc:
            # as SQLAlchemy wraps the driver's errors, so that ``Database.write`` names them
            raise sa.exc.DBAPIError.instance(_PG_COPY_POINTS, None, exc, psycopg.Error) from exc

    def _select_series(self, conn: Connection, run_id: str, keys: Sequence[str]) -> dict[str, _Series]:
        if self.db.dialect == "sqlite":
            marks = ", ".join("?" * len(keys))
            sql = f"SELECT {_SERIES_COLUMNS} FROM series WHERE run_id = ? AND key IN ({marks})"
            params: tuple[Any, ...] = (run_id, *keys)
        else:
            sql = f"SELECT {_SERIES_COLUMNS} FROM series WHERE run_id = %s AND key = ANY(%s)"
            params = (run_id, list(keys))
        return {r[0]: _Series(*r[1:]) for r in conn.exec_driver_sql(sql, params).all()}

    def _make_series(
        self, conn: Connection, run_id: str, by_key: Mapping[str, Mapping[int, float]]
    ) -> dict[str, _Series]:
        """A run's first points of keys: their series made with the summary of the batch.
        Only ``log_batch`` writes series, under the run's lock, so no one makes one of
        them meanwhile (were one to, the unique key would refuse this insert and the
        batch be rolled back whole, a ``Conflict``)."""
        made = []
        for key, epochs in by_key.items():
            new = _new_series(key)
            made.append((key, new.direction, *_appended(new, epochs)[:-1]))
        if self.db.dialect == "postgresql":  # one statement, its rows back (one round trip)
            rows = conn.exec_driver_sql(_PG_INSERT_SERIES, (run_id, *map(list, zip(*made, strict=True))))
            return {r[0]: _Series(*r[1:]) for r in rows.all()}
        conn.exec_driver_sql(_INSERT_SERIES, [(run_id, *m) for m in made])
        return self._select_series(conn, run_id, list(by_key))

    def _update_summaries(
        self, conn: Connection, rows: Mapping[str, _Series], by_key: Mapping[str, Mapping[int, float]]
    ) -> None:
        """The summaries of existing series after their points ``by_key`` were written:
        extended by an append, recomputed from the stored points otherwise."""
        updates = []
        for key, epochs in by_key.items():
            row = rows[key]
            if row.last_epoch is not None and min(epochs) <= row.last_epoch:
                # a rewrite or back-fill: the summary of the stored points
                stored = conn.exec_driver_sql(self._dialect_sql(_STORED_POINTS), (row.id,)).all()
                s = summarize(((e, _nan(v)) for e, v in stored), row.direction)
                last = max(e for e, _ in stored)
                updates.append((*(s[f] for f in _SUMMARY_FIELDS[:-1]), last, row.id))
            else:
                updates.append(_appended(row, epochs))
        if updates:
            conn.exec_driver_sql(self._dialect_sql(_UPDATE_SUMMARY), updates)

    def log_batch(
        self,
        run_id: str,
        points: Sequence[PointTuple] | Mapping[str, Mapping[int, float]],
        *,
        heartbeat_at: float | None = None,
        ending: RunEnding | None = None,
    ) -> None:
        if ending is not None and ending.status not in RUN_STATUSES:
            raise InvalidInput(f"run status {ending.status!r} is not one of {', '.join(RUN_STATUSES)}")
        by_key: Mapping[str, Mapping[int, float]]
        if isinstance(points, Mapping):
            by_key = {k: v for k, v in points.items() if v}  # a key with no points adds nothing
        else:
            grouped: dict[str, dict[int, float]] = defaultdict(dict)
            for key, epoch, value in points:
                grouped[key][epoch] = value  # last value wins inside a batch too
            by_key = grouped
        with self.db.write() as conn:
            if ending is not None or heartbeat_at is not None:
                # the UPDATE locks the run's row (PostgreSQL) until commit, as below
                if ending is None:
                    done = conn.exec_driver_sql(self._dialect_sql(_HEARTBEAT), (heartbeat_at, run_id))
                else:  # the run's end with its last points (one statement, one commit)
                    beat = ending.ended_at if heartbeat_at is None else heartbeat_at
                    params = (beat, ending.status, ending.ended_at, ending.reason, run_id)
                    done = conn.exec_driver_sql(self._dialect_sql(_ENDING), params)
                if done.rowcount == 0:
                    raise NotFound(f"no run with id {run_id!r}")
            elif not by_key:
                return
            else:
                # the run's row is locked (as the heartbeat's UPDATE does) until commit: two
                # batches of one run at once update its summaries one after the other
                self._require_run(conn, run_id, lock=True)
            if not by_key:
                return
            # The statements go straight to the driver: SQLAlchemy's per-row parameter
            # handling and statement building cost more than the database's own work.
            rows = self._select_series(conn, run_id, list(by_key))
            appends = all(
                k not in rows or rows[k].last_epoch is None or min(epochs) > rows[k].last_epoch  # type: ignore[operator]
                for k, epochs in by_key.items()
            )
            new = {k: epochs for k, epochs in by_key.items() if k not in rows}
            if new:
                rows.update(self._make_series(conn, run_id, new))
            self._upsert_points(conn, rows, by_key, appends=appends)
            self._update_summaries(conn, rows, {k: v for k, v in by_key.items() if k not in new})

    def get_summaries(
        self, run_ids: Iterable[str], keys: Iterable[str] | None = None
    ) -> dict[str, dict[str, SeriesSummary]]:
        ids = list(run_ids)
        q = sa.select(series).where(series.c.run_id.in_(ids))
        if keys is not None:
            q = q.where(series.c.key.in_(list(keys)))
        out: dict[str, dict[str, SeriesSummary]] = {rid: {} for rid in ids}
        with self.db.read() as conn:
            for r in conn.execute(q):
                if r._mapping["count"]:
                    out[r.run_id][r.key] = _summary(r.run_id, r.key, r)
        return out

    def get_history(self, run_ids: Iterable[str], key: str) -> dict[str, list[tuple[int, float]]]:
        # one query, fetched in one go from the driver (row-by-row fetching through
        # SQLAlchemy costs more than the query)
        ids = list(run_ids)
        out: dict[str, list[tuple[int, float]]] = {rid: [] for rid in ids}
        if not ids:
            return out
        # the runs' series first, then their points. On PostgreSQL the CTE is
        # MATERIALIZED: joined in one query, the planner misjudges the points a series
        # has and, at 100,000 runs, scans every series in parallel (20-26 ms against
        # 4.5 ms for 20 runs, far worse on a busy machine; bench/scale.py). SQLite
        # inlines the CTE: the plan of the plain join.
        sqlite = self.db.dialect == "sqlite"
        mark = "?" if sqlite else "%s"
        sql = (
            f"WITH s AS {'' if sqlite else 'MATERIALIZED '}(SELECT id, run_id FROM series "
            f"WHERE key = {mark} AND run_id IN ({', '.join([mark] * len(ids))})) "
            "SELECT s.run_id, p.epoch, p.value FROM s JOIN points p ON p.series_id = s.id "
            "ORDER BY s.run_id, p.epoch"
        )
        with self.db.read() as conn:
            rows = conn.exec_driver_sql(sql, (key, *ids)).fetchall()
        nan = math.nan
        for rid, epoch, value in rows:
            out[rid].append((epoch, nan if value is None else value))
        return out

    def get_all_history(self, run_id: str) -> dict[str, list[tuple[int, float]]]:
        q = (
            sa.select(series.c.key, points_t.c.epoch, points_t.c.value)
            .join(points_t, points_t.c.series_id == series.c.id)
            .where(series.c.run_id == run_id)
            .order_by(series.c.key, points_t.c.epoch)
        )
        out: dict[str, list[tuple[int, float]]] = defaultdict(list)
        with self.db.read() as conn:
            for key, epoch, value in conn.execute(q):
                out[key].append((epoch, _nan(value)))
        return dict(out)

    def history_since(
        self,
        run_ids: Iterable[str],
        keys: Iterable[str] | None = None,
        since_epoch: int | None = None,
    ) -> dict[str, dict[str, list[tuple[int, float]]]]:
        ids = list(run_ids)
        q = (
            sa.select(series.c.run_id, series.c.key, points_t.c.epoch, points_t.c.value)
            .join(points_t, points_t.c.series_id == series.c.id)
            .where(series.c.run_id.in_(ids))
            .order_by(series.c.run_id, series.c.key, points_t.c.epoch)
        )
        if keys is not None:
            q = q.where(series.c.key.in_(list(keys)))
        if since_epoch is not None:
            q = q.where(points_t.c.epoch > since_epoch)
        out: dict[str, dict[str, list[tuple[int, float]]]] = {rid: defaultdict(list) for rid in ids}
        with self.db.read() as conn:
            for rid, key, epoch, value in conn.execute(q):
                out[rid][key].append((epoch, _nan(value)))
        return {rid: dict(v) for rid, v in out.items()}
