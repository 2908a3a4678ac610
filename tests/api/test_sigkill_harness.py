"""The SIGKILL harness: a logging process, an import and a dataset tag are killed at
random moments (seeded); the book passes ``PRAGMA integrity_check`` every time, keeps
everything but the last second of a run's points, and holds nothing half-written: a
killed import or tag leaves its records whole or absent, and running it again finishes
the job."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from support.datasets import make_dataset
from support.ultralytics_files import DETECT, args_yaml, results_csv
from trialbook.api import Book

MAP = "metrics/mAP50-95(B)"
TRIALBOOK = [sys.executable, "-m", "trialbook"]


def integrity(book_dir: Path) -> str:
    with sqlite3.connect(book_dir / "book.db") as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def kill_after(cmd: list[str], delay: float, cwd: Path) -> int:
    """Start ``cmd``, SIGKILL it after ``delay`` seconds (if it still runs); its code."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
    return proc.wait(timeout=30)


@pytest.mark.slow
def test_killed_logging_keeps_all_but_the_last_second(tmp_path: Path) -> None:
    rng = random.Random(11)
    Book.open(str(tmp_path / ".trialbook"), create=True).close()
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys, time
            import trialbook as tb
            run = tb.start("pallets", sys.argv[2], allow_unpinned=True, uri=sys.argv[1])
            epoch = 0
            while True:
                run.log({"metrics/mAP50-95(B)": epoch / 1000, "train/box_loss": 1.0}, epoch=epoch)
                print(epoch, flush=True)
                epoch += 1
                time.sleep(0.005)
            """
        )
    )
    for trial in range(4):
        name = f"v{trial + 1}_killed"
        proc = subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / ".trialbook"), name],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the run has started
        assert first.strip() == "0"
        time.sleep(rng.uniform(0.3, 2.0))
        os.kill(proc.pid, signal.SIGKILL)
        printed = [int(x) for x in proc.stdout.read().split()] or [0]
        proc.wait()
        assert integrity(tmp_path / ".trialbook") == "ok"
        with Book.open(str(tmp_path / ".trialbook")) as book:
            record = book.run(name)
            stored = [e for e, _ in book.store.get_history([record.id], MAP)[record.id]]
        assert stored == list(range(len(stored))), "stored in order, no gaps"
        # flushes every 0.5 s at up to 200 epochs/s: at most about one second is lost
        assert len(stored) >= printed[-1] + 1 - 200, (trial, len(stored), printed[-1])


@pytest.mark.slow
def test_killed_imports_and_tags_leave_nothing_half_written(tmp_path: Path) -> None:
    rng = random.Random(7)
    book_dir = tmp_path / "book" / ".trialbook"
    Book.open(str(book_dir), create=True).close()
    runs = tmp_path / "runs" / "detect"
    for i in range(12):
        folder = runs / f"train{i}"
        folder.mkdir(parents=True)
        (folder / "args.yaml").write_text(yaml.safe_dump(args_yaml(name=folder.name, save_dir=str(folder))))
        (folder / "results.csv").write_text(results_csv(DETECT, list(range(1, 301))))
    data = make_dataset(tmp_path / "data")
    uri = ["--uri", str(book_dir)]
    for trial in range(6):
        delay = rng.uniform(0.2, 1.5)
        if trial % 2 == 0:
            kill_after(
                [*TRIALBOOK, "import", "ultralytics", str(runs), "--project", "old", *uri], delay, tmp_path
            )
        else:
            kill_after(
                [*TRIALBOOK, "data", "tag", "shop", str(data), "--tag", f"t{trial}", *uri], delay, tmp_path
            )
        assert integrity(book_dir) == "ok", trial
        with Book.open(str(book_dir)) as book:
            for run in book.store.list_runs():
                # an imported run is written in one transaction: all 300 epochs or absent
                points = book.store.get_history([run.id], MAP)[run.id]
                assert run.status != "running" and len(points) == 300, (trial, run.name, len(points))
            for tag in book.store.list_tags("shop"):
                version = book.store.get_dataset_version("shop", tag.digest)
                assert book.manifest(version).digest == version.digest  # the manifest is stored
    done = subprocess.run(
        [*TRIALBOOK, "import", "ultralytics", str(runs), "--project", "old", *uri],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    with Book.open(str(book_dir)) as book:
        assert len(book.store.list_runs("old")) == 12
    assert integrity(book_dir) == "ok"
