"""What every command shares: the ``--uri`` and ``--json`` options, opening the book,
printing one JSON document, and turning trialbook's errors into one line on stderr."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from trialbook.api import Book

F = TypeVar("F", bound=Callable[..., Any])


def uri_option(f: F) -> F:
    return click.option(
        "--uri",
        envvar="TRIALBOOK_URI",
        default=None,
        metavar="URI",
        help="The book: a folder, sqlite:///PATH or postgresql://...",
    )(f)


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")(f)


def project_option(f: F) -> F:
    return click.option(
        "--project", "-p", default=None, help="Project (needed when a run name is in several)."
    )(f)


def handle_errors(f: F) -> F:
    """Turn trialbook's errors into a one-line message on stderr and exit code 1."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from trialbook.errors import TrialbookError

        try:
            return f(*args, **kwargs)
        except TrialbookError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


def emit_json(data: Any) -> None:
    import json  # here: not for `trialbook --help`

    click.echo(json.dumps(data, indent=2, default=str, allow_nan=False))


def show(as_json: bool, data: Any, human: Callable[[Any], None]) -> None:
    """``data`` as one JSON document, or drawn by ``human``."""
    if as_json:
        emit_json(data)
    else:
        human(data)


def open_book(uri: str | None) -> Book:
    from trialbook.api import Book

    return Book.open(uri)
