#!/usr/bin/env python3
"""Runs-table benchmark: ``trialbook runs`` as a user runs it, a whole process each time.

    .venv/bin/python bench/runs_table.py                    # 10,000 and 1,000 runs x 100 epochs
    .venv/bin/python bench/runs_table.py --reuse            # keep the books built by an earlier run
    .venv/bin/python bench/runs_table.py --runs 2000 --reps 3

The workload is ``bench/ui.py``'s runs table (its helpers, imported): ``--runs`` runs
(10,000 and 1,000 by default) of ``--epochs`` epochs (100) of the ranking metric
``metrics/mAP50-95(B)``, each with 30 Ultralytics settings and 2 tags, written straight
into an embedded SQLite book through the SQL store in one transaction, under
``bench/.work/runs-table-<runs>x<epochs>/``. Each book is rebuilt unless ``--reuse`` is
given and it was finished before.

Timed, each as the median of ``--reps`` (5) runs of the installed ``trialbook`` command
(after one warm-up run), from process start to exit, stdout read through a pipe as a
script reads it (so rich lays the table out at 160 columns), with the bytecode cached as
an installed package has it (``PYTHONDONTWRITEBYTECODE`` is dropped; the caches go to
``bench/.work/pycache/``, the warm-up writes them):

* ``trialbook runs -p bench``: the default view, the top 50 and the line saying how many
  more (target: under 0.5 s at 10,000 runs, and no growth with the book's size);
* ``trialbook runs -p bench --limit 500``: the largest page;
* ``trialbook runs -p bench --json``: every run, as one JSON document;
* ``trialbook runs -p bench --all``: every run, as a table;
* the floor under them all: a process that only imports what ``trialbook runs`` imports
  (the interpreter, click, rich, SQLAlchemy and trialbook's modules), no query, no output.

Each answer is checked (the rows it has, the "more" line of the default view). The result
is a markdown table on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import ui  # noqa: E402  (bench/ui.py: the workload and its SQL-store writer)

WORK_ROOT = BENCH_DIR / ".work"
TARGET_S = 0.5
PAGE = 50
IMPORTS = "imports alone (no query, no output)"
# What every ``trialbook runs`` imports, timed as a process of its own: the floor under
# the default view (the interpreter, click, rich, SQLAlchemy, trialbook's modules).
IMPORTS_CODE = (
    "import trialbook.cli.main, trialbook.cli.runs, trialbook.cli.output, "
    "trialbook.services.runs, trialbook.store.sql.store"
)
COMMANDS: tuple[tuple[str, tuple[str, ...] | None], ...] = (
    ("default view (top 50)", ()),
    ("`--limit 500`", ("--limit", "500")),
    ("`--json` (every run)", ("--json",)),
    ("`--all` (every run, as a table)", ("--all",)),
    (IMPORTS, None),
)


def log(msg: str) -> None:
    print(f"[runs-table-bench] {msg}", file=sys.stderr, flush=True)


def trialbook_bin() -> str:
    """The ``trialbook`` command beside this interpreter (the project's venv)."""
    here = Path(sys.executable).parent / "trialbook"
    return str(here) if here.exists() else shutil.which("trialbook") or "trialbook"


def book_for(runs: int, args: argparse.Namespace) -> Path:
    """The book of ``runs`` runs, built unless ``--reuse`` finds a finished one."""
    folder = WORK_ROOT / f"runs-table-{runs}x{args.epochs}"
    book, done = folder / "book", folder / "book.done"
    if args.reuse and done.exists():
        log(f"reusing {book}")
        return book
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    log(f"writing {runs:,} runs x {args.epochs} epochs into {book}")
    ui.build_trialbook(
        book, argparse.Namespace(runs=runs, epochs=args.epochs, compare_runs=0, compare_epochs=0)
    )
    done.write_text("ok\n")
    return book


def run_once(book: Path, extra: tuple[str, ...] | None) -> tuple[float, str]:
    """Seconds of one whole ``trialbook runs -p bench ...`` process, and its stdout
    (``extra`` ``None``: the process of ``IMPORTS_CODE``)."""
    env = {**os.environ, "TRIALBOOK_URI": str(book), "PYTHONPYCACHEPREFIX": str(WORK_ROOT / "pycache")}
    for name in ("TRIALBOOK_TOKEN", "PYTHONDONTWRITEBYTECODE"):
        env.pop(name, None)
    t0 = time.perf_counter()
    done = subprocess.run(
        [trialbook_bin(), "runs", "-p", ui.PROJECT, *extra]
        if extra is not None
        else [sys.executable, "-c", IMPORTS_CODE],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(
            f"trialbook runs {' '.join(extra or ())} exited {done.returncode}: {done.stderr.strip()}"
        )
    return seconds, done.stdout


def rows_of(extra: tuple[str, ...], out: str) -> int:
    """The runs an answer holds (JSON rows, or table rows: lines starting with a border)."""
    if "--json" in extra:
        return len(json.loads(out)["runs"])
    return sum(1 for line in out.splitlines() if line.startswith("│"))


def check(runs: int, extra: tuple[str, ...] | None, out: str) -> list[str]:
    """What is wrong with an answer ([] when right)."""
    if extra is None:
        return []
    want = PAGE if not extra else 500 if "--limit" in extra else runs
    want = min(want, runs)
    got = rows_of(extra, out)
    problems = [] if got == want else [f"runs {' '.join(extra)}: {got} rows, not {want}"]
    if not extra and runs > PAGE and f"{runs - PAGE:,} more runs" not in out:
        problems.append(f"runs (default): no line saying {runs - PAGE:,} more runs")
    return problems


def measure(
    book: Path, runs: int, extra: tuple[str, ...] | None, reps: int
) -> tuple[float, list[float], list[str]]:
    run_once(book, extra)  # warm-up: the book's pages in the OS cache, the interpreter's .pyc
    times, out = [], ""
    for _ in range(reps):
        seconds, out = run_once(book, extra)
        times.append(seconds)
    return statistics.median(times), times, check(runs, extra, out)


def fmt_s(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds < 1 else f"{seconds:,.2f} s"


def report(
    args: argparse.Namespace,
    results: dict[int, dict[str, float]],
    problems: list[str],
    load: tuple[float, float],
) -> str:
    import trialbook

    sizes = sorted(results)
    head = " | ".join(f"{n:,} runs" for n in sizes)
    lines = [
        f"### `trialbook runs` ({args.epochs} epochs a run; whole process, median of {args.reps})",
        "",
        f"trialbook {trialbook.__version__}, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs, load average {load[0]:.2f} → {load[1]:.2f}",
        "",
        f"| command | {head} | target | met |",
        "|---|" + "---:|" * len(sizes) + "---|:-:|",
    ]
    biggest = max(sizes)
    for label, _ in COMMANDS:
        cells = " | ".join(fmt_s(results[n][label]) for n in sizes)
        if label.startswith("default"):
            met = "✓" if results[biggest][label] < TARGET_S else "✗"
            target = f"< {TARGET_S} s at {biggest:,} runs"
        else:
            met, target = "", ""
        lines.append(f"| {label} | {cells} | {target} | {met} |")
    if len(sizes) > 1:
        small = min(sizes)
        key = COMMANDS[0][0]
        ratio = results[biggest][key] / results[small][key]
        lines += [
            "",
            f"Default view at {biggest:,} runs / at {small:,} runs: {ratio:.2f}× "
            f"(the book is {biggest // small}× larger).",
        ]
    lines += ["", "Problems: " + ("; ".join(problems) if problems else "none (every answer checked)")]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--runs", type=int, nargs="+", default=[10_000, 1_000], help="book sizes (10000 1000)"
    )
    parser.add_argument("--epochs", type=int, default=100, help="epochs of each run (default 100)")
    parser.add_argument("--reps", type=int, default=5, help="timed runs per measure (default 5)")
    parser.add_argument("--reuse", action="store_true", help="reuse books built by an earlier run")
    args = parser.parse_args(argv)

    load_start = os.getloadavg()[0]
    results: dict[int, dict[str, float]] = {}
    problems: list[str] = []
    for runs in args.runs:
        book = book_for(runs, args)
        results[runs] = {}
        for label, extra in COMMANDS:
            median, times, wrong = measure(book, runs, extra, args.reps)
            results[runs][label] = median
            problems += wrong
            log(f"{runs:,} runs, {label}: median {fmt_s(median)} ({', '.join(fmt_s(t) for t in times)})")
    print(report(args, results, problems, (load_start, os.getloadavg()[0])))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
