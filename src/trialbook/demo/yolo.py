"""``trialbook demo --yolo``: the lesson's exercise on real (tiny) training.

It draws a small detection dataset (three coloured shapes, 128 px), tags it, sets the
protocol (a CPU latency budget), trains two YOLO11n runs from scratch that differ in one
thing (imgsz 128 against 192) with live tracking, evaluates both on the reserved test
split, measures their latency here, writes their notes, and decides, printing the verdict.
It goes through the functions ``trialbook yolo train/val/latency`` call, so it shows what
a user's commands do. Offline on the CPU; nothing is downloaded.

Every file stays under the demo's folder: the book, the dataset, Ultralytics' outputs
(``runs/detect/<run>``) and, unless ``YOLO_CONFIG_DIR`` is set, Ultralytics' settings
(``.ultralytics/``, with its integrations and sync off).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trialbook.services.decisions import DecisionView

SHAPES = ["square", "bar", "block"]
DEFAULT_EPOCHS = 30
LATENCY_ITERS = 30
TARGET = "cpu"  # the target device of the demo's protocol: the machine it runs on
TRAIN_ARGS: dict[str, Any] = {
    "model": "yolo11n.yaml",
    "batch": 8,
    "workers": 0,
    "amp": False,
    "device": "cpu",
    "plots": True,
    "seed": 0,
}
PLAN = [
    (
        "v1_imgsz_128",
        None,
        128,
        "A 128 px model is enough for 128 px shapes.",
        "Baseline: yolo11n from scratch at imgsz 128.",
        "Try a larger input size: small shapes may need more pixels.",
    ),
    (
        "v2_imgsz_192",
        "v1_imgsz_128",
        192,
        "Upsampling to 192 px helps the small shapes.",
        "imgsz 128 -> 192; nothing else.",
        "If it wins, check the latency budget holds on the real target device.",
    ),
]


def quiet_ultralytics(folder: Path) -> None:
    """Ultralytics' settings in ``folder`` (unless ``YOLO_CONFIG_DIR`` is set), with every
    integration and the usage sync off. Before ultralytics is imported."""
    if "YOLO_CONFIG_DIR" not in os.environ:
        folder.mkdir(parents=True, exist_ok=True)
        os.environ["YOLO_CONFIG_DIR"] = str(folder)
    from ultralytics import settings

    names = ("sync", "hub", "clearml", "comet", "dvc", "mlflow", "neptune", "raytune", "tensorboard", "wandb")
    settings.update({k: False for k in names if k in settings})


def build_yolo_demo(
    path: str | Path, echo: Callable[[str], None] = print, *, epochs: int = DEFAULT_EPOCHS
) -> DecisionView:
    root = Path(path).resolve()
    if (root / ".trialbook").exists():
        from trialbook.errors import Conflict

        raise Conflict(f"{root} already holds a book; choose a new folder for the demo")
    from trialbook.services.yolo import require_ultralytics

    require_ultralytics()
    quiet_ultralytics(root / ".ultralytics")
    from trialbook.api import init
    from trialbook.demo.story import write_dataset
    from trialbook.services import datasets, decisions, notes, projects
    from trialbook.services import yolo as yolo_service

    book = init(root)
    echo(f"drawing a small detection dataset in {root / 'data' / 'shapes'} ...")
    data_yaml = write_dataset(
        root / "data" / "shapes", {"train": 40, "val": 20, "test": 20}, seed=5, size=128, classes=SHAPES
    )
    datasets.tag(book, "shapes", data_yaml, "v1")
    projects.create_project(
        book,
        "shapes",
        {"latency_budget_ms": 200.0, "device": TARGET},
        reason="demo: a CPU budget for a tiny model",
    )
    runs_dir = root / "runs"
    for name, parent, imgsz, hypothesis, change, next_step in PLAN:
        echo(f"training {name} (imgsz {imgsz}, {epochs} epochs on the CPU) ...")
        plan = yolo_service.plan_train(
            book,
            name,
            {
                **TRAIN_ARGS,
                "data": str(data_yaml),
                "imgsz": imgsz,
                "epochs": epochs,
                "project": str(runs_dir / "detect"),
            },
            parent=parent,
        )
        yolo_service.train(book, plan)
        echo(f"evaluating {name} on the reserved test split (sealed) ...")
        yolo_service.val(book, name, split="test", device="cpu", runs_dir=runs_dir)
        echo(f"measuring the latency of {name} here ({LATENCY_ITERS} predictions) ...")
        yolo_service.latency(book, name, device=TARGET, iters=LATENCY_ITERS, warmup=3, torch_device="cpu")
        draft = notes.draft_note(book, name, project="shapes")
        book.attach(name, "shapes").note(
            hypothesis=hypothesis, change=change, result=draft.get("draft", ""), next=next_step
        )
    echo("deciding v2_imgsz_192 against v1_imgsz_128 ...")
    return decisions.decide(book, "v2_imgsz_192", "v1_imgsz_128", project="shapes")
