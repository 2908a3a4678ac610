"""``trialbook runs`` (the ranked runs table) and ``trialbook show`` (one run)."""

from __future__ import annotations

import click

from trialbook.cli.options import handle_errors, json_option, open_book, show, uri_option


@click.command()
@click.option("--project", "-p", default=None, help="Project (needed when the book has several).")
@click.option("--metric", default=None, help="Rank by another key (labelled exploratory).")
@uri_option
@json_option
@handle_errors
def runs(project: str | None, metric: str | None, uri: str | None, as_json: bool) -> None:
    """Runs ranked by the protocol metric."""
    from trialbook.cli import output
    from trialbook.services.runs import runs_table

    show(as_json, runs_table(open_book(uri), project, metric=metric), output.runs_table)


@click.command("show")
@click.argument("run")
@click.option("--project", "-p", default=None)
@uri_option
@json_option
@handle_errors
def show_cmd(run: str, project: str | None, uri: str | None, as_json: bool) -> None:
    """One run: config, dataset, summary, evaluations (test sealed), note."""
    from trialbook.cli import output
    from trialbook.services.runs import show_run

    show(as_json, show_run(open_book(uri), run, project=project), output.run_detail)


COMMANDS = [runs, show_cmd]
