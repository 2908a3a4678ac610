"""Writers of small YOLO datasets on disk: fake image bytes, real labels, data.yaml."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import yaml

Row = Sequence[float]
# image name -> label rows (None: no label file at all, a background image)
SplitSpec = Mapping[str, "Sequence[Row] | None"]

NAMES = ["cat", "dog", "bird"]


def write_image(path: Path, content: bytes | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if content is not None else f"image {path.name}".encode())
    return path


def write_label(path: Path, rows: Iterable[Row]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(" ".join(_num(v) for v in row) + "\n" for row in rows))
    return path


def box(cls: int) -> list[float]:
    """A detect row of class ``cls``."""
    return [cls, 0.5, 0.5, 0.25, 0.25]


def polygon(cls: int) -> list[float]:
    """A segment row of class ``cls``: a triangle."""
    return [cls, 0.1, 0.1, 0.9, 0.1, 0.5, 0.9]


def pose(cls: int) -> list[float]:
    """A pose row of class ``cls``: a box and two keypoints with visibility."""
    return [cls, 0.5, 0.5, 0.2, 0.2, 0.4, 0.4, 2, 0.6, 0.6, 1]


def obb(cls: int) -> list[float]:
    """An OBB row of class ``cls``: four corners."""
    return [cls, 0.1, 0.1, 0.9, 0.1, 0.9, 0.9, 0.1, 0.9]


def write_split(root: Path, split: str, files: SplitSpec) -> None:
    """images/<split>/<name> and labels/<split>/<stem>.txt under ``root``."""
    for name, rows in files.items():
        write_image(root / "images" / split / name)
        if rows is not None:
            stem = name.rsplit(".", 1)[0]
            write_label(root / "labels" / split / f"{stem}.txt", rows)


def write_yaml(path: Path, data: Mapping[str, object]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(dict(data), sort_keys=False))
    return path


def make_dataset(
    root: Path,
    splits: Mapping[str, SplitSpec] | None = None,
    *,
    names: Sequence[str] = NAMES,
    config: Mapping[str, object] | None = None,
) -> Path:
    """A standard dataset under ``root`` and its data.yaml (returned)."""
    splits = splits if splits is not None else default_splits()
    for split, files in splits.items():
        write_split(root, split, files)
    data: dict[str, object] = {**{s: f"images/{s}" for s in splits}, "names": list(names)}
    data.update(config or {})
    return write_yaml(root / "data.yaml", data)


def default_splits() -> dict[str, dict[str, list[list[float]] | None]]:
    return {
        "train": {
            "a.jpg": [box(0), box(0), box(1)],
            "b.png": [box(1)],
            "c.jpg": None,  # background: no label file
            "d.jpg": [],  # background: empty label file
        },
        "val": {"e.jpg": [box(2)], "f.jpg": [box(0), box(2), box(2)]},
        "test": {"g.jpg": [box(1)]},
    }


def age(root: Path, seconds: float = 3600) -> None:
    """Move every mtime under ``root`` into the past, so the stat cache may keep them
    (files changed in the last two seconds are never cached)."""
    then = time.time() - seconds
    for folder, _, files in os.walk(root):
        for name in files:
            os.utime(os.path.join(folder, name), (then, then))


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.6f}"
