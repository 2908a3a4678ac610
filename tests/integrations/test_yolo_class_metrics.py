"""Per-class AP and recall at a fixed precision as series (issue 16).

A real training records them: two CPU epochs of a tiny drawn dataset with ``trialbook
yolo train``, then ``yolo val --split val``, the venv's command in subprocesses, nothing
patched. ``recall_at_precision`` is checked on hand-made curves, ``class_metrics`` on an
Ultralytics ``DetMetrics`` filled with hand-made curves, and the import of run folders
says once that results.csv holds none of these. The tests that use Ultralytics need the
ultralytics extra (see test_yolo_e2e.py for the skip/fail rule)."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import trialbook
from support.extras import require_ultralytics
from support.shell import Shell, tagged_shapes
from support.ultralytics_files import CLASSIFY, DETECT, args_yaml, results_csv
from trialbook.api import Book
from trialbook.cli.main import cli
from trialbook.core.classkeys import ap_key, recall_key
from trialbook.core.entities import Evaluation, RunRecord
from trialbook.integrations.importers.ultralytics_runs import NO_CLASS_NUMBERS, import_ultralytics
from trialbook.integrations.ultralytics import class_metrics, recall_at_precision

RUN = "v1_class_metrics"
CLASSES = ["square", "bar"]
COUNTS = {"train": 16, "val": 6}
TRAIN = ["model=yolo11n.yaml", "data=data/shapes/data.yaml", "epochs=2", "imgsz=64", "batch=8"]
TRAIN += ["workers=0", "device=cpu", "seed=0", "amp=False", "plots=False"]
Trained = tuple[Shell, dict[str, subprocess.CompletedProcess[str]]]


# -- recall at a precision level, on hand-made curves --------------------------------------
def test_the_recall_is_zero_when_the_precision_never_reaches_the_level() -> None:
    assert recall_at_precision([0.5, 0.9, 0.94], [0.2, 0.5, 0.9], 0.95) == 0.0
    assert recall_at_precision([0.2, 0.1], [0.0, 0.0], 0.95) == 0.0  # a class never detected
    assert recall_at_precision([], [], 0.95) == 0.0


def test_a_precision_exactly_at_the_level_counts() -> None:
    assert recall_at_precision([1.0, 0.95, 0.9], [0.2, 0.6, 0.8], 0.95) == 0.6
    assert recall_at_precision([0.9], [0.7], 0.9) == 0.7
    # float noise of a mean of curves ((0.9 + 1.0) / 2 computed otherwise) still counts
    assert recall_at_precision([0.95 - 1e-12], [0.4], 0.95) == 0.4
    assert recall_at_precision([0.9499], [0.4], 0.95) == 0.0


def test_a_precision_falling_as_the_recall_grows_gives_the_last_recall_above_the_level() -> None:
    recall = [i / 10 for i in range(11)]
    precision = [1.0 - r / 2 for r in recall]  # 1.0 at recall 0, 0.5 at recall 1
    assert recall_at_precision(precision, recall, 0.95) == 0.1
    assert recall_at_precision(precision, recall, 0.8) == 0.4
    assert recall_at_precision(precision, recall, 0.5) == 1.0


def test_curves_over_the_confidence_need_not_be_monotone() -> None:
    # as Ultralytics' p_curve / r_curve over a falling confidence: precision 1 and recall 0
    # above every detection, a dip, a recovery, then a fall
    precision = [1.0, 1.0, 0.9, 0.96, 0.5]
    recall = [0.0, 0.1, 0.3, 0.5, 0.9]
    assert recall_at_precision(precision, recall, 0.95) == 0.5
    assert recall_at_precision([1.0, 1.0, 0.5], [0.0, 0.0, 0.4], 0.95) == 0.0  # the p=1, r=0 end adds nothing


def test_one_row_per_class() -> None:
    precision = [[1.0, 0.97, 0.8], [1.0, 0.5, 0.4], [0.96, 0.96, 0.96]]
    recall = [[0.1, 0.5, 0.9], [0.2, 0.6, 0.7], [0.3, 0.6, 1.0]]
    assert recall_at_precision(precision, recall, 0.95).tolist() == [0.5, 0.2, 1.0]


def test_curves_sampled_differently_are_refused() -> None:
    with pytest.raises(ValueError, match="not sampled alike"):
        recall_at_precision([1.0, 0.9], [0.1], 0.95)


# -- the keys of a validator's metrics -----------------------------------------------------
def _metrics(
    p_curve: list[list[float]], r_curve: list[list[float]], index: list[int], kind: str = "DetMetrics"
) -> object:
    """An Ultralytics ``DetMetrics`` (or ``PoseMetrics``, its pose part given the same
    curves) of three classes holding the given curves as ``ap_per_class`` leaves them: one
    row per class with labels, in ``index`` order."""
    import numpy as np
    from ultralytics.utils import metrics as ultralytics_metrics

    metrics = getattr(ultralytics_metrics, kind)(names={0: "pallet", 1: "forklift", 2: "person"})
    n = len(index)
    all_ap = np.array([[0.8] * 10, [0.6] + [0.4] * 9][:n])
    p, r = np.array(p_curve), np.array(r_curve)
    px = np.linspace(0, 1, p.shape[1])
    zeros = np.zeros(n)
    for part in (metrics.box, getattr(metrics, "pose", None)):
        if part is not None:
            part.update((zeros, zeros, zeros, all_ap, np.array(index), p, r, p, px, p))
    return metrics


def test_only_the_classes_of_ap_class_index_get_keys() -> None:
    require_ultralytics()
    p = [[1.0, 1.0, 0.96, 0.6], [1.0, 0.9, 0.8, 0.7]]
    r = [[0.0, 0.3, 0.6, 0.9], [0.0, 0.2, 0.4, 0.8]]
    values = class_metrics(_metrics(p, r, [0, 2]), None, "detect", 0.95)  # forklift: no labels
    assert values == {
        ap_key("pallet"): pytest.approx(0.8),
        ap_key("person"): pytest.approx(0.6 * 0.1 + 0.4 * 0.9),
        ap_key("pallet", iou="50"): pytest.approx(0.8),
        ap_key("person", iou="50"): pytest.approx(0.6),
        recall_key(0.95, "pallet"): 0.6,
        recall_key(0.95, "person"): 0.0,
        # the class-mean curves: precision [1, 0.95, 0.88, 0.65], recall [0, 0.25, 0.5, 0.85]
        recall_key(0.95): 0.25,
    }
    assert recall_key(0.9, "pallet") in class_metrics(_metrics(p, r, [0, 2]), None, "detect", 0.9)


def test_a_pose_model_has_its_pose_keys_beside_the_box_ones() -> None:
    require_ultralytics()
    values = class_metrics(_metrics([[1.0, 0.97]], [[0.0, 0.5]], [1], "PoseMetrics"), None, "pose", 0.95)
    for part in ("B", "P"):
        assert values[recall_key(0.95, "forklift", part=part)] == 0.5
        assert values[recall_key(0.95, part=part)] == 0.5
        assert values[ap_key("forklift", part=part)] == pytest.approx(0.8)
    assert len(values) == 8
    # a detection's metrics read as a segmentation's: the box keys, no mask keys
    values = class_metrics(_metrics([[1.0, 0.97]], [[0.0, 0.5]], [1]), None, "segment", 0.95)
    assert values and not any("(M)" in key for key in values)
    assert class_metrics(object(), None, "classify", 0.95) == {}


# -- the import of run folders -------------------------------------------------------------
def _run_folder(root: Path, task: str, name: str) -> Path:
    folder = root / "runs" / task / name
    folder.mkdir(parents=True)
    args = args_yaml(task=task, name=name, save_dir=str(folder))
    (folder / "args.yaml").write_text(yaml.safe_dump(args, sort_keys=False))
    (folder / "results.csv").write_text(results_csv(CLASSIFY if task == "classify" else DETECT, [1, 2]))
    return folder


def test_an_import_says_once_that_results_csv_has_no_per_class_numbers(tmp_path: Path) -> None:
    book = trialbook.init(tmp_path / "book")
    try:
        detect = [_run_folder(tmp_path, "detect", name) for name in ("train", "train2")]
        classify = _run_folder(tmp_path, "classify", "train")
        report = import_ultralytics(book, [classify])
        assert report.ok and len(report.imported) == 1 and report.notes == []  # classify has no AP
        report = import_ultralytics(book, detect)
        assert report.ok and len(report.imported) == 2 and report.notes == [NO_CLASS_NUMBERS]
        assert report.to_dict()["notes"] == [NO_CLASS_NUMBERS]
        assert not any("per-class" in w.message for w in report.warnings)
        assert ap_key("<class>") in NO_CLASS_NUMBERS and "yolo val" in NO_CLASS_NUMBERS
        assert import_ultralytics(book, detect).notes == []  # nothing imported: nothing to say
    finally:
        book.close()
    folder = _run_folder(tmp_path / "other", "detect", "train")
    args = ["import", "ultralytics", str(folder), "--uri", str(tmp_path / "book"), "--json"]
    done = CliRunner().invoke(cli, args)
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["notes"] == [NO_CLASS_NUMBERS]


LEVEL = 0.9  # the project's precision level, not the default 0.95


# -- a real training ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    require_ultralytics()
    tb = tagged_shapes(tmp_path_factory, "class_metrics", COUNTS, CLASSES)
    tb("project", "set", "shapes", "--precision-level", str(LEVEL))  # the recall keys follow it
    out = {"train": tb("yolo", "train", RUN, "--", *TRAIN)}
    out["val"] = tb("yolo", "val", RUN, "--split", "val")
    return tb, out


def _book(tb: Shell) -> tuple[Book, RunRecord]:
    book = Book.open(str(tb.cwd))
    return book, book.run(RUN, "shapes")


def _val_classes(tb: Shell) -> set[str]:
    labels = tb.cwd / "data" / "shapes" / "labels" / "val"
    rows = [row for f in labels.iterdir() for row in f.read_text().splitlines() if row.strip()]
    return {CLASSES[int(row.split()[0])] for row in rows}


def _val_evaluations(book: Book, run: RunRecord) -> list[Evaluation]:
    return [e for e in book.store.list_evaluations([run.id]) if e.split == "val"]


def _class_keys(classes: set[str]) -> set[str]:
    keys = {recall_key(LEVEL)}
    for cls in classes:
        keys |= {ap_key(cls), ap_key(cls, iou="50"), recall_key(LEVEL, cls)}
    return keys


@pytest.mark.slow
def test_every_class_of_the_val_split_has_a_point_per_epoch(trained: Trained) -> None:
    tb, _ = trained
    book, run = _book(tb)
    present = _val_classes(tb)
    assert present  # the drawn val split has labels
    for key in _class_keys(present):
        points = book.store.get_history([run.id], key)[run.id]
        assert [epoch for epoch, _ in points] == [1, 2], key
        assert all(0.0 <= value <= 1.0 and not math.isnan(value) for _, value in points), key
    summary = set(book.store.get_summaries([run.id])[run.id])
    absent = set(CLASSES) - present
    assert not {k for k in summary if any(k.endswith(f"/{cls}") for cls in absent)}
    assert not {k for k in summary if "(M)" in k or "(P)" in k}  # a detection has boxes only
    assert not {k for k in summary if k.startswith(recall_key(0.95))}  # the project's level is 0.9


@pytest.mark.slow
def test_the_val_evaluations_carry_the_same_keys(trained: Trained) -> None:
    tb, _ = trained
    book, run = _book(tb)
    evaluations = _val_evaluations(book, run)
    assert len(evaluations) == 2  # the training's final validation of best.pt, then yolo val
    present = _val_classes(tb)
    for evaluation in evaluations:
        assert _class_keys(present) <= set(evaluation.metrics)
        for cls in present:
            assert evaluation.metrics[ap_key(cls)] == pytest.approx(evaluation.per_class_ap[cls])
        assert all(0.0 <= evaluation.metrics[k] <= 1.0 for k in _class_keys(present))
