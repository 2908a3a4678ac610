"""``trialbook sync`` uploads the outbox: everything once, two syncs at once doubling
nothing, refusals kept, listed with their reason, and exit code 1.

The outbox is filled by an offline run against a real SQLite book (a thin wrapper says
the book is remote; offline, it is never called), then synced into that book."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pytest
from click.testing import CliRunner

from trialbook.api import Book
from trialbook.cli.main import cli
from trialbook.outbox import Outbox
from trialbook.store.base import Store

MAP = "metrics/mAP50-95(B)"
KEYS = [MAP, "train/box_loss", "train/cls_loss", "lr/pg0"]


class Remote:
    """A real store that says it is remote."""

    remote = True

    def __init__(self, real: Store) -> None:
        self.real, self.uri = real, real.uri

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.fixture
def book_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRIALBOOK_OUTBOX", str(tmp_path / "cache" / "outbox.db"))
    monkeypatch.delenv("TRIALBOOK_OFFLINE", raising=False)
    folder = tmp_path / "book"
    Book.open(str(folder), create=True).close()
    return folder


def log_offline(book_dir: Path, name: str, epochs: int) -> str:
    real = Book.open(str(book_dir))
    book = Book(cast(Store, Remote(real.store)), offline=True)
    with book.start("pallets", name, allow_unpinned=True, flush_interval=60) as run:
        for epoch in range(epochs):
            run.log({k: epoch + i / 10 for i, k in enumerate(KEYS)}, epoch=epoch)
        run.log_eval("val", {MAP: 0.5})
        run.note(hypothesis="offline", result="r")
    book.close()
    real.close()
    return run.id


def sync_json(book_dir: Path, code: int = 0) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["sync", "--uri", str(book_dir), "--json"])
    assert result.exit_code == code, result.output
    return cast(dict[str, Any], json.loads(result.stdout))


def check_once(book_dir: Path, run_id: str, epochs: int) -> None:
    with Book.open(str(book_dir)) as book:
        history = book.store.get_all_history(run_id)
        assert sorted(history) == sorted(KEYS)
        for i, k in enumerate(KEYS):
            assert history[k] == [(e, e + i / 10) for e in range(epochs)]
        assert len(book.store.list_evaluations([run_id])) == 1
        assert len(book.store.note_history(run_id)) == 1
        assert book.store.get_run_by_id(run_id).status == "finished"


def test_sync_uploads_the_outbox_once(book_dir: Path) -> None:
    run_id = log_offline(book_dir, "v1_offline", 25)
    done = sync_json(book_dir)
    assert (done["created_runs"], done["points"], done["evaluations"], done["notes"], done["endings"]) == (
        1,
        100,
        1,
        1,
        1,
    )
    assert done["refused"] == [] and done["left"] == 0
    check_once(book_dir, run_id, 25)
    again = sync_json(book_dir)
    assert (again["created_runs"], again["points"], again["notes"]) == (0, 0, 0)
    check_once(book_dir, run_id, 25)


def test_the_summary_on_a_terminal(book_dir: Path) -> None:
    log_offline(book_dir, "v1_text", 3)
    result = CliRunner().invoke(cli, ["sync", "--uri", str(book_dir)])
    assert result.exit_code == 0, result.output
    assert "uploaded 1 runs, 12 points, 1 evaluations, 1 notes" in result.output


@pytest.mark.slow
def test_two_syncs_at_once_double_nothing(book_dir: Path) -> None:
    run_ids = [log_offline(book_dir, f"v{i}_together", 300) for i in range(1, 4)]
    cmd = [sys.executable, "-m", "trialbook", "sync", "--uri", str(book_dir), "--json"]
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    done = [json.loads(out) for out, _ in outs]
    assert sum(d["points"] for d in done) == 3 * 300 * len(KEYS)  # every point sent exactly once
    assert sum(d["notes"] for d in done) == 3 and sum(d["created_runs"] for d in done) == 3
    for run_id in run_ids:
        check_once(book_dir, run_id, 300)


def test_refused_writes_are_kept_and_reported(book_dir: Path) -> None:
    with Book.open(str(book_dir)) as book:
        book.start("pallets", "v1_taken", allow_unpinned=True).finish()  # on the server meanwhile
    run_id = log_offline(book_dir, "v1_taken", 5)
    result = CliRunner().invoke(cli, ["sync", "--uri", str(book_dir)])
    assert result.exit_code == 1
    assert f"refused, kept in the outbox: run {run_id}" in result.output
    assert "already has a run named 'v1_taken'" in result.output
    assert "writes wait behind a refused run creation" in result.output
    done = sync_json(book_dir, code=1)  # reported again, never lost
    assert [(r["kind"], r["run_id"]) for r in done["refused"]] == [("run", run_id)]
    assert done["left"] == 5 * len(KEYS) + 3  # points, evaluation, note, ending
    outbox = Outbox(Path(os.environ["TRIALBOOK_OUTBOX"]))
    assert outbox.pending(str(book_dir)) == done["left"]
    outbox.close()
