"""The ``trialbook`` group itself: ``init``, and ``--help`` staying instant and light."""

from __future__ import annotations

import importlib
import json
import pkgutil
import pprint
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from support.cli import invoke
from trialbook.cli import main


def test_init_is_idempotent(tmp_path: Path) -> None:
    for _ in range(2):
        result = invoke("init", str(tmp_path))
        assert result.exit_code == 0 and "book ready" in result.output
    assert (tmp_path / ".trialbook" / "book.db").exists()


def test_help_is_instant_and_light() -> None:
    code = (
        "import sys\nfrom trialbook.cli.main import main\nsys.argv=['trialbook','--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print([m for m in ('sqlalchemy', 'torch', 'ultralytics', 'fastapi', 'pandas', "
        "'rich') if m in sys.modules], file=sys.stderr)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Commands:" in out.stdout
    assert out.stderr.strip() == "[]"


def _command_modules() -> dict[str, list[click.Command]]:
    """Every module of trialbook.cli that lists commands (``COMMANDS``), by name."""
    import trialbook.cli

    found = {}
    for info in pkgutil.iter_modules(trialbook.cli.__path__):
        module = importlib.import_module(f"trialbook.cli.{info.name}")
        if hasattr(module, "COMMANDS"):
            found[info.name] = list(module.COMMANDS)
    return found


def test_the_lazy_table_names_every_command_and_its_summary() -> None:
    """``LAZY_COMMANDS`` is what the modules define: each command of each ``COMMANDS``,
    its module and its summary (what ``trialbook --help`` lists without importing it)."""
    expected = {
        cmd.name: (module, cmd.get_short_help_str(10**9))
        for module, commands in _command_modules().items()
        for cmd in commands
    }
    assert expected == main.LAZY_COMMANDS, (
        "update LAZY_COMMANDS in src/trialbook/cli/main.py to:\n" + pprint.pformat(expected, width=110)
    )
    shown = [c for commands in _command_modules().values() for c in commands]
    # a summary stands in for the command's help: it must be all that --help reads of it
    assert all(not c.hidden and not c.deprecated and c.short_help is None for c in shown)


def _eager_cli() -> click.Group:
    """``trialbook`` as it was before it was lazy: every command added up front."""
    group = click.Group(name="trialbook", help=main.cli.help, params=main.cli.params)
    for name in ("init", "demo", "db"):
        group.add_command(main.cli.commands[name])
    for commands in _command_modules().values():
        for cmd in commands:
            group.add_command(cmd)
    return group


@pytest.mark.parametrize("width", [30, 60, 80, 120, 250])
def test_help_lists_the_commands_as_an_eager_group_does(width: int) -> None:
    lazy = main.LazyGroup(
        name="trialbook", help=main.cli.help, params=main.cli.params, lazy=main.LAZY_COMMANDS
    )
    for name in ("init", "demo", "db"):
        lazy.add_command(main.cli.commands[name])
    texts = []
    for group in (lazy, _eager_cli()):
        formatter = click.HelpFormatter(width=width)
        group.format_help(click.Context(group, info_name="trialbook"), formatter)
        texts.append(formatter.getvalue())
    assert texts[0] == texts[1]
    assert set(lazy.commands) == {"init", "demo", "db"}  # listing imported nothing


@pytest.mark.parametrize("args", [["rnus"], ["--bogus"], ["show", "--help"], ["data", "tag", "--help"]])
def test_commands_and_mistakes_answer_as_before(args: list[str]) -> None:
    runner = CliRunner()
    fresh = main.LazyGroup(
        name="trialbook", help=main.cli.help, params=main.cli.params, lazy=main.LAZY_COMMANDS
    )
    lazy, eager = (runner.invoke(g, args, prog_name="trialbook") for g in (fresh, _eager_cli()))
    assert (lazy.exit_code, lazy.output) == (eager.exit_code, eager.output)


def test_help_imports_no_command_module_and_a_command_only_its_own() -> None:
    code = (
        "import json, sys\nfrom trialbook.cli.main import main\nsys.argv = ['trialbook', *sys.argv[1:]]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('trialbook.cli.'))), file=sys.stderr)"
    )

    def loaded(*args: str) -> list[str]:
        out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
        return [m.removeprefix("trialbook.cli.") for m in json.loads(out.stderr.strip().splitlines()[-1])]

    assert loaded("--help") == ["main", "options"]
    assert loaded("show", "--help") == ["main", "options", "runs"]
