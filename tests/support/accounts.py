"""Accounts on a team server's database, made as an operator makes them: with the real
``trialbook admin`` command (a subprocess of this venv's ``trialbook``), on the database
the server is (or will be) started on.

``admin_token(db)`` makes the server admin ``admin`` and returns a token of theirs: what
a test needs before any client talks to ``trialbook server`` (every route of which needs a
token). ``user_token(db, name, {project: role})`` makes a user with roles and a token.
``auth(token)`` is the header a client sends.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping

from support.extras import venv_command

ADMIN = "admin"
TIMEOUT_S = 120


def admin_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of an operator's command: ``base`` (default this process's)
    without any ``TRIALBOOK_*`` of it (no book, no token), as ``ops``."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if not k.startswith("TRIALBOOK_")}
    env["TRIALBOOK_USER"] = "ops"
    return env


def trialbook_admin(
    db: str, *args: str, stdin: str | None = None, env: Mapping[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """``trialbook admin ARGS... --db DB``; with ``check``, its exit code must be 0."""
    done = subprocess.run(
        [venv_command("trialbook"), "admin", *args, "--db", db],
        input=stdin,
        env=admin_env(env),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    if check:
        assert done.returncode == 0, f"trialbook admin {' '.join(args)}: {done.stderr}"
    return done


def token_of(done: subprocess.CompletedProcess[str]) -> str:
    """The token ``trialbook admin token create`` printed: its last line of stdout."""
    token = done.stdout.strip().splitlines()[-1]
    assert token.startswith("tb_"), done.stdout
    return token


def add_user(db: str, name: str, *, admin: bool = False, env: Mapping[str, str] | None = None) -> None:
    trialbook_admin(db, "user", "add", name, *(["--admin"] if admin else []), env=env)


def create_token(
    db: str, name: str, *, label: str | None = None, env: Mapping[str, str] | None = None
) -> str:
    """A new token of ``name``, as printed (once) by ``trialbook admin token create``."""
    extra = ["--label", label] if label else []
    return token_of(trialbook_admin(db, "token", "create", name, *extra, env=env))


def grant(db: str, name: str, project: str, role: str, *, env: Mapping[str, str] | None = None) -> None:
    trialbook_admin(db, "grant", name, project, role, env=env)


def admin_token(db: str, *, name: str = ADMIN, env: Mapping[str, str] | None = None) -> str:
    """Make the server admin ``name`` on the database ``db`` (at its schema's head) and
    return a new token of theirs."""
    add_user(db, name, admin=True, env=env)
    return create_token(db, name, label="tests", env=env)


def user_token(
    db: str, name: str, roles: Mapping[str, str] | None = None, *, env: Mapping[str, str] | None = None
) -> str:
    """Make the user ``name`` with ``roles`` (``{project: role}``; the projects must
    exist) and return a new token of theirs."""
    add_user(db, name, env=env)
    for project, role in (roles or {}).items():
        grant(db, name, project, role, env=env)
    return create_token(db, name, env=env)


def auth(token: str) -> dict[str, str]:
    """The header of a request made with ``token``."""
    return {"Authorization": f"Bearer {token}"}
