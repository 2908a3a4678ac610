"""Reads shaped for pages (``QueryStore``): the runs table's lines, a ranked, filtered,
paged runs table, counts per project, a project's datasets, series keys, sparklines.

These exist so that a page over a project of 10,000 runs reads one page of rows, not the
whole project: the ranking, the filters, the count and the paging run in the database.
Each is the SQL twin of a rule of ``core``, tested against it on both dialects in
``tests/store/test_sql_twins.py``:

* the effective status (``core.runs.effective_status``): a run stored as running whose
  last sign of life, ``coalesce(heartbeat_at, created_at)``, is before ``stale_before``
  is crashed;
* the ranking (``core.ranking.rank`` with ``tiebreak=core.runs.run_order``): the best
  value under the direction, NULLs last, ties by ``created_at`` then ``id``;
* note debt (``core.notes.note_debt``): ``schema.note_written()``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from trialbook.core.entities import ProjectCounts, RunRow, RunsPage
from trialbook.errors import InvalidInput
from trialbook.store.sql.base import SqlBase
from trialbook.store.sql.metrics import _summary
from trialbook.store.sql.runs import OLDEST_FIRST, _run, _select
from trialbook.store.sql.schema import note_written, notes, projects, runs, series


def _run_rows_query() -> sa.Select[Any]:
    """Runs of a project (bind ``project``) with one series' summary (bind ``key``) and
    whether their note has any text. Built once: SQLAlchemy caches its compiled form."""
    parent = runs.alias("parent")
    return (
        sa.select(
            runs.c.id,
            runs.c.name,
            runs.c.status,
            runs.c.created_at,
            runs.c.heartbeat_at,
            runs.c.parent_id,
            parent.c.name,
            runs.c.dataset,
            runs.c.pinned,
            runs.c.legacy_name,
            series.c.best,
            series.c.best_epoch,
            series.c.final,
            series.c.final_epoch,
            series.c["count"],
            note_written(),
            runs.c.unwritten,
            runs.c.end_reason,
        )
        .select_from(
            runs.join(projects, projects.c.id == runs.c.project_id)
            .outerjoin(parent, parent.c.id == runs.c.parent_id)
            .outerjoin(series, sa.and_(series.c.run_id == runs.c.id, series.c.key == sa.bindparam("key")))
            .outerjoin(notes, notes.c.run_id == runs.c.id)
        )
        .where(projects.c.name == sa.bindparam("project"))
        .order_by(*OLDEST_FIRST)
    )


_RUN_ROWS = _run_rows_query()


PAGE_SORTS = ("rank", "best", "final", "epochs", "name", "created", "status", "dataset")
MAX_PAGE = 500


def _nulls_last(column: Any, descending: bool) -> list[Any]:
    """ORDER BY terms putting NULLs last in either direction, on both dialects."""
    return [sa.case((column.is_(None), 1), else_=0), column.desc() if descending else column.asc()]


class QueriesMixin(SqlBase):
    def run_rows(self, project: str, key: str) -> list[RunRow]:
        # one query; no config, env or tags are read
        with self.db.read() as conn:
            self._project_id(conn, project)
            rows = conn.execute(_RUN_ROWS, {"project": project, "key": key}).all()
        return [
            RunRow(
                id=i,
                name=n,
                status=st,
                created_at=ca,
                heartbeat_at=hb,
                parent_id=pid,
                parent_name=pn,
                dataset=ds,
                pinned=bool(pin),
                legacy_name=bool(leg),
                best=b,
                best_epoch=be,
                final=f,
                final_epoch=fe,
                count=c or 0,
                has_note=bool(nc),
                unwritten=int(uw or 0),
                end_reason=er,
            )
            for i, n, st, ca, hb, pid, pn, ds, pin, leg, b, be, f, fe, c, nc, uw, er in rows
        ]

    def _status_filter(self, statuses: Sequence[str], stale_before: float | None) -> Any:
        """Runs whose *effective* status is one of ``statuses``: a run stored as running
        whose last heartbeat is before ``stale_before`` counts as crashed."""
        last = sa.func.coalesce(runs.c.heartbeat_at, runs.c.created_at)
        terms = []
        for status in statuses:
            if status == "running":
                term = runs.c.status == "running"
                if stale_before is not None:
                    term = sa.and_(term, last >= stale_before)
                terms.append(term)
            elif status == "crashed":
                term = runs.c.status == "crashed"
                if stale_before is not None:
                    term = sa.or_(term, sa.and_(runs.c.status == "running", last < stale_before))
                terms.append(term)
            else:
                terms.append(runs.c.status == status)
        return sa.or_(*terms) if terms else sa.true()

    def _page_conditions(
        self,
        statuses: Sequence[str],
        dataset: str | None,
        tag: str | None,
        text: str | None,
        stale_before: float | None,
    ) -> list[Any]:
        """The WHERE terms of a runs page's filters (all on the runs table)."""
        conditions: list[Any] = []
        if statuses:
            conditions.append(self._status_filter(statuses, stale_before))
        if dataset is not None:
            conditions.append(runs.c.dataset.is_(None) if dataset == "" else runs.c.dataset == dataset)
        if tag:
            name, sep, value = tag.partition("=")
            field = runs.c.tags[name.strip()].as_string()
            conditions.append(field == value.strip() if sep else field.is_not(None))
        if text and text.strip():
            conditions.append(sa.func.lower(runs.c.name).contains(text.strip().lower(), autoescape=True))
        return conditions

    def runs_page(
        self,
        project: str,
        key: str,
        direction: str,
        *,
        statuses: Sequence[str] = (),
        dataset: str | None = None,
        tag: str | None = None,
        text: str | None = None,
        sort: str = "rank",
        descending: bool | None = None,
        offset: int = 0,
        limit: int = 50,
        stale_before: float | None = None,
    ) -> RunsPage:
        if sort not in PAGE_SORTS:
            raise InvalidInput(f"sort {sort!r} is not one of {', '.join(PAGE_SORTS)}")
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit {limit} must be between 1 and {MAX_PAGE}")
        if offset < 0:
            raise InvalidInput(f"offset {offset} must be >= 0")
        summary = series.alias("summary")
        joined = runs.outerjoin(summary, sa.and_(summary.c.run_id == runs.c.id, summary.c.key == key))
        conditions = self._page_conditions(statuses, dataset, tag, text, stale_before)
        desc = (direction != "min") if descending is None or sort == "rank" else descending
        order = _page_order(summary, sort, desc, descending)
        with self.db.read() as conn:
            pid = self._project_id(conn, project)
            where = sa.and_(runs.c.project_id == pid, *conditions)
            # every filter is on the runs table: the count needs no join
            total = conn.execute(sa.select(sa.func.count()).select_from(runs).where(where)).scalar_one()
            if sort in ("rank", "best") and not conditions:
                ids = self._ranked_ids(conn, key, where, desc, offset, limit)
            else:
                ids = [
                    r[0]
                    for r in conn.execute(
                        sa.select(runs.c.id)
                        .select_from(joined)
                        .where(where)
                        .order_by(*order, *OLDEST_FIRST)
                        .offset(offset)
                        .limit(limit)
                    )
                ]
            rows = {r.id: _run(r) for r in conn.execute(_select().where(runs.c.id.in_(ids)))} if ids else {}
            summaries = (
                {
                    r.run_id: _summary(r.run_id, r.key, r)
                    for r in conn.execute(
                        sa.select(series).where(series.c.run_id.in_(ids), series.c.key == key)
                    )
                    if r._mapping["count"]
                }
                if ids
                else {}
            )
        return RunsPage(total=total, runs=[rows[i] for i in ids if i in rows], summaries=summaries)

    def _ranked_ids(
        self, conn: Connection, key: str, where: Any, descending: bool, offset: int, limit: int
    ) -> list[str]:
        """Ids of one page of runs ordered by the best value of ``key`` (older first on
        ties), runs without a value last (oldest first).

        The runs with a value are read from the index on ``series (key, best)`` in order,
        so the first pages stop after ``limit`` rows whatever the project's size; the runs
        without one are read only on the page where the ranked ones run out."""
        valued = sa.and_(series.c.key == key, series.c.best.is_not(None))
        best = series.c.best.desc() if descending else series.c.best.asc()
        ids = [
            r[0]
            for r in conn.execute(
                sa.select(runs.c.id)
                .select_from(series.join(runs, runs.c.id == series.c.run_id))
                .where(valued, where)
                .order_by(best, *OLDEST_FIRST)
                .offset(offset)
                .limit(limit)
            )
        ]
        if len(ids) == limit:
            return ids
        if ids or offset == 0:
            ranked = offset + len(ids)
        else:  # a page past the ranked runs: count them to know where the rest starts
            ranked = conn.execute(
                sa.select(sa.func.count())
                .select_from(series.join(runs, runs.c.id == series.c.run_id))
                .where(valued, where)
            ).scalar_one()
        has_value = sa.exists().where(series.c.run_id == runs.c.id, valued)
        ids += [
            r[0]
            for r in conn.execute(
                sa.select(runs.c.id)
                .where(where, ~has_value)
                .order_by(*OLDEST_FIRST)
                .offset(max(0, offset - ranked))
                .limit(limit - len(ids))
            )
        ]
        return ids

    def project_counts(self, stale_before: float | None = None) -> dict[str, ProjectCounts]:
        has_note = sa.exists().where(notes.c.run_id == runs.c.id, note_written())
        running = runs.c.status == "running"
        if stale_before is not None:
            running = sa.and_(
                running, sa.func.coalesce(runs.c.heartbeat_at, runs.c.created_at) >= stale_before
            )
        q = (
            sa.select(
                projects.c.name,
                sa.func.count(runs.c.id),
                sa.func.sum(sa.case((running, 1), else_=0)),
                sa.func.sum(sa.case((sa.and_(runs.c.status == "finished", ~has_note), 1), else_=0)),
            )
            .select_from(projects.outerjoin(runs, runs.c.project_id == projects.c.id))
            .group_by(projects.c.name)
        )
        with self.db.read() as conn:
            return {
                name: ProjectCounts(
                    project=name, runs=int(n or 0), running=int(r or 0), note_debt=int(d or 0)
                )
                for name, n, r, d in conn.execute(q)
            }

    def project_datasets(self, project: str) -> list[str]:
        with self.db.read() as conn:
            pid = self._project_id(conn, project)
            rows = conn.execute(
                sa.select(runs.c.dataset)
                .distinct()
                .where(runs.c.project_id == pid, runs.c.dataset.is_not(None))
            ).all()
        return sorted(r[0] for r in rows)

    def series_keys(self, run_ids: Iterable[str]) -> list[str]:
        ids = list(run_ids)
        if not ids:
            return []
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(series.c.key).distinct().where(series.c.run_id.in_(ids), series.c["count"] > 0)
            ).all()
        return sorted(r[0] for r in rows)

    def sparklines(
        self, run_ids: Iterable[str], key: str, points: int = 48
    ) -> dict[str, list[tuple[int, float]]]:
        """About ``points`` to ``2 * points`` points of each run's ``key`` series, evenly
        spaced by epoch, with its last epoch: enough to draw a sparkline, read without
        fetching whole curves. NaN stays NaN."""
        ids = list(run_ids)
        out: dict[str, list[tuple[int, float]]] = {rid: [] for rid in ids}
        if not ids:
            return out
        # integer division and modulo on both dialects; fetched in one go from the driver.
        # The page's series first, then their points. On PostgreSQL the CTE is
        # MATERIALIZED: joined in one query, the planner misjudges the points a series
        # has (its sample of ``points.series_id`` sees fewer series than there are) and,
        # at 100,000 runs, scans every series in parallel: 20-60 ms instead of 2-8 ms
        # (``bench/scale.py``). SQLite inlines the CTE: the plan of the plain join.
        sqlite = self.db.dialect == "sqlite"
        mark, mod = ("?", "%") if sqlite else ("%s", "%%")
        sql = (
            f"WITH s AS {'' if sqlite else 'MATERIALIZED '}"
            f"(SELECT id, run_id, count, last_epoch FROM series WHERE key = {mark} "
            f"AND run_id IN ({', '.join([mark] * len(ids))})) "
            "SELECT s.run_id, p.epoch, p.value FROM s JOIN points p ON p.series_id = s.id "
            f"WHERE (p.epoch {mod} (CASE WHEN s.count > {mark} THEN s.count / {mark} ELSE 1 END) = 0 "
            "OR p.epoch = s.last_epoch) ORDER BY s.run_id, p.epoch"
        )
        with self.db.read() as conn:
            rows = conn.exec_driver_sql(sql, (key, *ids, int(points), int(points))).fetchall()
        nan = math.nan
        for rid, epoch, value in rows:
            out[rid].append((epoch, nan if value is None else value))
        return out


def _page_order(summary: Any, sort: str, desc: bool, descending: bool | None) -> list[Any]:
    """ORDER BY terms of a runs page sorted by ``sort`` (before the oldest-first tiebreak).
    Unfiltered, ranked pages come from the series index instead (``_ranked_ids``);
    filtered, the filters narrow the runs first and the rest are sorted by these terms."""
    if sort in ("rank", "best"):
        return _nulls_last(summary.c.best, desc)
    if sort == "final":
        return _nulls_last(summary.c.final, True if descending is None else descending)
    if sort == "epochs":
        count = sa.func.coalesce(summary.c.count, 0)
        return [count.desc() if descending in (None, True) else count.asc()]
    column = {
        "name": runs.c.name,
        "created": runs.c.created_at,
        "status": runs.c.status,
        "dataset": runs.c.dataset,
    }[sort]
    return _nulls_last(column, bool(descending))
