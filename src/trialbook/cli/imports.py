"""``trialbook import``: Ultralytics run folders, MLflow, TensorBoard.

Each command prints what it imported and skipped on stdout (or one JSON document with
``--json``), every problem on stderr with its path and line, and exits 1 when anything
could not be imported (the rest is imported all the same).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from trialbook.cli.options import emit_json, handle_errors, json_option, open_book, uri_option

if TYPE_CHECKING:
    from trialbook.integrations.importers.common import ImportedRun, ImportReport


@click.group("import")
def import_group() -> None:
    """Bring in runs recorded elsewhere (importing the same source twice changes nothing)."""


def _imported_line(r: ImportedRun) -> str:
    notes = []
    if r.legacy_name:
        notes.append("legacy name")
    if r.renamed_from:
        notes.append(f"renamed from {r.renamed_from}")
    notes.append("pinned" if r.pinned else "UNPINNED")
    return f"imported {r.project}/{r.name} ({', '.join(notes)}): {r.epochs} epochs, {r.status}  <- {r.path}"


def _finish(report: ImportReport, as_json: bool) -> None:
    """Print the report; exit 1 if anything failed."""
    if as_json:
        emit_json(report.to_dict())
    else:
        for r in report.imported:
            click.echo(_imported_line(r))
        for s in report.skipped:
            click.echo(f"skipped {s.path}: {s.reason}")
    for w in report.warnings:
        click.echo(f"warning: {w}", err=True)
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    for p in report.failed:
        click.echo(f"error: {p}", err=True)
    if not as_json:
        click.echo(
            f"{len(report.imported)} imported, {len(report.skipped)} skipped, "
            f"{len(report.failed)} problem(s)",
            err=True,
        )
    if not report.ok:
        raise SystemExit(1)


@import_group.command("ultralytics")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option(
    "--project", "-p", default=None, help="Project for the runs (default: the task, e.g. detect, segment)."
)
@click.option(
    "--dataset",
    "-d",
    default=None,
    metavar="NAME:TAG",
    help="Pin the runs to this tagged dataset version (default: UNPINNED).",
)
@click.option(
    "--name", "-n", default=None, help="A <version>_<what_changed> name for the run (one run folder only)."
)
@click.option("--no-weights", is_flag=True, help="Do not store weights/best.pt and last.pt.")
@uri_option
@json_option
@handle_errors
def ultralytics_cmd(
    paths: tuple[str, ...],
    project: str | None,
    dataset: str | None,
    name: str | None,
    no_weights: bool,
    uri: str | None,
    as_json: bool,
) -> None:
    """Import Ultralytics run folders (results.csv, args.yaml or YOLOv5 opt.yaml, weights).

    Each PATH is a run folder or a folder holding many (runs/, runs/detect/)."""
    from trialbook.integrations.importers.ultralytics_runs import import_ultralytics

    report = import_ultralytics(
        open_book(uri), paths, project=project, dataset=dataset, name=name, weights=not no_weights
    )
    _finish(report, as_json)


@import_group.command("mlflow")
@click.argument("path", type=click.Path())
@uri_option
@json_option
@handle_errors
def mlflow_cmd(path: str, uri: str | None, as_json: bool) -> None:
    """Import MLflow runs from a file store (mlruns/) or an MLflow SQLite database.

    Experiments become projects, steps become epochs."""
    from trialbook.integrations.importers.mlflow_store import import_mlflow

    _finish(import_mlflow(open_book(uri), path), as_json)


@import_group.command("tensorboard")
@click.argument("path", type=click.Path(exists=True))
@click.option("--project", "-p", default=None, help="Project for the runs (default: tensorboard).")
@uri_option
@json_option
@handle_errors
def tensorboard_cmd(path: str, project: str | None, uri: str | None, as_json: bool) -> None:
    """Import TensorBoard scalars: one run per folder of event files (needs the
    tensorboard extra)."""
    from trialbook.integrations.importers.tensorboard_events import import_tensorboard

    _finish(import_tensorboard(open_book(uri), path, project=project), as_json)


COMMANDS = [import_group]
