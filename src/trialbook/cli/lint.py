"""``trialbook lint``, ``noise`` and ``name``."""

from __future__ import annotations

import click

from trialbook.cli.options import handle_errors, json_option, open_book, project_option, show, uri_option


@click.command()
@click.option("--project", "-p", default=None, help="One project (default: all).")
@click.option("--strict", is_flag=True, help="Exit with code 1 when there are problems.")
@uri_option
@json_option
@handle_errors
def lint(project: str | None, strict: bool, uri: str | None, as_json: bool) -> None:
    """Bad names, note debt, unpinned runs, burned test splits, metric changes after
    comparison. Exits 0 (problems are listed) unless --strict."""
    from trialbook.cli import output
    from trialbook.services import lint as service

    data = service.lint(open_book(uri), project)
    show(as_json, data, output.lint_report)
    if strict and data["problems"]:
        raise SystemExit(1)


@click.command()
@click.option("--project", "-p", default=None, help="Project (needed when the book has several).")
@click.option("--apply", is_flag=True, help="Set the suggested threshold in the protocol (audited).")
@uri_option
@json_option
@handle_errors
def noise(project: str | None, apply: bool, uri: str | None, as_json: bool) -> None:
    """Estimate the noise threshold from runs that differ only in seed."""
    from trialbook.cli import output
    from trialbook.services import lint as service

    show(as_json, service.noise(open_book(uri), project, apply=apply), output.noise_estimate)


@click.command("name")
@click.option("--parent", required=True, help="The run this one changes.")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="The new run's config (YAML or JSON; an Ultralytics args.yaml works).",
)
@project_option
@uri_option
@json_option
@handle_errors
def name_cmd(parent: str, config_path: str, project: str | None, uri: str | None, as_json: bool) -> None:
    """Suggest a run name, <next version>_<what changed>, from the config's difference."""
    from trialbook.cli import output
    from trialbook.services import lint as service

    show(
        as_json,
        service.suggest_run_name(open_book(uri), parent, config_path, project),
        output.name_suggestion,
    )


COMMANDS = [lint, noise, name_cmd]
