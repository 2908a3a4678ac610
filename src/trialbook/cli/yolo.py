"""``trialbook yolo``: train with Ultralytics, recorded live; evaluate a run on a split of
its pinned dataset version; measure its latency on the machine the command runs on.

The rules (checks first, outputs under ``./runs/<task>/<run name>``, sealed test
evaluations) are in ``services/yolo.py``."""

from __future__ import annotations

from typing import Any

import click

from trialbook.cli.options import emit_json, handle_errors, json_option, open_book, project_option, uri_option


def parse_yolo_args(args: tuple[str, ...]) -> dict[str, Any]:
    """``key=value`` words as Ultralytics' CLI takes them; values typed by YAML rules."""
    from trialbook.datasets.yamlfile import parse_yaml
    from trialbook.errors import InvalidInput

    out: dict[str, Any] = {}
    for word in args:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise InvalidInput(f"yolo argument {word!r} must be key=value (e.g. imgsz=640)")
        out[key] = parse_yaml(value, f"yolo argument {key}") if value else None
    return out


def _next(steps: list[str]) -> None:
    click.echo("Next:")
    for step in steps:
        click.echo(f"  {step}")


@click.group()
def yolo() -> None:
    """Ultralytics YOLO, tracked (needs the ultralytics extra)."""


@yolo.command("train", context_settings={"ignore_unknown_options": True})
@click.argument("name")
@click.option(
    "--dataset",
    "-d",
    default=None,
    metavar="NAME:TAG",
    help="The tagged version; default: the one whose content matches data=.",
)
@click.option("--parent", default=None, metavar="RUN", help="The run this one changes (lineage).")
@click.option("--project", "-p", default=None, help="Default: the dataset's name.")
@click.option("--allow-unpinned", is_flag=True, help="Record an UNPINNED run instead of refusing.")
@click.argument("yolo_args", nargs=-1, type=click.UNPROCESSED)
@uri_option
@handle_errors
def train(
    name: str,
    dataset: str | None,
    parent: str | None,
    project: str | None,
    allow_unpinned: bool,
    yolo_args: tuple[str, ...],
    uri: str | None,
) -> None:
    """Train NAME with Ultralytics, recorded live.

    \b
    trialbook yolo train v2_imgsz_1024 --parent v1_baseline -- \\
        model=yolo11n.pt data=data.yaml imgsz=1024 epochs=100

    Everything that can be refused (the name, the dataset tag, the parent, the weights,
    the output folder) is checked before Ultralytics starts. Outputs go to
    ./runs/<task>/NAME. Offline, model=yolo11n.yaml trains from scratch (a .pt needs a
    local file)."""
    from trialbook.services import yolo as service

    book = open_book(uri)
    plan = service.plan_train(
        book,
        name,
        parse_yolo_args(yolo_args),
        dataset=dataset,
        parent=parent,
        project=project,
        allow_unpinned=allow_unpinned,
    )
    done = service.train(book, plan)
    click.echo(f"recorded {done['project']}/{done['name']} ({done['status']}); outputs in {done['save_dir']}")
    _next(done["next"])


@yolo.command("val")
@click.argument("run")
@click.option(
    "--split",
    type=click.Choice(["test", "val"]),
    required=True,
    help="test: the sealed final check (only a decision reveals it); val: open.",
)
@click.option("--weights", default=None, metavar="PATH", help="Default: the run's best.pt.")
@click.option("--imgsz", type=int, default=None, help="Default: the run's image size.")
@click.option("--batch", type=int, default=None, help="Default: the run's batch size.")
@click.option(
    "--device", default=None, help="Torch device to evaluate on (cpu, 0, ...); default: Ultralytics'."
)
@click.option(
    "--save-images",
    is_flag=True,
    help="Keep a test evaluation's plots and images on disk too (the book keeps them, sealed, either way).",
)
@project_option
@uri_option
@json_option
@handle_errors
def val(
    run: str,
    split: str,
    weights: str | None,
    imgsz: int | None,
    batch: int | None,
    device: str | None,
    save_images: bool,
    project: str | None,
    uri: str | None,
    as_json: bool,
) -> None:
    """Evaluate RUN's weights on a split of its pinned dataset version and record it.

    The validator's plots and every image's predictions (boxes and a thumbnail) are
    recorded with the evaluation. A test evaluation is sealed: its numbers are not
    printed, its plots and predictions are sealed with it, and no test image stays on
    disk unless --save-images; `trialbook decide` reveals them, counted against the split."""
    from trialbook.services import yolo as service

    done = service.val(
        open_book(uri),
        run,
        split=split,
        weights=weights,
        project=project,
        imgsz=imgsz,
        batch=batch,
        device=device,
        save_images=save_images,
    )
    if as_json:
        emit_json(done)
        return
    images = f"{done['images']} images" if done["images"] is not None else "the split"
    if done["sealed"]:
        click.echo(
            f"recorded a sealed test evaluation of {done['project']}/{done['run']} on {images}; "
            "its numbers, plots and predictions stay sealed until a decision reveals them"
        )
    else:
        click.echo(f"recorded a val evaluation of {done['project']}/{done['run']} on {images}")
        for key, value in sorted((done["metrics"] or {}).items()):
            if key.startswith("metrics/"):
                click.echo(f"  {key:<24} {value:.4f}")
    kept = (
        f"predictions of {done['predictions']} images"
        if done["predictions"] is not None
        else "no predictions"
    )
    click.echo(f"  stored: {len(done['plots'])} plots, {kept}")
    _next(done["next"])


@yolo.command("latency")
@click.argument("run")
@click.option(
    "--device",
    required=True,
    metavar="NAME",
    help="The target device this machine is (as the protocol names it, e.g. jetson-orin).",
)
@click.option("--imgsz", type=int, default=None, help="Default: the run's image size.")
@click.option("--iters", type=int, default=100, show_default=True, help="Timed predictions.")
@click.option("--warmup", type=int, default=10, show_default=True, help="Untimed predictions first.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["torch", "torchscript", "onnx"]),
    default="torch",
    show_default=True,
    help="Run the weights as they are, or exported (onnx needs the onnx extra).",
)
@click.option("--weights", default=None, metavar="PATH", help="Default: the run's best.pt.")
@click.option(
    "--torch-device", default=None, help="Where to run here (cpu, 0, ...); default: the GPU if any."
)
@project_option
@uri_option
@json_option
@handle_errors
def latency(
    run: str,
    device: str,
    imgsz: int | None,
    iters: int,
    warmup: int,
    fmt: str,
    weights: str | None,
    torch_device: str | None,
    project: str | None,
    uri: str | None,
    as_json: bool,
) -> None:
    """Measure RUN's latency on this machine (batch 1, the run's image size) and record
    p50 and p95 for --device; the latency gate of `trialbook decide` uses it."""
    from rich.progress import Progress

    from trialbook.core.format import ms
    from trialbook.services import yolo as service

    with Progress(transient=True, disable=as_json) as progress:
        task = progress.add_task(f"timing {run} ({fmt})", total=iters)
        done = service.latency(
            open_book(uri),
            run,
            device=device,
            project=project,
            imgsz=imgsz,
            iters=iters,
            warmup=warmup,
            fmt=fmt,
            weights=weights,
            torch_device=torch_device,
            step=lambda i: progress.update(task, completed=i),
        )
    if as_json:
        emit_json(done)
        return
    click.echo(
        f"latency of {done['project']}/{done['run']} on {done['device']} ({done['format']}, imgsz "
        f"{done['imgsz']}, batch 1, {done['iters']} runs): p50 {ms(done['p50_ms'])}, "
        f"p95 {ms(done['p95_ms'])}; recorded"
    )


COMMANDS = [yolo]
