#!/usr/bin/env python3
"""Scale benchmark: the web UI's data and ``trialbook runs`` on a book of 100,000 runs,
beside the same on a book of 10,000, on SQLite and on PostgreSQL.

    .venv/bin/python bench/scale.py                       # 100,000 and 10,000 runs x 100 epochs
    .venv/bin/python bench/scale.py --skip-pg --keep      # SQLite only; keep the books for a rerun
    .venv/bin/python bench/scale.py --runs 30000 --small 3000 --epochs 50

Each book is ``bench/ui.py``'s workload: ``--runs`` runs (and ``--small`` runs, 10,000 by
default) of ``--epochs`` epochs (100) of ``metrics/mAP50-95(B)`` with 30 Ultralytics
settings and 2 tags, plus 20 runs x 300 epochs x 14 keys with a val evaluation to
compare. The runs table is bulk-filled (``bench/_books.py``: ``executemany`` on SQLite,
binary ``COPY`` on PostgreSQL, a chunk of 2,000 runs a statement; the 20 compared runs go
through the store as ``bench/server.py`` writes them); the build time is printed. The
SQLite book is a folder under ``bench/.work/scale-<runs>x<epochs>/``; the PostgreSQL one
a database of its own on ``--pg`` (``trialbook db upgrade`` first, ``VACUUM (ANALYZE)``
after the fill, as autovacuum does within a minute of a load), dropped at the end. ``--keep`` keeps
both, and a later run with ``--keep`` reuses them.

Timed on each book, each the median of ``--reps`` (5) after two warm-up calls, the two
books of a backend taking turns call by call (this machine is shared: a change in its
load then weighs on both sizes alike):

* **project page data**: the service call the UI's project page makes
  (``services.runs.runs_table(book, P, limit=50, sparkline=True)``: the first 50 ranked
  by the protocol metric, with sparklines and the total), in this process, and the same
  over HTTP (``GET /api/v1/projects/P/runs?limit=50&sparkline=true`` on the UI's server,
  uvicorn on a loopback port); target under 150 ms;
* **compare of 20 runs** (``services.compare.compare_runs``, and
  ``GET /api/v1/projects/P/compare?runs=...``): curves, analytics, config diff, per-class
  AP, confusion matrices; target under 100 ms;
* **``trialbook runs -p P``**, the whole process (``bench/runs_table.py``'s timing:
  bytecode cached, stdout through a pipe); target under 0.5 s;
* the book's **size on disk** per million points: the SQLite file (with its WAL, after
  the store closed it), PostgreSQL's ``pg_database_size``.

The page times should not grow from the small book to the large one: the table shows
the ratio. Every answer is checked against the workload (the same 50 names in the same
order, the same 20 curves). The result is a markdown table on stdout; progress on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import _books  # noqa: E402  (the bulk fill)
import runs_table  # noqa: E402  (the whole-process timing of `trialbook runs`)
import ui  # noqa: E402  (the workload, its checks, the HTTP calls)

# bench/server.py (PostgreSQL databases, the compared runs), by name: for mypy and ruff,
# run from the repository root, ``server`` is the tests' folder of that name
server: Any = importlib.import_module("server")

WORK_ROOT = BENCH_DIR / ".work"
TARGET_PAGE_MS = 150.0
TARGET_COMPARE_MS = 100.0
TARGET_RUNS_S = 0.5
GROWTH_OK = 1.5  # "no growth": the large book's time within this factor of the small one's


def log(msg: str) -> None:
    print(f"[scale-bench] {msg}", file=sys.stderr, flush=True)


def shape(args: argparse.Namespace, runs: int) -> argparse.Namespace:
    """The workload's sizes as ``bench/ui.py`` and ``bench/server.py`` name them."""
    return argparse.Namespace(
        runs=runs, epochs=args.epochs, compare_runs=args.compare_runs, compare_epochs=args.compare_epochs
    )


def points_of(s: argparse.Namespace) -> int:
    return int(s.runs * s.epochs + s.compare_runs * s.compare_epochs * len(ui.DETECT_KEYS))


def fill(uri: str, s: argparse.Namespace) -> float:
    """The workload into the empty book at ``uri``; seconds it took."""
    from trialbook.store import open_store

    t0 = time.perf_counter()
    store = open_store(uri)
    store.ensure_project(ui.PROJECT)
    base = time.time() - 86400 * 30
    _books.bulk_fill(store, s.runs, s.epochs, base=base, progress=lambda m: log(f"{uri}: {m}"))
    with store.db.write():  # type: ignore[attr-defined]
        for i in range(s.compare_runs):
            server.fill_compare_run(store, s, i, base + s.runs + i)
    store.close()
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- books
@contextlib.contextmanager
def sqlite_book(args: argparse.Namespace, s: argparse.Namespace) -> Iterator[tuple[str, float | None]]:
    """The SQLite book's folder (built unless kept from before) and its build time."""
    folder = WORK_ROOT / f"scale-{s.runs}x{s.epochs}" / "sqlite"
    done = folder.parent / "sqlite.done"
    try:
        if args.keep and done.exists():
            log(f"reusing {folder}")
            yield str(folder), None
            return
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        log(f"SQLite: writing {s.runs:,} runs x {s.epochs} epochs into {folder}")
        seconds = fill(str(folder), s)
        done.write_text("ok\n")
        yield str(folder), seconds
    finally:
        if not args.keep:
            shutil.rmtree(folder.parent, ignore_errors=True)


def pg_runs(uri: str) -> int | None:
    """Runs in the database at ``uri``; None when it has none or does not exist."""
    import psycopg

    try:
        with psycopg.connect(uri) as conn:
            return int(conn.execute("SELECT count(*) FROM runs").fetchone()[0])  # type: ignore[index]
    except psycopg.Error:
        return None


def create_database(pg: str, name: str) -> None:
    """A fresh database ``name`` on the server ``pg``, not dropped afterwards (``--keep``)."""
    import psycopg

    with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


@contextlib.contextmanager
def pg_book(args: argparse.Namespace, s: argparse.Namespace) -> Iterator[tuple[str, float | None]]:
    """A PostgreSQL database of its own with the book (kept from before with ``--keep``),
    and its build time (fill and ``VACUUM (ANALYZE)``); dropped afterwards unless ``--keep``."""
    name = f"trialbook_scale_{s.runs}x{s.epochs}"
    uri = f"{args.pg}/{name}"
    if args.keep and pg_runs(uri) == s.runs + s.compare_runs:
        log(f"reusing database {name}")
        yield uri, None
        return
    with contextlib.ExitStack() as stack:
        if args.keep:  # made here, left there for a later run
            create_database(args.pg, name)
        else:
            stack.enter_context(server.database(args.pg, name))
        server.upgrade([server.trialbook_bin(), "db", "upgrade", "--uri", uri], "trialbook")
        log(f"PostgreSQL: writing {s.runs:,} runs x {s.epochs} epochs into database {name}")
        seconds = fill(uri, s)
        t0 = time.perf_counter()
        vacuum_analyze(uri)
        yield uri, seconds + time.perf_counter() - t0


def vacuum_analyze(uri: str) -> None:
    """What autovacuum does after a bulk load (PostgreSQL 13 and later vacuum tables
    that were only inserted into, not only analyze them): the statistics for the
    planner, and the visibility map that lets counting a project's runs read the index
    alone (at 100,000 runs 3-5 ms, against 40-50 ms reading the table). This machine's
    server runs with autovacuum off, so the benchmark does it."""
    import psycopg

    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")


def size_bytes(backend: str, uri: str) -> int:
    if backend == "sqlite":
        files = [Path(uri) / "book.db", Path(uri) / "book.db-wal"]
        return sum(f.stat().st_size for f in files if f.exists())
    import psycopg

    with psycopg.connect(uri) as conn:
        return int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])  # type: ignore[index]


# --------------------------------------------------------------------------- timing
def service_calls(uri: str, s: argparse.Namespace) -> dict[str, Callable[[], Any]]:
    """The UI's two data calls as the server makes them: the services, in this process."""
    from trialbook.api import Book
    from trialbook.services import compare as compare_service
    from trialbook.services import runs as run_service

    book = Book.open(uri)
    names = [ui.compare_name(i) for i in range(s.compare_runs)]

    def page() -> list[str]:
        table = run_service.runs_table(book, ui.PROJECT, limit=ui.PAGE, sparkline=True)
        return [row["name"] for row in table["runs"]]

    def compare() -> dict[str, list[float]]:
        found = compare_service.compare_runs(book, names, project=ui.PROJECT)
        return {row["name"]: [v for _, v in row["curve"]] for row in found["runs"]}

    return {"page": page, "compare": compare}


def interleaved(tag: str, calls: dict[int, Callable[[], Any]], reps: int) -> dict[int, tuple[float, Any]]:
    """The median seconds and the last answer of each book's call (``calls`` by book
    size), after two warm-up calls each, the books taking turns call by call: a change
    in the machine's load (other work shares it) weighs on both sizes alike."""
    answers = {n: (fn(), fn())[1] for n, fn in calls.items()}
    times: dict[int, list[float]] = {n: [] for n in calls}
    for _ in range(reps):
        for n, fn in calls.items():
            t0 = time.perf_counter()
            answers[n] = fn()
            times[n].append(time.perf_counter() - t0)
    out = {n: (statistics.median(times[n]), answers[n]) for n in calls}
    log(f"{tag}: " + ", ".join(f"{n:,} runs {t * 1e3:.1f} ms" for n, (t, _) in out.items()))
    return out


@contextlib.contextmanager
def ui_servers(books: dict[int, str]) -> Iterator[dict[int, str]]:
    """The UI's server (uvicorn, a loopback port) on each book; their base URLs."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        bases = {}
        for n, uri in books.items():
            port = ui.free_port()
            # ui.start_trialbook names the book by str(): a URI passes through as it is
            procs.append(ui.start_trialbook(cast(Path, uri), port))
            bases[n] = f"http://127.0.0.1:{port}"
            ui.wait_http(f"{bases[n]}/api/v1/projects", procs[-1], "trialbook ui server")
        yield bases
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)


def cli_call(uri: str) -> Callable[[], str]:
    """One whole ``trialbook runs -p bench`` process (``bench/runs_table.py``'s), its stdout."""
    return lambda: runs_table.run_once(cast(Path, uri), ())[1]


def measure(
    backend: str, books: dict[int, str], sizes: dict[int, argparse.Namespace], reps: int
) -> tuple[dict[int, dict[str, float]], list[str]]:
    """Every measure of the books (``books``: URI by size), and what was wrong with the
    answers."""
    out: dict[int, dict[str, float]] = {n: {} for n in books}
    problems: list[str] = []

    def record(what: str, calls: dict[int, Callable[[], Any]]) -> dict[int, Any]:
        got = interleaved(f"{backend} {what}", calls, reps)
        for n, (seconds, _) in got.items():
            out[n][what] = seconds
        return {n: answer for n, (_, answer) in got.items()}

    answers: dict[int, dict[str, Any]] = {n: {} for n in books}
    service = {n: service_calls(uri, sizes[n]) for n, uri in books.items()}
    for call in ("page", "compare"):
        for n, answer in record(f"{call}_service", {n: c[call] for n, c in service.items()}).items():
            answers[n][call] = answer
    problems += [
        p for n in books for p in ui.check(f"{backend} {n:,} service", answers[n], ui.expected(sizes[n]))
    ]
    with ui_servers(books) as bases:
        http = {n: ui.trialbook_calls(base, sizes[n]) for n, base in bases.items()}
        for call in ("page", "compare"):
            for n, answer in record(f"{call}_http", {n: c[call] for n, c in http.items()}).items():
                answers[n][call] = answer
    problems += [
        p for n in books for p in ui.check(f"{backend} {n:,} HTTP", answers[n], ui.expected(sizes[n]))
    ]
    for n, text in record("runs_cli", {n: cli_call(uri) for n, uri in books.items()}).items():
        total = n + sizes[n].compare_runs
        problems += [f"{backend} {n:,}: {w}" for w in runs_table.check(total, (), text)]
    for n, uri in books.items():
        out[n]["size"] = size_bytes(backend, uri)
    return out, problems


# --------------------------------------------------------------------------- report
def mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f} ms"


def table(backend: str, sizes: list[argparse.Namespace], res: dict[int, dict[str, float]]) -> list[str]:
    small, large = sizes[0], sizes[-1]
    a, b = res[small.runs], res[large.runs]
    heads = " | ".join(f"{s.runs + s.compare_runs:,} runs ({points_of(s) / 1e6:.2f} M points)" for s in sizes)
    lines = [
        f"| {backend} | {heads} | large / small | target | met |",
        "|---|" + "---:|" * len(sizes) + "---:|---|:-:|",
    ]

    def timed(label: str, key: str, target: float, unit: str) -> None:
        cells = " | ".join(
            fmt_ms(res[s.runs][key]) if unit == "ms" else f"{res[s.runs][key]:.2f} s" for s in sizes
        )
        ratio = b[key] / a[key]
        value = b[key] * 1e3 if unit == "ms" else b[key]
        ok = value < target and ratio <= GROWTH_OK
        lines.append(f"| {label} | {cells} | {ratio:.2f}× | < {target:g} {unit}, no growth | {mark(ok)} |")

    timed(
        "project page data (service call, first 50 ranked, sparklines)", "page_service", TARGET_PAGE_MS, "ms"
    )
    timed("project page data over HTTP", "page_http", TARGET_PAGE_MS, "ms")
    timed("compare 20 runs × 300 epochs (service call)", "compare_service", TARGET_COMPARE_MS, "ms")
    timed("compare 20 runs over HTTP", "compare_http", TARGET_COMPARE_MS, "ms")
    timed("`trialbook runs -p bench` (whole process)", "runs_cli", TARGET_RUNS_S, "s")
    sizes_mib = " | ".join(f"{res[s.runs]['size'] / 2**20:,.0f} MiB" for s in sizes)
    lines.append(f"| size on disk | {sizes_mib} | {b['size'] / a['size']:.2f}× | | |")
    per_m = " | ".join(f"{res[s.runs]['size'] / 2**20 / (points_of(s) / 1e6):,.1f} MiB" for s in sizes)
    lines.append(f"| size per million points | {per_m} | | | |")
    builds = " | ".join(
        "reused" if res[s.runs]["build"] < 0 else f"{res[s.runs]['build']:.0f} s" for s in sizes
    )
    lines.append(
        f"| build time (bulk fill{', VACUUM ANALYZE' if backend == 'PostgreSQL' else ''}) | {builds} | | | |"
    )
    return lines


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=100_000, help="runs in the large book (default 100,000)")
    p.add_argument("--small", type=int, default=10_000, help="runs in the small book (default 10,000)")
    p.add_argument("--epochs", type=int, default=100, help="epochs of each run (default 100)")
    p.add_argument("--compare-runs", type=int, default=20, help="runs compared (default 20)")
    p.add_argument("--compare-epochs", type=int, default=300, help="their epochs (default 300)")
    p.add_argument("--reps", type=int, default=5, help="timed calls per measure (default 5)")
    p.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432", help="PostgreSQL server URI")
    p.add_argument("--skip-pg", action="store_true", help="SQLite only")
    p.add_argument("--skip-sqlite", action="store_true", help="PostgreSQL only")
    p.add_argument("--keep", action="store_true", help="keep the books (and reuse kept ones)")
    args = p.parse_args(argv)
    if min(args.runs, args.small, args.epochs, args.compare_runs, args.compare_epochs, args.reps) < 1:
        p.error("sizes must be at least 1")
    if args.compare_runs < 2:
        p.error("--compare-runs must be at least 2")
    return args


def run_backend(
    backend: str, args: argparse.Namespace, sizes: list[argparse.Namespace]
) -> tuple[dict[int, dict[str, float]], list[str]]:
    """Both books of ``backend`` built (or reused), then measured side by side."""
    books = sqlite_book if backend == "sqlite" else pg_book
    with contextlib.ExitStack() as stack:
        uris, builds = {}, {}
        for s in sizes:
            uris[s.runs], seconds = stack.enter_context(books(args, s))
            builds[s.runs] = -1.0 if seconds is None else seconds
            if seconds is not None:
                log(f"{backend} {s.runs:,} runs: built in {seconds:.1f} s")
        res, problems = measure(backend, uris, {s.runs: s for s in sizes}, args.reps)
    for n, seconds in builds.items():
        res[n]["build"] = seconds
    return res, problems


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    os.environ.pop("TRIALBOOK_TOKEN", None)
    WORK_ROOT.mkdir(parents=True, exist_ok=True)
    sizes = [shape(args, n) for n in sorted({args.small, args.runs})]
    load0 = os.getloadavg()[0]
    import trialbook

    lines = [
        f"### Scale: {' and '.join(f'{s.runs:,}' for s in sizes)} runs × {args.epochs} epochs, "
        f"plus {args.compare_runs} runs × {args.compare_epochs} epochs × {len(ui.DETECT_KEYS)} keys "
        f"(median of {args.reps})",
    ]
    problems: list[str] = []
    backends = [("sqlite", "SQLite")] * (not args.skip_sqlite) + [("pg", "PostgreSQL")] * (not args.skip_pg)
    for backend, label in backends:
        res, wrong = run_backend(backend, args, sizes)
        problems += wrong
        lines += ["", *table(label, sizes, res)]
    lines += [
        "",
        f"Answers checked: {mark(not problems)}" + (f" ({'; '.join(problems)})" if problems else ""),
        "",
        f"trialbook {trialbook.__version__}, {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}; "
        f"1-minute load average {load0:.2f} at the start, {os.getloadavg()[0]:.2f} at the end.",
    ]
    print("\n".join(lines))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
