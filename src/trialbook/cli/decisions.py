"""``trialbook compare``, ``decide``, ``decisions`` and ``ship``."""

from __future__ import annotations

import click

from trialbook.cli.options import handle_errors, json_option, open_book, project_option, show, uri_option


@click.command()
@click.argument("runs", nargs=-1, required=True)
@click.option("--metric", default=None, help="Another key (labelled exploratory).")
@click.option("--baseline", default=None, help="The run per-class deltas are taken against.")
@project_option
@uri_option
@json_option
@handle_errors
def compare(
    runs: tuple[str, ...],
    metric: str | None,
    baseline: str | None,
    project: str | None,
    uri: str | None,
    as_json: bool,
) -> None:
    """Runs side by side: curve analytics, config keys that differ, datasets, val splits."""
    from trialbook.cli import output
    from trialbook.services.compare import compare_runs

    data = compare_runs(
        open_book(uri), list(runs), metric=metric, project=project, baseline=baseline, record=True
    )
    show(as_json, data, output.compare_table)


@click.command()
@click.argument("candidate")
@click.option("--baseline", required=True, help="The run the candidate must beat.")
@project_option
@uri_option
@json_option
@handle_errors
def decide(candidate: str, baseline: str, project: str | None, uri: str | None, as_json: bool) -> None:
    """The four gates; records the decision and reveals (and counts) the test results.
    Deciding again on the same runs, protocol and evidence shows the decision already
    recorded and reveals nothing (--json: "recorded_before": true). Exits 0 for both
    verdicts."""
    from trialbook.cli import output
    from trialbook.services import decisions

    data = decisions.decide(open_book(uri), candidate, baseline, project=project)
    show(as_json, data, output.decision)


@click.command("decisions")
@click.option("--run", "run", default=None, help="Only decisions on this run.")
@project_option
@uri_option
@json_option
@handle_errors
def decisions_cmd(run: str | None, project: str | None, uri: str | None, as_json: bool) -> None:
    """Stored decisions, with the test results each one revealed."""
    from trialbook.cli import output
    from trialbook.services import decisions

    show(as_json, decisions.list_decisions(open_book(uri), project, run), output.decisions_list)


@click.command()
@click.argument("run")
@click.option("--force", is_flag=True, help="Ship without a WIN decision (needs --reason).")
@click.option("--reason", default=None, help="Why; recorded in the ship history.")
@project_option
@uri_option
@json_option
@handle_errors
def ship(
    run: str, force: bool, reason: str | None, project: str | None, uri: str | None, as_json: bool
) -> None:
    """Mark RUN the project's deployed run; needs a WIN decision, or --force --reason."""
    from trialbook.cli import output
    from trialbook.services import decisions

    data = decisions.ship(open_book(uri), run, project=project, force=force, reason=reason)
    show(as_json, data, output.ship_result)


COMMANDS = [compare, decide, decisions_cmd, ship]
