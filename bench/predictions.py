"""Benchmark: the final validation's time with and without recording every image's
predictions and thumbnail (issue 14: recording adds at most 10 %).

Generates a YOLO dataset of ``--images`` val images (640x480 JPEGs, drawn boxes, label
files), builds yolo11n from its YAML (no download) and raises its class biases so that
every image gets ``max_det`` (300) predictions above the confidence floor: the most the
recorder ever has to keep (``--boxes none`` keeps the untrained model's, none at all).
Then, in rounds (the arms interleaved, median of ``--repeat`` reported), it times
``model.val(...)`` as a training's ``final_eval`` runs it (plots on, batch 32):

1. without: the plain validation;
2. with, thumbnails made here: a ``PredictionRecorder`` attached, and after the
   validation its ``record()`` into an embedded book (``predictions.json.gz`` plus every
   thumbnail stored as a blob), with an empty thumbnail cache: ``yolo val`` of a split
   this process has not seen;
3. with, thumbnails made before: the same, the images already hashed and thumbnailed in
   this process: a training's final validation (the tracker makes them in a background
   thread of the lowest priority while the model trains), or a second evaluation.

    .venv/bin/python bench/predictions.py                     # 300 images, imgsz 320, CPU
    .venv/bin/python bench/predictions.py --device 0 --images 1000
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CLASSES = ["pallet", "forklift", "person", "box"]


def generate(root: Path, images: int, seed: int = 0) -> Path:
    """``images`` 640x480 JPEGs with 1-6 filled rectangles over a noisy gradient, their
    label files, and a data.yaml (train and val both name them: only val is read)."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    noise = np.random.default_rng(seed)
    (root / "images" / "val").mkdir(parents=True)
    (root / "labels" / "val").mkdir(parents=True)
    ramp = np.linspace(40, 200, 640, dtype=np.float32)[None, :, None]
    for i in range(images):
        base = ramp + noise.normal(0, 12, (480, 640, 3)).astype(np.float32)
        image = Image.fromarray(base.clip(0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(image)
        rows = []
        for _ in range(rng.randrange(1, 7)):
            cls = rng.randrange(len(CLASSES))
            w, h = rng.randrange(40, 260), rng.randrange(40, 220)
            x0, y0 = rng.randrange(0, 640 - w), rng.randrange(0, 480 - h)
            draw.rectangle((x0, y0, x0 + w, y0 + h), fill=tuple(rng.randrange(256) for _ in range(3)))
            rows.append(
                f"{cls} {(x0 + w / 2) / 640:.6f} {(y0 + h / 2) / 480:.6f} {w / 640:.6f} {h / 480:.6f}"
            )
        image.save(root / "images" / "val" / f"{i:05d}.jpg", quality=90)
        (root / "labels" / "val" / f"{i:05d}.txt").write_text("\n".join(rows) + "\n")
    names = "".join(f"  {i}: {n}\n" for i, n in enumerate(CLASSES))
    data = root / "data.yaml"
    data.write_text(f"path: {root}\ntrain: images/val\nval: images/val\nnames:\n{names}")
    return data


def build_model(boxes: str) -> Any:
    """yolo11n for the dataset's classes, from its YAML (random weights)."""
    from ultralytics import YOLO
    from ultralytics.nn.tasks import DetectionModel

    model: Any = YOLO("yolo11n.yaml")
    model.model = DetectionModel("yolo11n.yaml", nc=len(CLASSES), verbose=False)
    model.model.names = dict(enumerate(CLASSES))
    if boxes == "max":
        for head in model.model.model[-1].cv3:
            head[-1].bias.data[:] = 0.0  # class scores near 0.5: max_det boxes an image,
            head[-1].weight.data.normal_(0.0, 0.05)  # spread by what each image shows
    return model


def timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (this process, every thread) of ``fn()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--boxes", choices=["max", "none"], default="max")
    parser.add_argument("--max-det", type=int, default=300, help="predictions an image at most")
    parser.add_argument("--keep", action="store_true", help="keep the work folder under bench/.work")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="predictions-", dir=_work_root()))
    os.environ.setdefault("YOLO_CONFIG_DIR", str(work / "ultralytics"))  # before ultralytics is imported
    import trialbook as tb
    from trialbook.core import predictions as fmt
    from trialbook.integrations.ultralytics import quiet_console
    from trialbook.integrations.yolo_review import THUMBS, PredictionRecorder, Thumbnails

    try:
        data = generate(work / "data", args.images)
        model = build_model(args.boxes)
        book = tb.init(work / "book")
        run = book.start("bench", "v1_bench", allow_unpinned=True)
        current: list[PredictionRecorder] = []
        model.add_callback("on_val_start", lambda v: current[0].on_val_start(v) if current else None)
        val_args = dict(data=str(data), imgsz=args.imgsz, batch=args.batch, device=args.device, workers=0)
        val_args["max_det"] = args.max_det
        val_args.update(plots=True, verbose=False, project=str(work / "runs"), name="val", exist_ok=True)
        recorded: list[int | None] = []

        def plain() -> None:
            current.clear()
            model.val(**val_args)

        def recording(thumbnails: Thumbnails) -> None:
            recorder = PredictionRecorder("val", thumbnails)
            current[:] = [recorder]
            model.val(**val_args)
            evaluation = run.log_eval("val", {"metrics/mAP50-95(B)": 0.0})
            recorded.append(recorder.record(run, evaluation))

        cold, warm = "with, thumbnails made here", "with, thumbnails made before"
        arms: dict[str, list[tuple[float, float]]] = {"without": [], cold: [], warm: []}
        with quiet_console():
            plain()  # warm-up: imports, the label cache, the page cache
            recording(THUMBS)  # fills this process's cache for the warm arm
            for _ in range(args.repeat):
                arms["without"].append(timed(plain))
                arms[cold].append(timed(lambda: recording(Thumbnails())))
                arms[warm].append(timed(lambda: recording(THUMBS)))
        run.finish()
        stored = [a for a in book.store.list_artifacts(run.id) if a.name == fmt.ARTIFACT_NAME]
        last = fmt.decode(book.blobs.get_bytes(stored[-1].digest))
        boxes = sum(len(i.pred) for i in last.images)
        assert all(n == args.images for n in recorded), recorded

        print(
            f"{args.images} val images 640x480 JPEG, imgsz {args.imgsz}, batch {args.batch}, "
            f"device {args.device}, {boxes / args.images:.0f} predictions an image kept "
            f"(conf >= {fmt.CONF_FLOOR}); predictions.json.gz {stored[-1].size / 1024:.0f} KiB, "
            f"{len(last.thumbs)} thumbnails"
        )
        print(
            f"Python {platform.python_version()}, {os.cpu_count()} CPUs, "
            f"{platform.processor() or platform.machine()}, load average {os.getloadavg()[0]:.2f}"
        )
        print()
        wall = {arm: statistics.median(t[0] for t in times) for arm, times in arms.items()}
        cpu = {arm: statistics.median(t[1] for t in times) for arm, times in arms.items()}
        head = f"final validation (median of {args.repeat})"
        print(f"| {head} | wall s | per image | overhead | CPU s | overhead |")
        print("|---|---:|---:|---:|---:|---:|")
        for arm in arms:
            over = "" if arm == "without" else f"{(wall[arm] / wall['without'] - 1) * 100:+.1f} %"
            cpu_over = "" if arm == "without" else f"{(cpu[arm] / cpu['without'] - 1) * 100:+.1f} %"
            per_image = wall[arm] / args.images * 1000
            print(f"| {arm} | {wall[arm]:.2f} | {per_image:.1f} ms | {over} | {cpu[arm]:.2f} | {cpu_over} |")
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def _work_root() -> Path:
    root = HERE / ".work"
    root.mkdir(exist_ok=True)
    return root


if __name__ == "__main__":
    sys.exit(main())
