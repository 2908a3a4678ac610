"""``trialbook demo --yolo``: the lesson's exercise on real (tiny) training.

It draws a small detection dataset (three coloured shapes, 128 px), tags it, trains two
YOLO11n runs from scratch that differ in one thing (imgsz 128 against 160) with live
tracking, evaluates both on the reserved test split, writes their notes, and decides.
Everything runs offline on the CPU in about a minute; nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trialbook.services.decisions import DecisionView

SHAPES = ["square", "bar", "block"]
TRAIN_ARGS: dict[str, Any] = {
    "epochs": 3,
    "batch": 8,
    "workers": 0,
    "amp": False,
    "device": "cpu",
    "plots": True,
    "verbose": False,
    "seed": 0,
}


def build_yolo_demo(path: str | Path, echo: Callable[[str], None] = print) -> DecisionView:
    root = Path(path).resolve()
    if (root / ".trialbook").exists():
        from trialbook.errors import Conflict

        raise Conflict(f"{root} already holds a book; choose a new folder for the demo")
    from trialbook.integrations import yolo_offline

    yolo_offline.prepare(root / ".yolo-config")
    from trialbook.api import init
    from trialbook.demo.story import write_dataset
    from trialbook.services import datasets, decisions, notes

    book = init(root)
    echo(f"drawing a small detection dataset in {root / 'data' / 'shapes'} ...")
    data_yaml = write_dataset(
        root / "data" / "shapes", {"train": 32, "val": 16, "test": 16}, seed=5, size=128, classes=SHAPES
    )
    datasets.tag(book, "shapes", data_yaml, "v1")
    book.store.ensure_project("shapes")
    book.store.update_protocol(
        "shapes",
        {"latency_budget_ms": 200.0, "device": "cpu"},
        reason="demo: a CPU budget for a tiny model",
        who="demo",
    )

    from ultralytics import YOLO

    from trialbook.integrations.ultralytics import evaluate, track

    yolo_offline.quiet_settings()
    plan = [
        (
            "v1_imgsz_128",
            None,
            128,
            "A 128 px model is enough for 128 px shapes.",
            "Baseline: yolo11n from scratch, imgsz 128, 3 epochs.",
        ),
        (
            "v2_imgsz_160",
            "v1_imgsz_128",
            160,
            "Upsampling to 160 px helps small shapes.",
            "imgsz 128 -> 160; nothing else.",
        ),
    ]
    for name, parent, imgsz, hypothesis, change in plan:
        echo(f"training {name} (imgsz {imgsz}, 3 epochs on CPU) ...")
        model = YOLO("yolo11n.yaml")
        track(model, project="shapes", name=name, dataset="shapes:v1", parent=parent, book=book)
        model.train(
            data=str(data_yaml),
            imgsz=imgsz,
            project=str(root / "runs"),
            name=name,
            exist_ok=True,
            **TRAIN_ARGS,
        )
        echo(f"evaluating {name} on the reserved test split ...")
        evaluate(
            root / "runs" / name / "weights" / "best.pt",
            run=name,
            project="shapes",
            book=book,
            split="test",
            imgsz=imgsz,
            batch=8,
            device="cpu",
            workers=0,
            verbose=False,
        )
        draft = notes.draft_note(book, name, project="shapes")
        book.attach(name, "shapes").note(
            hypothesis=hypothesis,
            change=change,
            result=draft.get("draft", ""),
            next="Train longer before judging: 3 epochs from scratch is a smoke test.",
        )
    echo("deciding v2_imgsz_160 against v1_imgsz_128 ...")
    return decisions.decide(book, "v2_imgsz_160", "v1_imgsz_128", project="shapes")
