"""The ``trialbook`` command group. Each command module defines its commands and lists
them in ``COMMANDS``; ``LAZY_COMMANDS`` below names each command's module and its
summary, so that the group imports a module only when one of its commands is run or its
help shown: ``trialbook --help`` imports no command module. Heavy modules are imported
inside commands, so that ``trialbook --help`` stays instant (``bench/startup.py``)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from gettext import gettext as _
from typing import Any

import click

from trialbook.cli.options import handle_errors, uri_option

# name -> (module of trialbook.cli, summary): every command of the modules' COMMANDS. The
# summary is what ``trialbook --help`` lists: the command's help up to its first full
# stop (``Command.get_short_help_str``). tests/cli/test_main.py holds this table equal
# to the commands: a command added, renamed or whose first sentence changes is caught.
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "admin": ("admin", "Accounts on the team server's database: users, tokens and roles per project."),
    "audit": ("audit", "Who did what: decisions, protocol changes, ships, grants, users and tokens."),
    "compare": (
        "decisions",
        "Runs side by side: curve analytics, config keys that differ, datasets, val splits.",
    ),
    "data": ("datasets", "Dataset versions: content-addressed, tagged, immutable."),
    "decide": (
        "decisions",
        "The four gates; records the decision and reveals (and counts) the test results.",
    ),
    "decisions": ("decisions", "Stored decisions, with the test results each one revealed."),
    "export": (
        "reports",
        "A report of a project or of some runs: protocol and its history, ranked runs, curves, "
        "decisions and notes (test results only inside decisions).",
    ),
    "import": (
        "imports",
        "Bring in runs recorded elsewhere (importing the same source twice changes nothing).",
    ),
    "lint": (
        "lint",
        "Bad names, note debt, unpinned runs, burned test splits, metric changes after comparison.",
    ),
    "login": (
        "login",
        "Store a token for the team server at URL, checked with the server first (the file is "
        "readable by you only).",
    ),
    "logout": ("login", "Forget the token stored for the team server at URL."),
    "name": ("lint", "Suggest a run name, <next version>_<what changed>, from the config's difference."),
    "noise": ("lint", "Estimate the noise threshold from runs that differ only in seed."),
    "note": (
        "notes",
        "Write RUN's note (hypothesis, change, result, next), draft its result, or show it.",
    ),
    "notes": ("notes", "Search the notes."),
    "project": ("projects", "Projects and their protocol (every change audited)."),
    "projects": ("projects", "Projects with their run counts, note debt, decisions and shipped run."),
    "runs": (
        "runs",
        "Runs ranked by the protocol metric, the shipped one marked: the first 50 and how many more "
        "(--limit, --offset, --all; --status, --dataset, --tag, --name filter; --sort, --order).",
    ),
    "review": ("review", "Per-image hits and misses of two runs, worst for the candidate first."),
    "server": (
        "server",
        "Serve the team server: the web UI and the read/write JSON API over one database "
        "(PostgreSQL or SQLite) and one artifact store (a folder or S3), in WORKERS processes.",
    ),
    "ship": ("decisions", "Mark RUN the project's deployed run; needs a WIN decision, or --force --reason."),
    "show": (
        "runs",
        "One run: summary, evaluations (test sealed), note and decisions first, then artifacts "
        "and the config keys asked for (--config: every key).",
    ),
    "sync": ("sync", "Upload this machine's outbox and spool of the book (idempotent)."),
    "ui": ("ui", "Serve the web UI (runs, compare, notes, datasets, decisions) and its JSON API."),
    "yolo": ("yolo", "Ultralytics YOLO, tracked (needs the ultralytics extra)."),
}


class LazyGroup(click.Group):
    """A group whose commands named in ``lazy`` (name -> (module of ``trialbook.cli``,
    summary)) are imported from their module's ``COMMANDS`` when first asked for (run,
    their help shown, completed); its help lists them by their summary, importing none."""

    def __init__(self, *args: Any, lazy: Mapping[str, tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            self._load(cmd_name)
        return super().get_command(ctx, cmd_name)

    def _load(self, name: str) -> None:
        module = importlib.import_module(f"trialbook.cli.{self.lazy[name][0]}")
        for command in module.COMMANDS:
            if command.name in self.lazy and command.name not in self.commands:
                self.add_command(command)
        if name not in self.commands:
            raise RuntimeError(f"trialbook.cli.{self.lazy[name][0]} has no command {name!r} (LAZY_COMMANDS)")

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands and args[0] not in self.lazy:
            for name in self.lazy:  # an unknown command: click suggests among them all
                if name not in self.commands:
                    self._load(name)
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands and their summaries, as ``click.Group`` lists them; a command not
        imported yet stands in as a command whose help is its summary."""
        commands: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            cmd = self.commands.get(name) or click.Command(name, help=self.lazy[name][1])
            if not cmd.hidden:
                commands.append((name, cmd))
        if commands:
            limit = formatter.width - 6 - max(len(name) for name, _cmd in commands)
            rows = [(name, cmd.get_short_help_str(limit)) for name, cmd in commands]
            with formatter.section(_("Commands")):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, lazy=LAZY_COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="trialbook")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """trialbook: record every training run, compare on one metric, decide with four gates."""
    import logging  # here: not for `trialbook --help`

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


def main() -> None:
    try:
        cli(prog_name="trialbook")
    except KeyboardInterrupt:  # pragma: no cover
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
