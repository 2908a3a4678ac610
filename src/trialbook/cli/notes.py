"""``trialbook note`` (write, draft, history, show) and ``trialbook notes search``."""

from __future__ import annotations

import click

from trialbook.cli.options import handle_errors, json_option, open_book, project_option, show, uri_option


@click.command()
@click.argument("run")
@click.option("--hypothesis", default=None, help="What you expected this run to show, and why.")
@click.option("--change", default=None, help="The one thing this run changed against its parent.")
@click.option("--result", default=None, help="What happened, with the numbers (see --draft).")
@click.option("--next", "next_", default=None, help="What to try next, given the result.")
@click.option("--text", default=None, help="Free text beside the four fields.")
@click.option("--draft", is_flag=True, help="Draft the result line from numbers against the parent.")
@click.option("--save", is_flag=True, help="With --draft: write the draft as the result.")
@click.option("--history", is_flag=True, help="Every version of the note.")
@project_option
@uri_option
@json_option
@handle_errors
def note(
    run: str,
    hypothesis: str | None,
    change: str | None,
    result: str | None,
    next_: str | None,
    text: str | None,
    draft: bool,
    save: bool,
    history: bool,
    project: str | None,
    uri: str | None,
    as_json: bool,
) -> None:
    """Write RUN's note (hypothesis, change, result, next), draft its result, or show it."""
    from trialbook.cli import output
    from trialbook.errors import InvalidInput
    from trialbook.services import notes

    fields = {"hypothesis": hypothesis, "change": change, "result": result, "next": next_, "text": text}
    writing = any(v is not None for v in fields.values())
    if sum((writing, draft, history)) > 1:
        raise InvalidInput("note: write fields, --draft or --history, one at a time")
    if save and not draft:
        raise InvalidInput("note: --save goes with --draft")
    book = open_book(uri)
    if draft:
        show(as_json, notes.draft_note(book, run, project=project, save=save), output.note_draft)
    elif history:
        show(as_json, notes.note_history(book, run, project=project), output.note_history)
    elif writing:
        show(as_json, notes.set_note(book, run, fields, project=project), output.note_view)
    else:
        show(as_json, notes.get_note(book, run, project=project), output.note_view)


@click.group("notes")
def notes_group() -> None:
    """Search the notes."""


@notes_group.command("search")
@click.argument("words", nargs=-1, required=True)
@click.option("--project", "-p", default=None, help="Only this project's notes.")
@click.option(
    "--limit", default=50, show_default=True, type=click.IntRange(1, 1000), help="The most notes listed."
)
@uri_option
@json_option
@handle_errors
def notes_search(
    words: tuple[str, ...], project: str | None, limit: int, uri: str | None, as_json: bool
) -> None:
    """Notes holding every word of TEXT (the database's full-text search, stemmed)."""
    from trialbook.cli import output
    from trialbook.services import notes

    data = notes.search_notes(open_book(uri), " ".join(words), project=project, limit=limit)
    show(as_json, data, output.notes_search)


COMMANDS = [note, notes_group]
