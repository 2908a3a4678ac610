"""``trialbook runs`` (the ranked runs table) and ``trialbook show`` (one run)."""

from __future__ import annotations

import click

from trialbook.cli.options import handle_errors, json_option, open_book, project_option, show, uri_option


@click.command()
@click.option("--project", "-p", default=None, help="Project (needed when the book has several).")
@click.option("--metric", default=None, help="Rank by another key (labelled exploratory).")
@uri_option
@json_option
@handle_errors
def runs(project: str | None, metric: str | None, uri: str | None, as_json: bool) -> None:
    """Runs ranked by the protocol metric, the shipped one marked. A book with no runs
    yet says how to record the first."""
    from trialbook.cli import output
    from trialbook.services.runs import runs_table

    show(as_json, runs_table(open_book(uri), project, metric=metric), output.runs_table)


@click.command("show")
@click.argument("run")
@click.option(
    "--config",
    "--all",
    "all_config",
    is_flag=True,
    help="Every config key, not only the ones asked for (the rest are at their defaults).",
)
@project_option
@uri_option
@json_option
@handle_errors
def show_cmd(run: str, all_config: bool, project: str | None, uri: str | None, as_json: bool) -> None:
    """One run: summary, evaluations (test sealed), note and decisions first, then
    artifacts and the config keys asked for (--config: every key). --json has the whole
    config and no decisions."""
    from trialbook.cli import output
    from trialbook.services.runs import show_run

    book = open_book(uri)
    if as_json:
        show(True, show_run(book, run, project=project), output.run_detail)
    else:
        # the decisions are listed by verdict and name only: no test number
        output.run_detail(show_run(book, run, project=project, decisions=True), all_config=all_config)


COMMANDS = [runs, show_cmd]
