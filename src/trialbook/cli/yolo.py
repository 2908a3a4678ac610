"""``trialbook yolo``: train with Ultralytics, recorded live."""

from __future__ import annotations

from typing import Any

import click

from trialbook.cli.options import handle_errors, uri_option


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
@click.option("--parent", default=None, help="The run this one changes (lineage).")
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
    """Train NAME: trialbook yolo train v2_imgsz_1024 -d pallets:v1 -- model=yolo11n.pt
    data=data.yaml imgsz=1024 epochs=100"""
    from trialbook.errors import InvalidInput

    args = parse_yolo_args(yolo_args)
    if "data" not in args:
        raise InvalidInput("give the dataset to Ultralytics as well: -- data=path/to/data.yaml")
    try:
        from ultralytics import YOLO
    except ImportError:
        raise click.ClickException(
            "ultralytics is not installed: pip install 'trialbook[ultralytics]'"
        ) from None
    from trialbook.integrations.ultralytics import track

    model = YOLO(args.pop("model", "yolo11n.pt"))
    project = project or (dataset.split(":", 1)[0] if dataset else "yolo")
    track(
        model,
        project=project,
        name=name,
        dataset=dataset,
        parent=parent,
        allow_unpinned=allow_unpinned,
        uri=uri,
    )
    model.train(**args)
    click.echo(f"recorded {project}/{name}")


COMMANDS = [yolo]
