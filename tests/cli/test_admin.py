"""``trialbook admin``: users, tokens and roles on a team server's database, on a real
SQLite book and on PostgreSQL (made with ``trialbook db upgrade``, as a team makes its
server's); and ``trialbook audit --db`` reading what they did. In process through
click's runner, and as a subprocess of the venv's ``trialbook`` where what matters is
the process's own stdout and stdin (the token as its last line, a piped password)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from support.accounts import admin_env, token_of
from support.cli import invoke
from support.extras import venv_command
from trialbook.api import Book

PASSWORD = "correct horse battery"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A team server's database at the schema's head, with project ``p``: an SQLite book,
    then a PostgreSQL database of its own."""
    monkeypatch.setenv("TRIALBOOK_USER", "tester")
    for name in ("TRIALBOOK_URI", "TRIALBOOK_SERVER_DB", "TRIALBOOK_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    if request.param == "sqlite":
        uri = str(tmp_path / "server")
        Book.open(uri, create=True).close()
    else:
        uri = str(request.getfixturevalue("fresh_pg_database"))
        upgraded = invoke("db", "upgrade", "--uri", uri)
        assert upgraded.exit_code == 0, upgraded.output
        monkeypatch.setenv("TRIALBOOK_ARTIFACTS", str(tmp_path / "artifacts"))
    made = invoke("project", "create", "p", "--uri", uri)
    assert made.exit_code == 0, made.output
    return uri


def admin(db: str, *args: str, code: int | None = 0, stdin: str | None = None) -> Result:
    from click.testing import CliRunner

    from trialbook.cli.main import cli

    result = CliRunner().invoke(cli, ["admin", *args, "--db", db], input=stdin)
    if code is not None:
        assert result.exit_code == code, (args, result.output, result.exception)
    return result


def admin_json(db: str, *args: str) -> Any:
    return json.loads(admin(db, *args, "--json").stdout)


def one_line_error(result: Result) -> str:
    """The error a command failed with: exit code 1, one line on stderr, no traceback."""
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


# ------------------------------------------------------------------------ users
def test_no_user_until_one_is_made(db: str) -> None:
    assert admin_json(db, "user", "list") == {"users": []}
    assert "no users yet" in admin(db, "user", "list").stdout


def test_the_first_admin_and_a_user(db: str) -> None:
    said = admin(db, "user", "add", "alice", "--admin").stdout
    assert "server admin alice added" in said and "trialbook admin token create alice" in said
    assert "user bob added" in admin(db, "user", "add", "bob").stdout
    users = {u["name"]: u for u in admin_json(db, "user", "list")["users"]}
    assert set(users) == {"alice", "bob"}
    assert (users["alice"]["admin"], users["bob"]["admin"]) == (True, False)
    assert not users["alice"]["has_password"] and users["bob"]["roles"] == {}
    table = admin(db, "user", "list").stdout
    assert "alice" in table and "bob" in table


def test_a_ui_password_from_stdin(db: str) -> None:
    admin(db, "user", "add", "alice", "--admin")
    assert "UI password of alice set" in admin(db, "user", "passwd", "alice", stdin=PASSWORD + "\n").stdout
    (alice,) = admin_json(db, "user", "list")["users"]
    assert alice["has_password"] is True
    short = one_line_error(admin(db, "user", "passwd", "alice", stdin="short\n", code=None))
    assert "at least 12 characters" in short
    assert "no password on stdin" in one_line_error(admin(db, "user", "passwd", "alice", stdin="", code=None))


# ------------------------------------------------------------------------ tokens
def test_a_token_is_shown_once_as_the_last_line_and_never_listed(db: str) -> None:
    admin(db, "user", "add", "alice", "--admin")
    made = admin(db, "token", "create", "alice", "--label", "laptop", "--expires-days", "30").stdout
    lines = made.strip().splitlines()
    token = lines[-1]
    assert token.startswith("tb_") and len(token) == 46 and " " not in token
    human = lines[0]
    assert human.startswith("token ") and "for alice (laptop, expires " in human
    assert "shown once, store it now" in human
    listed = admin_json(db, "token", "list", "alice")
    (one,) = listed["tokens"]
    assert listed["user"] == "alice" and one["id"] in human and one["label"] == "laptop"
    assert one["expires_at"] is not None and one["revoked_at"] is None
    assert set(one) == {"id", "user", "label", "created_at", "expires_at", "last_used_at", "revoked_at"}
    table = admin(db, "token", "list", "alice").stdout
    assert one["id"] in table and "laptop" in table
    assert token not in json.dumps(listed) and token not in table
    forever = admin(db, "token", "create", "alice").stdout.strip().splitlines()
    assert "never expires" in forever[0] and forever[-1] != token


def test_revoke_a_token(db: str) -> None:
    admin(db, "user", "add", "alice", "--admin")
    admin(db, "token", "create", "alice")
    (one,) = admin_json(db, "token", "list", "alice")["tokens"]
    said = admin(db, "token", "revoke", one["id"]).stdout
    assert f"token {one['id']} of alice revoked" in said
    (revoked,) = admin_json(db, "token", "list", "alice")["tokens"]
    assert revoked["revoked_at"] is not None
    admin(db, "token", "revoke", one["id"])  # again: the first time is kept
    (again,) = admin_json(db, "token", "list", "alice")["tokens"]
    assert again["revoked_at"] == revoked["revoked_at"]


# ------------------------------------------------------------------------ roles
def test_grant_replace_and_revoke_a_role(db: str) -> None:
    admin(db, "user", "add", "bob")
    assert admin(db, "grant", "bob", "p", "editor").stdout.strip() == "bob is editor of project p"
    assert admin_json(db, "user", "list")["users"][0]["roles"] == {"p": "editor"}
    assert "(was editor)" in admin(db, "grant", "bob", "p", "viewer").stdout
    assert admin_json(db, "user", "list")["users"][0]["roles"] == {"p": "viewer"}
    assert "bob is no longer viewer of project p" in admin(db, "revoke", "bob", "p").stdout
    assert admin_json(db, "user", "list")["users"][0]["roles"] == {}
    assert "held no role on project p" in admin(db, "revoke", "bob", "p").stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["grant", "ghost", "p", "viewer"], "ghost"),
        (["grant", "bob", "nowhere", "viewer"], "nowhere"),
        (["grant", "bob", "p", "owner"], "unknown role 'owner'"),
        (["revoke", "bob", "nowhere"], "nowhere"),
        (["revoke", "ghost", "p"], "ghost"),
        (["token", "create", "ghost"], "ghost"),
        (["token", "list", "ghost"], "ghost"),
        (["token", "revoke", "0123456789ab"], "0123456789ab"),
        (["token", "create", "bob", "--expires-days", "0"], "--expires-days"),
        (["user", "add", "bob"], "bob"),
        (["user", "add", "no spaces here"], "no spaces here"),
        (["user", "passwd", "ghost"], "ghost"),
    ],
)
def test_errors_are_one_clear_line(db: str, args: list[str], says: str) -> None:
    admin(db, "user", "add", "bob")
    error = one_line_error(admin(db, *args, code=None, stdin=PASSWORD + "\n"))
    assert says in error


def test_an_unreachable_or_new_database_is_one_line(tmp_path: Path) -> None:
    error = one_line_error(admin(str(tmp_path / "nothing-here"), "user", "list", code=None))
    assert "trialbook db upgrade --uri" in error


def test_the_database_from_the_environment(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from trialbook.cli.main import cli

    monkeypatch.setenv("TRIALBOOK_SERVER_DB", db)
    made = CliRunner().invoke(cli, ["admin", "user", "add", "carol"])
    assert made.exit_code == 0, made.output
    assert [u["name"] for u in admin_json(db, "user", "list")["users"]] == ["carol"]


# ------------------------------------------------------------------------ the audit
def test_the_audit_of_the_database_names_who_did_it(db: str) -> None:
    admin(db, "user", "add", "alice", "--admin")
    admin(db, "user", "add", "bob")
    admin(db, "grant", "bob", "p", "editor")
    admin(db, "token", "create", "bob")
    (one,) = admin_json(db, "token", "list", "bob")["tokens"]
    admin(db, "token", "revoke", one["id"])
    admin(db, "revoke", "bob", "p")
    result = invoke("audit", "--db", db, "--json")
    assert result.exit_code == 0, result.output
    events = json.loads(result.stdout)["events"]
    assert all(set(e) == {"at", "who", "action", "project", "subject", "detail"} for e in events)
    assert {e["who"] for e in events} == {"tester (trialbook admin)"}
    actions = [e["action"] for e in events]
    for action in ("grant", "revoke", "token create", "token revoke"):
        assert action in actions, actions
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)
    grant = next(e for e in events if e["action"] == "grant")
    assert grant["project"] == "p" and "bob" in grant["subject"] + grant["detail"]
    only_p = json.loads(invoke("audit", "--db", db, "--project", "p", "--json").stdout)["events"]
    assert only_p and all(e["project"] == "p" for e in only_p)
    table = invoke("audit", "--db", db).stdout
    assert "grant" in table and "tester (trialbook admin)" in table


def test_the_audit_of_an_embedded_book(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIALBOOK_USER", "tester")
    monkeypatch.delenv("TRIALBOOK_URI", raising=False)
    uri = str(tmp_path / "book")
    Book.open(uri, create=True).close()
    changed = invoke("project", "set", "p", "--noise", "0.01", "--reason", "seeds", "--uri", uri)
    assert changed.exit_code == 0, changed.output
    result = invoke("audit", "--uri", uri, "--json")
    assert result.exit_code == 0, result.output
    events = json.loads(result.stdout)["events"]
    assert [(e["action"], e["who"], e["project"]) for e in events if e["subject"] == "noise"] == [
        ("protocol", "tester", "p")
    ]


# ------------------------------------------------------------------------ as a user runs it
def test_as_a_process_the_token_is_the_last_line_and_a_password_is_piped(db: str) -> None:
    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [venv_command("trialbook"), "admin", *args, "--db", db],
            input=stdin,
            env=admin_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert run("user", "add", "alice", "--admin").returncode == 0
    made = run("token", "create", "alice", "--label", "ci")
    assert made.returncode == 0, made.stderr
    token = token_of(made)
    assert made.stdout.endswith(token + "\n") and made.stdout.count(token) == 1
    assert token not in made.stderr
    listed = run("token", "list", "alice")
    assert listed.returncode == 0 and token not in listed.stdout
    piped = run("user", "passwd", "alice", stdin=PASSWORD + "\n")
    assert piped.returncode == 0, piped.stderr
    assert PASSWORD not in piped.stdout + piped.stderr
    wrong = run("grant", "alice", "p", "owner")
    assert wrong.returncode == 1 and "Traceback" not in wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1
