"""Live tracking beyond detection: a segmentation and a classification training, one
epoch each on the CPU, recorded through ``track``. Needs the ultralytics extra (see
test_yolo_e2e.py for the skip/fail rule)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from support.extras import require_ultralytics, yolo_env

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent("""
    import json, random, sys
    from pathlib import Path
    root = Path(sys.argv[1])
    import trialbook as tb
    from trialbook.demo.story import draw_image
    from trialbook.services import datasets
    book = tb.init(root)
    rng = random.Random(3)
    names = ["square", "bar"]

    # segmentation: each drawn rectangle becomes a four-point polygon
    seg = root / "seg"
    for split, n in (("train", 16), ("val", 8)):
        (seg / "images" / split).mkdir(parents=True)
        (seg / "labels" / split).mkdir(parents=True)
        for i in range(n):
            image, rows = draw_image(rng, 64, [rng.randrange(2)])
            polys = []
            for row in rows:
                c, x, y, w, h = row.split()
                x, y, w, h = map(float, (x, y, w, h))
                pts = [x - w / 2, y - h / 2, x + w / 2, y - h / 2, x + w / 2, y + h / 2, x - w / 2, y + h / 2]
                polys.append(c + " " + " ".join(f"{p:.5f}" for p in pts))
            (seg / "images" / split / f"{i}.png").write_bytes(image)
            (seg / "labels" / split / f"{i}.txt").write_text("\\n".join(polys) + "\\n")
    (seg / "data.yaml").write_text("train: images/train\\nval: images/val\\nnames: [square, bar]\\n")
    datasets.tag(book, "segshapes", seg / "data.yaml", "v1")

    # classification: one folder per class
    cls = root / "cls"
    for split, n in (("train", 8), ("val", 4)):
        for k, name in enumerate(names):
            folder = cls / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                (folder / f"{i}.png").write_bytes(draw_image(rng, 32, [k])[0])

    from ultralytics import YOLO
    from trialbook.integrations.ultralytics import track
    common = dict(epochs=1, batch=8, workers=0, amp=False, device="cpu", plots=False,
                  verbose=False, project=str(root / "runs"), exist_ok=True)
    model = YOLO("yolo11n-seg.yaml")
    track(model, project="seg", name="v1_seg_smoke", book=book)  # pinned by digest
    model.train(data=str(seg / "data.yaml"), imgsz=64, name="seg", **common)
    model = YOLO("yolo11n-cls.yaml")
    track(model, project="cls", name="v1_cls_smoke", book=book, allow_unpinned=True)
    model.train(data=str(cls), imgsz=32, name="cls", **common)
    print("DONE")
""")


def test_segmentation_and_classification_are_tracked(tmp_path: Path) -> None:
    require_ultralytics()
    env = yolo_env(tmp_path / "ultralytics")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0 and "DONE" in done.stdout, done.stderr[-3000:]
    import trialbook as tb

    book = tb.Book.open(str(tmp_path))
    seg = book.run("v1_seg_smoke", "seg")
    assert seg.status == "finished" and seg.pinned and seg.dataset == "segshapes:v1"
    keys = set(book.store.get_summaries([seg.id])[seg.id])
    assert {"metrics/mAP50-95(M)", "metrics/mAP50-95(B)", "train/seg_loss"} <= keys
    assert book.store.get_history([seg.id], "metrics/mAP50-95(M)")[seg.id][0][0] == 1
    (val,) = book.store.list_evaluations([seg.id])
    assert "metrics/mAP50-95(M)" in val.metrics and set(val.per_class_ap) <= {"square", "bar"}

    cls = book.run("v1_cls_smoke", "cls")
    assert cls.status == "finished" and cls.pinned is False
    summary = book.store.get_summaries([cls.id])[cls.id]
    assert "metrics/accuracy_top1" in summary and summary["metrics/accuracy_top1"].count == 1
    (val,) = book.store.list_evaluations([cls.id])
    assert "metrics/accuracy_top1" in val.metrics
    assert json.dumps(val.per_class_ap) == "{}"
