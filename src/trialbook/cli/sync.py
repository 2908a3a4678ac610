"""``trialbook sync``: write the points waiting in the local spool into their book."""

from __future__ import annotations

import click

from trialbook.cli.options import emit_json, handle_errors, json_option, uri_option


@click.command()
@uri_option
@json_option
@handle_errors
def sync(uri: str | None, as_json: bool) -> None:
    """Write the spooled points of this book's runs into it (idempotent).

    Points land in the spool when a run could not write them (the database was locked
    for too long, the disk was full, the server was away). Opening the book does this
    too; refused points (kept in *.rejected.jsonl) are listed, never replayed."""
    from trialbook.api import Book

    book = Book.open(uri, replay=False)
    done = book.replay_spool()
    if as_json:
        emit_json({"book": book.uri, "runs": done.runs, "points": done.points, "rejected": done.rejected})
        return
    click.echo(f"{book.uri}: wrote {done.points} spooled points of {done.runs} runs")
    for path in done.rejected:
        click.echo(f"refused points kept (not replayed): {path}", err=True)


COMMANDS = [sync]
