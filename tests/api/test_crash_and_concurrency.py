"""Real processes: SIGKILL mid-training, and eight writers on one SQLite book."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import trialbook as tb
from trialbook.core.runs import effective_status

MAP = "metrics/mAP50-95(B)"


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "train.py"
    path.write_text(textwrap.dedent(body))
    return path


@pytest.mark.slow
def test_sigkill_loses_at_most_the_last_second(tmp_path: Path) -> None:
    tb.init(tmp_path)
    script = _script(
        tmp_path,
        """
        import sys, time
        import trialbook as tb
        run = tb.start("pallets", "v1_killed", allow_unpinned=True, uri=sys.argv[1])
        epoch = 0
        while True:
            run.log({"metrics/mAP50-95(B)": epoch / 1000}, epoch=epoch)
            print(epoch, flush=True)  # acknowledged to the parent
            epoch += 1
            time.sleep(0.01)
    """,
    )
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / ".trialbook")], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    acked = -1
    deadline = time.time() + 30
    while acked < 150 and time.time() < deadline:
        acked = int(proc.stdout.readline())
    time.sleep(1.5)  # keeps logging; then kill without warning
    os.kill(proc.pid, signal.SIGKILL)
    killed_at = time.time()
    rest = proc.stdout.read().split()
    proc.wait()
    last_acked = int(rest[-1]) if rest else acked
    book = tb.Book.open(str(tmp_path / ".trialbook"))
    rec = book.run("v1_killed")
    hist = book.store.get_history([rec.id], MAP)[rec.id]
    stored = [e for e, _ in hist]
    assert stored == list(range(len(stored))), "points are stored in order with no gaps"
    # at 100 epochs/s, one second of loss is at most ~100 epochs (flush every 0.5 s)
    assert len(stored) >= last_acked + 1 - 100, (len(stored), last_acked)
    assert rec.status == "running"
    assert effective_status(rec, killed_at) == "running"
    assert effective_status(rec, killed_at + 120) == "crashed"


@pytest.mark.slow
def test_eight_processes_write_to_one_sqlite_book(tmp_path: Path) -> None:
    tb.init(tmp_path)
    script = _script(
        tmp_path,
        """
        import sys
        import trialbook as tb
        uri, i = sys.argv[1], int(sys.argv[2])
        with tb.start("pallets", f"v{i}_writer", allow_unpinned=True, uri=uri,
                      flush_interval=0.05) as run:
            for epoch in range(300):
                run.log({f"metrics/k{j:02d}": epoch + j / 100 for j in range(20)}, epoch=epoch)
    """,
    )
    uri = str(tmp_path / ".trialbook")
    env = dict(os.environ)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), uri, str(i)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(1, 9)
    ]
    outputs = [p.communicate(timeout=240) for p in procs]
    for p, (_out, err) in zip(procs, outputs, strict=True):
        assert "locked" not in err and "Warning" not in err, err
        assert p.returncode == 0, err
    book = tb.Book.open(uri)
    runs = book.store.list_runs("pallets")
    assert len(runs) == 8 and {r.status for r in runs} == {"finished"}
    summaries = book.store.get_summaries([r.id for r in runs])
    total = sum(s.count for per_run in summaries.values() for s in per_run.values())
    assert total == 8 * 300 * 20
    for per_run in summaries.values():
        assert len(per_run) == 20
        assert all(s.final_epoch == 299 and s.count == 300 for s in per_run.values())
