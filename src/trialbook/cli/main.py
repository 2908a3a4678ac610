"""The ``trialbook`` command group. Each command module defines its commands and lists
them in ``COMMANDS``; this module adds them to the group. Heavy modules are imported
inside commands, so that ``trialbook --help`` stays instant."""

from __future__ import annotations

import logging
import sys

import click

from trialbook.cli import (
    datasets,
    decisions,
    imports,
    lint,
    notes,
    projects,
    reports,
    runs,
    server,
    sync,
    ui,
    yolo,
)
from trialbook.cli.options import handle_errors, uri_option


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
@click.argument("path", default="trialbook-demo", type=click.Path(file_okay=False))
@click.option(
    "--yolo",
    "real",
    is_flag=True,
    help="Train two tiny YOLO runs for real and decide between them (needs the ultralytics "
    "extra; CPU, a few minutes).",
)
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=None,
    help="Epochs of each --yolo run (default 30: enough to tell the two apart).",
)
@handle_errors
def demo(path: str, real: bool, epochs: int | None) -> None:
    """Build a demo book in PATH: project 'pallets' and its v1 -> v2 -> v3 story, or with
    --yolo two real trainings, their test evaluations, latency and the decision."""

    def echo(message: str) -> None:
        click.echo(message, err=True)

    if epochs is not None and not real:
        raise click.UsageError("--epochs is for --yolo (the story demo trains nothing)")
    if real:
        from trialbook.demo.yolo import DEFAULT_EPOCHS, build_yolo_demo

        decided = build_yolo_demo(path, echo=echo, epochs=epochs or DEFAULT_EPOCHS)
        click.echo(decided["text"])
    else:
        from trialbook.demo.story import build_demo

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
    from trialbook.store.registry import sql_url
    from trialbook.store.sql.engine import Database

    database = Database(sql_url(locate(uri)), migrate=False)
    database.upgrade()
    click.echo(f"schema of {locate(uri)} is at {database.current_revision()}")


for _module in (runs, projects, datasets, decisions, notes, lint, reports, imports, sync, ui, server, yolo):
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def main() -> None:
    try:
        cli(prog_name="trialbook")
    except KeyboardInterrupt:  # pragma: no cover
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
