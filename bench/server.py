#!/usr/bin/env python3
"""Team-server benchmark: one workload over HTTP into `trialbook server` and `mlflow server`,
both on PostgreSQL, side by side; then the web UI's data calls on a big PostgreSQL book.

    .venv/bin/python bench/server.py                        # 50 runs x 300 epochs; UI at 10,000 runs
    .venv/bin/python bench/server.py --runs 10 --ui-runs 2000
    .venv/bin/python bench/server.py --skip-mlflow --skip-ui
    .venv/bin/python bench/server.py --mlflow-bin /tmp/mlflow-venv/bin/mlflow

Ingest (the workload of ``bench/ingest.py``: ``--runs`` runs of ``--epochs`` epochs of the
14 keys Ultralytics' detection trainer logs, an evaluation with per-class AP for 20
classes and a 1 MiB artifact per run):

* trialbook: this process logs through the Python API against ``TRIALBOOK_URI`` =
  the server (``Book.open("http://...")``: every write goes to the outbox, a background
  uploader sends it with ``POST /api/v1/store/...``); the clock stops when the outbox is
  empty, i.e. when every point is in PostgreSQL. ``log`` is timed call by call;
* MLflow: this process speaks MLflow's REST API as its client does: ``runs/create``,
  the metrics in ``runs/log-batch`` requests of at most 1000 metrics (MLflow's limit, the
  batch size ``MlflowClient.log_batch`` and async logging send), the evaluation as one
  more batch, the artifact with ``PUT /api/2.0/mlflow-artifacts/artifacts/...``
  (``--serve-artifacts``), then ``runs/update`` (FINISHED).

Each server gets a fresh PostgreSQL database on ``--pg`` (created here, dropped at the
end) and runs ``--workers`` worker processes on a free loopback port. Schemas are made
before the server starts (``trialbook db upgrade``, ``mlflow db upgrade``): "start to
first 200" is the server's own start. RSS is the sum over the server's process tree
(the master and its workers), read from ``/proc`` after the start and after the workload.

UI data (``--ui-runs`` runs of ``--ui-epochs`` epochs of the ranking metric, plus
``--compare-runs`` runs x ``--compare-epochs`` epochs x 14 keys with an evaluation; the
workload of ``bench/ui.py``), written straight into a third database with the SQL store
(setup, not timed; ``ANALYZE`` after it, as autovacuum would), then through
``trialbook server``: the project page data
(``GET /api/v1/projects/P/runs?limit=50&sparkline=true``) and compare
(``GET /api/v1/projects/P/compare?runs=...``), each the median of ``--reps`` calls after two
warm-up calls; both answers are checked against the workload.

The result is markdown on stdout; progress goes to stderr. Needs a PostgreSQL server that
``--pg`` can create databases on (default postgresql://postgres@127.0.0.1:5432, trust auth).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import ingest
import psycopg
import ui

BENCH_DIR = Path(__file__).resolve().parent
WORK_ROOT = BENCH_DIR / ".work"
PROJECT = ingest.PROJECT
MLFLOW_BATCH = 1000  # MLflow's limit of metrics per log-batch request
START_TIMEOUT_S = 120.0
HTTP_TIMEOUT_S = 120.0

# targets from the issue
TARGET_POINTS_RATIO = 50.0
TARGET_LOG_P50_US = 50.0
TARGET_PAGE_MS = 150.0
TARGET_COMPARE_MS = 100.0
TARGET_START_S = 2.0
TARGET_RSS_MIB = 300.0


def log(msg: str) -> None:
    print(f"[server-bench] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- PostgreSQL
database = ingest.pg_database  # a fresh database, dropped afterwards


def trialbook_bin() -> str:
    beside = Path(sys.executable).with_name("trialbook")
    return str(beside) if beside.exists() else shutil.which("trialbook") or "trialbook"


def upgrade(cmd: list[str], what: str) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"{what}: schema upgrade failed (exit status {done.returncode})")


# --------------------------------------------------------------------------- servers
def tree_rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants, MiB (from /proc)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            kids = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        total += next((int(ln.split()[1]) for ln in status.splitlines() if ln.startswith("VmRSS:")), 0)
        todo += [int(k) for k in kids]
    return total / 1024


def wait_first_200(
    url: str, proc: subprocess.Popen[bytes], started: float, what: str, headers: dict[str, str] | None = None
) -> float:
    """Seconds from ``started`` to the first 200 from ``url`` (asked with ``headers``)."""
    while time.perf_counter() - started < START_TIMEOUT_S:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with status {proc.returncode} before answering")
        try:
            if httpx.get(url, headers=headers, timeout=2.0).status_code == 200:
                return time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise SystemExit(f"{what} did not answer {url} within {START_TIMEOUT_S:.0f} s")


class Server:
    """A server subprocess on a free loopback port, stopped on exit."""

    def __init__(
        self,
        what: str,
        cmd: list[str],
        health: str,
        env: dict[str, str] | None = None,
        token: str | None = None,
    ) -> None:
        self.what, self.port, self.token = what, ui.free_port(), token
        headers = {"Authorization": f"Bearer {token}"} if token else None
        self.base = f"http://127.0.0.1:{self.port}"
        cmd = [c.replace("{port}", str(self.port)) for c in cmd]
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        try:
            self.start_s = wait_first_200(self.base + health, self.proc, started, what, headers)
        except BaseException:
            self.stop()
            raise
        time.sleep(1.0)  # let every worker finish its start before reading memory
        self.rss_start = tree_rss_mib(self.proc.pid)
        log(f"{what}: first 200 after {self.start_s:.2f} s, {self.rss_start:.0f} MiB RSS")

    def rss(self) -> float:
        return tree_rss_mib(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)  # its own session: the master and its workers
                self.proc.wait(timeout=15)


def admin_token(db: str) -> str:
    """Make the server admin ``bench`` on ``db`` with ``trialbook admin`` (every route of
    the server needs a token), and a token of theirs: the last line ``token create`` prints."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIALBOOK_")}
    for args in (["user", "add", "bench", "--admin"], ["token", "create", "bench", "--label", "bench"]):
        done = subprocess.run(
            [trialbook_bin(), "admin", *args, "--db", db],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        if done.returncode != 0:
            sys.stderr.write(done.stderr)
            raise SystemExit(f"trialbook admin {' '.join(args)} failed (exit status {done.returncode})")
    return done.stdout.strip().splitlines()[-1]


def trialbook_server(db: str, artifacts: Path, workers: int) -> Server:
    """``trialbook server`` over ``db`` (at its schema's head), once its admin and token
    are made (``Server.token``)."""
    token = admin_token(db)
    artifacts.mkdir(parents=True, exist_ok=True)
    cmd = [trialbook_bin(), "server", "--db", db, "--artifacts", str(artifacts)]
    cmd += ["--port", "{port}", "--workers", str(workers)]
    return Server("trialbook server", cmd, "/api/v1/projects", token=token)


def mlflow_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "GIT_PYTHON_REFRESH": "quiet"})
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    return env


def mlflow_server(mlflow: str, db: str, artifacts: Path, workers: int) -> Server:
    cmd = [mlflow, "server", "--backend-store-uri", db, "--serve-artifacts"]
    cmd += ["--artifacts-destination", str(artifacts), "--host", "127.0.0.1", "--port", "{port}"]
    cmd += ["--workers", str(workers)]
    return Server("mlflow server", cmd, "/health", env=mlflow_env())


def mlflow_version(mlflow: str) -> str:
    done = subprocess.run([mlflow, "--version"], capture_output=True, text=True, env=mlflow_env(), timeout=60)
    return done.stdout.strip().split()[-1] if done.returncode == 0 and done.stdout.strip() else "?"


# --------------------------------------------------------------------------- trialbook ingest
def ingest_trialbook(base: str, runs: list[dict[str, Any]], artifacts: list[Path]) -> dict[str, Any]:
    """The workload through the Python API against the server; timed until the outbox is empty."""
    from trialbook.api import Book

    book = Book.open(base)
    book.store.ensure_project(PROJECT)
    log_ns: list[int] = []
    clock_ns = time.perf_counter_ns
    wall0 = time.perf_counter()
    for i, spec in enumerate(runs):
        run = book.start(PROJECT, spec["name"], allow_unpinned=True)
        run_log = run.log
        for epoch, row in enumerate(spec["rows"]):
            a = clock_ns()
            run_log(row, epoch=epoch)
            log_ns.append(clock_ns() - a)
        run.log_eval("val", spec["eval"], per_class_ap=spec["per_class_ap"])
        run.log_artifact(artifacts[i])
        run.finish()
        if (i + 1) % 10 == 0 or i + 1 == len(runs):
            log(f"trialbook: {i + 1}/{len(runs)} runs, {time.perf_counter() - wall0:.1f} s")
    sent = book.upload_outbox()  # what the runs' short grace at their end did not send
    wall = time.perf_counter() - wall0
    left = sent.left
    book.close()
    return {"wall_s": wall, "log": ingest.latency_stats(log_ns), "left": left}


def check_trialbook(db: str, runs: list[dict[str, Any]]) -> list[str]:
    """Every point, evaluation and artifact of the workload in the server's database."""
    from trialbook.store import open_store

    store = open_store(db)
    try:
        found = {r.name: r for r in store.list_runs(PROJECT)}
        problems = []
        for spec in runs:
            record = found.get(spec["name"])
            if record is None:
                return [f"trialbook: run {spec['name']} is missing"]
            history = store.get_all_history(record.id)
            points = sum(len(v) for k, v in history.items() if k in ingest.EPOCH_KEYS)
            if points != len(spec["rows"]) * len(ingest.EPOCH_KEYS):
                problems.append(f"trialbook: {spec['name']} has {points} epoch points")
            if not store.list_evaluations([record.id]) or not store.list_artifacts(record.id):
                problems.append(f"trialbook: {spec['name']} lacks its evaluation or artifact")
        return problems[:3]
    finally:
        store.close()


# --------------------------------------------------------------------------- MLflow ingest
class MlflowRest:
    """The REST calls MLflow's client makes, over one keep-alive connection."""

    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=HTTP_TIMEOUT_S)

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = self.http.post(f"/api/2.0/mlflow/{path}", json=body)
        if r.status_code != 200:
            raise SystemExit(f"mlflow {path}: HTTP {r.status_code}: {r.text[:300]}")
        answer: dict[str, Any] = r.json()
        return answer

    def log_batch(self, run_id: str, metrics: list[dict[str, Any]]) -> None:
        for i in range(0, len(metrics), MLFLOW_BATCH):
            self.post("runs/log-batch", {"run_id": run_id, "metrics": metrics[i : i + MLFLOW_BATCH]})

    def put_artifact(self, exp_id: str, run_id: str, path: Path) -> None:
        url = f"/api/2.0/mlflow-artifacts/artifacts/{exp_id}/{run_id}/artifacts/{path.name}"
        r = self.http.put(url, content=path.read_bytes())
        if r.status_code != 200:
            raise SystemExit(f"mlflow artifact upload: HTTP {r.status_code}: {r.text[:300]}")


def mlflow_run(rest: MlflowRest, exp_id: str, spec: dict[str, Any], artifact: Path) -> None:
    now = int(time.time() * 1000)
    run_id = rest.post("runs/create", {"experiment_id": exp_id, "run_name": spec["name"], "start_time": now})[
        "run"
    ]["info"]["run_id"]
    buffer: list[dict[str, Any]] = []
    for epoch, row in enumerate(spec["rows"]):
        ts = int(time.time() * 1000)
        if len(buffer) + len(row) > MLFLOW_BATCH:
            rest.log_batch(run_id, buffer)
            buffer = []
        buffer += [
            {"key": ingest.mlflow_key(k), "value": v, "timestamp": ts, "step": epoch} for k, v in row.items()
        ]
    rest.log_batch(run_id, buffer)
    ts, last = int(time.time() * 1000), len(spec["rows"]) - 1
    final = {**{"eval/" + k: v for k, v in spec["eval"].items()}}
    final.update({"ap/" + c: v for c, v in spec["per_class_ap"].items()})
    rest.log_batch(run_id, [{"key": k, "value": v, "timestamp": ts, "step": last} for k, v in final.items()])
    rest.put_artifact(exp_id, run_id, artifact)
    rest.post("runs/update", {"run_id": run_id, "status": "FINISHED", "end_time": int(time.time() * 1000)})


def ingest_mlflow(base: str, runs: list[dict[str, Any]], artifacts: list[Path]) -> dict[str, Any]:
    rest = MlflowRest(base)
    exp_id = rest.post("experiments/create", {"name": PROJECT})["experiment_id"]
    wall0 = time.perf_counter()
    for i, spec in enumerate(runs):
        mlflow_run(rest, exp_id, spec, artifacts[i])
        if (i + 1) % 10 == 0 or i + 1 == len(runs):
            log(f"mlflow: {i + 1}/{len(runs)} runs, {time.perf_counter() - wall0:.1f} s")
    wall = time.perf_counter() - wall0
    found = rest.post("runs/search", {"experiment_ids": [exp_id], "max_results": 1000})
    problems = [] if len(found.get("runs", [])) == len(runs) else ["mlflow: runs missing"]
    first = found["runs"][0]["info"]["run_id"] if found.get("runs") else ""
    key = ingest.mlflow_key(ingest.RANK_KEY)
    hist = rest.http.get("/api/2.0/mlflow/metrics/get-history", params={"run_id": first, "metric_key": key})
    if len(hist.json().get("metrics", [])) != len(runs[0]["rows"]):
        problems.append("mlflow: a history is short")
    rest.http.close()
    return {"wall_s": wall, "problems": problems}


# --------------------------------------------------------------------------- the ingest half
def run_ingest_tool(tool: str, args: argparse.Namespace, work: Path, runs: list[Any]) -> dict[str, Any]:
    """One tool's half: its database, its schema, its server, the workload."""
    artifacts = [work / "artifacts" / f"r{i:03d}" / "best.pt" for i in range(len(runs))]
    name = f"bench_{tool}_{os.getpid()}"
    with database(args.pg, name) as db, ExitStack() as stack:
        if tool == "trialbook":
            upgrade([trialbook_bin(), "db", "upgrade", "--uri", db], "trialbook")
            server = trialbook_server(db, work / "tb-artifacts", args.workers)
        else:  # SQLAlchemy 2.1 takes postgresql:// for psycopg 3: name MLflow's driver
            db = db.replace("postgresql://", "postgresql+psycopg2://", 1)
            upgrade([args.mlflow_bin, "db", "upgrade", db], "mlflow")
            server = mlflow_server(args.mlflow_bin, db, work / "mlflow-artifacts", args.workers)
        stack.callback(server.stop)
        if tool == "trialbook":
            os.environ["TRIALBOOK_OUTBOX"] = str(work / "outbox.db")
            os.environ["TRIALBOOK_TOKEN"] = server.token or ""
            result = ingest_trialbook(server.base, runs, artifacts)
            result["problems"] = check_trialbook(db, runs)
        else:
            result = ingest_mlflow(server.base, runs, artifacts)
        result.update(start_s=server.start_s, rss_start=server.rss_start, rss_end=server.rss())
        return result


# --------------------------------------------------------------------------- UI half
def fill_ui_book(db: str, args: argparse.Namespace) -> None:
    """The workload of bench/ui.py, straight into the database through the SQL store."""
    from trialbook.core.entities import RunRecord
    from trialbook.store import open_store
    from trialbook.store.sql.store import SqlStore

    store = open_store(db)
    assert isinstance(store, SqlStore)
    store.ensure_project(PROJECT)
    base, t0 = time.time() - 86400 * 30, time.perf_counter()
    with store.db.write():
        for i in range(args.runs):
            rid = uuid.uuid4().hex
            record = RunRecord(
                id=rid,
                project=PROJECT,
                name=ui.table_name(i),
                status="finished",
                created_at=base + i,
                heartbeat_at=base + i + 60,
                ended_at=base + i + 60,
                config=ui.settings(i, args.epochs),
                tags=ui.tags(i),
            )
            store.create_run(record)
            store.log_batch(rid, {ui.RANK_KEY: dict(enumerate(ui.table_curve(i, args.epochs)))})
            if (i + 1) % 2000 == 0:
                log(f"UI book: {i + 1}/{args.runs} runs, {time.perf_counter() - t0:.0f} s")
        for i in range(args.compare_runs):
            fill_compare_run(store, args, i, base + args.runs + i)
    store.close()
    log(f"UI book written in {time.perf_counter() - t0:.0f} s")


def fill_compare_run(store: Any, args: argparse.Namespace, i: int, at: float) -> None:
    import random

    from trialbook.core.entities import Evaluation, RunRecord

    rid = uuid.uuid4().hex
    config = ui.settings(10**6 + i, args.compare_epochs)
    record = RunRecord(
        id=rid,
        project=PROJECT,
        name=ui.compare_name(i),
        status="finished",
        created_at=at,
        heartbeat_at=at + 60,
        ended_at=at + 60,
        config=config,
        tags=ui.tags(i),
    )
    store.create_run(record)
    rows = ui.compare_rows(i, args.compare_epochs)
    store.log_batch(rid, {k: {e: row[k] for e, row in enumerate(rows)} for k in ui.DETECT_KEYS})
    rng, n = random.Random(i), len(ui.CLASSES)
    matrix = [[float(rng.randrange(0, 5)) for _ in range(n + 1)] for _ in range(n + 1)]
    for c in range(n):
        matrix[c][c] = float(rng.randrange(40, 60))
    evaluation = Evaluation(
        id=uuid.uuid4().hex,
        run_id=rid,
        split="val",
        sealed=False,
        created_at=time.time(),
        metrics={ui.RANK_KEY: rows[-1][ui.RANK_KEY]},
        per_class_ap={c: rng.uniform(0.3, 0.8) for c in ui.CLASSES},
        confusion_matrix=matrix,
        class_names=list(ui.CLASSES),
    )
    store.add_evaluation(evaluation)


def analyze(db: str) -> None:
    """``ANALYZE`` after the bulk fill, as autovacuum does within a minute or so of a
    load: on fresh statistics PostgreSQL plans the sparkline join as the index lookup it
    is (2 ms), not as a scan of every point (100 ms)."""
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("ANALYZE")


def run_ui(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    shape = argparse.Namespace(
        runs=args.ui_runs,
        epochs=args.ui_epochs,
        compare_runs=args.compare_runs,
        compare_epochs=args.compare_epochs,
    )
    with database(args.pg, f"bench_ui_{os.getpid()}") as db, ExitStack() as stack:
        upgrade([trialbook_bin(), "db", "upgrade", "--uri", db], "trialbook")
        fill_ui_book(db, shape)
        analyze(db)
        server = trialbook_server(db, work / "ui-artifacts", args.workers)
        stack.callback(server.stop)
        calls = ui.trialbook_calls(server.base, shape, token=server.token)
        out: dict[str, Any] = {}
        answers = {}
        for name, fn in calls.items():
            out[name], times, answers[name] = ui.time_call(fn, args.reps)
            out[name + "_p90"] = sorted(times)[int(0.9 * (len(times) - 1))]
            log(f"UI {name}: p50 {out[name] * 1e3:.1f} ms")
        out["problems"] = ui.check("trialbook", answers, ui.expected(shape))
        return out


# --------------------------------------------------------------------------- report
def mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def ingest_table(
    args: argparse.Namespace, tb: dict[str, Any], ml: dict[str, Any] | None, ver: str
) -> list[str]:
    points = args.runs * args.epochs * len(ingest.EPOCH_KEYS)
    rate = points / tb["wall_s"]
    ml_rate = points / ml["wall_s"] if ml else 0.0
    ml_col = f"MLflow {ver}" if ml else "MLflow (not run)"
    lines = [
        f"### Over HTTP, on PostgreSQL: {args.runs} runs × {args.epochs} epochs × "
        f"{len(ingest.EPOCH_KEYS)} keys ({points:,} points), per-class AP and a 1 MiB artifact a run; "
        f"{args.workers} workers each",
        "",
        f"| measure | trialbook | {ml_col} | trialbook vs MLflow | target | met |",
        "|---|---:|---:|---:|---|:-:|",
    ]

    def row(label: str, a: str, b: str, ratio: str, target: str, ok: str) -> None:
        lines.append(f"| {label} | {a} | {b} | {ratio} | {target} | {ok} |")

    ratio = rate / ml_rate if ml else 0.0
    row(
        "points / s (whole workload, until stored)",
        f"{rate:,.0f}",
        f"{ml_rate:,.0f}" if ml else "–",
        ingest.fmt_ratio(ratio) if ml else "–",
        f"≥ {TARGET_POINTS_RATIO:.0f}× MLflow",
        mark(ratio >= TARGET_POINTS_RATIO) if ml else "–",
    )
    row("wall time", ingest.fmt_time(tb["wall_s"]), ingest.fmt_time(ml["wall_s"]) if ml else "–", "", "", "")
    p50, p99 = tb["log"]["median_us"], tb["log"]["p99_us"]
    row("`log` p50 (Python API, outbox)", f"{p50:.1f} µs", "–", "", "< 50 µs", mark(p50 < TARGET_LOG_P50_US))
    row("`log` p99 (Python API, outbox)", f"{p99:.1f} µs", "–", "", "", "")
    start_ok = tb["start_s"] < TARGET_START_S
    ml_start = f"{ml['start_s']:.2f} s" if ml else "–"
    row("server start to first 200", f"{tb['start_s']:.2f} s", ml_start, "", "< 2 s", mark(start_ok))
    for label, key in (("RSS after start", "rss_start"), ("RSS after the workload", "rss_end")):
        ok = mark(tb[key] < TARGET_RSS_MIB)
        ml_rss = f"{ml[key]:.0f} MiB" if ml else "–"
        row(f"{label} ({args.workers} workers + master)", f"{tb[key]:.0f} MiB", ml_rss, "", "< 300 MiB", ok)
    return lines


def ui_table(args: argparse.Namespace, res: dict[str, Any]) -> list[str]:
    total = args.ui_runs + args.compare_runs
    return [
        f"### UI data through `trialbook server` on PostgreSQL: {total:,} runs "
        f"({args.ui_runs:,} × {args.ui_epochs} epochs + {args.compare_runs} × {args.compare_epochs} "
        f"epochs × 14 keys), median of {args.reps} calls",
        "",
        "| call | p50 | p90 | target | met |",
        "|---|---:|---:|---|:-:|",
        f"| project page data (first 50 of {total:,}, ranked, sparklines) | {res['page'] * 1e3:.1f} ms "
        f"| {res['page_p90'] * 1e3:.1f} ms | < {TARGET_PAGE_MS:.0f} ms "
        f"| {mark(res['page'] * 1e3 < TARGET_PAGE_MS)} |",
        f"| compare {args.compare_runs} runs × {args.compare_epochs} epochs | {res['compare'] * 1e3:.1f} ms "
        f"| {res['compare_p90'] * 1e3:.1f} ms | < {TARGET_COMPARE_MS:.0f} ms "
        f"| {mark(res['compare'] * 1e3 < TARGET_COMPARE_MS)} |",
    ]


def machine_note(loads: tuple[float, float]) -> str:
    return (
        f"Machine: {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; client and servers share it; 1-minute load average "
        f"{loads[0]:.2f} at the start, {loads[1]:.2f} at the end."
    )


# --------------------------------------------------------------------------- main
def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=50, help="ingest runs (default 50)")
    p.add_argument("--epochs", type=int, default=300, help="epochs per ingest run (default 300)")
    p.add_argument("--ui-runs", type=int, default=10_000, help="runs in the UI book (default 10,000)")
    p.add_argument("--ui-epochs", type=int, default=100, help="epochs of each UI book run (default 100)")
    p.add_argument("--compare-runs", type=int, default=20, help="runs compared (default 20)")
    p.add_argument("--compare-epochs", type=int, default=300, help="epochs of compared runs (default 300)")
    p.add_argument("--reps", type=int, default=9, help="timed calls per UI call (default 9)")
    p.add_argument("--workers", type=int, default=2, help="worker processes per server (default 2)")
    p.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432", help="PostgreSQL server URI")
    p.add_argument("--mlflow-bin", default="mlflow", help="the mlflow command (default: mlflow on PATH)")
    p.add_argument("--skip-mlflow", action="store_true", help="no MLflow column")
    p.add_argument("--skip-ingest", action="store_true", help="only the UI data calls")
    p.add_argument("--skip-ui", action="store_true", help="only the ingest table")
    args = p.parse_args(argv)
    if min(args.runs, args.epochs, args.ui_runs, args.ui_epochs, args.compare_runs, args.reps) < 1:
        p.error("sizes must be at least 1")
    if args.compare_epochs < 1 or args.workers < 1:
        p.error("sizes must be at least 1")
    return args


def find_mlflow(args: argparse.Namespace) -> str | None:
    if args.skip_mlflow:
        return None
    found = shutil.which(args.mlflow_bin)
    if found is None:
        log(f"MLflow: {args.mlflow_bin!r} not found: its column is skipped (--mlflow-bin PATH)")
    return found


def ingest_half(args: argparse.Namespace, work: Path) -> tuple[list[str], list[str]]:
    runs = [ingest.make_run(i, args.epochs) for i in range(args.runs)]
    ingest.make_artifacts(work / "artifacts", args.runs)
    mlflow = find_mlflow(args)
    ml, ver = None, ""
    if mlflow is not None:
        args.mlflow_bin, ver = mlflow, mlflow_version(mlflow)
        log(f"MLflow {ver} half")
        ml = run_ingest_tool("mlflow", args, work, runs)
    log("trialbook half")
    tb = run_ingest_tool("trialbook", args, work, runs)
    problems = tb["problems"] + (ml["problems"] if ml else [])
    lines = ingest_table(args, tb, ml, ver)
    if mlflow is None:
        lines += ["", "MLflow: not run (`mlflow` not found; `--mlflow-bin PATH`)."]
    else:
        lines += ["", f"MLflow: REST `runs/log-batch` in batches of up to {MLFLOW_BATCH} metrics."]
    if tb["left"]:
        problems.append(f"trialbook: {tb['left']} writes left in the outbox")
    return lines, problems


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    warnings.simplefilter("ignore")
    WORK_ROOT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="server-", dir=WORK_ROOT))
    lines: list[str] = []
    problems: list[str] = []
    load0 = os.getloadavg()[0]
    try:
        if not args.skip_ingest:
            lines, problems = ingest_half(args, work)
        if not args.skip_ui:
            res = run_ui(args, work)
            lines += ["", *ui_table(args, res)]
            problems += res["problems"]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines += [
        "",
        f"Answers checked: {mark(not problems)}" + (f" ({'; '.join(problems)})" if problems else ""),
    ]
    lines += ["", machine_note((load0, os.getloadavg()[0]))]
    print("\n".join(lines))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
