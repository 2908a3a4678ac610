"""``trialbook login URL`` and ``trialbook logout URL``: a token kept for a team server.

``login`` asks for the token (not echoed; read from stdin when that is not a terminal, or
with ``--token-stdin``; never an argument, which other users could read in the process
list), checks it against the server with a request that needs one, and only then keeps it
in ``credentials.json`` of trialbook's folder of the user's config, mode 0600
(``settings.store_token``), keyed by the server (``scheme://host:port``). Remote books of
that server then send it (``settings.token``) unless ``$TRIALBOOK_TOKEN`` is set."""

from __future__ import annotations

import sys
from typing import Any

import click

from trialbook.cli.options import handle_errors

CHECK_PATH = "/api/v1/projects"  # a read every user may make, but only with a token
WHOAMI_PATH = "/api/v1/whoami"
TIMEOUT_S = 15.0


def _server(url: str) -> str:
    from trialbook import settings
    from trialbook.errors import InvalidInput

    try:
        return settings.server_of(url)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


@click.command()
@click.argument("url")
@click.option(
    "--token-stdin", is_flag=True, help="Read the token from the first line of stdin instead of asking."
)
@handle_errors
def login(url: str, token_stdin: bool) -> None:
    """Store a token for the team server at URL, checked with the server first (the file is
    readable by you only)."""
    from trialbook import settings

    server = _server(url)
    raw = _read_token(server, from_stdin=token_stdin or not sys.stdin.isatty())
    base = url.strip().rstrip("/")
    _check(base, raw)
    path = settings.store_token(server, raw)
    me = _whoami(base, raw)
    if me:
        click.echo(f"signed in to {server} as {me}; the token is stored in {path}")
    else:
        click.echo(f"token stored for {server} in {path}")


@click.command()
@click.argument("url")
@handle_errors
def logout(url: str) -> None:
    """Forget the token stored for the team server at URL."""
    from trialbook import settings

    server = _server(url)
    if settings.forget_token(server):
        click.echo(f"token of {server} removed from {settings.credentials_path()}")
    else:
        click.echo(f"no token stored for {server}")


def _read_token(server: str, *, from_stdin: bool) -> str:
    from trialbook.errors import InvalidInput

    if from_stdin:
        value = sys.stdin.readline().strip()
    else:
        value = str(click.prompt(f"Token for {server}", hide_input=True, err=True)).strip()
    if not value:
        raise InvalidInput("no token given: paste the one `trialbook admin token create NAME` printed")
    return value


def _get(base: str, path: str, raw: str) -> Any:
    """``GET base+path`` with the token (an ``httpx.Response``); ``StorageError`` when the
    server cannot be reached."""
    import httpx

    from trialbook import _http
    from trialbook.errors import StorageError

    try:
        with _http.client(timeout=TIMEOUT_S) as client:
            return client.get(base + path, headers={"Authorization": f"Bearer {raw}"})
    except httpx.HTTPError as exc:
        raise StorageError(
            f"cannot reach the trialbook server at {base}: {exc}; nothing was stored"
        ) from None


def _check(base: str, raw: str) -> None:
    """Nothing when the server takes the token; else the error, and nothing is stored."""
    from trialbook import _http
    from trialbook.errors import StorageError, Unauthorized

    got = _get(base, CHECK_PATH, raw)
    if got.status_code == 401:
        raise Unauthorized(f"the server refused this token: {_http.error_detail(got)}; nothing was stored")
    if got.status_code in (200, 403):  # 403: a valid token whose user may not list projects
        return
    raise StorageError(
        f"cannot check the token at {base}: {got.status_code} {_http.error_detail(got)} "
        "(is it a trialbook server?); nothing was stored"
    )


def _whoami(base: str, raw: str) -> str | None:
    """``NAME (p: editor, q: viewer)`` when the server says who the token is; else None."""
    try:
        got = _get(base, WHOAMI_PATH, raw)
        doc = got.json() if got.status_code == 200 else None
    except Exception:  # a server without the route, or gone: the token is stored all the same
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("name"), str):
        return None
    roles = doc.get("roles")
    parts = ["server admin"] if doc.get("server_admin") or doc.get("admin") is True else []
    if isinstance(roles, dict):
        parts += [f"{p}: {r}" for p, r in sorted(roles.items())]
    return f"{doc['name']} ({', '.join(parts)})" if parts else str(doc["name"])


COMMANDS = [login, logout]
