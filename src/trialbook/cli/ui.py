"""``trialbook ui``: serve the web UI and the JSON API over a book (loopback by default)."""

from __future__ import annotations

import click

from trialbook.cli.options import handle_errors, open_book, uri_option

DEFAULT_PORT = 5210


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; the default keeps the UI on this machine. Requests must name "
    "it (or a loopback name) as their host.",
)
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    metavar="NAME",
    help="Also answer requests for this host name (repeatable): the name other machines "
    "reach this one by. Requests for any other name get 400 (against DNS rebinding).",
)
@uri_option
@handle_errors
def ui(host: str, port: int, allow_hosts: tuple[str, ...], uri: str | None) -> None:
    """Serve the web UI (runs, compare, notes, datasets, decisions) and its JSON API."""
    try:
        import uvicorn

        from trialbook.server.app import create_app
        from trialbook.server.hosts import LOOPBACK_HOSTS
    except ImportError as exc:
        raise click.ClickException(
            f"the web UI needs the 'ui' extra ({exc.name} is missing): pip install 'trialbook[ui]'"
        ) from None
    book = open_book(uri)
    if host not in LOOPBACK_HOSTS:
        click.echo(
            f"warning: serving {book.uri} on {host}, reachable from other machines; the UI has no login",
            err=True,
        )
    hosts = list(dict.fromkeys([*LOOPBACK_HOSTS, host, *allow_hosts]))
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"trialbook ui: {book.uri} at http://{shown}:{port}/ (Ctrl+C stops)", err=True)
    try:
        uvicorn.run(create_app(book, allowed_hosts=hosts), host=host, port=port, log_level="warning")
    finally:
        book.close()


COMMANDS = [ui]
