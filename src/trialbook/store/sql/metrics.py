"""Metric series (``MetricStore``): points upserted in batches, each series' summary
kept on write.

A batch that only appends epochs after a series' last epoch updates the summary from
the batch alone; a batch that rewrites or back-fills epochs (a resumed run, a re-logged
epoch) recomputes that series' summary from its stored points. Logging one
(key, epoch) twice keeps the last value. Either way the summary equals
``core.metrics.summarize`` of the stored points (``tests/store/test_sql_twins.py``).
NaN is stored as NULL (SQLite cannot store NaN; one convention on both dialects).
Batches of one run written at once by several processes are applied one after the other
(SQLite serialises its writers; on PostgreSQL the run's row is locked), so no summary
update is lost; a run's first point of a key made by two at once makes one series.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from trialbook.core.entities import SeriesSummary
from trialbook.core.metrics import direction_of, is_better, summarize
from trialbook.errors import NotFound
from trialbook.store.base import PointTuple
from trialbook.store.sql.base import SqlBase
from trialbook.store.sql.schema import points as points_t
from trialbook.store.sql.schema import runs, series

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


def _merge(old: dict[str, Any], new: list[tuple[int, float]], direction: str) -> dict[str, Any]:
    """Summary of ``old`` (a stored summary) extended by appended points ``new`` (sorted,
    every epoch after ``old['last_epoch']``)."""
    s = dict(old)
    s["count"] += len(new)
    if s["first_epoch"] is None:
        s["first_epoch"] = new[0][0]
    s["last_epoch"] = new[-1][0]
    valid = [p for p in new if p[1] == p[1]]
    s["nan_count"] += len(new) - len(valid)
    if not valid:
        return s
    s["final_epoch"], s["final"] = valid[-1]
    if direction != "none":
        # max()/min() return the first of equal values: the earliest epoch wins ties
        pick = max if direction == "max" else min
        epoch, value = pick(valid, key=_value)
        if s["best"] is None or is_better(value, s["best"], direction):
            s["best"], s["best_epoch"] = value, epoch
    return s


def _value(point: tuple[int, float]) -> float:
    return point[1]


# every (series, epoch) at most once (``log_batch`` keeps the last value of a batch first)
_PG_UPSERT_POINTS = (
    "INSERT INTO points (series_id, epoch, value) "
    "SELECT * FROM unnest(%s::integer[], %s::integer[], %s::double precision[]) "
    "ON CONFLICT (series_id, epoch) DO UPDATE SET value = excluded.value"
)
_PG_COPY_POINTS = "COPY points (series_id, epoch, value) FROM STDIN (FORMAT BINARY)"


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
    def _upsert_points_sql(self) -> str:
        mark = "?" if self.db.dialect == "sqlite" else "%s"
        return (
            f"INSERT INTO points (series_id, epoch, value) VALUES ({mark}, {mark}, {mark}) "
            "ON CONFLICT (series_id, epoch) DO UPDATE SET value = excluded.value"
        )

    def _upsert_points(
        self,
        conn: Connection,
        rows: Mapping[str, Any],
        by_key: Mapping[str, Mapping[int, float]],
        *,
        appends: bool,
    ) -> None:
        """Write the points of ``by_key`` (series ``rows``), NaN as NULL, the last value of
        a (series, epoch) winning. ``appends``: every epoch is after its series' last one
        (under the run's lock, so no stored point can clash).

        On PostgreSQL an append is a binary ``COPY`` and anything else one ``INSERT ... ON
        CONFLICT`` over three arrays (``unnest``): a row per parameter set cost a round of
        the driver's protocol each, 5x the time for a run's 4,200 points."""
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
        params: list[tuple[int, int, float | None]] = []
        for key, epochs in by_key.items():
            sid = rows[key].id
            params.extend([(sid, e, v if v == v else None) for e, v in epochs.items()])
        conn.exec_driver_sql(self._upsert_points_sql(), params)

    @staticmethod
    def _copy_points(
        conn: Connection, rows: Mapping[str, Any], by_key: Mapping[str, Mapping[int, float]]
    ) -> None:
        """PostgreSQL's binary ``COPY`` of new points, in the connection's transaction."""
        driver = conn.connection.driver_connection
        assert driver is not None
        with driver.cursor() as cur, cur.copy(_PG_COPY_POINTS) as copy:
            copy.set_types(["int4", "int4", "float8"])
            write = copy.write_row
            for key, epochs in by_key.items():
                sid = rows[key].id
                for e, v in epochs.items():
                    write((sid, e, v if v == v else None))

    def _series_rows(self, conn: Connection, run_id: str, keys: Iterable[str]) -> dict[str, Any]:
        keys = list(keys)
        rows = conn.execute(sa.select(series).where(series.c.run_id == run_id, series.c.key.in_(keys))).all()
        found = {r.key: r for r in rows}
        missing = [k for k in keys if k not in found]
        if missing:
            # a run's first point of a key: check the run here rather than let the
            # database's foreign key fail (with a driver exception)
            if conn.execute(sa.select(runs.c.id).where(runs.c.id == run_id)).first() is None:
                raise NotFound(f"no run with id {run_id!r}")
            # a series made by another writer of this run meanwhile is left as it is
            conn.execute(
                self._insert(series).on_conflict_do_nothing(),
                [
                    {"run_id": run_id, "key": k, "direction": direction_of(k), "count": 0, "nan_count": 0}
                    for k in missing
                ],
            )
            rows = conn.execute(
                sa.select(series).where(series.c.run_id == run_id, series.c.key.in_(missing))
            ).all()
            found.update({r.key: r for r in rows})
        return found

    def log_batch(
        self,
        run_id: str,
        points: Sequence[PointTuple] | Mapping[str, Mapping[int, float]],
        *,
        heartbeat_at: float | None = None,
    ) -> None:
        by_key: Mapping[str, Mapping[int, float]]
        if isinstance(points, Mapping):
            by_key = {k: v for k, v in points.items() if v}  # a key with no points adds nothing
        else:
            grouped: dict[str, dict[int, float]] = defaultdict(dict)
            for key, epoch, value in points:
                grouped[key][epoch] = value  # last value wins inside a batch too
            by_key = grouped
        with self.db.write() as conn:
            if heartbeat_at is not None:
                done = conn.execute(
                    runs.update().where(runs.c.id == run_id).values(heartbeat_at=heartbeat_at)
                )
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
            rows = self._series_rows(conn, run_id, by_key)
            # The bulk upsert goes straight to the driver: SQLAlchemy's per-row parameter
            # handling costs more than SQLite's own insert.
            appends = all(
                rows[k].last_epoch is None or min(epochs) > rows[k].last_epoch for k, epochs in by_key.items()
            )
            self._upsert_points(conn, rows, by_key, appends=appends)
            updates = []
            for key, epochs in by_key.items():
                row = rows[key]
                new = sorted(epochs.items())
                if row.last_epoch is not None and new[0][0] <= row.last_epoch:
                    stored = conn.execute(
                        sa.select(points_t.c.epoch, points_t.c.value).where(points_t.c.series_id == row.id)
                    ).all()
                    s = summarize(((e, _nan(v)) for e, v in stored), row.direction)
                    s["last_epoch"] = max(e for e, _ in stored)
                else:
                    s = _merge({f: row._mapping[f] for f in _SUMMARY_FIELDS}, new, row.direction)
                updates.append({"sid": row.id, **s})
            conn.execute(
                series.update()
                .where(series.c.id == sa.bindparam("sid"))
                .values({f: sa.bindparam(f) for f in _SUMMARY_FIELDS}),
                updates,
            )

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
        mark = "?" if self.db.dialect == "sqlite" else "%s"
        sql = (
            "SELECT s.run_id, p.epoch, p.value FROM series s JOIN points p ON p.series_id = s.id "
            f"WHERE s.key = {mark} AND s.run_id IN ({', '.join([mark] * len(ids))}) "
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
