"""How a run ends when its process does: SIGTERM (SLURM, Kubernetes, docker stop)
writes what is queued and marks the run failed with the reason; a script that exits
with a non-zero code, or on an exception, leaves a failed run; resuming a finished run
says what it does."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import trialbook as tb

MAP = "metrics/mAP50-95(B)"

SCRIPT = """
import os, signal, sys, time
import trialbook as tb
run = tb.start("pallets", sys.argv[2], allow_unpinned=True, uri=sys.argv[1], flush_interval=60)
for epoch in range(40):
    run.log({"metrics/mAP50-95(B)": epoch / 100}, epoch=epoch)
print("logged", flush=True)
END
"""


def _run_script(tmp_path: Path, name: str, end: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / f"{name}.py"
    script.write_text(textwrap.dedent(SCRIPT).replace("END", end))
    return subprocess.run(
        [sys.executable, str(script), str(tmp_path / ".trialbook"), name],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def book_dir(tmp_path: Path) -> Path:
    tb.init(tmp_path).close()
    return tmp_path


@pytest.mark.parametrize(
    ("name", "end", "status", "reason", "code"),
    [
        (
            "v1_sigterm",
            "os.kill(os.getpid(), signal.SIGTERM); time.sleep(30)",
            "failed",
            "killed by SIGTERM",
            -15,
        ),
        ("v1_exit3", "sys.exit(3)", "failed", "exit code 3", 3),
        ("v1_exit0", "sys.exit(0)", "finished", None, 0),
        ("v1_raises", "raise ValueError('bad batch')", "failed", "ValueError: bad batch", 1),
        ("v1_falls_off", "pass", "finished", None, 0),
    ],
)
def test_the_way_a_script_ends_is_the_way_its_run_ends(
    book_dir: Path, name: str, end: str, status: str, reason: str | None, code: int
) -> None:
    done = _run_script(book_dir, name, end)
    assert done.returncode == code, done.stderr
    with tb.Book.open(str(book_dir / ".trialbook")) as book:
        run = book.run(name)
        assert (run.status, run.end_reason) == (status, reason)
        # the 40 epochs were queued for a writer that flushes every 60 s: ending wrote them
        history = book.store.get_history([run.id], MAP)[run.id]
        assert [e for e, _ in history] == list(range(40))


def test_sigterm_runs_the_previous_handler_too(book_dir: Path) -> None:
    end = (
        "signal.signal(signal.SIGTERM, lambda s, f: (print('mine', flush=True), sys.exit(7)))\n"
        "run2 = tb.start('pallets', 'v1_second', allow_unpinned=True, uri=sys.argv[1])\n"
        "os.kill(os.getpid(), signal.SIGTERM)\ntime.sleep(30)"
    )
    # the user's own handler is set after trialbook's: it is the one Python calls, so it
    # decides; runs still open at exit are marked by the exit code they leave with
    done = _run_script(book_dir, "v1_handler", end)
    assert done.returncode == 7 and "mine" in done.stdout, done.stderr
    with tb.Book.open(str(book_dir / ".trialbook")) as book:
        assert book.run("v1_handler").end_reason == "exit code 7"
        assert book.run("v1_second").status == "failed"


def test_resume_continues_a_failed_run_and_refuses_a_finished_one(book_dir: Path) -> None:
    uri = str(book_dir / ".trialbook")
    with tb.start("pallets", "v1_done", allow_unpinned=True, uri=uri) as run:
        run.log({MAP: 0.1}, epoch=0)
    with pytest.raises(tb.Conflict, match="is finished: resume=True continues a run that crashed"):
        tb.start("pallets", "v1_done", resume=True, allow_unpinned=True, uri=uri)
    with pytest.raises(tb.InvalidInput, match="resume='yes'"):
        tb.start("pallets", "v1_done", resume="yes", allow_unpinned=True, uri=uri)
    again = tb.start("pallets", "v1_done", resume="reopen", allow_unpinned=True, uri=uri)
    assert again.last_epoch == 0 and again.book.run("v1_done").status == "running"
    again.log({MAP: 0.2}, epoch=1)
    again.finish()
    done = _run_script(book_dir, "v1_fails", "sys.exit(2)")
    assert done.returncode == 2
    resumed = tb.start("pallets", "v1_fails", resume=True, allow_unpinned=True, uri=uri)
    record = resumed.book.run("v1_fails")
    assert (record.status, record.end_reason, resumed.last_epoch) == ("running", None, 39)
    resumed.finish()
