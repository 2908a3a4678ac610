"""``trialbook`` command group. Heavy modules are imported inside commands, so that
``trialbook --help`` stays instant."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

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
    click.echo(json.dumps(data, indent=2, default=str, allow_nan=False))


def open_book(uri: str | None) -> Any:
    from trialbook.api import Book

    return Book.open(uri)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="trialbook")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """trialbook: record every training run, compare on one metric, decide with four gates."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


@cli.command()
@click.argument("path", default=".", type=click.Path(file_okay=False))
@handle_errors
def init(path: str) -> None:
    """Create a book (.trialbook/) in PATH (idempotent)."""
    from trialbook.api import init as do_init

    book = do_init(path)
    click.echo(f"book ready at {book.uri}")


@cli.command()
@click.option("--project", "-p", default=None, help="Project (needed when the book has several).")
@click.option("--metric", default=None, help="Rank by another key (labelled exploratory).")
@uri_option
@json_option
@handle_errors
def runs(project: str | None, metric: str | None, uri: str | None, as_json: bool) -> None:
    """Runs ranked by the protocol metric."""
    from trialbook.cli import render
    from trialbook.core.metrics import resolve_alias
    from trialbook.views import runs_table

    book = open_book(uri)
    table = runs_table(book, project, metric=resolve_alias(metric) if metric else None)
    if as_json:
        emit_json(table)
    else:
        render.runs_table(table)


@cli.command()
@click.argument("run")
@click.option("--project", "-p", default=None)
@uri_option
@json_option
@handle_errors
def show(run: str, project: str | None, uri: str | None, as_json: bool) -> None:
    """One run: config, dataset, summary, evaluations (test sealed), note."""
    from trialbook.cli import render
    from trialbook.views import run_detail

    book = open_book(uri)
    detail = run_detail(book, book.run(run, project))
    if as_json:
        emit_json(detail)
    else:
        render.run_detail(detail)


@cli.command()
@click.argument("path", default="trialbook-demo", type=click.Path(file_okay=False))
@click.option(
    "--yolo",
    "real",
    is_flag=True,
    help="Train two tiny YOLO runs for real (needs the ultralytics extra; CPU, ~1 min).",
)
@handle_errors
def demo(path: str, real: bool) -> None:
    """Build a demo book in PATH: project 'pallets' and its v1 -> v2 -> v3 story."""
    echo = lambda m: click.echo(m, err=True)  # noqa: E731
    if real:
        from trialbook.demo_yolo import build_yolo_demo

        build_yolo_demo(path, echo=echo)
    else:
        from trialbook.demo import build_demo

        build_demo(path, echo=echo)


@cli.group()
def db() -> None:
    """Database schema maintenance."""


@db.command("upgrade")
@uri_option
@handle_errors
def db_upgrade(uri: str | None) -> None:
    """Upgrade the book's schema to this version's (back up first)."""
    from trialbook.api import locate
    from trialbook.store.sql.engine import Database
    from trialbook.store.uri import sql_url

    database = Database(sql_url(locate(uri)), migrate=False)
    database.upgrade()
    click.echo(f"schema of {locate(uri)} is at {database.current_revision()}")


# sub-command groups register themselves on ``cli``
from trialbook.cli import data as _data  # noqa: E402,F401
from trialbook.cli import discipline as _discipline  # noqa: E402,F401
from trialbook.cli import imports as _imports  # noqa: E402,F401
from trialbook.cli import ui as _ui  # noqa: E402,F401
from trialbook.cli import yolo as _yolo  # noqa: E402,F401


def main() -> None:
    try:
        cli(prog_name="trialbook")
    except KeyboardInterrupt:  # pragma: no cover
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
