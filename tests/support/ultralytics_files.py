"""Writers of realistic Ultralytics files for the importer tests.

The files are written the way the tools write them: YOLOv8.0 pads header and cells to 23
characters (``'%23s,'`` / ``'%23.5g,'``) and counts epochs from 0; newer Ultralytics writes
plain CSV, counts from 1 and adds a ``time`` column; YOLOv5 pads to 20 characters, counts
from 0 and uses its own key names.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

DETECT = [
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
]
SEGMENT = [
    "train/box_loss",
    "train/seg_loss",
    "train/cls_loss",
    "train/dfl_loss",
    "train/sem_loss",
    "metrics/precision(B)",
    "metrics/recall(B)",
    "metrics/mAP50(B)",
    "metrics/mAP50-95(B)",
    "metrics/precision(M)",
    "metrics/recall(M)",
    "metrics/mAP50(M)",
    "metrics/mAP50-95(M)",
    "val/box_loss",
    "val/seg_loss",
    "val/cls_loss",
    "val/dfl_loss",
    "val/sem_loss",
    "lr/pg0",
    "lr/pg1",
    "lr/pg2",
]
POSE = [
    "train/box_loss",
    "train/pose_loss",
    "train/kobj_loss",
    "train/cls_loss",
    "train/dfl_loss",
    "metrics/precision(B)",
    "metrics/recall(B)",
    "metrics/mAP50(B)",
    "metrics/mAP50-95(B)",
    "metrics/precision(P)",
    "metrics/recall(P)",
    "metrics/mAP50(P)",
    "metrics/mAP50-95(P)",
    "val/box_loss",
    "val/pose_loss",
    "val/kobj_loss",
    "val/cls_loss",
    "val/dfl_loss",
    "lr/pg0",
    "lr/pg1",
    "lr/pg2",
]
OBB = [
    "train/box_loss",
    "train/cls_loss",
    "train/dfl_loss",
    "train/angle_loss",
    "metrics/precision(B)",
    "metrics/recall(B)",
    "metrics/mAP50(B)",
    "metrics/mAP50-95(B)",
    "val/box_loss",
    "val/cls_loss",
    "val/dfl_loss",
    "val/angle_loss",
    "lr/pg0",
    "lr/pg1",
    "lr/pg2",
]
CLASSIFY = [
    "train/loss",
    "metrics/accuracy_top1",
    "metrics/accuracy_top5",
    "val/loss",
    "lr/pg0",
    "lr/pg1",
    "lr/pg2",
]
V10 = [
    "train/box_om",
    "train/cls_om",
    "train/dfl_om",
    "train/box_oo",
    "train/cls_oo",
    "train/dfl_oo",
    "metrics/precision(B)",
    "metrics/recall(B)",
    "metrics/mAP50(B)",
    "metrics/mAP50-95(B)",
    "val/box_om",
    "val/cls_om",
    "val/dfl_om",
    "val/box_oo",
    "val/cls_oo",
    "val/dfl_oo",
    "lr/pg0",
    "lr/pg1",
    "lr/pg2",
]
YOLOV5 = [
    "train/box_loss",
    "train/obj_loss",
    "train/cls_loss",
    "metrics/precision",
    "metrics/recall",
    "metrics/mAP_0.5",
    "metrics/mAP_0.5:0.95",
    "val/box_loss",
    "val/obj_loss",
    "val/cls_loss",
    "x/lr0",
    "x/lr1",
    "x/lr2",
]


def value_for(key: str, epoch: int) -> float:
    """A plausible value: losses fall, metrics rise, lr decays."""
    if "loss" in key or key.endswith(("_om", "_oo")):
        return round(2.0 / (1 + epoch) + 0.1, 5)
    if key.startswith(("lr/", "x/lr")):
        return round(0.01 * (1 - epoch / 200), 6)
    if key == "time":
        return round(12.5 * (epoch + 1), 3)
    return round(min(0.99, 0.1 + 0.05 * epoch), 5)


def results_csv(
    keys: Sequence[str],
    epochs: Sequence[int],
    *,
    style: str = "plain",
    time_column: bool = False,
    newline: str = "\n",
    cells: dict[tuple[int, str], str] | None = None,
) -> str:
    """A results.csv as Ultralytics writes it. ``style``: ``plain`` (8.1+), ``padded``
    (YOLOv8.0: 23 wide) or ``v5`` (YOLOv5: 20 wide). ``cells`` overrides (epoch, key)."""
    names = ["epoch", *(["time"] if time_column else []), *keys]
    width = {"padded": 23, "v5": 20}.get(style)
    lines = []
    lines.append(",".join(f"{n:>{width}}" if width else n for n in names))
    for e in epochs:
        row = []
        for n in names:
            if cells and (e, n) in cells:
                text = cells[(e, n)]
            elif n == "epoch":
                text = str(e)
            else:
                v = value_for(n, e)
                text = f"{v:.5g}" if width else repr(v)
            row.append(f"{text:>{width}}" if width else text)
        lines.append(",".join(row))
    return newline.join(lines) + newline


def args_yaml(
    task: str = "detect",
    epochs: int = 100,
    name: str = "train",
    save_dir: str = "runs/detect/train",
    **extra: Any,
) -> dict[str, Any]:
    """A slice of a real args.yaml (ultralytics 8.x) with its key order."""
    args: dict[str, Any] = {
        "task": task,
        "mode": "train",
        "model": f"yolo11n{'-' + task if task != 'detect' else ''}.pt",
        "data": "coco8.yaml",
        "epochs": epochs,
        "time": None,
        "patience": 100,
        "batch": 16,
        "imgsz": 640,
        "save": True,
        "save_period": -1,
        "cache": False,
        "device": None,
        "workers": 8,
        "project": None,
        "name": name,
        "exist_ok": False,
        "pretrained": True,
        "optimizer": "auto",
        "verbose": True,
        "seed": 0,
        "deterministic": True,
        "single_cls": False,
        "rect": False,
        "cos_lr": False,
        "close_mosaic": 10,
        "resume": False,
        "amp": True,
        "fraction": 1.0,
        "lr0": 0.01,
        "lrf": 0.01,
        "momentum": 0.937,
        "weight_decay": 0.0005,
        "warmup_epochs": 3.0,
        "box": 7.5,
        "cls": 0.5,
        "dfl": 1.5,
        "hsv_h": 0.015,
        "mosaic": 1.0,
        "mixup": 0.0,
        "save_dir": save_dir,
    }
    args.update(extra)
    return args


def opt_yaml(epochs: int = 3, hyp: Any = None) -> dict[str, Any]:
    """A slice of a real YOLOv5 opt.yaml: hyperparameters nested under ``hyp``."""
    return {
        "weights": "yolov5s.pt",
        "cfg": "",
        "data": "data/coco128.yaml",
        "hyp": hyp
        if hyp is not None
        else {
            "lr0": 0.01,
            "lrf": 0.01,
            "momentum": 0.937,
            "weight_decay": 0.0005,
            "warmup_epochs": 3.0,
            "box": 0.05,
            "cls": 0.5,
            "obj": 1.0,
            "iou_t": 0.2,
            "anchor_t": 4.0,
            "fl_gamma": 0.0,
            "mosaic": 1.0,
            "mixup": 0.0,
        },
        "epochs": epochs,
        "batch_size": 16,
        "imgsz": 640,
        "rect": False,
        "resume": False,
        "nosave": False,
        "noval": False,
        "evolve": None,
        "cache": None,
        "device": "",
        "multi_scale": False,
        "single_cls": False,
        "optimizer": "SGD",
        "workers": 8,
        "project": "runs/train",
        "name": "exp",
        "exist_ok": False,
        "save_dir": "runs/train/exp",
    }


class RunFolder(Protocol):
    """The ``run_folder`` fixture of tests/integrations/importers: writes an Ultralytics run
    folder under tmp_path (args.yaml, results.csv, weights/) and returns its path."""

    def __call__(
        self,
        rel: str = ...,
        *,
        keys: Sequence[str] = ...,
        epochs: Sequence[int] = ...,
        style: str = ...,
        time_column: bool = ...,
        newline: str = ...,
        args: dict[str, Any] | bool | None = ...,
        opt: dict[str, Any] | None = ...,
        weights: bool = ...,
        cells: dict[tuple[int, str], str] | None = ...,
        csv_text: str | None = ...,
    ) -> Path: ...
