"""``trialbook export``: a report of a project or of some runs."""

from __future__ import annotations

import click

from trialbook.cli.options import handle_errors, open_book, uri_option


@click.command()
@click.argument("runs", nargs=-1)
@click.option("--project", "-p", default=None, help="Export this project (or name RUNs).")
@click.option(
    "--format", "fmt", type=click.Choice(["md", "html", "csv", "json"]), default="md", show_default=True
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), default=None, help="Write to FILE instead of stdout."
)
@uri_option
@handle_errors
def export(runs: tuple[str, ...], project: str | None, fmt: str, output: str | None, uri: str | None) -> None:
    """A report of a project or of some runs: protocol and its history, ranked runs,
    curves, decisions and notes (test results only inside decisions)."""
    from pathlib import Path

    from trialbook.services import reports

    text = reports.render(reports.build_report(open_book(uri), list(runs), project=project), fmt)
    if output:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)


COMMANDS = [export]
