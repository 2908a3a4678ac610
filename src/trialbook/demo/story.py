"""``trialbook demo``: a book that shows the whole product in one command.

It draws a small real YOLO dataset (PNG images with boxes around drawn shapes, label
files, a ``data.yaml``), tags two versions of it, and records the pallets story:

* ``v1_baseline`` on ``pallets:v1``, imgsz 640;
* ``v2_imgsz_1024`` (parent v1), the image size raised: a little better, slower;
* ``v3_pallets_added_imgsz_640`` (parent v2) on ``pallets:v2``, which has more pallet
  images, back at imgsz 640.

The per-epoch curves and evaluation numbers are **generated** (seeded, deterministic),
not trained; ``trialbook demo --yolo`` (with the ultralytics extra) trains for real.
"""

from __future__ import annotations

import math
import random
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trialbook.api import Book, init
from trialbook.services import datasets

CLASSES = ["pallet", "forklift", "person", "box"]

DETECT_KEYS = (
    "train/box_loss",
    "train/cls_loss",
    "train/dfl_loss",
    "metrics/precision(B)",
    "metrics/recall(B)",
    "metrics/mAP50(B)",
    "metrics/mAP50-95(B)",
    "val/box_loss",
    "val/cls_loss",
    "val/dfl_loss",
    "lr/pg0",
    "lr/pg1",
    "lr/pg2",
)


# --------------------------------------------------------------------------- images
def png_bytes(width: int, height: int, pixels: bytearray) -> bytes:
    """A valid RGB PNG of ``pixels`` (row-major, 3 bytes a pixel), stdlib only."""
    raw = b"".join(b"\x00" + bytes(pixels[y * width * 3 : (y + 1) * width * 3]) for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


_COLORS = [(200, 140, 60), (240, 200, 0), (40, 90, 220), (150, 60, 160)]


def draw_image(rng: random.Random, size: int, classes: list[int]) -> tuple[bytes, list[str]]:
    """An image with one filled rectangle per class id, and its YOLO label rows."""
    bg = [rng.randrange(30, 90) for _ in range(3)]
    pixels = bytearray(bytes(bg) * (size * size))
    rows = []
    for cls in classes:
        w, h = rng.randrange(size // 6, size // 2), rng.randrange(size // 6, size // 2)
        x0, y0 = rng.randrange(0, size - w), rng.randrange(0, size - h)
        color = bytes(_COLORS[cls % len(_COLORS)])
        for y in range(y0, y0 + h):
            start = (y * size + x0) * 3
            pixels[start : start + w * 3] = color * w
        rows.append(
            f"{cls} {(x0 + w / 2) / size:.6f} {(y0 + h / 2) / size:.6f} {w / size:.6f} {h / size:.6f}"
        )
    return png_bytes(size, size, pixels), rows


def write_dataset(
    root: Path,
    counts: dict[str, int],
    *,
    seed: int,
    size: int = 64,
    extra_pallets: int = 0,
    classes: list[str] | None = None,
) -> Path:
    """Write (or extend) a YOLO dataset under ``root``; return its ``data.yaml``."""
    rng = random.Random(seed)
    names = classes or CLASSES
    for split, n in counts.items():
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            drawn = [rng.randrange(len(names)) for _ in range(rng.randrange(1, 4))]
            _write_pair(root, split, f"{split}_{i:04d}", *draw_image(rng, size, drawn))
    for i in range(extra_pallets):
        _write_pair(root, "train", f"pallet_extra_{i:04d}", *draw_image(rng, size, [0, 0]))
    data_yaml = root / "data.yaml"
    listed = "\n".join(f"  {i}: {n}" for i, n in enumerate(names))
    splits = "".join(
        f"{split}: images/{split}\n"
        for split in ("train", "val", "test")
        if (root / "images" / split).is_dir()
    )
    data_yaml.write_text(f"{splits}names:\n{listed}\n")
    return data_yaml


def _write_pair(root: Path, split: str, stem: str, image: bytes, rows: list[str]) -> None:
    (root / "images" / split / f"{stem}.png").write_bytes(image)
    (root / "labels" / split / f"{stem}.txt").write_text("\n".join(rows) + "\n")


# --------------------------------------------------------------------------- curves
def curves(
    rng: random.Random, epochs: int, final_map: float, tau: float, lr0: float
) -> list[dict[str, float]]:
    """Plausible Ultralytics detection curves for ``epochs`` epochs (generated)."""
    out = []
    for e in range(epochs):
        p = 1 - math.exp(-(e + 1) / tau)
        jitter = rng.gauss(0, 0.004)
        map5095 = max(0.0, final_map * p + jitter)
        map50 = min(0.99, map5095 * 1.45 + rng.gauss(0, 0.004))
        lr = lr0 * (1 - e / epochs) + lr0 * 0.01
        row = {
            "train/box_loss": 1.6 - 0.7 * p + rng.gauss(0, 0.01),
            "train/cls_loss": 2.4 - 1.5 * p + rng.gauss(0, 0.015),
            "train/dfl_loss": 1.4 - 0.35 * p + rng.gauss(0, 0.008),
            "metrics/precision(B)": min(0.99, 0.35 + 0.5 * p + rng.gauss(0, 0.01)),
            "metrics/recall(B)": min(0.99, 0.3 + 0.45 * p + rng.gauss(0, 0.01)),
            "metrics/mAP50(B)": map50,
            "metrics/mAP50-95(B)": map5095,
            "val/box_loss": 1.7 - 0.6 * p + rng.gauss(0, 0.012),
            "val/cls_loss": 2.5 - 1.3 * p + rng.gauss(0, 0.015),
            "val/dfl_loss": 1.5 - 0.3 * p + rng.gauss(0, 0.01),
            "lr/pg0": lr,
            "lr/pg1": lr,
            "lr/pg2": lr,
        }
        out.append(row)
    return out


def confusion(rng: random.Random, per_class: dict[str, float], n: int = 60) -> list[list[float]]:
    """A (classes + background) square matrix whose diagonal follows the class APs."""
    k = len(CLASSES)
    matrix = [[0.0] * (k + 1) for _ in range(k + 1)]
    for i, name in enumerate(CLASSES):
        hit = round(n * min(0.98, per_class[name] + 0.3))
        matrix[i][i] = float(hit)
        miss = n - hit
        for _ in range(miss):
            matrix[rng.randrange(k + 1)][i] += 1.0
    for j in range(k):
        matrix[j][k] = float(rng.randrange(0, 6))
    return matrix


STORY: list[dict[str, Any]] = [
    {
        "name": "v1_baseline",
        "parent": None,
        "dataset": "pallets:v1",
        "seed": 1,
        "config": {
            "model": "yolo11n.pt",
            "imgsz": 640,
            "epochs": 60,
            "batch": 16,
            "lr0": 0.01,
            "mosaic": 1.0,
            "seed": 0,
        },
        "final_map": 0.51,
        "tau": 12.0,
        "latency_ms": 4.1,
        "per_class": {"pallet": 0.31, "forklift": 0.62, "person": 0.58, "box": 0.53},
        "test_map": 0.50,
        "note": {
            "hypothesis": "A stock yolo11n at 640 px is a fair baseline for the dock cameras.",
            "change": "Nothing: first run on pallets:v1.",
            "next": "Try a larger image size: pallets are small at the far end of the dock.",
        },
    },
    {
        "name": "v2_imgsz_1024",
        "parent": "v1_baseline",
        "dataset": "pallets:v1",
        "seed": 2,
        "config": {
            "model": "yolo11n.pt",
            "imgsz": 1024,
            "epochs": 60,
            "batch": 8,
            "lr0": 0.01,
            "mosaic": 1.0,
            "seed": 0,
        },
        "final_map": 0.53,
        "tau": 14.0,
        "latency_ms": 9.8,
        "per_class": {"pallet": 0.36, "forklift": 0.63, "person": 0.60, "box": 0.54},
        "test_map": 0.52,
        "note": {
            "hypothesis": "Small far pallets are missed at 640 px; 1024 px should find them.",
            "change": "imgsz 640 -> 1024 (batch 16 -> 8 to fit memory).",
            "next": "Latency is over the 8 ms budget: get more pallet images instead.",
        },
    },
    {
        "name": "v3_pallets_added_imgsz_640",
        "parent": "v2_imgsz_1024",
        "dataset": "pallets:v2",
        "seed": 3,
        "config": {
            "model": "yolo11n.pt",
            "imgsz": 640,
            "epochs": 60,
            "batch": 16,
            "lr0": 0.01,
            "mosaic": 1.0,
            "seed": 0,
        },
        "final_map": 0.59,
        "tau": 10.0,
        "latency_ms": 4.2,
        "per_class": {"pallet": 0.58, "forklift": 0.64, "person": 0.61, "box": 0.57},
        "test_map": 0.58,
        "note": {
            "hypothesis": "Pallet AP is limited by data, not resolution.",
            "change": "pallets:v2 adds labelled pallet images; imgsz back to 640.",
            "next": "Decide against v2; if it wins, check night footage next.",
        },
    },
]


def record_run(book: Book, spec: dict[str, Any], project: str = "pallets") -> None:
    rng = random.Random(spec["seed"])
    cfg = spec["config"]
    with book.start(
        project,
        spec["name"],
        dataset=spec["dataset"],
        parent=spec["parent"],
        config={**cfg, "data": "data/pallets/data.yaml"},
        tags={"source": "trialbook demo (generated curves)"},
        system_metrics=False,  # generated curves: this machine did not train them
    ) as run:
        rows = curves(rng, cfg["epochs"], spec["final_map"], spec["tau"], cfg["lr0"])
        for epoch, row in enumerate(rows):
            run.log(row, epoch=epoch)
        last = rows[-1]
        val_metrics = {k: last[k] for k in DETECT_KEYS if k.startswith("metrics/")}
        val_metrics["metrics/mAP50-95(B)"] = spec["final_map"]
        run.log_eval(
            "val",
            val_metrics,
            per_class_ap=spec["per_class"],
            confusion_matrix=confusion(rng, spec["per_class"]),
            class_names=CLASSES,
            latency_ms=spec["latency_ms"],
            device="jetson-orin-nx",
        )
        test_per_class = {
            k: round(max(0.0, v - 0.01 + rng.gauss(0, 0.005)), 4) for k, v in spec["per_class"].items()
        }
        run.log_eval(
            "test",
            {"metrics/mAP50-95(B)": spec["test_map"]},
            per_class_ap=test_per_class,
            latency_ms=spec["latency_ms"],
            device="jetson-orin-nx",
        )
        result = f"overall mAP50-95 {spec['final_map']:.2f}; pallet AP {spec['per_class']['pallet']:.2f}"
        run.note(result=result, **spec["note"])


def build_demo(path: str | Path, echo: Callable[[str], None] = print) -> Book:
    """Build the demo book in ``path`` (a new or empty folder) and return it."""
    root = Path(path)
    if (root / ".trialbook").exists():
        from trialbook.errors import Conflict

        raise Conflict(f"{root} already holds a book; choose a new folder for the demo")
    book = init(root)
    data = root / "data" / "pallets"
    echo(f"drawing a small YOLO dataset in {data} ...")
    data_yaml = write_dataset(data, {"train": 48, "val": 16, "test": 16}, seed=7)
    datasets.tag(book, "pallets", data_yaml, "v1")
    book.store.ensure_project("pallets")
    book.store.update_protocol(
        "pallets",
        {"latency_budget_ms": 8.0, "device": "jetson-orin-nx", "convergence_target": 0.45},
        reason="demo: the dock cameras run on a Jetson Orin NX at 8 ms a frame",
        who="demo",
    )
    for spec in STORY:
        if spec["dataset"] == "pallets:v2":
            echo("adding 24 pallet images and tagging pallets:v2 ...")
            write_dataset(data, {}, seed=11, extra_pallets=24)
            datasets.tag(book, "pallets", data_yaml, "v2")
        echo(f"recording {spec['name']} (generated curves) ...")
        record_run(book, spec)
    echo(f"demo book ready in {root} (curves are generated; `trialbook demo --yolo` trains)")
    return book
