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
    help="Address to listen on; the default keeps the UI on this machine.",
)
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int, help="Port to listen on.")
@uri_option
@handle_errors
def ui(host: str, port: int, uri: str | None) -> None:
    """Serve the web UI (runs, compare, notes, datasets, decisions) and its JSON API."""
    try:
        import uvicorn

        from trialbook.server.app import create_app
    except ImportError as exc:
        raise click.ClickException(
            f"the web UI needs the 'ui' extra ({exc.name} is missing): pip install 'trialbook[ui]'"
        ) from None
    book = open_book(uri)
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(
            f"warning: serving {book.uri} on {host}, reachable from other machines; the UI has no login",
            err=True,
        )
    click.echo(f"trialbook ui: {book.uri} at http://{host}:{port}/ (Ctrl+C stops)", err=True)
    try:
        uvicorn.run(create_app(book), host=host, port=port, log_level="warning")
    finally:
        book.close()


COMMANDS = [ui]
