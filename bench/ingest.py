#!/usr/bin/env python3
"""Ingest benchmark: one Ultralytics-shaped workload through trialbook and through MLflow.

    .venv/bin/python bench/ingest.py                   # 50 runs x 300 epochs, both tools
    .venv/bin/python bench/ingest.py --skip-mlflow     # trialbook only
    .venv/bin/python bench/ingest.py --runs 5 --epochs 20 --keep

The workload, identical for both tools (same values, same files):

* ``--runs`` runs (default 50) of ``--epochs`` epochs (default 300);
* every epoch one call logging the 14 scalars Ultralytics' detection trainer reports
  (trialbook ``run.log(metrics, epoch=e)``; MLflow ``mlflow.log_metrics(metrics, step=e)``,
  as Ultralytics' own MLflow callback does, with ``(`` and ``)`` stripped from the keys
  because MLflow refuses them, again as that callback does);
* at the end of every run an evaluation with per-class AP for 20 classes (trialbook
  ``run.log_eval("val", metrics, per_class_ap=...)``; MLflow one ``log_metrics`` call
  with the same numbers as ``eval/<metric>`` and ``ap/<class>`` keys);
* one 1 MiB artifact per run (random bytes, a different file per run);
* then two queries, each timed as the median of several repetitions: the runs table
  (all runs with the final ``metrics/mAP50-95(B)``, ranked) and the history of that
  metric for 10 runs. Both tools must return the same answer; the script checks it.

Both tools start from an empty store in a fresh folder under ``bench/.work/`` (deleted
afterwards unless ``--keep``); store creation (schema migrations) is not timed, everything
from the first run start to the last run end is. trialbook runs in this process; MLflow
runs in its own virtual environment (``bench/.venv-mlflow/``, created on first use) as a
subprocess with an SQLite backend, telemetry off, that prints its timings as JSON.

The result is printed as a markdown table (stdout); progress goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
WORK_ROOT = BENCH_DIR / ".work"
MLFLOW_VENV = BENCH_DIR / ".venv-mlflow"
MLFLOW_REQUIREMENT = "mlflow==3.17.2"  # the newest release whose dependencies all install here

PROJECT = "bench"
RANK_KEY = "metrics/mAP50-95(B)"
HISTORY_RUNS = 10
QUERY_REPS = 9
ARTIFACT_BYTES = 1 << 20
JSON_MARK = "BENCH_JSON "

# targets from the issue
TARGET_POINTS_RATIO = 100.0
TARGET_LOG_MEDIAN_US = 50.0
TARGET_QUERY_RATIO = 20.0
TARGET_RAW_SHARE = 0.60  # issue 15: SQLite ingest at >= 60 % of the raw upsert of the same rows

EPOCH_KEYS = (
    "train/box_loss",
    "train/cls_loss",
    "train/dfl_loss",
    "metrics/precision(B)",
    "metrics/recall(B)",
    "metrics/mAP50(B)",
    "metrics/mAP50-95(B)",
    "val/box_loss",
    "val/cls_loss",
    "val/dfl_loss",
    "lr/pg0",
    "lr/pg1",
    "lr/pg2",
    "fitness",
)
CLASSES = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)


def log(msg: str) -> None:
    print(f"[ingest] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the workload
# Imported by the MLflow subprocess too, so keep this part standard library only.
def run_name(index: int) -> str:
    return f"v{index + 1}_bench"


def mlflow_key(key: str) -> str:
    """MLflow refuses parentheses in metric names; Ultralytics' callback strips them."""
    return key.replace("(", "").replace(")", "")


def make_run(index: int, epochs: int) -> dict[str, Any]:
    """Deterministic, plausible curves of one training run.

    mAP50-95 never decreases, so its best and final values agree and "ranked by the
    final value" is one answer whichever of the two a tool ranks by."""
    rng = random.Random(7919 * (index + 1))
    plateau = 0.30 + 0.40 * rng.random()
    tau = epochs / (3.0 + 3.0 * rng.random())
    rows: list[dict[str, float]] = []
    best = 0.0
    for e in range(epochs):
        progress = 1.0 - math.exp(-(e + 1) / tau)
        best = max(best, plateau * progress * (1.0 + 0.02 * rng.uniform(-1.0, 1.0)))
        map50 = min(0.99, best * 1.45 + 0.01 * rng.random())
        decay = 1.0 - progress * 0.6
        lr = 0.01 * (1.0 - e / max(epochs, 1)) + 1e-4
        rows.append(
            {
                "train/box_loss": 1.6 * decay + 0.03 * rng.random(),
                "train/cls_loss": 2.4 * decay + 0.05 * rng.random(),
                "train/dfl_loss": 1.3 * decay + 0.02 * rng.random(),
                "metrics/precision(B)": min(0.99, best * 1.5 + 0.02 * rng.random()),
                "metrics/recall(B)": min(0.99, best * 1.3 + 0.02 * rng.random()),
                "metrics/mAP50(B)": map50,
                "metrics/mAP50-95(B)": best,
                "val/box_loss": 1.7 * decay + 0.04 * rng.random(),
                "val/cls_loss": 2.5 * decay + 0.06 * rng.random(),
                "val/dfl_loss": 1.4 * decay + 0.03 * rng.random(),
                "lr/pg0": lr,
                "lr/pg1": lr,
                "lr/pg2": lr,
                "fitness": 0.1 * map50 + 0.9 * best,
            }
        )
    last = rows[-1]
    evaluation = {
        "mAP50": last["metrics/mAP50(B)"],
        "mAP50-95": last["metrics/mAP50-95(B)"],
        "precision": last["metrics/precision(B)"],
        "recall": last["metrics/recall(B)"],
    }
    per_class = {c: min(0.999, max(0.0, best + rng.uniform(-0.2, 0.2))) for c in CLASSES}
    return {"name": run_name(index), "rows": rows, "eval": evaluation, "per_class_ap": per_class}


def make_artifacts(folder: Path, runs: int) -> list[Path]:
    """One 1 MiB file of random bytes per run (all different: no tool can deduplicate)."""
    paths = []
    for i in range(runs):
        path = folder / f"r{i:03d}" / "best.pt"
        path.parent.mkdir(parents=True)
        path.write_bytes(os.urandom(ARTIFACT_BYTES))
        paths.append(path)
    return paths


def latency_stats(ns: Sequence[int]) -> dict[str, float]:
    """Median, p99 (nearest rank) and mean of call times given in ns, in microseconds."""
    ordered = sorted(ns)
    p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
    return {
        "median_us": statistics.median(ordered) / 1e3,
        "p99_us": p99 / 1e3,
        "mean_us": statistics.fmean(ordered) / 1e3,
        "max_us": ordered[-1] / 1e3,
        "count": len(ordered),
    }


def time_query(fn: Callable[[], Any], reps: int = QUERY_REPS) -> tuple[float, Any]:
    """Median wall time of ``fn()`` over ``reps`` calls (seconds), and its last answer."""
    times = []
    answer = None
    for _ in range(reps):
        t0 = time.perf_counter()
        answer = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), answer


@contextlib.contextmanager
def pg_database(pg: str, name: str) -> Iterator[str]:
    """A fresh PostgreSQL database ``name`` on the server ``pg`` (its URI), dropped
    afterwards (``bench/ingest_pg.py``, ``bench/server.py``)."""
    import psycopg

    with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{pg}/{name}"
    finally:
        with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --------------------------------------------------------------------------- trialbook
def bench_trialbook(work: Path, runs: list[dict[str, Any]], artifacts: list[Path]) -> dict[str, Any]:
    import trialbook as tb
    from trialbook.services.runs import runs_table

    book = tb.init(work / "trialbook")  # creates the schema: not timed, like MLflow's
    book.store.ensure_project(PROJECT)
    log_ns: list[int] = []
    phases = dict.fromkeys(("start", "log", "eval", "artifact", "finish"), 0.0)
    clock = time.perf_counter
    clock_ns = time.perf_counter_ns
    wall0 = clock()
    for i, spec in enumerate(runs):
        t0 = clock()
        run = book.start(PROJECT, spec["name"], allow_unpinned=True)
        t1 = clock()
        run_log = run.log
        for epoch, row in enumerate(spec["rows"]):
            a = clock_ns()
            run_log(row, epoch=epoch)
            log_ns.append(clock_ns() - a)
        t2 = clock()
        run.log_eval("val", spec["eval"], per_class_ap=spec["per_class_ap"])
        t3 = clock()
        run.log_artifact(artifacts[i])
        t4 = clock()
        run.finish()
        t5 = clock()
        for phase, seconds in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
            phases[phase] += seconds
        if (i + 1) % 10 == 0 or i + 1 == len(runs):
            log(f"trialbook: {i + 1}/{len(runs)} runs, {clock() - wall0:.2f} s")
    wall = clock() - wall0

    table_s, table = time_query(lambda: runs_table(book, PROJECT))
    ranking = [(r["name"], r["final"]) for r in table["runs"]]
    by_name = {r["name"]: r["id"] for r in table["runs"]}
    ids = [by_name[spec["name"]] for spec in runs[:HISTORY_RUNS]]
    history_s, history = time_query(lambda: book.store.get_history(ids, RANK_KEY))
    histories = {
        spec["name"]: [v for _, v in history[rid]] for spec, rid in zip(runs[:HISTORY_RUNS], ids, strict=True)
    }
    book.close()
    return {
        "version": tb.__version__,
        "wall_s": wall,
        "log": latency_stats(log_ns),
        "phases": phases,
        "runs_table_s": table_s,
        "history_s": history_s,
        "ranking": ranking,
        "histories": histories,
    }


# --------------------------------------------------------------------------- the limit
def bench_raw_upsert(work: Path, runs: list[dict[str, Any]]) -> float:
    """Seconds for the machine's limit on the same points: ``executemany`` of the same
    upsert into a bare ``points`` table of the same key (``WITHOUT ROWID``), WAL and
    ``synchronous=NORMAL`` as trialbook's book, one transaction a run, nothing else."""
    conn = sqlite3.connect(work / "raw.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE points (series_id INTEGER NOT NULL, epoch INTEGER NOT NULL, value REAL, "
        "PRIMARY KEY (series_id, epoch)) WITHOUT ROWID"
    )
    sql = (
        "INSERT INTO points VALUES (?, ?, ?) "
        "ON CONFLICT (series_id, epoch) DO UPDATE SET value = excluded.value"
    )
    batches = []
    for i, spec in enumerate(runs):
        sid = {k: i * len(EPOCH_KEYS) + n for n, k in enumerate(EPOCH_KEYS)}
        batches.append([(sid[k], e, v) for e, row in enumerate(spec["rows"]) for k, v in row.items()])
    t0 = time.perf_counter()
    for rows in batches:
        conn.execute("BEGIN")
        conn.executemany(sql, rows)
        conn.execute("COMMIT")
    seconds = time.perf_counter() - t0
    conn.close()
    return seconds


# --------------------------------------------------------------------------- MLflow
MLFLOW_SCRIPT = r"""
import json, sys, time
from pathlib import Path

sys.path.insert(0, sys.argv[1])
import ingest as w

work, runs_n, epochs = Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
import mlflow
from mlflow.tracking import MlflowClient

specs = [w.make_run(i, epochs) for i in range(runs_n)]
for s in specs:  # the key clean-up Ultralytics' callback does, here done before the clock
    s["rows"] = [{w.mlflow_key(k): v for k, v in row.items()} for row in s["rows"]]
    s["final"] = {**{"eval/" + k: v for k, v in s["eval"].items()},
                  **{"ap/" + c: v for c, v in s["per_class_ap"].items()}}
artifacts = [work / "artifacts" / f"r{i:03d}" / "best.pt" for i in range(runs_n)]
client = MlflowClient()
exp_id = client.create_experiment(w.PROJECT, artifact_location=(work / "mlflow" / "artifacts").as_uri())

log_ns = []
phases = dict.fromkeys(("start", "log", "eval", "artifact", "finish"), 0.0)
clock, clock_ns = time.perf_counter, time.perf_counter_ns
wall0 = clock()
for i, s in enumerate(specs):
    t0 = clock()
    mlflow.start_run(experiment_id=exp_id, run_name=s["name"])
    t1 = clock()
    log_metrics = mlflow.log_metrics
    for epoch, row in enumerate(s["rows"]):
        a = clock_ns()
        log_metrics(row, step=epoch)
        log_ns.append(clock_ns() - a)
    t2 = clock()
    mlflow.log_metrics(s["final"], step=epochs - 1)
    t3 = clock()
    mlflow.log_artifact(str(artifacts[i]))
    t4 = clock()
    mlflow.end_run()
    t5 = clock()
    for phase, sec in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
        phases[phase] += sec
    if (i + 1) % 5 == 0 or i + 1 == runs_n:
        w.log(f"mlflow: {i + 1}/{runs_n} runs, {clock() - wall0:.1f} s")
wall = clock() - wall0

key = w.mlflow_key(w.RANK_KEY)
def runs_table():
    return client.search_runs([exp_id], order_by=[f"metrics.`{key}` DESC"], max_results=1000)
table_s, table = w.time_query(runs_table)
ranking = [(r.info.run_name, r.data.metrics.get(key)) for r in table]
run_ids = {r.info.run_name: r.info.run_id for r in table}
names = [s["name"] for s in specs[:w.HISTORY_RUNS]]
def history():
    return {n: client.get_metric_history(run_ids[n], key) for n in names}
history_s, hist = w.time_query(history)
histories = {n: [m.value for m in sorted(hist[n], key=lambda m: m.step)] for n in names}
print(w.JSON_MARK + json.dumps({
    "version": mlflow.__version__, "wall_s": wall, "log": w.latency_stats(log_ns),
    "phases": phases, "runs_table_s": table_s, "history_s": history_s, "ranking": ranking,
    "histories": histories}), flush=True)
"""


def mlflow_python() -> Path:
    """The MLflow venv's interpreter; the venv is created (and MLflow installed) if missing."""
    python = MLFLOW_VENV / "bin" / "python"
    probe = [str(python), "-c", "import mlflow, sys; sys.stdout.write(mlflow.__version__)"]
    if python.exists():
        found = subprocess.run(probe, capture_output=True, text=True)
        if found.returncode == 0:
            wanted = MLFLOW_REQUIREMENT.split("==")[1]
            if found.stdout.strip() != wanted:
                log(f"note: {MLFLOW_VENV} has MLflow {found.stdout.strip()}, not {wanted}; using it")
            return python
    if not python.exists():
        base = shutil.which("python3") or sys.executable
        log(f"creating {MLFLOW_VENV} ({base} -m venv)")
        subprocess.run([base, "-m", "venv", str(MLFLOW_VENV)], check=True)
    log(f"installing {MLFLOW_REQUIREMENT} into {MLFLOW_VENV} (a few minutes, once)")
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", MLFLOW_REQUIREMENT],
        check=True,
    )
    subprocess.run(probe, check=True, capture_output=True)
    return python


def bench_mlflow(work: Path, runs: int, epochs: int) -> dict[str, Any]:
    python = mlflow_python()
    (work / "mlflow").mkdir()
    env = dict(os.environ)
    env.update(
        {
            "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow' / 'mlflow.db'}",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true",
            "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
            "MLFLOW_LOGGING_LEVEL": "WARNING",
            "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
            "GIT_PYTHON_REFRESH": "quiet",
            "PYTHONWARNINGS": "ignore",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        [str(python), "-c", MLFLOW_SCRIPT, str(BENCH_DIR), str(work), str(runs), str(epochs)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(JSON_MARK)]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout)
        raise SystemExit(f"the MLflow half failed (exit status {proc.returncode})")
    return json.loads(lines[-1][len(JSON_MARK) :])


# --------------------------------------------------------------------------- checks and report
def check_answers(runs: list[dict[str, Any]], result: dict[str, Any]) -> list[str]:
    """Problems with one tool's answers: the ranking and the histories against the workload."""
    expected = sorted(((r["name"], r["rows"][-1][RANK_KEY]) for r in runs), key=lambda p: -p[1])
    problems = []
    got = [tuple(p) for p in result["ranking"]]
    if [n for n, _ in got] != [n for n, _ in expected]:
        problems.append("runs table: the order of the runs differs from the expected ranking")
    elif any(v is None or abs(v - e) > 1e-12 for (_, v), (_, e) in zip(got, expected, strict=True)):
        problems.append("runs table: a final value differs from the logged one")
    for spec in runs[:HISTORY_RUNS]:
        want = [row[RANK_KEY] for row in spec["rows"]]
        have = result["histories"].get(spec["name"], [])
        if len(have) != len(want) or any(abs(a - b) > 1e-12 for a, b in zip(have, want, strict=True)):
            problems.append(f"history of {spec['name']}: {len(have)} points, not the {len(want)} logged")
            break
    return problems


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}"


def fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"


def fmt_ratio(x: float) -> str:
    return f"{x:,.0f}×" if x >= 100 else f"{x:.1f}×"


def mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def load_average() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:  # pragma: no cover - not on every platform
        return math.nan


def report(
    args: argparse.Namespace,
    points: int,
    tb: dict[str, Any],
    ml: dict[str, Any] | None,
    problems: list[str],
    loads: tuple[float, float],
) -> str:
    tb_rate = points / tb["wall_s"]
    head = f"| measure | trialbook {tb['version']} |"
    rule = "|---|---:|"
    if ml:
        head += f" MLflow {ml['version']} | trialbook speedup |"
        rule += "---:|---:|"
    head += " target | met |"
    rule += "---|:-:|"
    lines = [
        f"### Ingest: {args.runs} runs × {args.epochs} epochs × {len(EPOCH_KEYS)} keys "
        f"({points:,} points), a {len(CLASSES)}-class eval and a 1 MiB artifact per run",
        "",
        head,
        rule,
    ]

    def row(label: str, tb_val: str, ml_val: str, ratio: str, target: str, ok: str) -> None:
        cells = [label, tb_val] + ([ml_val, ratio] if ml else []) + [target, ok]
        lines.append("| " + " | ".join(cells) + " |")

    ml_rate = points / ml["wall_s"] if ml else 0.0
    rate_ratio = tb_rate / ml_rate if ml else 0.0
    row(
        "points / s (whole workload)",
        fmt_rate(tb_rate),
        fmt_rate(ml_rate),
        fmt_ratio(rate_ratio),
        f"≥ {TARGET_POINTS_RATIO:.0f}× MLflow",
        mark(rate_ratio >= TARGET_POINTS_RATIO) if ml else "–",
    )
    raw_rate = points / tb["raw_s"]
    share = tb_rate / raw_rate
    # the points' own path: the log calls and finish (its final write of the run's points)
    path_s = tb["phases"]["log"] + tb["phases"]["finish"]
    path_share = (points / path_s) / raw_rate
    row(
        "the limit: raw SQLite upsert of the same points (`executemany`)",
        fmt_rate(raw_rate),
        "",
        "",
        "",
        "",
    )
    row(
        "trialbook's share of the limit, the points' path (`log` calls + `finish`)",
        f"{path_share:.0%} ({fmt_rate(points / path_s)} / s)",
        "",
        "",
        f"≥ {TARGET_RAW_SHARE:.0%}",
        mark(path_share >= TARGET_RAW_SHARE),
    )
    row(
        "trialbook's share of the limit, whole workload (with run starts, evals, artifacts)",
        f"{share:.0%}",
        "",
        "",
        f"≥ {TARGET_RAW_SHARE:.0%}",
        mark(share >= TARGET_RAW_SHARE),
    )
    row(
        "wall time of the workload",
        fmt_time(tb["wall_s"]),
        fmt_time(ml["wall_s"]) if ml else "",
        fmt_ratio(ml["wall_s"] / tb["wall_s"]) if ml else "",
        "",
        "",
    )
    tb_med, tb_p99 = tb["log"]["median_us"], tb["log"]["p99_us"]
    row(
        "`log` call, median",
        fmt_time(tb_med / 1e6),
        fmt_time(ml["log"]["median_us"] / 1e6) if ml else "",
        fmt_ratio(ml["log"]["median_us"] / tb_med) if ml else "",
        f"< {TARGET_LOG_MEDIAN_US:.0f} µs",
        mark(tb_med < TARGET_LOG_MEDIAN_US),
    )
    row(
        "`log` call, p99",
        fmt_time(tb_p99 / 1e6),
        fmt_time(ml["log"]["p99_us"] / 1e6) if ml else "",
        fmt_ratio(ml["log"]["p99_us"] / tb_p99) if ml else "",
        "",
        "",
    )
    for label, key in (
        (f"runs table ({args.runs} runs, final mAP50-95, ranked)", "runs_table_s"),
        (f"mAP50-95 history of {min(HISTORY_RUNS, args.runs)} runs", "history_s"),
    ):
        ratio = ml[key] / tb[key] if ml else 0.0
        row(
            label,
            fmt_time(tb[key]),
            fmt_time(ml[key]) if ml else "",
            fmt_ratio(ratio) if ml else "",
            f"≥ {TARGET_QUERY_RATIO:.0f}× faster",
            mark(ratio >= TARGET_QUERY_RATIO) if ml else "–",
        )

    lines += ["", "Time spent per phase, summed over all runs:", ""]
    lines.append("| phase | trialbook |" + (" MLflow |" if ml else ""))
    lines.append("|---|---:|" + ("---:|" if ml else ""))
    names = {
        "start": "start a run",
        "log": "per-epoch `log` calls",
        "eval": "eval + per-class AP",
        "artifact": "1 MiB artifact",
        "finish": "finish / end the run",
    }
    for phase, label in names.items():
        cells = [label, fmt_time(tb["phases"][phase])] + ([fmt_time(ml["phases"][phase])] if ml else [])
        lines.append("| " + " | ".join(cells) + " |")

    hist_n = min(HISTORY_RUNS, args.runs)
    notes = [
        "The points' path is the time of the per-epoch `log` calls and of `finish` (which writes "
        "the run's points and its ending); the whole workload adds each run's start, evaluation "
        "and 1 MiB artifact, which the limit does not do. `TRIALBOOK_SYSTEM_METRICS=0`: no "
        "`system/` series, so trialbook writes the same points as the limit.",
        f"Queries: median of {QUERY_REPS} repetitions. Runs table: trialbook "
        f"`services.runs.runs_table(book, {PROJECT!r})`; history: trialbook `store.get_history(ids, key)` "
        "(one call).",
    ]
    if ml:
        notes.append(
            "MLflow: SQLite backend, synchronous logging, telemetry off; runs table "
            "`MlflowClient.search_runs(order_by=[metric DESC])`, history "
            f"`MlflowClient.get_metric_history` ({hist_n} calls); metric keys without "
            "parentheses (MLflow refuses them; Ultralytics' MLflow callback strips them too)."
        )
        notes.append(
            f"Same answers from both tools: {mark(not problems)}"
            + (" (" + "; ".join(problems) + ")" if problems else "")
        )
    elif problems:
        notes.append("Answers: ✗ (" + "; ".join(problems) + ")")
    notes.append(
        f"Machine: {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}; 1-minute load average "
        f"{loads[0]:.2f} at the start, {loads[1]:.2f} at the end (other work on the machine "
        "skews both tools' figures)."
    )
    for note in notes:
        lines += ["", note]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=50, help="number of runs (default 50)")
    parser.add_argument("--epochs", type=int, default=300, help="epochs per run (default 300)")
    parser.add_argument("--skip-mlflow", action="store_true", help="run the trialbook half only")
    parser.add_argument("--keep", action="store_true", help="keep the stores under bench/.work/")
    parser.add_argument(
        "--profile", metavar="FILE", help="write a cProfile of the trialbook half to FILE (pstats format)"
    )
    args = parser.parse_args(argv)
    if args.runs < 1 or args.epochs < 1:
        parser.error("--runs and --epochs must be at least 1")
    # no system/ series: trialbook writes the same points as the limit's rows
    os.environ["TRIALBOOK_SYSTEM_METRICS"] = "0"

    WORK_ROOT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="ingest-", dir=WORK_ROOT))
    try:
        log(f"work folder {work}")
        runs = [make_run(i, args.epochs) for i in range(args.runs)]
        artifacts = make_artifacts(work / "artifacts", args.runs)
        points = args.runs * args.epochs * len(EPOCH_KEYS)
        load_start = load_average()

        log("trialbook half")
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
            tb = profiler.runcall(bench_trialbook, work, runs, artifacts)
            profiler.dump_stats(args.profile)
            log(f"profile written to {args.profile} (the timings include the profiler's overhead)")
        else:
            tb = bench_trialbook(work, runs, artifacts)
        problems = [f"trialbook {p}" for p in check_answers(runs, tb)]
        log("the limit: raw upsert of the same points")
        tb["raw_s"] = bench_raw_upsert(work, runs)

        ml = None
        if not args.skip_mlflow:
            log("MLflow half (about 7 ms per log call: a couple of minutes at full size)")
            ml = bench_mlflow(work, args.runs, args.epochs)
            problems += [f"MLflow {p}" for p in check_answers(runs, ml)]

        print(report(args, points, tb, ml, problems, (load_start, load_average())))
        return 1 if problems else 0
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
