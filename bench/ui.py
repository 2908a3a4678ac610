#!/usr/bin/env python3
"""UI benchmark: the two calls the web UI leans on, over real HTTP, trialbook beside MLflow.

    .venv/bin/python bench/ui.py                  # 10,000 runs x 100 epochs; compare 20 x 300
    .venv/bin/python bench/ui.py --skip-mlflow    # trialbook only
    .venv/bin/python bench/ui.py --runs 500 --fresh

The workload, identical for both tools (same names, values, params and tags):

* ``--runs`` runs (default 10,000) of ``--epochs`` epochs (default 100) of the ranking
  metric ``metrics/mAP50-95(B)``, each with 30 Ultralytics settings (trialbook config,
  MLflow params) and 2 tags; the curves never decrease, so a run's best and final values
  agree and "ranked by the metric" is one answer whichever a tool ranks by;
* in the same project/experiment, ``--compare-runs`` runs (default 20) of
  ``--compare-epochs`` epochs (default 300) of the 14 keys Ultralytics' detection trainer
  logs; trialbook's also carry a val evaluation (20-class per-class AP, a 21x21 confusion
  matrix), which its compare call returns too.

Timed, each as the median of ``--reps`` HTTP calls (after two warm-up calls), from this
process with httpx:

* **project page data**: trialbook ``GET /api/v1/projects/P/runs?limit=50&sparkline=true``
  (the first page of the runs table ranked by the protocol metric, with sparklines and
  the total count) against MLflow ``POST /api/2.0/mlflow/runs/search`` (``max_results``
  50, ``order_by`` the metric descending);
* **compare data**: trialbook ``GET /api/v1/projects/P/compare?runs=...`` (the 20 curves
  of the protocol metric with curve analytics, config diff, per-class AP and confusion
  matrices) against MLflow ``GET /ajax-api/2.0/mlflow/metrics/get-history-bulk-interval``
  (the 20 runs' histories of the metric, ``max_results`` 2500: every point).

Both answers are checked: the same 50 run names in the same order, the same curves.

Both servers run as subprocesses on free loopback ports: trialbook under uvicorn
(``trialbook.server.app:create_app_from_uri``), MLflow as ``mlflow server`` with an SQLite
backend, in the MLflow virtual environment that ``bench/ingest.py`` makes
(``bench/.venv-mlflow``, created on first use). The stores are built once under
``bench/.work/ui-<workload>/`` and reused by later runs (``--fresh`` rebuilds them):
loading 10,000 runs into MLflow through its client takes several minutes.

The result is a markdown table on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
WORK_ROOT = BENCH_DIR / ".work"
PROJECT = "bench"
RANK_KEY = "metrics/mAP50-95(B)"
PAGE = 50
JSON_MARK = "BENCH_JSON "

TARGET_PAGE_MS = 150.0
TARGET_COMPARE_MS = 100.0
TARGET_RATIO = 20.0

DETECT_KEYS = (
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
CLASSES = tuple(f"class{i:02d}" for i in range(20))
SETTINGS = (
    "task",
    "mode",
    "model",
    "data",
    "epochs",
    "patience",
    "batch",
    "imgsz",
    "optimizer",
    "seed",
    "deterministic",
    "cos_lr",
    "close_mosaic",
    "amp",
    "lr0",
    "lrf",
    "momentum",
    "weight_decay",
    "warmup_epochs",
    "warmup_momentum",
    "box",
    "cls",
    "dfl",
    "hsv_h",
    "hsv_s",
    "hsv_v",
    "degrees",
    "translate",
    "scale",
    "mosaic",
)


def log(msg: str) -> None:
    print(f"[ui-bench] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the workload
# Imported by the MLflow subprocess too: standard library only up to the trialbook half.
def table_name(i: int) -> str:
    return f"v{i + 1}_sweep"


def compare_name(i: int) -> str:
    return f"v{i + 1}_long"


def mlflow_key(key: str) -> str:
    """MLflow refuses parentheses in metric names; Ultralytics' callback strips them."""
    return key.replace("(", "").replace(")", "")


def settings(i: int, epochs: int) -> dict[str, Any]:
    rng = random.Random(31 * i + 7)
    values: dict[str, Any] = {
        "task": "detect",
        "mode": "train",
        "model": "yolo11n.pt",
        "data": "pallets.yaml",
        "epochs": epochs,
        "patience": 100,
        "batch": rng.choice([8, 16, 32]),
        "imgsz": rng.choice([512, 640, 800, 1024]),
        "optimizer": "auto",
        "seed": i,
        "deterministic": True,
        "cos_lr": False,
        "close_mosaic": 10,
        "amp": True,
        "lr0": rng.choice([0.001, 0.005, 0.01]),
        "lrf": 0.01,
        "momentum": 0.937,
        "weight_decay": 0.0005,
        "warmup_epochs": 3.0,
        "warmup_momentum": 0.8,
        "box": 7.5,
        "cls": 0.5,
        "dfl": 1.5,
        "hsv_h": 0.015,
        "hsv_s": 0.7,
        "hsv_v": 0.4,
        "degrees": 0.0,
        "translate": 0.1,
        "scale": 0.5,
        "mosaic": rng.choice([0.0, 1.0]),
    }
    return {k: values[k] for k in SETTINGS}


def table_curve(i: int, epochs: int) -> list[float]:
    """A never-decreasing mAP50-95 curve (distinct plateaus: no ties in the ranking)."""
    rng = random.Random(7919 * (i + 1))
    plateau = 0.2 + 0.6 * rng.random()
    tau = epochs / (2.0 + 4.0 * rng.random())
    out, best = [], 0.0
    for e in range(epochs):
        best = max(best, plateau * (1.0 - math.exp(-(e + 1) / tau)))
        out.append(best)
    return out


def compare_rows(i: int, epochs: int) -> list[dict[str, float]]:
    rng = random.Random(104729 * (i + 1))
    plateau = 0.45 + 0.2 * rng.random()
    tau = epochs / (3.0 + 3.0 * rng.random())
    rows, best = [], 0.0
    for e in range(epochs):
        p = 1.0 - math.exp(-(e + 1) / tau)
        best = max(best, plateau * p)
        lr = 0.01 * (1.0 - e / epochs) + 1e-4
        decay = 1.0 - 0.6 * p
        rows.append(
            {
                "train/box_loss": 1.6 * decay + 0.03 * rng.random(),
                "train/cls_loss": 2.4 * decay + 0.05 * rng.random(),
                "train/dfl_loss": 1.3 * decay + 0.02 * rng.random(),
                "metrics/precision(B)": min(0.99, best * 1.5),
                "metrics/recall(B)": min(0.99, best * 1.3),
                "metrics/mAP50(B)": min(0.99, best * 1.45),
                "metrics/mAP50-95(B)": best,
                "val/box_loss": 1.7 * decay + 0.04 * rng.random(),
                "val/cls_loss": 2.5 * decay + 0.06 * rng.random(),
                "val/dfl_loss": 1.4 * decay + 0.03 * rng.random(),
                "lr/pg0": lr,
                "lr/pg1": lr,
                "lr/pg2": lr,
                "fitness": best,
            }
        )
    return rows


def tags(i: int) -> dict[str, str]:
    return {"sweep": f"s{i % 10}", "source": "bench/ui.py"}


# --------------------------------------------------------------------------- timing
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], what: str, timeout: float = 180.0) -> None:
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with status {proc.returncode} before answering")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{what} did not answer {url} within {timeout:.0f} s")


def time_call(fn: Callable[[], Any], reps: int) -> tuple[float, list[float], Any]:
    """Median seconds of ``fn()`` over ``reps`` calls after two warm-up calls."""
    answer = fn()
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        answer = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, answer


# --------------------------------------------------------------------------- trialbook half
def build_trialbook(folder: Path, args: argparse.Namespace) -> None:
    """The workload in a fresh embedded book, written through the store in one transaction."""
    import uuid

    from trialbook.core.entities import Evaluation, RunRecord
    from trialbook.store import open_store
    from trialbook.store.sql.store import SqlStore

    store = open_store(str(folder))
    assert isinstance(store, SqlStore)
    store.ensure_project(PROJECT)
    base = time.time() - 86400 * 30
    t0 = time.perf_counter()
    with store.db.write():  # the store's transaction helper: one commit for the whole book
        for i in range(args.runs):
            rid = uuid.uuid4().hex
            store.create_run(
                RunRecord(
                    id=rid,
                    project=PROJECT,
                    name=table_name(i),
                    status="finished",
                    created_at=base + i,
                    heartbeat_at=base + i + 60,
                    ended_at=base + i + 60,
                    config=settings(i, args.epochs),
                    tags=tags(i),
                )
            )
            store.log_batch(rid, {RANK_KEY: dict(enumerate(table_curve(i, args.epochs)))})
            if (i + 1) % 2000 == 0:
                log(f"trialbook: {i + 1}/{args.runs} runs, {time.perf_counter() - t0:.0f} s")
        for i in range(args.compare_runs):
            rid = uuid.uuid4().hex
            store.create_run(
                RunRecord(
                    id=rid,
                    project=PROJECT,
                    name=compare_name(i),
                    status="finished",
                    created_at=base + args.runs + i,
                    heartbeat_at=base + args.runs + i + 60,
                    ended_at=base + args.runs + i + 60,
                    config=settings(10**6 + i, args.compare_epochs),
                    tags=tags(i),
                )
            )
            rows = compare_rows(i, args.compare_epochs)
            store.log_batch(rid, {k: {e: row[k] for e, row in enumerate(rows)} for k in DETECT_KEYS})
            rng = random.Random(i)
            n = len(CLASSES)
            matrix = [[float(rng.randrange(0, 5)) for _ in range(n + 1)] for _ in range(n + 1)]
            for c in range(n):
                matrix[c][c] = float(rng.randrange(40, 60))
            store.add_evaluation(
                Evaluation(
                    id=uuid.uuid4().hex,
                    run_id=rid,
                    split="val",
                    sealed=False,
                    created_at=time.time(),
                    metrics={RANK_KEY: rows[-1][RANK_KEY]},
                    per_class_ap={c: rng.uniform(0.3, 0.8) for c in CLASSES},
                    confusion_matrix=matrix,
                    class_names=list(CLASSES),
                )
            )
    store.close()
    log(f"trialbook: book written in {time.perf_counter() - t0:.0f} s")


def start_trialbook(folder: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TRIALBOOK_URI": str(folder)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "trialbook.server.app:create_app_from_uri",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
    )


# --------------------------------------------------------------------------- MLflow half
MLFLOW_LOADER = r"""
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import ui as w
db, runs_n, epochs, cmp_n, cmp_epochs = sys.argv[2], *map(int, sys.argv[3:7])
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

client = MlflowClient(tracking_uri=db)
artifacts = Path(sys.argv[7]).as_uri()
exp = client.create_experiment(w.PROJECT, artifact_location=artifacts)
t0 = time.perf_counter()
ts = int(time.time() * 1000)

def load(name, settings, tag_map, series):
    run = client.create_run(exp, run_name=name, start_time=ts)
    rid = run.info.run_id
    metrics = [Metric(w.mlflow_key(k), v, ts + e, e) for k, pts in series.items() for e, v in enumerate(pts)]
    params = [Param(k, str(v)) for k, v in settings.items()]
    tags_ = [RunTag(k, v) for k, v in tag_map.items()]
    for j in range(0, max(len(metrics), 1), 1000):
        client.log_batch(rid, metrics=metrics[j:j + 1000], params=params if j == 0 else [],
                         tags=tags_ if j == 0 else [])
    client.set_terminated(rid, end_time=ts + 60000)

for i in range(runs_n):
    load(w.table_name(i), w.settings(i, epochs), w.tags(i), {w.RANK_KEY: w.table_curve(i, epochs)})
    if (i + 1) % 500 == 0:
        w.log(f"mlflow: {i + 1}/{runs_n} runs, {time.perf_counter() - t0:.0f} s")
for i in range(cmp_n):
    rows = w.compare_rows(i, cmp_epochs)
    load(w.compare_name(i), w.settings(10**6 + i, cmp_epochs), w.tags(i),
         {k: [r[k] for r in rows] for k in w.DETECT_KEYS})
w.log(f"mlflow: loaded in {time.perf_counter() - t0:.0f} s")
"""


def mlflow_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true",
            "MLFLOW_LOGGING_LEVEL": "WARNING",
            "GIT_PYTHON_REFRESH": "quiet",
            "PYTHONWARNINGS": "ignore",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.pop("PYTHONPATH", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def mlflow_python() -> Path:
    """The MLflow venv's interpreter, made by ``bench/ingest.py``'s helper if missing."""
    sys.path.insert(0, str(BENCH_DIR))
    from ingest import mlflow_python as make

    return Path(make())


def build_mlflow(folder: Path, args: argparse.Namespace) -> None:
    python = mlflow_python()
    db = f"sqlite:///{folder / 'mlflow.db'}"
    (folder / "mlflow-artifacts").mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            str(python),
            "-c",
            MLFLOW_LOADER,
            str(BENCH_DIR),
            db,
            str(args.runs),
            str(args.epochs),
            str(args.compare_runs),
            str(args.compare_epochs),
            str(folder / "mlflow-artifacts"),
        ],
        env=mlflow_env(),
        check=True,
    )


def start_mlflow(folder: Path, port: int) -> subprocess.Popen[bytes]:
    python = mlflow_python()
    mlflow = python.parent / "mlflow"
    return subprocess.Popen(
        [
            str(mlflow),
            "server",
            "--backend-store-uri",
            f"sqlite:///{folder / 'mlflow.db'}",
            "--default-artifact-root",
            (folder / "mlflow-artifacts").as_uri(),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        env=mlflow_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


# --------------------------------------------------------------------------- the calls
def trialbook_calls(
    base: str, args: argparse.Namespace, *, token: str | None = None
) -> dict[str, Callable[[], Any]]:
    """The UI's data calls to the server at ``base`` (with ``token``: a team server's)."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else None
    client = httpx.Client(base_url=base, timeout=60.0, headers=headers)
    names = [compare_name(i) for i in range(args.compare_runs)]

    def page() -> list[str]:
        r = client.get(f"/api/v1/projects/{PROJECT}/runs", params={"limit": PAGE, "sparkline": "true"})
        r.raise_for_status()
        return [row["name"] for row in r.json()["runs"]]

    def compare() -> dict[str, list[float]]:
        r = client.get(f"/api/v1/projects/{PROJECT}/compare", params={"runs": names})
        r.raise_for_status()
        return {row["name"]: [v for _, v in row["curve"]] for row in r.json()["runs"]}

    return {"page": page, "compare": compare}


def mlflow_calls(base: str, args: argparse.Namespace) -> dict[str, Callable[[], Any]]:
    import httpx

    client = httpx.Client(base_url=base, timeout=120.0)
    exp = client.get("/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": PROJECT}).json()[
        "experiment"
    ]["experiment_id"]
    key = mlflow_key(RANK_KEY)
    wanted = {compare_name(i) for i in range(args.compare_runs)}
    found = (
        client.post(
            "/api/2.0/mlflow/runs/search",
            json={
                "experiment_ids": [exp],
                "max_results": 1000,
                "filter": "attributes.run_name LIKE 'v%_long'",
            },
        )
        .json()
        .get("runs", [])
    )
    ids = {r["info"]["run_name"]: r["info"]["run_id"] for r in found if r["info"]["run_name"] in wanted}
    id_list = [ids[compare_name(i)] for i in range(args.compare_runs)]
    by_id = {v: k for k, v in ids.items()}

    def page() -> list[str]:
        r = client.post(
            "/api/2.0/mlflow/runs/search",
            json={"experiment_ids": [exp], "max_results": PAGE, "order_by": [f"metrics.`{key}` DESC"]},
        )
        r.raise_for_status()
        return [run["info"]["run_name"] for run in r.json()["runs"]]

    def compare() -> dict[str, list[float]]:
        r = client.get(
            "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval",
            params={"run_ids": id_list, "metric_key": key, "max_results": 2500},
        )
        r.raise_for_status()
        out: dict[str, list[tuple[int, float]]] = {}
        for m in r.json().get("metrics", []):
            out.setdefault(by_id[m["run_id"]], []).append((int(m.get("step", 0)), m["value"]))
        return {n: [v for _, v in sorted(pts)] for n, pts in out.items()}

    return {"page": page, "compare": compare}


def expected(args: argparse.Namespace) -> dict[str, Any]:
    finals = [(table_name(i), table_curve(i, args.epochs)[-1]) for i in range(args.runs)]
    finals += [
        (compare_name(i), compare_rows(i, args.compare_epochs)[-1][RANK_KEY])
        for i in range(args.compare_runs)
    ]
    finals.sort(key=lambda p: -p[1])
    curves = {
        compare_name(i): [r[RANK_KEY] for r in compare_rows(i, args.compare_epochs)]
        for i in range(args.compare_runs)
    }
    return {"page": [n for n, _ in finals[:PAGE]], "compare": curves}


def check(tool: str, answers: dict[str, Any], want: dict[str, Any]) -> list[str]:
    problems = []
    if answers["page"] != want["page"]:
        problems.append(f"{tool}: the first page is not the expected ranking")
    got = answers["compare"]
    for name, values in want["compare"].items():
        if len(got.get(name, [])) != len(values) or any(
            abs(a - b) > 1e-9 for a, b in zip(got[name], values, strict=False)
        ):
            problems.append(f"{tool}: the curve of {name} differs")
            break
    return problems


# --------------------------------------------------------------------------- report
def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


def report(
    args: argparse.Namespace,
    tb: dict[str, Any],
    ml: dict[str, Any] | None,
    versions: dict[str, str],
    problems: list[str],
    loads: tuple[float, float],
) -> str:
    mark = lambda ok: "✓" if ok else "✗"  # noqa: E731
    lines = [
        f"### UI data: {args.runs:,} runs × {args.epochs} epochs, compare {args.compare_runs} runs × "
        f"{args.compare_epochs} epochs (median of {args.reps} HTTP calls)",
        "",
        f"| call | trialbook {versions['trialbook']} |"
        + (f" MLflow {versions.get('mlflow', '?')} | trialbook speedup |" if ml else "")
        + " target | met |",
        "|---|---:|" + ("---:|---:|" if ml else "") + "---|:-:|",
    ]
    rows = [
        (
            "page",
            f"project page data: first {PAGE} of {args.runs + args.compare_runs:,} runs, ranked",
            TARGET_PAGE_MS,
        ),
        (
            "compare",
            f"compare data: {args.compare_runs} runs × {args.compare_epochs} epochs",
            TARGET_COMPARE_MS,
        ),
    ]
    for key, label, target_ms in rows:
        t = tb[key]
        cells = [label, fmt_ms(t)]
        target = f"< {target_ms:.0f} ms"
        ok = t * 1e3 < target_ms
        if ml:
            ratio = ml[key] / t
            cells += [fmt_ms(ml[key]), f"{ratio:.1f}×"]
            target += f", ≥ {TARGET_RATIO:.0f}× MLflow"
            ok = ok and ratio >= TARGET_RATIO
        cells += [target, mark(ok)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Calls: trialbook `GET /api/v1/projects/bench/runs?limit=50&sparkline=true` and "
        "`GET /api/v1/projects/bench/compare?runs=…` (curves, analytics, config diff, per-class "
        "AP, confusion matrices) under uvicorn; MLflow `POST /api/2.0/mlflow/runs/search` "
        "(max_results 50, ordered by the metric) and `GET /ajax-api/2.0/mlflow/metrics/"
        "get-history-bulk-interval` (max_results 2500) on `mlflow server` with an SQLite backend. "
        "Both servers are local subprocesses, timed over HTTP from one httpx client.",
    ]
    lines += [
        "",
        f"Same answers from both tools: {mark(not problems)}"
        + (" (" + "; ".join(problems) + ")" if problems else ""),
    ]
    lines += [
        "",
        f"Machine: {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}; 1-minute load average "
        f"{loads[0]:.2f} at the start, {loads[1]:.2f} at the end.",
    ]
    return "\n".join(lines)


def prepare(args: argparse.Namespace) -> tuple[Path, Path]:
    """The work folder and the trialbook book in it, with both stores built once."""
    folder = WORK_ROOT / f"ui-{args.runs}x{args.epochs}-{args.compare_runs}x{args.compare_epochs}"
    if args.fresh:
        shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    book = folder / "trialbook"
    if not (folder / "trialbook.done").exists():
        shutil.rmtree(book, ignore_errors=True)
        log(f"writing the trialbook book in {book}")
        build_trialbook(book, args)
        (folder / "trialbook.done").write_text("ok\n")
    if not args.skip_mlflow and not (folder / "mlflow.done").exists():
        (folder / "mlflow.db").unlink(missing_ok=True)
        log(f"loading the same workload into MLflow ({folder / 'mlflow.db'}); several minutes, once")
        build_mlflow(folder, args)
        (folder / "mlflow.done").write_text("ok\n")

    return folder, book


def time_tools(
    args: argparse.Namespace,
    tb_base: str,
    ml_base: str,
    procs: list[subprocess.Popen[bytes]],
    versions: dict[str, str],
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The median time and the answer of each measure, for each server running."""
    results: dict[str, dict[str, Any]] = {"trialbook": {}}
    answers: dict[str, dict[str, Any]] = {"trialbook": {}}
    calls = {"trialbook": trialbook_calls(tb_base, args)}
    if ml_base:
        wait_http(f"{ml_base}/health", procs[1], "mlflow server")
        version = subprocess.run(
            [str(mlflow_python()), "-c", "import mlflow; print(mlflow.__version__)"],
            capture_output=True,
            text=True,
            env=mlflow_env(),
        )
        versions["mlflow"] = version.stdout.strip()
        calls["mlflow"] = mlflow_calls(ml_base, args)
        results["mlflow"], answers["mlflow"] = {}, {}
    for measure in ("page", "compare"):
        for tool, fns in calls.items():
            log(f"timing {tool} {measure}")
            median, _, answer = time_call(fns[measure], args.reps)
            results[tool][measure] = median
            answers[tool][measure] = answer
    return results, answers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10_000, help="runs in the table (default 10000)")
    parser.add_argument("--epochs", type=int, default=100, help="epochs of each (default 100)")
    parser.add_argument("--compare-runs", type=int, default=20, help="runs compared (default 20)")
    parser.add_argument("--compare-epochs", type=int, default=300, help="their epochs (default 300)")
    parser.add_argument("--reps", type=int, default=15, help="timed calls per measure (default 15)")
    parser.add_argument("--skip-mlflow", action="store_true", help="the trialbook half only")
    parser.add_argument("--fresh", action="store_true", help="rebuild the stores")
    args = parser.parse_args(argv)

    folder, book = prepare(args)
    import trialbook

    versions = {"trialbook": trialbook.__version__}
    want = expected(args)
    load_start = os.getloadavg()[0]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        tb_port = free_port()
        procs.append(start_trialbook(book, tb_port))
        tb_base = f"http://127.0.0.1:{tb_port}"
        ml_base = ""
        if not args.skip_mlflow:
            ml_port = free_port()
            procs.append(start_mlflow(folder, ml_port))
            ml_base = f"http://127.0.0.1:{ml_port}"
        wait_http(f"{tb_base}/api/v1/projects", procs[0], "trialbook ui")
        results, answers = time_tools(args, tb_base, ml_base, procs, versions)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
    problems = []
    for tool in answers:
        problems += check(tool, answers[tool], want)
    print(
        report(
            args,
            results["trialbook"],
            results.get("mlflow"),
            versions,
            problems,
            (load_start, os.getloadavg()[0]),
        )
    )
    print(JSON_MARK + json.dumps({"results": results, "problems": problems}), file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
