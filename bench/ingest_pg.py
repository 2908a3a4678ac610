#!/usr/bin/env python3
"""PostgreSQL ingest benchmark: the workload of ``bench/ingest.py`` into a PostgreSQL book,
beside psycopg's ``COPY`` of the same rows, in one run.

    .venv/bin/python bench/ingest_pg.py                    # 50 runs x 300 epochs x 14 keys
    .venv/bin/python bench/ingest_pg.py --runs 20 --pg postgresql://postgres@127.0.0.1:5432

Three measures of the same points (``--runs`` runs of ``--epochs`` epochs of the 14 keys
Ultralytics' detection trainer logs), each in a fresh database made on ``--pg`` and dropped
at the end:

* the limit: psycopg's binary ``COPY`` into a bare ``points`` table of the same primary key
  (``series_id, epoch``), one transaction a run; the rows by ``write_row`` (psycopg's
  documented way, the issue's limit) and, to show the server's own share, the same COPY
  data packed before the clock and sent by one ``write``;
* the store directly: ``store.log_batch(run_id, {key: {epoch: value}}, heartbeat_at=...)``
  of a run's 4,200 points in one call (what ``Run.finish`` sends when the writer thread
  has not flushed before), the run made before the clock;
* the API: ``run.log(row, epoch=e)`` per epoch and ``run.finish()`` (start not timed), with
  ``TRIALBOOK_SYSTEM_METRICS=0`` so the points are the same; ``finish`` is timed alone.

Medians and rates over all runs; the result is a markdown table on stdout, progress on
stderr. Needs a PostgreSQL server that ``--pg`` can create databases on (trust auth).
"""

from __future__ import annotations

import argparse
import os
import statistics
import struct
import sys
import time
import uuid
from pathlib import Path
from typing import Any

os.environ["TRIALBOOK_SYSTEM_METRICS"] = "0"  # the same points as the limit's rows
sys.path.insert(0, str(Path(__file__).resolve().parent))

import ingest as w  # the workload

TARGET_SHARE = 0.50  # issue 15: >= 50 % of COPY
TARGET_FINISH_S = 0.020  # issue 15: finish under 20 ms a run


def log(msg: str) -> None:
    print(f"[ingest_pg] {msg}", file=sys.stderr, flush=True)


def run_rows(i: int, spec: dict[str, Any]) -> list[tuple[int, int, float]]:
    return [
        (i * len(w.EPOCH_KEYS) + n, e, v)
        for e, row in enumerate(spec["rows"])
        for n, v in enumerate(row.values())
    ]


def packed(rows: list[tuple[int, int, float]]) -> bytes:
    one = struct.Struct(">hiiiiid").pack
    body = b"".join([one(3, 4, s, 4, e, 8, v) for s, e, v in rows])
    return b"PGCOPY\n\xff\r\n\x00" + bytes(8) + body + b"\xff\xff"


def bench_copy(uri: str, runs: list[dict[str, Any]], *, prepacked: bool) -> list[float]:
    """Seconds a run of psycopg's binary COPY of its rows (one transaction each)."""
    import psycopg

    batches = [run_rows(i, spec) for i, spec in enumerate(runs)]
    data = [packed(rows) for rows in batches] if prepacked else []
    times = []
    with psycopg.connect(uri) as conn:
        conn.execute(
            "CREATE TABLE points (series_id integer NOT NULL, epoch integer NOT NULL, "
            "value double precision, PRIMARY KEY (series_id, epoch))"
        )
        conn.commit()
        sql = "COPY points (series_id, epoch, value) FROM STDIN (FORMAT BINARY)"
        for i, rows in enumerate(batches):
            t0 = time.perf_counter()
            with conn.cursor() as cur, cur.copy(sql) as copy:
                if prepacked:
                    copy.write(data[i])
                else:
                    copy.set_types(["int4", "int4", "float8"])
                    for row in rows:
                        copy.write_row(row)
            conn.commit()
            times.append(time.perf_counter() - t0)
    return times


def bench_store(uri: str, runs: list[dict[str, Any]]) -> list[float]:
    """Seconds a run of ``store.log_batch`` of its points in one call."""
    from trialbook.core.entities import RunRecord
    from trialbook.store.registry import open_store

    store = open_store(uri)
    store.create_project(w.PROJECT)
    times = []
    for i, spec in enumerate(runs):
        rid = uuid.uuid4().hex
        store.create_run(
            RunRecord(
                id=rid, project=w.PROJECT, name=f"v{i + 1}_store", status="running", created_at=time.time()
            )
        )
        batch: dict[str, dict[int, float]] = {k: {} for k in w.EPOCH_KEYS}
        for e, row in enumerate(spec["rows"]):
            for k, v in row.items():
                batch[k][e] = v
        t0 = time.perf_counter()
        store.log_batch(rid, batch, heartbeat_at=time.time())
        times.append(time.perf_counter() - t0)
    check(store, rid, spec)
    return times


def bench_api(uri: str, runs: list[dict[str, Any]]) -> tuple[list[float], list[float]]:
    """Seconds a run of the ``log`` calls and of ``finish``."""
    from trialbook.api import Book

    book = Book.open(uri)
    book.store.ensure_project(w.PROJECT)
    logs, finishes = [], []
    for spec in runs:
        run = book.start(w.PROJECT, spec["name"], allow_unpinned=True)
        run_log = run.log
        t0 = time.perf_counter()
        for epoch, row in enumerate(spec["rows"]):
            run_log(row, epoch=epoch)
        t1 = time.perf_counter()
        run.finish()
        t2 = time.perf_counter()
        logs.append(t1 - t0)
        finishes.append(t2 - t1)
    check(book.store, run.id, spec)
    book.close()
    return logs, finishes


def check(store: Any, run_id: str, spec: dict[str, Any]) -> None:
    """The last run's points read back equal to the logged ones (exact)."""
    history = store.get_all_history(run_id)
    for k in w.EPOCH_KEYS:
        want = [(e, row[k]) for e, row in enumerate(spec["rows"])]
        if history.get(k) != want:
            raise SystemExit(f"{k}: the points read back differ from the logged ones")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=50, help="runs (default 50)")
    p.add_argument("--epochs", type=int, default=300, help="epochs per run (default 300)")
    p.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432", help="PostgreSQL server URI")
    args = p.parse_args(argv)
    runs = [w.make_run(i, args.epochs) for i in range(args.runs)]
    points = args.epochs * len(w.EPOCH_KEYS)
    load0 = w.load_average()
    res: dict[str, list[float]] = {}
    for tag, fn in (
        ("copy", lambda uri: bench_copy(uri, runs, prepacked=False)),
        ("store", lambda uri: bench_store(uri, runs)),
        ("copy_bytes", lambda uri: bench_copy(uri, runs, prepacked=True)),
    ):
        log(tag)
        with w.pg_database(args.pg, f"bench_ingest_{tag}_{os.getpid()}") as uri:
            res[tag] = fn(uri)
    log("api")
    with w.pg_database(args.pg, f"bench_ingest_api_{os.getpid()}") as uri:
        res["log"], res["finish"] = bench_api(uri, runs)
    med = {k: statistics.median(v) for k, v in res.items()}
    rate = {k: points / s for k, s in med.items()}
    limit = rate["copy"]
    api_rate = points / (med["log"] + med["finish"])
    store_share = rate["store"] / limit

    def row(label: str, seconds: float, points_s: float | None, *rest: str) -> str:
        cells = [label, w.fmt_time(seconds)]
        cells += [w.fmt_rate(points_s), f"{points_s / limit:.0%}"] if points_s else ["", ""]
        return "| " + " | ".join([*cells, *rest] + [""] * (2 - len(rest))) + " |"

    lines = [
        f"### PostgreSQL ingest: {args.runs} runs × {args.epochs} epochs × {len(w.EPOCH_KEYS)} keys "
        f"({points:,} points a run), medians a run",
        "",
        "| path | time a run | points / s | share of the limit | target | met |",
        "|---|---:|---:|---:|---|:-:|",
        row("the limit: psycopg binary `COPY`, rows by `write_row`", med["copy"], limit),
        row(
            "(the server alone: the same COPY data packed before the clock)",
            med["copy_bytes"],
            rate["copy_bytes"],
        ),
        row(
            "trialbook, the store: one `log_batch` of the run's points",
            med["store"],
            rate["store"],
            f"≥ {TARGET_SHARE:.0%}",
            w.mark(store_share >= TARGET_SHARE),
        ),
        row(
            f"trialbook, the API: {args.epochs} `log` calls + `finish`", med["log"] + med["finish"], api_rate
        ),
        row(
            "`finish` (the final write of the run's points, then its status)",
            med["finish"],
            None,
            f"< {TARGET_FINISH_S * 1e3:.0f} ms",
            w.mark(med["finish"] < TARGET_FINISH_S),
        ),
        "",
        f"Machine: {os.cpu_count()} CPUs; PostgreSQL on loopback; 1-minute load average {load0:.2f} at the "
        f"start, {w.load_average():.2f} at the end (other work on the machine skews the figures).",
    ]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
