"""``trialbook admin``: the accounts of a team server, on its database directly (``--db``,
or ``$TRIALBOOK_SERVER_DB``): users and their UI passwords, API tokens, roles per
project. Every command goes through ``services.accounts`` and is recorded in the audit as
done by ``ops (trialbook admin)`` (``services.accounts.admin_cli_who``).

There is no default user, password or token: the first admin is made here
(``trialbook admin user add NAME --admin``), then given a token. A token is printed once,
alone on the last line of stdout (``| tail -n 1``); only its hash is kept."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from trialbook import settings
from trialbook.cli.options import F, emit_json, handle_errors, json_option

if TYPE_CHECKING:
    from trialbook.core.entities import ApiToken, User

ROLES_METAVAR = "viewer|editor|admin"


def db_option(f: F) -> F:
    return click.option(
        "--db",
        required=True,
        envvar=settings.SERVER_DB_VAR,
        metavar="URI",
        help="The team server's database: postgresql://user@host:5432/db, or an SQLite book "
        f"(default ${settings.SERVER_DB_VAR}).",
    )(f)


@contextmanager
def _accounts(db: str) -> Iterator[tuple[Any, Any, str]]:
    """``(accounts, store, who)`` of the database ``db``."""
    from trialbook.services.accounts import admin_cli_who, open_accounts

    with open_accounts(db) as (accounts, store):
        yield accounts, store, admin_cli_who()


@click.group()
def admin() -> None:
    """Accounts on the team server's database: users, tokens and roles per project."""


# ------------------------------------------------------------------------ users
@admin.group()
def user() -> None:
    """Users: add one (the first with --admin), set a UI password, list them."""


@user.command("add")
@click.argument("name")
@click.option(
    "--admin",
    "server_admin",
    is_flag=True,
    help="A server admin: manages users and tokens, and is admin of every project.",
)
@db_option
@handle_errors
def user_add(name: str, server_admin: bool, db: str) -> None:
    """Add the user NAME (no password, no token yet)."""
    from trialbook.services.accounts import add_user

    with _accounts(db) as (accounts, _store, who):
        made = add_user(accounts, name, admin=server_admin, who=who)
    kind = "server admin" if made.admin else "user"
    click.echo(
        f"{kind} {made.name} added; give them a token with `trialbook admin token create {made.name}`"
        + ("" if made.admin else f" and a role with `trialbook admin grant {made.name} PROJECT ROLE`")
    )


@user.command("passwd")
@click.argument("name")
@db_option
@handle_errors
def user_passwd(name: str, db: str) -> None:
    """Set NAME's password for signing in to the web UI (asked twice, not echoed; read
    from stdin when it is not a terminal)."""
    from trialbook.services.accounts import set_password

    with _accounts(db) as (accounts, _store, who):
        accounts.get_user(name)  # an unknown user before asking anything
        set_password(accounts, name, _read_password(name), who=who)
    click.echo(f"UI password of {name} set: sign in to the web UI with it")


def _read_password(name: str) -> str:
    if sys.stdin.isatty():
        value: str = click.prompt(
            f"New UI password of {name}", hide_input=True, confirmation_prompt=True, err=True
        )
        return value
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        from trialbook.errors import InvalidInput

        raise InvalidInput("no password on stdin: give it on the first line (or run in a terminal)")
    return line


@user.command("list")
@db_option
@json_option
@handle_errors
def user_list(db: str, as_json: bool) -> None:
    """The users, with their roles."""
    with _accounts(db) as (accounts, _store, _who):
        users = [(u, accounts.roles(u.name)) for u in accounts.list_users()]
    if as_json:
        emit_json({"users": [_user_dict(u, roles) for u, roles in users]})
        return
    if not users:
        click.echo("no users yet: make the first admin with `trialbook admin user add NAME --admin`")
        return
    from rich.table import Table

    from trialbook.cli.output import console, esc, when

    t = Table(title="users", title_justify="left")
    for col in ("user", "server admin", "UI password", "created", "roles"):
        t.add_column(col, no_wrap=col == "user")
    for u, roles in users:
        shown = ", ".join(f"{esc(p)}: {r}" for p, r in sorted(roles.items())) or "-"
        t.add_row(
            esc(u.name),
            "yes" if u.admin else "-",
            "set" if u.has_password else "-",
            when(u.created_at),
            shown,
        )
    console.print(t)


def _user_dict(u: User, roles: dict[str, str]) -> dict[str, Any]:
    return {
        "name": u.name,
        "admin": u.admin,
        "has_password": u.has_password,
        "created_at": u.created_at,
        "roles": dict(sorted(roles.items())),
    }


# ------------------------------------------------------------------------ tokens
@admin.group()
def token() -> None:
    """API tokens: create one (shown once), list them (never the token), revoke one."""


@token.command("create")
@click.argument("name")
@click.option("--label", default=None, help="What the token is for (a machine, a CI job).")
@click.option(
    "--expires-days",
    type=float,
    default=None,
    metavar="N",
    help="Expire the token after N days (default: never; revoke it instead).",
)
@db_option
@handle_errors
def token_create(name: str, label: str | None, expires_days: float | None, db: str) -> None:
    """A new API token of NAME, printed once, alone on the last line."""
    from trialbook.core.format import when
    from trialbook.services.accounts import create_token

    with _accounts(db) as (accounts, _store, who):
        made, raw = create_token(accounts, name, label=label, expires_days=expires_days, who=who)
    about = [made.label] if made.label else []
    about.append(f"expires {when(made.expires_at)}" if made.expires_at is not None else "never expires")
    click.echo(f"token {made.id} for {made.user} ({', '.join(about)}): shown once, store it now")
    click.echo(raw)


@token.command("list")
@click.argument("name")
@db_option
@json_option
@handle_errors
def token_list(name: str, db: str, as_json: bool) -> None:
    """NAME's tokens: id, label, created, expires, last used, revoked (never the token)."""
    from trialbook.services.accounts import list_tokens

    with _accounts(db) as (accounts, _store, _who):
        tokens = list_tokens(accounts, name)
    if as_json:
        emit_json({"user": name, "tokens": [_token_dict(t) for t in tokens]})
        return
    if not tokens:
        click.echo(f"{name} has no tokens: make one with `trialbook admin token create {name}`")
        return
    from rich.table import Table

    from trialbook.cli.output import console, esc, when

    t = Table(title=f"tokens of {esc(name)}", title_justify="left")
    for col in ("id", "label", "created", "expires", "last used", "revoked"):
        t.add_column(col, no_wrap=col == "id")
    for k in tokens:
        revoked = f"[red]{when(k.revoked_at)}[/]" if k.revoked_at is not None else "-"
        expires = when(k.expires_at) if k.expires_at is not None else "never"
        t.add_row(k.id, esc(k.label or "-"), when(k.created_at), expires, when(k.last_used_at), revoked)
    console.print(t)


def _token_dict(t: ApiToken) -> dict[str, Any]:
    return {
        "id": t.id,
        "user": t.user,
        "label": t.label,
        "created_at": t.created_at,
        "expires_at": t.expires_at,
        "last_used_at": t.last_used_at,
        "revoked_at": t.revoked_at,
    }


@token.command("revoke")
@click.argument("token_id", metavar="ID")
@db_option
@handle_errors
def token_revoke(token_id: str, db: str) -> None:
    """Revoke the token ID (as `admin token list` shows it): refused from then on."""
    from trialbook.core.format import when
    from trialbook.services.accounts import revoke_token

    with _accounts(db) as (accounts, _store, who):
        done = revoke_token(accounts, token_id, who=who)
    click.echo(f"token {done.id} of {done.user} revoked ({when(done.revoked_at)})")


# ------------------------------------------------------------------------ roles
@admin.command("grant")
@click.argument("name")
@click.argument("project")
@click.argument("role", metavar=ROLES_METAVAR)
@db_option
@handle_errors
def grant(name: str, project: str, role: str, db: str) -> None:
    """Give NAME a role on PROJECT (viewer, editor or admin), replacing the one held."""
    from trialbook.services.accounts import grant as do_grant

    with _accounts(db) as (accounts, store, who):
        before = accounts.roles(name).get(project)
        done = do_grant(accounts, store, name, project, role, who=who)
    was = f" (was {before})" if before and before != done.role else ""
    click.echo(f"{done.user} is {done.role} of project {done.project}{was}")


@admin.command("revoke")
@click.argument("name")
@click.argument("project")
@db_option
@handle_errors
def revoke(name: str, project: str, db: str) -> None:
    """Take away NAME's role on PROJECT."""
    from trialbook.services.accounts import revoke_grant

    with _accounts(db) as (accounts, store, who):
        store.get_project(project)  # (an unknown project is an error, not "nothing held")
        before = accounts.roles(name).get(project)
        held = revoke_grant(accounts, name, project, who=who)
    if held:
        click.echo(f"{name} is no longer {before or 'a member'} of project {project}")
    else:
        click.echo(f"{name} held no role on project {project}: nothing changed")


COMMANDS = [admin]
