"""Accounts on the team server, end to end over HTTP: the real ``trialbook server`` on a
PostgreSQL database of this test's own (``trialbook db upgrade``, as a team makes it), its
users, roles and tokens made with ``trialbook admin``, and every client a separate process
of this venv with a clean environment (``TRIALBOOK_URI`` the server, ``TRIALBOOK_TOKEN``
the user's).

The story: the admin makes projects p and q and sets p's protocol; the editor trains two
runs with the Python API (epochs, a val evaluation, a note), decides between them with
``trialbook decide``; the admin ships one. Everything recorded names the user the token
belongs to, whatever the client's own login name says (``TRIALBOOK_USER`` is set to
someone else in every client); the audit (``trialbook audit --json`` as the admin, over
HTTP, and ``--db`` on the database) shows it. A viewer of p reads p but cannot start a run
there (refused at ``tb.start``, before any training, naming the role needed; nothing
reaches the server), and cannot read q."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from support.accounts import admin_token, auth, token_of, user_token
from support.env import without_trialbook
from support.extras import venv_command
from support.seaweed import free_ports, stop_process
from trialbook.api import Book
from trialbook.services.accounts import TOKEN_CACHE_S
from trialbook.store.registry import sql_url

pytestmark = pytest.mark.postgres

START_TIMEOUT_S = 60.0
CLAIMED = "laptop-login"  # what every client's own TRIALBOOK_USER says: never what is recorded

TRAIN = textwrap.dedent(
    """
    import sys
    import trialbook as tb

    name, parent, base = sys.argv[1], sys.argv[2] or None, float(sys.argv[3])
    with tb.start(project="p", name=name, parent=parent, allow_unpinned=True,
                  config={"lr0": base / 10, "epochs": 5}) as run:
        for epoch in range(5):
            run.log({"metrics/mAP50-95(B)": base + epoch * 0.02, "train/box_loss": 1.0 - epoch * 0.1},
                    epoch=epoch)
        run.log_eval(split="val", metrics={"metrics/mAP50-95(B)": base + 0.1},
                     per_class_ap={"pallet": base, "forklift": base})
        run.note(hypothesis="a higher lr converges sooner", change=f"lr0 {base / 10}",
                 result="see the curve", next="try a longer schedule")
    print(run.id)
    """
)


@dataclass
class Team:
    url: str
    db: str
    home: Path
    tokens: dict[str, str]  # user -> token
    process: subprocess.Popen[bytes]

    def env(self, user: str | None) -> dict[str, str]:
        """A client's environment: this server, ``user``'s token (none for None), its own
        outbox and caches, and a login name that is not the user's."""
        env = without_trialbook(aws=True)
        folder = self.home / f"client-{user or 'anonymous'}"
        env.update(
            TRIALBOOK_URI=self.url,
            TRIALBOOK_USER=CLAIMED,
            TRIALBOOK_OUTBOX=str(folder / "outbox.db"),
            TRIALBOOK_SPOOL=str(folder / "spool"),
            XDG_CACHE_HOME=str(folder / "cache"),
            XDG_CONFIG_HOME=str(folder / "config"),
        )
        if user is not None:
            env["TRIALBOOK_TOKEN"] = self.tokens[user]
        return env

    def cli(self, user: str | None, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [venv_command("trialbook"), *args],
            env=self.env(user),
            capture_output=True,
            text=True,
            timeout=120,
        )

    def ok(self, user: str | None, *args: str) -> str:
        done = self.cli(user, *args)
        assert done.returncode == 0, f"trialbook {' '.join(args)} as {user}: {done.stderr}"
        return done.stdout

    def python(self, user: str, code: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code, *args],
            env=self.env(user),
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.home,
        )


def _upgrade(db: str, home: Path) -> None:
    env = without_trialbook()
    done = subprocess.run(
        [venv_command("trialbook"), "db", "upgrade", "--uri", db],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=home,
    )
    assert done.returncode == 0, done.stderr


def _serve(db: str, home: Path) -> tuple[str, subprocess.Popen[bytes]]:
    (port,) = free_ports(1)
    url = f"http://127.0.0.1:{port}"
    env = without_trialbook(aws=True)
    env["XDG_CACHE_HOME"] = str(home / "server-cache")
    args = [venv_command("trialbook"), "server", "--db", db, "--artifacts", str(home / "artifacts")]
    args += ["--port", str(port), "--workers", "2"]
    log = open(home / "server.log", "wb")  # noqa: SIM115 (the server's, while it runs)
    process = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    log.close()
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"trialbook server exited: {(home / 'server.log').read_text()[-2000:]}")
        try:
            httpx.get(url + "/api/v1/projects", timeout=2)  # any answer: a worker is up
            return url, process
        except httpx.TransportError:
            time.sleep(0.05)
    stop_process(process)
    raise RuntimeError(f"trialbook server did not answer at {url} in {START_TIMEOUT_S:g} s")


@pytest.fixture
def team(fresh_pg_database: str, tmp_path: Path) -> Iterator[Team]:
    """The server over a new database: the admin ``root`` (made before it starts),
    projects p and q (made by root over HTTP), ``edith`` editor and ``vic`` viewer of p."""
    db = fresh_pg_database
    _upgrade(db, tmp_path)
    tokens = {"root": admin_token(db, name="root")}
    url, process = _serve(db, tmp_path)
    team = Team(url, db, tmp_path, tokens, process)
    try:
        team.ok("root", "project", "create", "p")
        team.ok("root", "project", "create", "q")
        tokens["edith"] = user_token(db, "edith", {"p": "editor"})
        tokens["vic"] = user_token(db, "vic", {"p": "viewer"})
        yield team
    finally:
        stop_process(process)


def _who_of_notes(db: str, run_ids: list[str]) -> set[str]:
    engine = sa.create_engine(sql_url(db))
    try:
        with engine.connect() as conn:
            query = sa.text("SELECT who FROM notes WHERE run_id IN :ids")
            rows = conn.execute(query.bindparams(sa.bindparam("ids", expanding=True)), {"ids": run_ids})
            return {r[0] for r in rows}
    finally:
        engine.dispose()


def _server_runs(db: str, project: str) -> dict[str, Any]:
    with Book.open(db) as book:
        return {r.name: r for r in book.store.list_runs(project)}


def test_everything_recorded_names_the_user_of_the_token(team: Team) -> None:
    assert "no accounts yet" not in (team.home / "server.log").read_text()
    # anonymous: refused, saying how to sign in
    anonymous = team.cli(None, "runs", "--project", "p")
    assert anonymous.returncode == 1 and "needs a token" in anonymous.stderr
    assert httpx.get(team.url + "/api/v1/projects").status_code == 401

    team.ok("root", "project", "set", "p", "--noise", "0.01", "--reason", "seed spread of 3 runs")
    runs = {}
    for name, parent, base in (("v1_baseline", "", "0.3"), ("v2_lr_higher", "v1_baseline", "0.4")):
        trained = team.python("edith", TRAIN, name, parent, base)
        assert trained.returncode == 0, trained.stderr
        assert "refused" not in trained.stderr and "not uploaded" not in trained.stderr, trained.stderr
        runs[name] = trained.stdout.strip().splitlines()[-1]
    stored = _server_runs(team.db, "p")
    assert set(stored) == {"v1_baseline", "v2_lr_higher"}
    assert all(r.status == "finished" for r in stored.values())

    decided = json.loads(
        team.ok("edith", "decide", "v2_lr_higher", "--baseline", "v1_baseline", "--project", "p", "--json")
    )
    assert decided["candidate"] == "v2_lr_higher" and decided["verdict"] in ("WIN", "MORE_EXPERIMENTS")
    listed = json.loads(team.ok("edith", "decisions", "--project", "p", "--json"))["decisions"]
    assert [d["who"] for d in listed] == ["edith"]
    team.ok("root", "ship", "v2_lr_higher", "--project", "p", "--force", "--reason", "the demo needs it")

    events = json.loads(team.ok("root", "audit", "--json"))["events"]
    by_action: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        by_action.setdefault(e["action"], []).append(e)
    assert [(e["who"], e["project"]) for e in by_action["decide"]] == [("edith", "p")]
    assert "v2_lr_higher vs v1_baseline" in by_action["decide"][0]["subject"]
    assert [(e["who"], e["subject"]) for e in by_action["protocol"]] == [("root", "noise")]
    assert [e["who"] for e in by_action["ship"]] == ["root"]
    grants = {(e["project"], e["detail"]) for e in by_action["grant"]}
    assert grants >= {("p", "editor"), ("p", "viewer")}
    assert all(e["who"] not in (CLAIMED, "unknown") for e in events)
    # the operator's view, on the database itself: the same events
    direct = json.loads(team.ok(None, "audit", "--db", team.db, "--json"))["events"]
    assert [(e["action"], e["who"]) for e in direct] == [(e["action"], e["who"]) for e in events]
    # the notes, written by the editor's runs
    assert _who_of_notes(team.db, list(runs.values())) == {"edith"}
    # an editor is no admin: the audit of p is refused, naming the role needed
    refused = team.cli("edith", "audit", "--project", "p")
    assert refused.returncode == 1 and "admin" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


def test_a_viewer_reads_but_cannot_start_a_run(team: Team) -> None:
    trained = team.python("edith", TRAIN, "v1_baseline", "", "0.3")
    assert trained.returncode == 0, trained.stderr

    # reading p works
    seen = json.loads(team.ok("vic", "runs", "--project", "p", "--json"))
    assert [r["name"] for r in seen["runs"]] == ["v1_baseline"]
    assert (
        json.loads(team.ok("vic", "show", "v1_baseline", "--project", "p", "--json"))["name"] == "v1_baseline"
    )
    # reading q (no role there) is refused, one line
    other = team.cli("vic", "runs", "--project", "q", "--json")
    assert other.returncode == 1 and "q" in other.stderr, other.stderr
    assert "Traceback" not in other.stderr and len(other.stderr.strip().splitlines()) == 1

    # starting a run in p: refused at tb.start, before the loop; nothing on the server
    start = textwrap.dedent(
        """
        import os
        import trialbook as tb
        from trialbook.errors import Forbidden
        try:
            run = tb.start(project="p", name="v2_by_a_viewer", allow_unpinned=True)
        except Forbidden as exc:
            print("refused:", exc)
        else:
            print("started")  # the training loop would run here
            run.log({"metrics/mAP50-95(B)": 0.9}, epoch=0)
            run.finish()
        from trialbook.outbox import Outbox
        outbox = Outbox()
        print("waiting:", outbox.pending(os.environ["TRIALBOOK_URI"]) if outbox.exists() else 0)
        """
    )
    done = team.python("vic", start)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "refused:" in out and "started" not in out, out
    assert "vic is viewer of project 'p'" in out and "needs editor" in out, out
    assert "waiting: 0" in out
    assert "v2_by_a_viewer" not in _server_runs(team.db, "p")
    # and the command line's run writes (a note) are refused the same way
    note = team.cli("vic", "note", "v1_baseline", "--project", "p", "--result", "a viewer's words")
    assert note.returncode == 1 and "needs editor" in note.stderr, note.stderr

    # a token revoked: refused from then on, saying what to do
    (token,) = json.loads(
        subprocess.run(
            [venv_command("trialbook"), "admin", "token", "list", "vic", "--db", team.db, "--json"],
            capture_output=True,
            text=True,
            timeout=60,
            env=without_trialbook(),
        ).stdout
    )["tokens"]
    revoked = subprocess.run(
        [venv_command("trialbook"), "admin", "token", "revoke", token["id"], "--db", team.db],
        capture_output=True,
        text=True,
        timeout=60,
        env=without_trialbook(),
    )
    assert revoked.returncode == 0, revoked.stderr
    past_the_token_cache()
    after = team.cli("vic", "runs", "--project", "p")
    assert after.returncode == 1 and "refused the token" in after.stderr
    assert f"trialbook login {team.url}" in after.stderr and team.tokens["vic"] not in after.stderr
    assert httpx.get(team.url + "/api/v1/projects", headers=auth(team.tokens["vic"])).status_code == 401


MID_RUN = textwrap.dedent(
    """
    import json, os, sys, warnings
    import trialbook as tb
    from trialbook.outbox import Outbox, UploadWarning

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        run = tb.start(project="p", name="v3_role_taken", allow_unpinned=True)
        for epoch in range(3):
            run.log({"metrics/mAP50-95(B)": 0.5 + epoch / 100}, epoch=epoch)
        run.flush()
        assert run.book.uploader().drain(run.id, 60) == 0
        print("uploaded", flush=True)
        sys.stdin.readline()  # the role is taken away meanwhile
        for epoch in range(3, 6):
            run.log({"metrics/mAP50-95(B)": 0.5 + epoch / 100}, epoch=epoch)
        run.finish()
        run.book.close()
    outbox = Outbox()
    print(json.dumps({
        "warnings": [str(w.message) for w in seen if issubclass(w.category, UploadWarning)],
        "refused": [r._asdict() for r in outbox.refused(os.environ["TRIALBOOK_URI"])],
        "pending": outbox.pending(os.environ["TRIALBOOK_URI"]),
    }))
    """
)


def _mid_run(team: Team, name: str) -> subprocess.Popen[str]:
    """The editor's training of ``MID_RUN`` (its run named ``name``), started in a process
    of its own that the test steers through its stdin and reads through its stdout."""
    return subprocess.Popen(
        [sys.executable, "-c", MID_RUN.replace("v3_role_taken", name)],
        env=team.env("edith"),
        cwd=team.home,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def past_the_token_cache() -> None:
    """Wait out the server's token cache: a revocation or a changed role takes effect
    within ``TOKEN_CACHE_S`` seconds (``services.accounts.TokenCache``), by design."""
    time.sleep(TOKEN_CACHE_S + 0.25)


def test_writes_refused_mid_run_stay_in_the_outbox_until_the_role_is_back(team: Team) -> None:
    """The editor's role taken away while a run logs: what it logs from then on is
    refused (403), kept in the outbox with a warning saying why; given back, `trialbook
    sync` sends it all, once."""
    process = _mid_run(team, "v3_role_taken")
    try:
        assert process.stdout is not None and process.stdin is not None
        assert process.stdout.readline().strip() == "uploaded", (
            process.stderr.read() if process.stderr else ""
        )
        admin = without_trialbook()
        taken = subprocess.run(
            [venv_command("trialbook"), "admin", "revoke", "edith", "p", "--db", team.db],
            env=admin,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert taken.returncode == 0, taken.stderr
        past_the_token_cache()
        out, err = process.communicate("go\n", timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    kinds = {r["kind"] for r in report["refused"]}
    assert kinds == {"points", "status"}, report
    assert all("Forbidden: edith is not a member of project 'p'" in r["reason"] for r in report["refused"])
    (points,) = [r for r in report["refused"] if r["kind"] == "points"]
    assert points["item_id"] == "epochs 3-5" and points["reason"].startswith("3 points: ")
    said = [w for w in report["warnings"] if "refused a write" in w]
    assert len(said) == 2, report["warnings"]  # one for the points (however many rounds), one for the ending
    assert all("needs editor" in w and "kept in the outbox" in w and "role is given back" in w for w in said)
    run = _server_runs(team.db, "p")["v3_role_taken"]
    with Book.open(team.db) as book:
        assert [e for e, _ in book.store.get_all_history(run.id)["metrics/mAP50-95(B)"]] == [0, 1, 2]
    assert run.status == "running"

    # refused while the role is away: sync says so and keeps it
    still = team.cli("edith", "sync", "--json")
    assert still.returncode == 1 and json.loads(still.stdout)["refused"]
    subprocess.run(
        [venv_command("trialbook"), "admin", "grant", "edith", "p", "editor", "--db", team.db],
        env=without_trialbook(),
        check=True,
        capture_output=True,
        timeout=60,
    )
    past_the_token_cache()
    synced = json.loads(team.ok("edith", "sync", "--json"))
    assert (synced["points"], synced["endings"], synced["refused"], synced["left"]) == (3, 1, [], 0)
    with Book.open(team.db) as book:
        assert [e for e, _ in book.store.get_all_history(run.id)["metrics/mAP50-95(B)"]] == list(range(6))
        assert book.store.get_run_by_id(run.id).status == "finished"


def test_a_token_revoked_mid_run_keeps_everything_until_a_new_one(team: Team) -> None:
    """The editor's token revoked while a run logs: every upload is refused (401), nothing
    is marked refused, everything waits in the outbox, and the uploader says once why and
    what to do; `trialbook sync` with a new token sends it all."""
    process = _mid_run(team, "v3_token_revoked")
    admin = without_trialbook()
    try:
        assert process.stdout is not None and process.stdin is not None
        assert process.stdout.readline().strip() == "uploaded"
        listed = subprocess.run(
            [venv_command("trialbook"), "admin", "token", "list", "edith", "--db", team.db, "--json"],
            env=admin,
            capture_output=True,
            text=True,
            timeout=60,
        )
        (token,) = json.loads(listed.stdout)["tokens"]
        subprocess.run(
            [venv_command("trialbook"), "admin", "token", "revoke", token["id"], "--db", team.db],
            env=admin,
            check=True,
            capture_output=True,
            timeout=60,
        )
        past_the_token_cache()
        out, err = process.communicate("go\n", timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["refused"] == [] and report["pending"] == 4, report  # 3 points and the ending
    said = [w for w in report["warnings"] if "are refused" in w]
    assert len(said) == 1, report["warnings"]
    assert "refused the token from $TRIALBOOK_TOKEN (unknown, expired or revoked)" in said[0]
    assert "nothing is lost" in said[0] and team.tokens["edith"] not in " ".join(report["warnings"])

    team.tokens["edith"] = token_of(
        subprocess.run(
            [venv_command("trialbook"), "admin", "token", "create", "edith", "--db", team.db],
            env=admin,
            capture_output=True,
            text=True,
            timeout=60,
        )
    )
    synced = json.loads(team.ok("edith", "sync", "--json"))
    assert (synced["points"], synced["endings"], synced["refused"], synced["left"]) == (3, 1, [], 0)
    run = _server_runs(team.db, "p")["v3_token_revoked"]
    with Book.open(team.db) as book:
        assert [e for e, _ in book.store.get_all_history(run.id)["metrics/mAP50-95(B)"]] == list(range(6))
    assert run.status == "finished"
