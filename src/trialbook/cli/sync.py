"""``trialbook sync``: upload what waits on this machine into its book.

Two places hold writes not yet in their book: the outbox of remote books
(``trialbook.outbox``: runs, points, evaluations, notes, artifact references and endings
logged while the server was away or offline) and the spool of embedded books (points a
run could not write, ``trialbook.spool``). ``sync`` sends both, idempotently: two at once,
or one run twice, never write anything twice.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from trialbook.cli.options import emit_json, handle_errors, json_option, uri_option

if TYPE_CHECKING:
    from trialbook.api import Book, OutboxUpload
    from trialbook.services.copy import CopyResult


@click.command()
@uri_option
@click.option(
    "--from",
    "source",
    metavar="BOOK",
    default=None,
    help="Copy the whole book BOOK (a folder, sqlite:/// or postgresql://) into the book of --uri "
    "instead (idempotent: what is there already is left as it is).",
)
@json_option
@handle_errors
def sync(uri: str | None, as_json: bool, source: str | None = None) -> None:
    """Upload this machine's outbox and spool of the book (idempotent).

    The outbox holds what runs against a server logged while it could not be reached (or
    with TRIALBOOK_OFFLINE=1); the spool, points an embedded book could not write. Writes
    the book refuses are kept and listed with the reason, never retried on their own;
    the exit code is then 1."""
    from trialbook.api import Book

    if source is not None:
        _copy_from(source, uri, as_json=as_json)
        return
    book = Book.open(uri, replay=False)
    try:
        uploaded = _upload_outbox(book, show_progress=not as_json and sys.stderr.isatty())
        replayed = book.replay_spool()  # (a remote book's too: the last resort of a failed outbox)
    finally:
        book.close()
    summary = _summary(book, uploaded, replayed)
    if as_json:
        emit_json(summary)
    else:
        _print(summary)
    if summary["refused"]:  # (the spool's rejected files are of every book: listed, not counted)
        raise SystemExit(1)


def _upload_outbox(book: Book, *, show_progress: bool) -> OutboxUpload:
    if not show_progress:
        return book.upload_outbox()
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("uploading"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task("outbox", total=None)

        def step(sent: int, left: int) -> None:
            progress.update(task, completed=sent, total=sent + left)

        return book.upload_outbox(step)


def _summary(book: Book, uploaded: OutboxUpload, replayed: Any) -> dict[str, Any]:
    sent = uploaded.sent
    return {
        "book": book.uri,
        "runs": sent.runs + (replayed.runs if replayed else 0),  # created, or their spooled points written
        "points": sent.points + (replayed.points if replayed else 0),
        "evaluations": sent.evaluations,
        "notes": sent.notes,
        "artifacts": sent.artifacts,
        "endings": sent.endings,
        "created_runs": sent.runs,
        "spooled_runs": replayed.runs if replayed else 0,
        "refused": [r._asdict() for r in uploaded.refused],
        "rejected": replayed.rejected if replayed else [],
        "left": uploaded.left,
    }


def _print(s: dict[str, Any]) -> None:
    click.echo(
        f"{s['book']}: uploaded {s['created_runs']} runs, {s['points']} points, "
        f"{s['evaluations']} evaluations, {s['notes']} notes, {s['artifacts']} artifacts, "
        f"{s['endings']} run endings"
        + (f"; wrote spooled points of {s['spooled_runs']} runs" if s["spooled_runs"] else "")
    )
    for r in s["refused"]:
        what = f"{r['kind']} {r['item_id']} of run {r['run_id']}"
        click.echo(f"refused, kept in the outbox: {what}: {r['reason']}", err=True)
    for path in s["rejected"]:
        click.echo(f"refused points kept (not replayed): {path}", err=True)
    if s["left"]:
        click.echo(f"{s['left']} writes wait behind a refused run creation, kept in the outbox", err=True)


# --from BOOK: copy a whole book ----------------------------------------------------------
def _copy_from(source: str, uri: str | None, *, as_json: bool) -> None:
    """``sync --from SOURCE``: copy the book SOURCE into the book of ``uri``
    (``services.copy``); exit 1 when anything was refused."""
    from trialbook.api import Book

    src = Book.open(source, replay=False)
    try:
        dst = Book.open(uri, replay=False)
        try:
            result = _copy(src, dst, bar=not as_json and sys.stderr.isatty())
        finally:
            dst.close()
    finally:
        src.close()
    if as_json:
        emit_json(result.to_dict())
    else:
        _print_copy(result)
    if result.refused:
        raise SystemExit(1)


def _copy(src: Book, dst: Book, *, bar: bool) -> CopyResult:
    from trialbook.services.copy import copy_book

    if not bar:
        return copy_book(src, dst)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("copying"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task("", total=None)

        def step(done: int, total: int, what: str) -> None:
            progress.update(task, completed=done, total=total, description=what)

        return copy_book(src, dst, progress=step)


def _print_copy(result: CopyResult) -> None:
    click.echo(f"{result.source} -> {result.target} in {result.seconds:.1f} s")
    for kind, c in result.counts.items():
        if c.copied or c.already:
            click.echo(f"  {kind.replace('_', ' ')}: {c.copied} copied, {c.already} already there")
    for r in result.refused:
        click.echo(f"refused: {r.kind} {r.item}: {r.reason}", err=True)
    if result.refused:
        click.echo(f"{len(result.refused)} refused: nothing else was left out", err=True)


COMMANDS = [sync]
