"""``trialbook project create|show|set`` (the protocol, every change audited) and
``trialbook projects``."""

from __future__ import annotations

from typing import Any

import click

from trialbook.cli.options import F, handle_errors, json_option, open_book, show, uri_option

_PROTOCOL_OPTIONS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "--metric",
        "metric",
        {
            "help": "Comparison metric: a key or an alias (map50-95, map50, "
            "map50-95(m), map50-95(p), accuracy_top1 ...; one class's AP: ap50-95:CLASS, "
            "ap50:CLASS; recall at precision 0.95: r@p0.95, r@p0.95:CLASS; latency: the p50 "
            "measured on --device, lower is better, --noise in ms)."
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
    (
        "--precision-level",
        "precision_level",
        {"type": float, "help": "The precision of the recall-at-precision metric r@p (default 0.95)."},
    ),
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


@click.group()
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
    from trialbook.cli import output
    from trialbook.services import projects

    data = projects.create_project(open_book(uri), name, _changes(options), reason)
    if not as_json:
        output.console.print(f"created project [bold]{output.esc(name)}[/]")
    show(as_json, data, output.project_info)


@project.command("show")
@click.argument("name")
@uri_option
@json_option
@handle_errors
def project_show(name: str, uri: str | None, as_json: bool) -> None:
    """The protocol, its audit history, test-split use and ships."""
    from trialbook.cli import output
    from trialbook.services import projects

    show(as_json, projects.project_info(open_book(uri), name), output.project_info)


@project.command("set")
@click.argument("name")
@protocol_options
@uri_option
@json_option
@handle_errors
def project_set(name: str, reason: str | None, uri: str | None, as_json: bool, **options: Any) -> None:
    """Change the protocol; each change is recorded with who, when, old, new and --reason.
    A project that does not exist yet is created (its changes audited the same way)."""
    from trialbook.cli import output
    from trialbook.services import projects

    data = projects.set_protocol(open_book(uri), name, _changes(options), reason, create=True)
    show(as_json, data, output.protocol_changed)
    if not as_json:
        for note in data["notes"]:
            output.console.print(f"note: {output.esc(note)}")


@click.command("projects")
@uri_option
@json_option
@handle_errors
def projects_cmd(uri: str | None, as_json: bool) -> None:
    """Projects with their run counts, note debt, decisions and shipped run."""
    from trialbook.cli import output
    from trialbook.services import projects

    show(as_json, projects.list_projects(open_book(uri)), output.projects_list)


COMMANDS = [project, projects_cmd]
