#!/usr/bin/env python3
"""Start-up benchmark: ``import trialbook`` and the ``trialbook`` command, in fresh processes.

    .venv/bin/python bench/startup.py                       # 15 processes a measure
    .venv/bin/python bench/startup.py --runs 30 --top 15    # and the slowest imports
    .venv/bin/python bench/startup.py --no-bytecode-cache   # compile at every start

Each measure starts ``--runs`` fresh processes of the venv's Python (this interpreter,
or ``--python``) and reports their median, fastest and slowest:

* ``python -c pass``: the interpreter's own start, for reference;
* ``import trialbook``, timed inside the process (``time.perf_counter`` around the
  import statement, printed by the process), and the whole process;
* ``trialbook --help`` and ``trialbook --version``: the console script, whole process.

Targets (issue 15): the import under 50 ms, ``trialbook --help`` under 150 ms.

By default the processes read and write byte code in a private cache folder
(``PYTHONPYCACHEPREFIX`` in a temporary folder, ``PYTHONDONTWRITEBYTECODE`` unset) that
two untimed warm-up runs of each command fill: an installed trialbook, whose modules are
compiled once. ``--no-bytecode-cache`` keeps the environment's ``PYTHONDONTWRITEBYTECODE=1``
instead (set if it is not): every module without a ``__pycache__`` of its own (an editable
checkout that never wrote one) is compiled again at every start. ``--top N`` adds the N
modules with the most import time of their own (``-X importtime``, one process).

The result is a markdown table on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

IMPORT_MS = 50.0  # issue 15: `import trialbook`
HELP_MS = 150.0  # issue 15: `trialbook --help`, whole process
TIMED_IMPORT = (
    "import time\n_t = time.perf_counter()\nimport trialbook\nprint((time.perf_counter() - _t) * 1000)\n"
)


def log(msg: str) -> None:
    print(f"[startup] {msg}", file=sys.stderr, flush=True)


def environment(no_bytecode_cache: bool, cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    if no_bytecode_cache:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTHONPYCACHEPREFIX", None)
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(cache)
    return env


def trialbook_command(python: Path) -> list[str]:
    """The ``trialbook`` console script beside ``python``, else ``python -m trialbook``."""
    script = python.parent / "trialbook"
    return [str(script)] if script.exists() else [str(python), "-m", "trialbook"]


def wall_ms(cmd: Sequence[str], env: dict[str, str]) -> float:
    """Milliseconds from start to exit of ``cmd`` (which must succeed)."""
    t = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - t) * 1000


def inner_ms(cmd: Sequence[str], env: dict[str, str]) -> float:
    """The milliseconds ``cmd`` prints (its own measure)."""
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def repeat(name: str, runs: int, once: Callable[[], float]) -> list[float]:
    """``once()`` twice untimed (warm-up: byte code, page cache), then ``runs`` times."""
    once(), once()
    times = []
    for i in range(runs):
        times.append(once())
        if (i + 1) % 5 == 0 or i + 1 == runs:
            log(f"{name}: {i + 1}/{runs}, median so far {statistics.median(times):.1f} ms")
    return times


def slowest_imports(python: Path, env: dict[str, str], top: int) -> list[tuple[str, float, float]]:
    """(module, self ms, cumulative ms) of the ``top`` modules with the most import time
    of their own, in one ``-X importtime`` process (its own overhead included)."""
    out = subprocess.run(
        [str(python), "-X", "importtime", "-c", "import trialbook"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    rows = []
    for line in out.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue
        rows.append((parts[2].strip(), int(parts[0]) / 1000, int(parts[1]) / 1000))
    return sorted(rows, key=lambda r: -r[1])[:top]


def row(measure: str, times: list[float], target: float | None) -> str:
    median = statistics.median(times)
    goal = f"< {target:.0f} ms" if target is not None else ""
    met = ("✓" if median < target else "✗") if target is not None else ""
    return f"| {measure} | {median:.1f} ms | {min(times):.1f} ms | {max(times):.1f} ms | {goal} | {met} |"


def report(
    args: argparse.Namespace,
    results: list[tuple[str, list[float], float | None]],
    top: list[tuple[str, float, float]],
    load: tuple[float, float],
) -> str:
    mode = (
        "PYTHONDONTWRITEBYTECODE=1 (modules without a __pycache__ compiled at every start)"
        if args.no_bytecode_cache
        else "byte code cached (a private PYTHONPYCACHEPREFIX, warmed up)"
    )
    lines = [
        f"### Start-up ({os.cpu_count()} CPUs, Python {platform.python_version()}, {mode}; "
        f"{args.runs} processes a measure; load average {load[0]:.2f} -> {load[1]:.2f})",
        "",
        "| measure | median | fastest | slowest | target | met |",
        "|---|---:|---:|---:|---|:-:|",
        *(row(measure, times, target) for measure, times, target in results),
    ]
    if top:
        lines += [
            "",
            "Most import time of their own in `import trialbook` (`-X importtime`, one process):",
            "",
            "| module | self | cumulative |",
            "|---|---:|---:|",
            *(f"| `{name}` | {own:.1f} ms | {cumulative:.1f} ms |" for name, own, cumulative in top),
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="processes a measure (default 15, at least 10)")
    parser.add_argument("--python", type=Path, default=Path(sys.executable), help="the venv's python")
    parser.add_argument(
        "--no-bytecode-cache", action="store_true", help="PYTHONDONTWRITEBYTECODE=1, no private cache"
    )
    parser.add_argument("--top", type=int, default=0, help="list the N slowest imports (default 0)")
    args = parser.parse_args(argv)
    if args.runs < 10:
        parser.error("--runs: at least 10")
    python = args.python.absolute()  # a venv's python is a link: keep its path, not its target
    cli = trialbook_command(python)
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="trialbook-startup-") as tmp:
        env = environment(args.no_bytecode_cache, Path(tmp) / "pycache")
        os.chdir(tmp)  # the processes start in an empty folder: nothing there to import or find
        measures: list[tuple[str, Callable[[], float], float | None]] = [
            ("`python -c pass` (reference)", lambda: wall_ms([str(python), "-c", "pass"], env), None),
            (
                "`import trialbook` (in the process)",
                lambda: inner_ms([str(python), "-c", TIMED_IMPORT], env),
                IMPORT_MS,
            ),
            (
                "`python -c 'import trialbook'` (whole process)",
                lambda: wall_ms([str(python), "-c", "import trialbook"], env),
                None,
            ),
            ("`trialbook --help` (whole process)", lambda: wall_ms([*cli, "--help"], env), HELP_MS),
            ("`trialbook --version` (whole process)", lambda: wall_ms([*cli, "--version"], env), None),
        ]
        results = [(name, repeat(name, args.runs, once), target) for name, once, target in measures]
        top = slowest_imports(python, env, args.top) if args.top else []
    print(report(args, results, top, (load_start, os.getloadavg()[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
