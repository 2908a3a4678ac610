"""``trialbook runs`` (the ranked runs table) and ``trialbook show`` (one run)."""

from __future__ import annotations

import click

from trialbook.cli.options import handle_errors, json_option, open_book, project_option, show, uri_option

PAGE = 50  # the runs `trialbook runs` prints unless asked for others
# The same as the services' (a test checks): spelled here so that the command's options
# are declared without importing them.
MAX_LIMIT = 500  # services.runs.MAX_PAGE: the most runs one page holds
STATUSES = ("running", "finished", "failed", "crashed")  # core.entities.RUN_STATUSES
SORTS = ("rank", "best", "final", "epochs", "name", "created", "status", "dataset")  # the store's


def _dataset(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``NAME:TAG``, or ``""`` for the runs pinned to no dataset."""
    if value is None or value == "":
        return value
    name, sep, tag = value.strip().partition(":")
    if not (sep and name.strip() and tag.strip()):
        raise click.BadParameter(f"{value!r} is not NAME:TAG (use '' for runs with no dataset)")
    return f"{name.strip()}:{tag.strip()}"


def _tag(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``KEY`` or ``KEY=VALUE``."""
    if value is None:
        return None
    if not value.partition("=")[0].strip():
        raise click.BadParameter(f"{value!r} is not KEY or KEY=VALUE")
    return value


def _window(as_json: bool, show_all: bool, limit: int | None, offset: int | None) -> tuple[int, int | None]:
    """``(offset, limit)`` to ask for: a page of ``PAGE`` by default, every run with
    ``--all``; ``--json`` every run unless ``--limit`` is given."""
    if show_all and (limit is not None or offset is not None):
        given = " and ".join(o for o, v in (("--limit", limit), ("--offset", offset)) if v is not None)
        raise click.UsageError(f"--all shows every run: it cannot be combined with {given}")
    if show_all or (as_json and limit is None):
        return offset or 0, None
    return offset or 0, limit or PAGE


@click.command()
@click.option("--project", "-p", default=None, help="Project (needed when the book has several).")
@click.option("--metric", default=None, help="Rank by another key (labelled exploratory).")
@click.option(
    "--limit",
    type=click.IntRange(1, MAX_LIMIT),
    default=None,
    metavar="N",
    help=f"Show N runs (1 to {MAX_LIMIT}; default {PAGE}; --json: every run unless given).",
)
@click.option(
    "--offset",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Skip the first N runs of the order shown (paging: --offset 50 is the second page).",
)
@click.option("--all", "show_all", is_flag=True, help="Every run (not with --limit or --offset).")
@click.option(
    "--status",
    multiple=True,
    type=click.Choice(STATUSES),
    help="Only the runs of this status (repeatable: any of them).",
)
@click.option(
    "--dataset",
    default=None,
    metavar="NAME:TAG",
    callback=_dataset,
    help="Only the runs pinned to this dataset version ('' for the runs pinned to none).",
)
@click.option(
    "--tag",
    default=None,
    metavar="KEY[=VALUE]",
    callback=_tag,
    help="Only the runs with this tag (KEY), or with this value of it (KEY=VALUE).",
)
@click.option(
    "--name",
    "name_text",
    default=None,
    metavar="TEXT",
    help="Only the runs whose name contains TEXT (case-insensitive).",
)
@click.option(
    "--sort",
    type=click.Choice(SORTS),
    default="rank",
    show_default=True,
    help="Order by another column (best, final: of the ranking metric; epochs: its points).",
)
@click.option(
    "--order",
    type=click.Choice(("asc", "desc")),
    default=None,
    help="With --sort other than rank: ascending or descending (default: best/most first "
    "for best, final and epochs, else ascending).",
)
@uri_option
@json_option
@handle_errors
def runs(
    project: str | None,
    metric: str | None,
    limit: int | None,
    offset: int | None,
    show_all: bool,
    status: tuple[str, ...],
    dataset: str | None,
    tag: str | None,
    name_text: str | None,
    sort: str,
    order: str | None,
    uri: str | None,
    as_json: bool,
) -> None:
    """Runs ranked by the protocol metric, the shipped one marked: the first 50 and how
    many more (--limit, --offset, --all; --status, --dataset, --tag, --name filter;
    --sort, --order). --json has every run unless --limit or --offset is given. A book
    with no runs yet says how to record the first."""
    from trialbook.cli import output
    from trialbook.services.runs import runs_table

    if order and sort == "rank":
        raise click.UsageError(
            "--order needs a --sort other than rank (worst first: --sort best --order asc)"
        )
    at, size = _window(as_json, show_all, limit, offset)
    table = runs_table(
        open_book(uri),
        project,
        metric=metric,
        status=status,
        dataset=dataset,
        tag=tag,
        q=name_text,
        sort=sort,
        order=order,
        offset=at,
        limit=size,
    )
    show(as_json, table, output.runs_table)


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
