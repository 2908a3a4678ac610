"""Processes racing on one book, on every home: several started at once (each waits for a
"go" file after its imports, so that they really write together), then what the book
holds is checked.

- Decisions made at once never spend more test reveals than the budget: with a budget of
  1, exactly one of them reveals and the others say the split is burned. The same
  decision (one pair, one evidence) made at once is stored once, and all return it.
- Every get-or-create is idempotent: the first runs of a new project (and of a new
  PostgreSQL database), the same tag of the same content, a run's first point of a key,
  a run's first note; a tag of other content is one Conflict naming the bound digest.
- Read-modify-writes lose nothing: protocol changes made at once are all kept, and
  batches of one run at once keep its summaries right.
No traceback anywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from support.runs import DIGESTS, add_run, set_protocol
from trialbook.api import Book
from trialbook.store import OpenedBook

pytestmark = pytest.mark.slow

WORKERS = 6
ROUNDS = 3

# The child: argv is [go file, URI, ...]; it runs BODY (which may use `uri`, `args`,
# `book`, the book opened before, and `cli(...)`) as soon as the go file exists, after
# its imports and the opening of the book (none for the URI "-").
_CHILD = """
import json, os, sys, time
import trialbook, trialbook.services.decisions, trialbook.services.datasets
from trialbook.api import Book
from trialbook.cli.main import cli as _cli

go, uri, args = sys.argv[1], sys.argv[2], sys.argv[3:]
if uri != "-":
    book = Book.open(uri)
    book.store.list_projects()  # connected
print("ready", flush=True)
while not os.path.exists(go):
    pass

def cli(*words):
    _cli([*words, "--uri", uri], prog_name="trialbook")

{body}
"""


class Finished:
    """What one racing process left: its exit code, stdout (after "ready"), stderr."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def json(self) -> Any:
        return json.loads(self.out)

    def __repr__(self) -> str:
        return f"Finished({self.code}, out={self.out[-400:]!r}, err={self.err[-800:]!r})"


def race(tmp_path: Path, uri: str, body: str, argvs: Sequence[Sequence[str]]) -> list[Finished]:
    """Run ``body`` in one process per ``argvs`` entry, all released at once."""
    go = tmp_path / f"go-{time.monotonic_ns()}"
    code = _CHILD.replace("{body}", textwrap.dedent(body))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(go), uri, *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for argv in argvs
    ]
    try:
        for p in procs:  # every one imported and opened the book
            assert p.stdout is not None
            line = p.stdout.readline()
            assert line.strip() == "ready", (line, p.stderr.read() if p.stderr else "")
        go.touch()
        done = []
        for p in procs:
            out, err = p.communicate(timeout=120)
            done.append(Finished(p.returncode, out, err))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for f in done:
        assert "Traceback" not in f.err, f
    return done


@pytest.fixture
def book(opened: OpenedBook) -> Book:
    """The empty book on each home, as ``Book`` (its artifacts where the home keeps them)."""
    from trialbook.artifacts.local import BlobStore

    blobs = BlobStore(opened.blob_dir) if opened.blob_dir is not None else None
    return Book(opened.store, blobs, cache_dir=opened.cache_dir)


# --------------------------------------------------------------------------- decisions
# what `trialbook decide CANDIDATE --baseline v1_base --json` does, on the book opened before
DECIDE = """
    view = trialbook.services.decisions.decide(book, args[1], "v1_base", project=args[0])
    print(json.dumps(view))
"""
DECIDE_CLI = 'cli("decide", args[1], "--baseline", "v1_base", "--project", args[0], "--json")'
BASE: dict[str, Any] = {"val": 0.50, "per_class": {"pallet": 0.40}, "test": 0.49, "latency": 4.0}
CAND: dict[str, Any] = {"val": 0.56, "per_class": {"pallet": 0.52}, "test": 0.55, "latency": 4.5}


def test_decisions_made_at_once_reveal_the_test_numbers_once(
    book: Book, book_uri: str, tmp_path: Path
) -> None:
    for r in range(ROUNDS):  # each round its own project and test split
        project = f"pallets{r}"
        digests = {**DIGESTS, "test": f"{r}" * 64}
        set_protocol(book, project, test_budget=1)
        add_run(book, "v1_base", project=project, curve=[0.3, 0.5], digests=digests, **BASE)
        for w in range(WORKERS):  # one candidate each: each its own evidence
            add_run(book, f"v2_cand{w}", project=project, curve=[0.3, 0.56], digests=digests, **CAND)
        done = race(
            tmp_path,
            book_uri,
            DECIDE if r < ROUNDS - 1 else DECIDE_CLI,  # the last round through the command line
            [[project, f"v2_cand{w}"] for w in range(WORKERS)],
        )
        assert all(f.code == 0 for f in done), done
        views = [f.json() for f in done]
        assert sorted(v["revealed"] for v in views) == [False] * (WORKERS - 1) + [True], views
        for v in views:
            assert v["test_reveals_used"] == 1 and v["burned"] is True
            if not v["revealed"]:
                test_gate = next(g for g in v["gates"] if g["gate"] == "test_set")
                assert "burned (1 of 1 reveals" in test_gate["detail"]
                assert "0.55" not in json.dumps(v["gates"])  # the sealed number stays sealed
        stored = book.store.list_decisions(project)
        assert len(stored) == WORKERS and sum(d.revealed for d in stored) == 1


def test_the_same_decision_made_at_once_is_stored_once(book: Book, book_uri: str, tmp_path: Path) -> None:
    set_protocol(book, test_budget=5)
    add_run(book, "v1_base", curve=[0.3, 0.5], **BASE)
    add_run(book, "v2_cand", curve=[0.3, 0.56], **CAND)
    done = race(tmp_path, book_uri, DECIDE, [["pallets", "v2_cand"]] * WORKERS)
    assert all(f.code == 0 for f in done), done
    views = [f.json() for f in done]
    assert len({v["id"] for v in views}) == 1, views
    assert sorted(v["recorded_before"] for v in views) == [False] + [True] * (WORKERS - 1)
    assert all(v["revealed"] and v["test_reveals_used"] == 1 for v in views)
    stored = book.store.list_decisions("pallets")
    assert [d.id for d in stored] == [views[0]["id"]]


def test_a_decision_past_the_budget_is_refused_by_the_store(book: Book) -> None:
    from trialbook.core.entities import Decision
    from trialbook.errors import Conflict

    set_protocol(book, test_budget=1)
    run = add_run(book, "v1_base")

    def decision(revealed: bool, digest: str | None = "9" * 64) -> Decision:
        return Decision(
            id=os.urandom(16).hex(),
            project="pallets",
            candidate_id=run.id,
            baseline_id=run.id,
            verdict="MORE_EXPERIMENTS",
            gates=[],
            protocol={},
            test_split_digest=digest,
            revealed=revealed,
            who="tester",
            at=time.time(),
        )

    book.store.add_decision(decision(True), reveal_budget=1)
    with pytest.raises(Conflict, match="burned: 1 of 1 reveals"):
        book.store.add_decision(decision(True), reveal_budget=1)
    book.store.add_decision(decision(False), reveal_budget=1)  # revealing nothing is not counted
    book.store.add_decision(decision(True), reveal_budget=2)
    book.store.add_decision(decision(True, None), reveal_budget=1)  # an unknown split: its own count
    assert sum(d.revealed for d in book.store.list_decisions()) == 3


# --------------------------------------------------------------------------- get-or-create
def test_the_first_runs_of_a_new_project_start_together(book: Book, book_uri: str, tmp_path: Path) -> None:
    body = """
        project, i = args[0], int(args[1])
        with book.start(project, f"v{i}_worker", allow_unpinned=True) as run:
            run.log({"metrics/mAP50-95(B)": 0.5}, epoch=0)
        print(run.id)
    """
    for r in range(ROUNDS):
        done = race(tmp_path, book_uri, body, [[f"fresh{r}", str(i)] for i in range(WORKERS)])
        assert all(f.code == 0 for f in done), done
        runs = book.store.list_runs(f"fresh{r}")
        assert sorted(r.name for r in runs) == sorted(f"v{i}_worker" for i in range(WORKERS))
        assert all(r.status == "finished" for r in runs)
    assert [p.name for p in book.store.list_projects()] == [f"fresh{r}" for r in range(ROUNDS)]


def _datasets(tmp_path: Path, seeds: Sequence[int]) -> list[Path]:
    from trialbook.demo.story import write_dataset

    return [write_dataset(tmp_path / f"data{s}", {"train": 2, "val": 1, "test": 1}, seed=s) for s in seeds]


TAG = 'cli("data", "tag", "pallets", args[0], "--tag", "v1", "--json")'


def test_tagging_the_same_content_at_once_all_succeed(book: Book, book_uri: str, tmp_path: Path) -> None:
    (data,) = _datasets(tmp_path, [1])
    done = race(tmp_path, book_uri, TAG, [[str(data)]] * WORKERS)
    assert all(f.code == 0 for f in done), done
    views = [f.json() for f in done]
    assert len({v["digest"] for v in views}) == 1
    assert [t.tag for t in book.store.list_tags("pallets")] == ["v1"]
    assert len(book.store.list_dataset_versions("pallets")) == 1


def test_the_store_says_which_of_the_same_tags_at_once_bound_it(
    book: Book, book_uri: str, tmp_path: Path
) -> None:
    body = """
        from trialbook.core.entities import DatasetVersion
        version = DatasetVersion(digest="7" * 64, name="pallets", created_at=time.time(),
                                 class_names=["pallet"], splits={})
        tag, created = book.store.tag_version(version, "v1")
        print(json.dumps({"created": created, "digest": tag.digest}))
    """
    done = race(tmp_path, book_uri, body, [[]] * WORKERS)
    assert all(f.code == 0 for f in done), done
    assert sorted(f.json()["created"] for f in done) == [False] * (WORKERS - 1) + [True]
    assert {f.json()["digest"] for f in done} == {"7" * 64}


def test_the_store_binds_one_tag_to_one_version_from_several_processes_at_once(
    book: Book, book_uri: str, tmp_path: Path
) -> None:
    body = """
        from trialbook.core.entities import DatasetVersion
        version = DatasetVersion(digest=args[0] * 64, name="pallets", created_at=time.time(),
                                 class_names=["pallet"], splits={})
        try:
            book.store.add_tagged_version(version, args[1])
        except trialbook.Conflict as exc:
            print(exc)
        else:
            print("bound")
    """
    for r in range(ROUNDS):
        tag = f"v{r}"
        done = race(tmp_path, book_uri, body, [["7", tag]] * WORKERS + [["8", tag]] * WORKERS)
        assert all(f.code == 0 for f in done), done
        bound = book.store.get_tag("pallets", tag).digest
        same, other = done[:WORKERS], done[WORKERS:]
        winners, losers = (same, other) if bound == "7" * 64 else (other, same)
        assert all(f.out.strip() == "bound" for f in winners), done
        assert all("already points to version" in f.out and bound in f.out for f in losers), done
    assert len(book.store.list_tags("pallets")) == ROUNDS


def test_one_tag_for_other_content_at_once_one_wins(book: Book, book_uri: str, tmp_path: Path) -> None:
    folders = _datasets(tmp_path, range(WORKERS))
    done = race(tmp_path, book_uri, TAG, [[str(d)] for d in folders])
    won = [f for f in done if f.code == 0]
    lost = [f for f in done if f.code != 0]
    assert len(won) == 1 and len(lost) == WORKERS - 1, done
    bound = book.store.get_tag("pallets", "v1").digest
    assert won[0].json()["digest"] == bound
    for f in lost:
        lines = f.err.strip().splitlines()
        assert len(lines) == 1 and "tags never move" in lines[0].lower() and bound[:12] in lines[0], f
    assert [v.digest for v in book.store.list_dataset_versions("pallets")] == [bound]


def test_a_runs_first_point_of_a_key_and_first_note_from_several_processes(
    book: Book, book_uri: str, tmp_path: Path
) -> None:
    run = add_run(book, "v1_shared", status="running")
    body = """
        i = int(args[1])
        book.store.log_batch(args[0], {"custom/new_key": {i: float(i)}})
        book.store.set_note(args[0], {"text": f"writer {i}"}, who=f"w{i}")
    """
    done = race(tmp_path, book_uri, body, [[run.id, str(i)] for i in range(WORKERS)])
    assert all(f.code == 0 for f in done), done
    history = book.store.get_all_history(run.id)["custom/new_key"]
    assert history == [(i, float(i)) for i in range(WORKERS)]
    summary = book.store.get_summaries([run.id], ["custom/new_key"])[run.id]["custom/new_key"]
    assert summary.count == WORKERS
    versions = [n.version for n in book.store.note_history(run.id)]
    assert versions == list(range(1, WORKERS + 1))


def test_protocol_changes_made_at_once_are_all_kept(book: Book, book_uri: str, tmp_path: Path) -> None:
    book.store.ensure_project("pallets")
    changes: list[dict[str, Any]] = [
        {"noise": 0.01},
        {"class_floor": 0.8},
        {"test_budget": 3},
        {"latency_budget_ms": 9.0},
        {"device": "orin"},
        {"convergence_target": 0.4},
    ]
    body = """
        book.store.update_protocol("pallets", json.loads(args[0]), reason="race", who="w")
    """
    done = race(tmp_path, book_uri, body, [[json.dumps(c)] for c in changes])
    assert all(f.code == 0 for f in done), done
    protocol = book.store.get_project("pallets").protocol
    for change in changes:
        for field, value in change.items():
            assert getattr(protocol, field) == value
    assert len(book.store.protocol_history("pallets")) == len(changes)


@pytest.mark.postgres
def test_a_new_postgres_database_opened_by_several_processes_at_once(
    tmp_path: Path, pg_database: str
) -> None:
    import uuid

    import sqlalchemy as sa

    from trialbook.store.registry import sql_url

    admin = sa.create_engine(sql_url(pg_database), isolation_level="AUTOCOMMIT")
    name = f"trialbook_race_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    fresh = pg_database.rsplit("/", 1)[0] + "/" + name
    body = """
        new = Book.open(args[0])
        new.start("fresh", f"v{args[1]}_worker", allow_unpinned=True).finish()
    """
    try:
        done = race(tmp_path, "-", body, [[fresh, str(i)] for i in range(WORKERS)])
        assert all(f.code == 0 for f in done), done
        opened = Book.open(fresh)
        try:
            assert len(opened.store.list_runs("fresh")) == WORKERS
        finally:
            opened.close()
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
