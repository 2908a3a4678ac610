"""End to end over real loopback HTTP: a server on a SQLite book, the Python API and the
``trialbook`` command (a subprocess) pointed at it by ``TRIALBOOK_URI``, unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import trialbook as tb
from support.runs import MAP
from support.server import start
from trialbook.api import Book

EPOCHS = 20
LOSS = "train/box_loss"


def cli(url: str, cwd: Path, *args: str) -> Any:
    """``trialbook ARGS --json`` in a subprocess on the book at ``url``; its JSON."""
    env = {**os.environ, "TRIALBOOK_URI": url, "TRIALBOOK_USER": "tester"}
    done = subprocess.run(
        [sys.executable, "-m", "trialbook", *args, "--json"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
    return json.loads(done.stdout)


def test_the_api_and_the_cli_work_unchanged_on_a_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = tmp_path / "server-book"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRIALBOOK_USER", "tester")
    monkeypatch.delenv("TRIALBOOK_TOKEN", raising=False)
    with start(str(served)) as server:
        monkeypatch.setenv("TRIALBOOK_URI", server.url)
        with tb.start(project="pallets", name="v1_remote", allow_unpinned=True, config={"lr0": 0.01}) as run:
            for epoch in range(EPOCHS):
                run.log({MAP: 0.1 + epoch * 0.01, LOSS: 1.0 - epoch * 0.02}, epoch=epoch)
            run.note(hypothesis="a remote book", change="none", result="arrived", next="sync")

        runs = cli(server.url, tmp_path, "runs", "--project", "pallets")
        shown = cli(server.url, tmp_path, "show", "v1_remote")

    assert runs["project"] == "pallets"
    assert [(r["name"], r["status"], r["epochs"], r["has_note"]) for r in runs["runs"]] == [
        ("v1_remote", "finished", EPOCHS, True)
    ]
    assert runs["runs"][0]["best"] == pytest.approx(0.1 + (EPOCHS - 1) * 0.01)
    assert shown["name"] == "v1_remote" and shown["config"] == {"lr0": 0.01} and not shown["pinned"]
    assert shown["summary"][MAP]["final"] == pytest.approx(0.29)
    assert shown["summary"][MAP]["epoch_of_best"] == EPOCHS - 1
    assert "a remote book" in json.dumps(shown["note"])

    # what the server's book holds, read directly
    book = Book.open(str(served))
    try:
        stored = book.store.get_run("pallets", "v1_remote")
        assert stored.status == "finished" and stored.unwritten == 0
        history = book.store.get_all_history(stored.id)
        assert [e for e, _ in history[MAP]] == list(range(EPOCHS))
        last_epoch, last_loss = history[LOSS][-1]
        assert last_epoch == EPOCHS - 1 and last_loss == pytest.approx(1.0 - (EPOCHS - 1) * 0.02)
        note = book.store.get_notes([stored.id])[stored.id]
        assert (note.hypothesis, note.result, note.version) == ("a remote book", "arrived", 1)
    finally:
        book.close()
