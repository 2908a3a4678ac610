"""Big books for the benchmarks, bulk-filled: ``bench/ui.py``'s runs table workload
written straight into the SQL schema, many runs a statement.

``bench/ui.py`` and ``bench/server.py`` write their books through the store, a run at a
time (``create_run`` and ``log_batch``: about 1.7 ms a run on SQLite, 7 ms on
PostgreSQL, where each run is several round trips). At 100,000 runs that is minutes on
SQLite and over ten minutes on PostgreSQL, so ``bulk_fill`` writes the same rows in
chunks of runs instead: the runs with one ``executemany``, their series (with the summary
``core.metrics.summarize`` gives, as ``log_batch`` keeps it) with another, and the
points with one ``executemany`` of a plain ``INSERT`` on SQLite or one binary
``COPY`` on PostgreSQL per chunk. What the store then reads is what the store path would
have written, run ids aside (``tests/store/test_bench_books.py`` checks it on both
dialects).
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import ui  # noqa: E402  (bench/ui.py: the workload)

CHUNK = 2000  # runs a statement: 200k points at 100 epochs


def run_row(i: int, run_id: str, project_id: str, epochs: int, base: float) -> dict[str, Any]:
    """The ``runs`` row of the workload's run ``i`` (as ``ui.build_trialbook`` makes it)."""
    return {
        "id": run_id,
        "project_id": project_id,
        "name": ui.table_name(i),
        "status": "finished",
        "created_at": base + i,
        "heartbeat_at": base + i + 60,
        "ended_at": base + i + 60,
        "parent_id": None,
        "dataset": None,
        "dataset_digest": None,
        "pinned": False,
        "split_digests": {},
        "config": ui.settings(i, epochs),
        "env": {},
        "tags": ui.tags(i),
        "legacy_name": False,
        "end_reason": None,
        "unwritten": 0,
    }


def series_row(run_id: str, key: str, curve: list[float]) -> dict[str, Any]:
    """The ``series`` row of ``curve`` (epochs 0, 1, ...), its summary as ``log_batch``
    keeps it: ``core.metrics.summarize`` and the last epoch."""
    from trialbook.core.metrics import direction_of, summarize

    direction = direction_of(key)
    summary = summarize(enumerate(curve), direction)
    return {"run_id": run_id, "key": key, "direction": direction, **summary, "last_epoch": len(curve) - 1}


def _write_points(conn: Any, dialect: str, rows: list[tuple[int, int, float | None]]) -> None:
    if dialect == "postgresql":
        driver = conn.connection.driver_connection
        with (
            driver.cursor() as cur,
            cur.copy("COPY points (series_id, epoch, value) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.set_types(["int4", "int4", "float8"])
            for row in rows:
                copy.write_row(row)
    else:
        conn.exec_driver_sql("INSERT INTO points (series_id, epoch, value) VALUES (?, ?, ?)", rows)


def bulk_fill(
    store: Any,
    runs_n: int,
    epochs: int,
    *,
    project: str = ui.PROJECT,
    base: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[tuple[str, float]]:
    """``runs_n`` runs of ``epochs`` epochs of ``ui.RANK_KEY`` (the runs of
    ``ui.build_trialbook``) into ``store`` (a ``SqlStore``, its ``project`` made), in
    one transaction; ``base``: the first run's ``created_at`` (default 30 days ago).
    Returns each run's name and final value."""
    from trialbook.store.sql.schema import runs, series

    base = time.time() - 86400 * 30 if base is None else base
    dialect = store.db.dialect
    finals: list[tuple[str, float]] = []
    t0 = time.perf_counter()
    with store.db.write() as conn:
        project_id = store._project_id(conn, project)
        for start in range(0, runs_n, CHUNK):
            idx = range(start, min(runs_n, start + CHUNK))
            ids = [uuid.uuid4().hex for _ in idx]
            curves = [ui.table_curve(i, epochs) for i in idx]
            conn.execute(
                runs.insert(),
                [run_row(i, rid, project_id, epochs, base) for i, rid in zip(idx, ids, strict=True)],
            )
            conn.execute(
                series.insert(), [series_row(rid, ui.RANK_KEY, c) for rid, c in zip(ids, curves, strict=True)]
            )
            sids = dict(
                conn.execute(
                    sa.select(series.c.run_id, series.c.id).where(
                        series.c.run_id.in_(ids), series.c.key == ui.RANK_KEY
                    )
                ).all()
            )
            points = [(sids[rid], e, v) for rid, c in zip(ids, curves, strict=True) for e, v in enumerate(c)]
            _write_points(conn, dialect, points)
            finals += [(ui.table_name(i), c[-1]) for i, c in zip(idx, curves, strict=True)]
            if progress and (start // CHUNK) % 10 == 9:
                progress(f"{start + len(idx):,}/{runs_n:,} runs, {time.perf_counter() - t0:.0f} s")
    return finals
