"""``trialbook sync --from BOOK``: a demo-like embedded book (the demo, plus an artifact,
a decision and a ship) copied into a loopback server over SQLite; what the CLI shows of
the server is what it shows of the source; a second copy, and two at once, double nothing."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from blake3 import blake3

from support.cli import cli_json
from support.server import LoopbackServer, start
from trialbook.api import Book
from trialbook.services import decisions

TABLES = [
    "projects",
    "protocol_changes",
    "runs",
    "points",
    "evaluations",
    "artifacts",
    "notes",
    "note_history",
    "decisions",
    "ships",
    "dataset_versions",
    "dataset_tags",
]


@pytest.fixture(scope="module")
def source(demo_book: Book, tmp_path_factory: pytest.TempPathFactory) -> Book:
    """The demo book with an artifact on v3, a decision v3 over v2 and v3 shipped (forced)."""
    weights = tmp_path_factory.mktemp("weights") / "best.pt"
    weights.write_bytes(os.urandom(200_000))
    demo_book.attach("v3_pallets_added_imgsz_640", "pallets").log_artifact(weights)
    decisions.decide(demo_book, "v3_pallets_added_imgsz_640", "v2_imgsz_1024", project="pallets")
    decisions.ship(demo_book, "v3_pallets_added_imgsz_640", project="pallets", force=True, reason="demo")
    return demo_book


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    monkeypatch.setenv("TRIALBOOK_USER", "tester")
    monkeypatch.setenv("TRIALBOOK_OUTBOX", str(tmp_path / "outbox.db"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("TRIALBOOK_URI", raising=False)
    with start(str(tmp_path / "server-book")) as served:
        yield served


def sync_from(src: str, url: str, *, code: int = 0) -> Any:
    return cli_json(url, "sync", "--from", src, codes=(code,))


def counts(folder: Path) -> dict[str, int]:
    with sqlite3.connect(folder / "book.db") as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def _strip(doc: Any) -> Any:
    """A CLI document without what names the book."""
    if isinstance(doc, dict):
        return {k: _strip(v) for k, v in doc.items() if k not in ("book", "uri")}
    if isinstance(doc, list):
        return [_strip(v) for v in doc]
    return doc


def _views(uri: str) -> Any:
    out = {
        "runs": cli_json(uri, "runs", "--project", "pallets"),
        "decisions": cli_json(uri, "decisions", "--project", "pallets"),
        "data": cli_json(uri, "data", "list"),
    }
    for name in ("v1_baseline", "v2_imgsz_1024", "v3_pallets_added_imgsz_640"):
        shown = cli_json(uri, "show", name, "--project", "pallets")
        shown["note"].pop("updated_at")  # stamped by the target when written (services.copy.NOT_COPIED)
        out[name] = shown
    return _strip(out)


def test_a_copy_shows_the_same_and_a_second_copies_nothing(source: Book, server: LoopbackServer) -> None:
    served = Path(server.book_uri or "")
    first = sync_from(source.uri, server.url)
    assert first["refused"] == []
    assert first["counts"]["runs"] == {"copied": 3, "already": 0}
    assert first["counts"]["artifacts"]["copied"] == 1
    assert first["counts"]["decisions"]["copied"] == 1 and first["counts"]["ships"]["copied"] == 1
    assert first["counts"]["tags"]["copied"] == 2 and first["counts"]["manifests"]["copied"] == 2
    assert first["counts"]["points"]["copied"] > 1000

    assert _views(server.url) == _views(source.uri)
    after_one = counts(served)
    assert after_one == counts(Path(source.uri))

    # decisions keep their evidence: deciding the same pair again finds the copied one
    evidence = [d.evidence for d in source.store.list_decisions("pallets")]
    assert evidence and None not in evidence
    remote_decisions = Book.open(server.url)
    try:
        assert [d.evidence for d in remote_decisions.store.list_decisions("pallets")] == evidence
    finally:
        remote_decisions.close()

    # the artifact's bytes, downloaded from the server
    [artifact] = source.store.list_artifacts(source.store.get_run("pallets", "v3_pallets_added_imgsz_640").id)
    remote = Book.open(server.url)
    try:
        assert remote.blobs is not None
        got = remote.blobs.get_bytes(artifact.digest)
        assert blake3(got).hexdigest() == artifact.digest and len(got) == artifact.size
        # the protocol and its history came along
        assert remote.store.get_project("pallets").protocol == source.store.get_project("pallets").protocol
        history = [(c.field, c.old, c.new, c.who) for c in remote.store.protocol_history("pallets")]
        assert history == [(c.field, c.old, c.new, c.who) for c in source.store.protocol_history("pallets")]
    finally:
        remote.close()

    second = sync_from(source.uri, server.url)
    assert second["refused"] == []
    assert {k: c["copied"] for k, c in second["counts"].items() if c["copied"]} == {}
    assert second["counts"]["runs"]["already"] == 3 and second["counts"]["points"]["already"] > 1000
    assert counts(served) == after_one


def test_two_copies_at_once_double_nothing(source: Book, server: LoopbackServer, tmp_path: Path) -> None:
    env = {**os.environ, "TRIALBOOK_URI": server.url}
    command = [sys.executable, "-m", "trialbook", "sync", "--from", source.uri, "--json"]
    procs = [
        subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err.decode()[-2000:]
    docs = [json.loads(out) for out, _ in outs]
    assert sum(d["counts"]["runs"]["copied"] for d in docs) == 3  # each run created once
    assert counts(Path(server.book_uri or "")) == counts(Path(source.uri))


def test_a_run_name_taken_by_another_run_is_refused(source: Book, server: LoopbackServer) -> None:
    other = Book.open(server.url)
    try:
        with other.start("pallets", "v1_baseline", allow_unpinned=True) as run:
            run.log({"metrics/mAP50-95(B)": 0.1}, epoch=0)
        assert other.upload_outbox().left == 0
    finally:
        other.close()
    got = sync_from(source.uri, server.url, code=1)
    assert [(r["kind"], r["item"]) for r in got["refused"]] == [("runs", "pallets/v1_baseline")]
    assert "already has a run named" in got["refused"][0]["reason"]
    assert got["counts"]["runs"]["copied"] == 2
