"""``trialbook review``: two runs image by image, worst for the candidate first."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from trialbook.cli.options import emit_json, handle_errors, json_option, open_book, project_option, uri_option

if TYPE_CHECKING:
    from trialbook.services.review import Counts, Review

PAGE = 20  # the images the table shows unless asked for others


def _limit(as_json: bool, show_all: bool, limit: int | None) -> int | None:
    """How many images to print: ``PAGE`` by default, every one with ``--all``;
    ``--json`` every one unless ``--limit`` is given."""
    if show_all and limit is not None:
        raise click.UsageError("--all shows every image: it cannot be combined with --limit")
    if show_all or (as_json and limit is None):
        return None
    return PAGE if limit is None else limit


@click.command()
@click.argument("candidate")
@click.option("--baseline", required=True, help="The run the candidate is set against.")
@click.option(
    "--split",
    type=click.Choice(["val", "test"]),
    default="val",
    show_default=True,
    help="The evaluated split (test is sealed: refused).",
)
@click.option(
    "--iou", type=float, default=0.5, show_default=True, help="IoU a prediction needs to match a box."
)
@click.option(
    "--conf",
    type=float,
    default=0.25,
    show_default=True,
    help="Predictions below this confidence are left out.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help=f"Show the N worst images (default {PAGE}; --json: every image unless given).",
)
@click.option("--all", "show_all", is_flag=True, help="Every image (not with --limit).")
@project_option
@uri_option
@json_option
@handle_errors
def review(
    candidate: str,
    baseline: str,
    split: str,
    iou: float,
    conf: float,
    limit: int | None,
    show_all: bool,
    project: str | None,
    uri: str | None,
    as_json: bool,
) -> None:
    """Per-image hits and misses of two runs, worst for the candidate first. Each run's
    predictions on the split (recorded by `trialbook yolo val` or a training's final
    validation) are matched to the ground truth: same class, IoU at least --iou, greedy
    by confidence. Lists every image's true positives, false positives and false
    negatives for both runs, and per class the boxes gained and lost."""
    from trialbook.services.review import review as do_review

    result = do_review(open_book(uri), candidate, baseline, project=project, split=split, iou=iou, conf=conf)
    shown = _limit(as_json, show_all, limit)
    if as_json:
        emit_json(result.to_json(limit=shown))
    else:
        review_report(result, shown)


def _change(n: int, *, good_when_up: bool = False) -> str:
    """``n`` with its sign, red where it is worse for the candidate, green where better."""
    if n == 0:
        return "0"
    worse = n < 0 if good_when_up else n > 0
    return f"[{'red' if worse else 'green'}]{n:+,}[/]"


def _count_cells(c: Counts) -> list[str]:
    return [f"{c.tp:,}", f"{c.fp:,}", f"{c.fn:,}"]


def review_report(r: Review, limit: int | None) -> None:
    """The header and totals, the worst ``limit`` images (all for None) and the classes."""
    from rich.table import Table

    from trialbook.cli.output import console, esc
    from trialbook.core.format import short_digest

    digest = f" {short_digest(r.split_digest)}" if r.split_digest else ""
    console.print(
        f"[bold]{esc(r.project)}[/]: [bold]{esc(r.candidate)}[/] (candidate) against "
        f"[bold]{esc(r.baseline)}[/] (baseline) on the {esc(r.split)} split{digest}, "
        f"IoU >= {r.iou:g}, confidence >= {r.conf:g}"
    )
    n = len(r.images)
    console.print(
        f"{n:,} images: the candidate is worse on {r.worse:,}, better on {r.better:,}, "
        f"the same on {n - r.worse - r.better:,}"
    )
    cand, base = r.totals
    t = Table(title="totals", title_justify="left")
    for col in ("", "tp", "fp", "fn", "errors (fp+fn)"):
        t.add_column(col, justify="right" if col else "left")
    t.add_row("candidate", *_count_cells(cand), f"{cand.errors:,}")
    t.add_row("baseline", *_count_cells(base), f"{base.errors:,}")
    t.add_row(
        "change",
        _change(cand.tp - base.tp, good_when_up=True),
        _change(cand.fp - base.fp),
        _change(cand.fn - base.fn),
        _change(cand.errors - base.errors),
    )
    console.print(t)
    shown = r.images if limit is None else r.images[:limit]
    if shown:
        im = Table(
            title="images, worst for the candidate first (delta: its fp+fn minus the baseline's)",
            title_justify="left",
        )
        for col in ("#", "image", "cand tp", "cand fp", "cand fn", "base tp", "base fp", "base fn", "delta"):
            im.add_column(col, justify="left" if col == "image" else "right", no_wrap=col == "image")
        for k, i in enumerate(shown, 1):
            im.add_row(
                str(k), esc(i.image), *_count_cells(i.candidate), *_count_cells(i.baseline), _change(i.delta)
            )
        console.print(im)
    if len(shown) < n:
        more = n - len(shown)
        console.print(
            f"{more:,} more image{'s' if more != 1 else ''}: --limit N for more, --all for every one "
            "(--json prints every one)"
        )
    _classes(r)


def _classes(r: Review) -> None:
    from rich.table import Table

    from trialbook.cli.output import console, esc

    rows = [(name, c) for name, c in r.classes.items() if c.candidate.tp + c.candidate.errors + c.baseline.fp]
    if not rows:
        return
    t = Table(title="per class: ground-truth boxes gained and lost, false positives added and removed")
    t.title_justify = "left"
    for col in ("class", "gained", "lost", "fp added", "fp removed", "cand tp/fp/fn", "base tp/fp/fn"):
        t.add_column(col, justify="left" if col == "class" else "right", no_wrap=col == "class")
    for name, c in rows:
        t.add_row(
            esc(name),
            f"[green]{c.gained:,}[/]" if c.gained else "0",
            f"[red]{c.lost:,}[/]" if c.lost else "0",
            f"[red]{c.fp_added:,}[/]" if c.fp_added else "0",
            f"[green]{c.fp_removed:,}[/]" if c.fp_removed else "0",
            "/".join(_count_cells(c.candidate)),
            "/".join(_count_cells(c.baseline)),
        )
    console.print(t)


COMMANDS = [review]
