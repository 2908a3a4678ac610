"""``trialbook server``: the team server, the web UI and the JSON API over one database and
one artifact store, in N worker processes (gunicorn forking uvicorn workers,
``server.prefork``) that hold no state of their own (each worker builds its app from
``trialbook.server.team``, configured by environment variables set here).

Every route needs a token or a UI session (``server.auth``); the accounts are made with
``trialbook admin`` on the same database. A database with no user yet is served all the
same (every request is refused), and the command says how to make the first admin."""

from __future__ import annotations

import os

import click

from trialbook.cli.options import handle_errors
from trialbook.cli.ui import DEFAULT_PORT

NO_ACCOUNTS = (
    "no accounts yet: every request will be refused (401). Make the first admin: "
    "trialbook admin user add NAME --admin --db {db}, then trialbook admin token create NAME --db {db}"
)
NO_AUTH_GONE = (
    "--no-auth is gone: every route of the team server needs a token. Make the first admin "
    "(trialbook admin user add NAME --admin --db DB) and their token (trialbook admin token create NAME "
    "--db DB), and give clients TRIALBOOK_TOKEN or `trialbook login URL`"
)


@click.command()
@click.option(
    "--db",
    required=True,
    metavar="URI",
    help="The database: postgresql://user@host:5432/db, or an SQLite book (a book folder or book.db).",
)
@click.option(
    "--artifacts",
    required=True,
    metavar="URI",
    help="Where artifact files go: a folder, or s3://BUCKET/PREFIX (endpoint and credentials from "
    "AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: all).")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int, help="Port to listen on.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1), help="Worker processes.")
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    metavar="NAME",
    help="Also answer requests for this host name (repeatable): the name clients reach the "
    "server by. Requests for any other name get 400 (against DNS rebinding).",
)
@click.option("--no-auth", "no_auth", is_flag=True, hidden=True)  # gone: says so (NO_AUTH_GONE)
@handle_errors
def server(
    db: str, artifacts: str, host: str, port: int, workers: int, allow_hosts: tuple[str, ...], no_auth: bool
) -> None:
    """Serve the team server: the web UI and the read/write JSON API over one database
    (PostgreSQL or SQLite) and one artifact store (a folder or S3), in WORKERS processes.
    The schema is never migrated here: run `trialbook db upgrade --uri DB` first."""
    if no_auth:
        raise click.ClickException(NO_AUTH_GONE)
    try:
        from trialbook.server.hosts import LOOPBACK_HOSTS
        from trialbook.server.prefork import serve
        from trialbook.server.team import ARTIFACTS_VAR, DB_VAR, HOSTS_VAR
    except ImportError as exc:
        raise click.ClickException(
            f"the server needs the 'ui' extra ({exc.name} is missing): pip install 'trialbook[ui]'"
        ) from None
    from trialbook.services.team import check_artifacts, check_schema, database_uri

    uri = database_uri(db)
    check_artifacts(artifacts)
    check_schema(uri)  # one clear line, before any worker starts
    hosts = list(dict.fromkeys([*LOOPBACK_HOSTS, host, *allow_hosts]))
    os.environ[DB_VAR] = uri
    os.environ[ARTIFACTS_VAR] = artifacts
    os.environ[HOSTS_VAR] = ",".join(hosts)
    shown = f"[{host}]" if ":" in host else host
    where = f"http://{shown}:{port}/"
    if not _has_users(uri):
        click.secho(NO_ACCOUNTS.format(db=_masked(uri)), err=True, fg="yellow", bold=True)
    click.echo(
        f"trialbook server: {_masked(uri)}, artifacts in {artifacts}, {workers} workers at {where}", err=True
    )
    serve(host, port, workers)


def _has_users(uri: str) -> bool:
    """Whether the database has a user yet (True when it keeps no accounts to count)."""
    from trialbook.errors import InvalidInput
    from trialbook.services.accounts import open_accounts

    try:
        with open_accounts(uri) as (accounts, _store):
            return bool(accounts.user_count())
    except InvalidInput:
        return True


def _masked(uri: str) -> str:
    """``uri`` with the password of its user, if it has one, shown as ``***``."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


COMMANDS = [server]
