"""Every option of the commands of runs, projects, decisions and notes says what it does."""

from __future__ import annotations

import re

import click
import pytest

from support.cli import invoke
from trialbook.cli import decisions, notes, projects, runs


def commands() -> list[tuple[str, click.Command]]:
    out: list[tuple[str, click.Command]] = []

    def walk(prefix: str, cmd: click.Command) -> None:
        name = f"{prefix} {cmd.name}".strip()
        if isinstance(cmd, click.Group):
            for sub in cmd.commands.values():
                walk(name, sub)
        else:
            out.append((name, cmd))

    for module in (runs, projects, decisions, notes):
        for cmd in module.COMMANDS:
            walk("", cmd)
    return out


@pytest.mark.parametrize(("name", "cmd"), commands(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_option_has_help(name: str, cmd: click.Command) -> None:
    missing = [p.opts[0] for p in cmd.params if isinstance(p, click.Option) and not (p.help or "").strip()]
    assert missing == [], f"trialbook {name}: {missing} have no help text"
    assert (cmd.help or "").strip(), f"trialbook {name} has no help text"


def test_the_help_shows_what_each_option_is_for() -> None:
    note = invoke("note", "--help").stdout
    assert re.search(r"--hypothesis TEXT +What you expected this run to show", note)
    assert re.search(r"--next TEXT +What to try next", note)
    shown = invoke("show", "--help").stdout
    assert "-p, --project TEXT" in shown and "Project (needed when a run name is in several)" in shown
    assert "--config, --all" in shown
