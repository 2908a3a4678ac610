"""The discipline's commands: ``project``, ``name``, ``compare``, ``decide``, ``decisions``,
``ship``, ``note``, ``notes search``, ``lint``, ``noise`` and ``export``.

Each parses its arguments, calls ``trialbook.discipline`` (or ``trialbook.export``) and
renders the result: a rich table, or with ``--json`` one JSON document on stdout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from trialbook.cli.main import F, cli, emit_json, handle_errors, json_option, open_book, uri_option


def project_option(f: F) -> F:
    return click.option(
        "--project", "-p", default=None, help="Project (needed when a run name is in several)."
    )(f)


_PROTOCOL_OPTIONS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "--metric",
        "metric",
        {
            "help": "Comparison metric: a key or an alias (map50-95, map50, "
            "map50-95(m), map50-95(p), accuracy_top1 ...)."
        },
    ),
    (
        "--direction",
        "direction",
        {"type": click.Choice(["max", "min"]), "help": "Which way is better (default: from the metric)."},
    ),
    ("--noise", "noise", {"type": float, "help": "Noise threshold (0.005 = 0.5 mAP points)."}),
    (
        "--class-floor",
        "class_floor",
        {"type": float, "help": "Per-class floor, a ratio of the baseline's AP."},
    ),
    (
        "--latency-budget",
        "latency_budget_ms",
        {"type": float, "metavar": "MS", "help": "Latency budget in ms on --device."},
    ),
    ("--device", "device", {"help": "Target device of the latency budget."}),
    ("--test-budget", "test_budget", {"type": int, "help": "Reveals allowed per test split."}),
    (
        "--convergence-target",
        "convergence_target",
        {"type": float, "help": "Metric value that counts as converged."},
    ),
    ("--naming-pattern", "naming_pattern", {"help": "Regular expression run names must match."}),
]


def protocol_options(f: F) -> F:
    for flag, dest, kwargs in reversed(_PROTOCOL_OPTIONS):
        f = click.option(flag, dest, default=None, **kwargs)(f)
    return click.option(
        "--reason",
        default=None,
        help="Why (kept in the audit; needed to change the metric once runs were compared).",
    )(f)


def _changes(options: dict[str, Any]) -> dict[str, Any]:
    return {dest: options[dest] for _, dest, _ in _PROTOCOL_OPTIONS if options.get(dest) is not None}


def _show(as_json: bool, data: Any, human: Callable[[Any], None]) -> None:
    if as_json:
        emit_json(data)
    else:
        human(data)


# --------------------------------------------------------------------------- project
@cli.group()
def project() -> None:
    """Projects and their protocol (every change audited)."""


@project.command("create")
@click.argument("name")
@protocol_options
@uri_option
@json_option
@handle_errors
def project_create(name: str, reason: str | None, uri: str | None, as_json: bool, **options: Any) -> None:
    """Create project NAME with the default protocol (options change it, audited)."""
    from trialbook import discipline
    from trialbook.cli import render

    data = discipline.create_project(open_book(uri), name, _changes(options), reason)
    if not as_json:
        render.console.print(f"created project [bold]{render._esc(name)}[/]")
    _show(as_json, data, render.project_info)


@project.command("show")
@click.argument("name")
@uri_option
@json_option
@handle_errors
def project_show(name: str, uri: str | None, as_json: bool) -> None:
    """The protocol, its audit history, test-split use and ships."""
    from trialbook import discipline
    from trialbook.cli import render

    _show(as_json, discipline.project_info(open_book(uri), name), render.project_info)


@project.command("set")
@click.argument("name")
@protocol_options
@uri_option
@json_option
@handle_errors
def project_set(name: str, reason: str | None, uri: str | None, as_json: bool, **options: Any) -> None:
    """Change the protocol; each change is recorded with who, when, old, new and --reason."""
    from trialbook import discipline
    from trialbook.cli import render

    data = discipline.set_protocol(open_book(uri), name, _changes(options), reason)
    _show(as_json, data, render.protocol_changed)


# --------------------------------------------------------------------------- name
@cli.command("name")
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
    from trialbook import discipline
    from trialbook.cli import render

    data = discipline.suggest_run_name(open_book(uri), parent, config_path, project)
    _show(as_json, data, render.name_suggestion)


# --------------------------------------------------------------------------- compare / decide
@cli.command()
@click.argument("runs", nargs=-1, required=True)
@click.option("--metric", default=None, help="Another key (labelled exploratory).")
@project_option
@uri_option
@json_option
@handle_errors
def compare(
    runs: tuple[str, ...], metric: str | None, project: str | None, uri: str | None, as_json: bool
) -> None:
    """Runs side by side: curve analytics, config keys that differ, datasets, val splits."""
    from trialbook import discipline
    from trialbook.cli import render

    data = discipline.compare(open_book(uri), list(runs), metric=metric, project=project)
    _show(as_json, data, render.compare_table)


@cli.command()
@click.argument("candidate")
@click.option("--baseline", required=True, help="The run the candidate must beat.")
@project_option
@uri_option
@json_option
@handle_errors
def decide(candidate: str, baseline: str, project: str | None, uri: str | None, as_json: bool) -> None:
    """The four gates; records the decision and reveals (and counts) the test results.
    Exits 0 for both verdicts."""
    from trialbook import discipline
    from trialbook.cli import render

    data = discipline.decide(open_book(uri), candidate, baseline, project=project)
    _show(as_json, data, render.decision)


@cli.command()
@click.option("--run", "run", default=None, help="Only decisions on this run.")
@project_option
@uri_option
@json_option
@handle_errors
def decisions(run: str | None, project: str | None, uri: str | None, as_json: bool) -> None:
    """Stored decisions, with the test results each one revealed."""
    from trialbook import discipline
    from trialbook.cli import render

    data = discipline.decisions(open_book(uri), project, run)
    _show(as_json, data, render.decisions_list)


@cli.command()
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
    from trialbook import discipline
    from trialbook.cli import render

    data = discipline.ship(open_book(uri), run, project=project, force=force, reason=reason)
    _show(as_json, data, render.ship_result)


# --------------------------------------------------------------------------- notes
@cli.command()
@click.argument("run")
@click.option("--hypothesis", default=None)
@click.option("--change", default=None)
@click.option("--result", default=None)
@click.option("--next", "next_", default=None)
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
    from trialbook import discipline
    from trialbook.cli import render
    from trialbook.errors import InvalidInput

    fields = {"hypothesis": hypothesis, "change": change, "result": result, "next": next_, "text": text}
    writing = any(v is not None for v in fields.values())
    if sum((writing, draft, history)) > 1:
        raise InvalidInput("note: write fields, --draft or --history, one at a time")
    if save and not draft:
        raise InvalidInput("note: --save goes with --draft")
    book = open_book(uri)
    if draft:
        _show(as_json, discipline.draft_note(book, run, project=project, save=save), render.note_draft)
    elif history:
        _show(as_json, discipline.note_history(book, run, project=project), render.note_history)
    elif writing:
        _show(as_json, discipline.set_note(book, run, fields, project=project), render.note_view)
    else:
        _show(as_json, discipline.get_note(book, run, project=project), render.note_view)


@cli.group()
def notes() -> None:
    """Search the notes."""


@notes.command("search")
@click.argument("words", nargs=-1, required=True)
@click.option("--project", "-p", default=None, help="Only this project's notes.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@uri_option
@json_option
@handle_errors
def notes_search(
    words: tuple[str, ...], project: str | None, limit: int, uri: str | None, as_json: bool
) -> None:
    """Notes holding every word of TEXT (the database's full-text search, stemmed)."""
    from trialbook import discipline
    from trialbook.cli import render

    data = discipline.search_notes(open_book(uri), " ".join(words), project=project, limit=limit)
    _show(as_json, data, render.notes_search)


# --------------------------------------------------------------------------- lint / noise
@cli.command()
@click.option("--project", "-p", default=None, help="One project (default: all).")
@click.option("--strict", is_flag=True, help="Exit with code 1 when there are problems.")
@uri_option
@json_option
@handle_errors
def lint(project: str | None, strict: bool, uri: str | None, as_json: bool) -> None:
    """Bad names, note debt, unpinned runs, burned test splits, metric changes after
    comparison. Exits 0 (problems are listed) unless --strict."""
    from trialbook import discipline
    from trialbook.cli import render

    data = discipline.lint(open_book(uri), project)
    _show(as_json, data, render.lint_report)
    if strict and data["problems"]:
        raise SystemExit(1)


@cli.command()
@click.option("--project", "-p", default=None, help="Project (needed when the book has several).")
@click.option("--apply", is_flag=True, help="Set the suggested threshold in the protocol (audited).")
@uri_option
@json_option
@handle_errors
def noise(project: str | None, apply: bool, uri: str | None, as_json: bool) -> None:
    """Estimate the noise threshold from runs that differ only in seed."""
    from trialbook import discipline
    from trialbook.cli import render

    data = discipline.noise(open_book(uri), project, apply=apply)
    _show(as_json, data, render.noise_estimate)


# --------------------------------------------------------------------------- export
@cli.command()
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

    from trialbook import export as reports

    text = reports.render(reports.build_report(open_book(uri), list(runs), project=project), fmt)
    if output:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)
