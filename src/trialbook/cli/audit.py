"""``trialbook audit``: who did what, oldest first: decisions, protocol changes, ships,
grants and their revocations, users and tokens (``services.accounts.audit_events``).

On an embedded book everything is shown (one user, ``core.access.LOCAL``); on a team
server's book (``http(s)://``) the server answers ``GET /api/v1/audit`` with what the
token's user may see (the projects they are admin of; a server admin, all); ``--db URI``
reads a server's database directly, as its operator."""

from __future__ import annotations

from typing import Any

import click

from trialbook.cli.options import handle_errors, json_option, show, uri_option

AUDIT_PATH = "/api/v1/audit"
FIELDS = ("at", "who", "action", "project", "subject", "detail")


@click.command()
@uri_option
@click.option("--project", "-p", default=None, help="Only this project's events (you need to be its admin).")
@click.option(
    "--db",
    default=None,
    metavar="URI",
    help="Read the team server's database directly (postgresql://... or an SQLite book) instead of the book.",
)
@json_option
@handle_errors
def audit(uri: str | None, project: str | None, db: str | None, as_json: bool) -> None:
    """Who did what: decisions, protocol changes, ships, grants, users and tokens."""
    events = _from_database(db, project) if db is not None else _from_book(uri, project)
    show(as_json, {"events": events}, _table)


def _event(e: Any) -> dict[str, Any]:
    return {f: getattr(e, f) for f in FIELDS}


def _from_database(db: str, project: str | None) -> list[dict[str, Any]]:
    from trialbook.core.access import LOCAL
    from trialbook.services.accounts import audit_events, open_accounts

    with open_accounts(db) as (accounts, store):
        return [_event(e) for e in audit_events(store, accounts, LOCAL, project)]


def _from_book(uri: str | None, project: str | None) -> list[dict[str, Any]]:
    from trialbook.api import Book
    from trialbook.core.access import LOCAL
    from trialbook.services.accounts import audit_events
    from trialbook.store.remote import RemoteStore

    book = Book.open(uri, replay=False)
    try:
        if isinstance(book.store, RemoteStore):
            return _from_server(book.store, project)
        accounts = getattr(book.store, "accounts", None)
        return [_event(e) for e in audit_events(book.store, accounts, LOCAL, project)]
    finally:
        book.close()


def _from_server(store: Any, project: str | None) -> list[dict[str, Any]]:
    from trialbook.errors import StorageError

    doc = store.get_json(AUDIT_PATH, {"project": project}, what="the audit")
    events = doc.get("events") if isinstance(doc, dict) else doc
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise StorageError(f"the trialbook server at {store.uri} answered the audit with no list of events")
    return [{f: e.get(f) for f in FIELDS} for e in events]


def _table(doc: dict[str, Any]) -> None:
    from rich.table import Table

    from trialbook.cli.output import console, esc, when

    events = doc["events"]
    if not events:
        console.print("nothing in the audit yet (decisions, protocol changes, ships, grants, tokens)")
        return
    t = Table(title=f"audit: {len(events)} events, oldest first", title_justify="left")
    for col in ("time", "who", "action", "project", "subject", "detail"):
        t.add_column(col, no_wrap=col in ("time", "action"))
    for e in events:
        t.add_row(
            when(e["at"]),
            esc(e["who"]),
            esc(e["action"]),
            esc(e["project"] or "-"),
            esc(e["subject"]),
            esc(e["detail"]),
        )
    console.print(t)


COMMANDS = [audit]
