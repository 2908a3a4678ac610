"""What a run review reads, recorded by a real training: one CPU epoch of a tiny drawn
dataset with ``trialbook yolo train``, then ``yolo val --split test`` and a capped
``yolo val --split val``, the venv's command in subprocesses, nothing patched; a second
run of one more epoch is reviewed against the first (``trialbook review``).

The training records Ultralytics' plots as artifacts (the final validation's attached to
the val evaluation) and every val image's boxes and thumbnail in one
``predictions.json.gz``; the test evaluation's plots and predictions are sealed with it.
Needs the ultralytics extra (see test_yolo_e2e.py for the skip/fail rule)."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest

from support.extras import require_ultralytics
from support.shell import Shell, tagged_shapes
from trialbook.api import Book
from trialbook.artifacts.local import hash_file
from trialbook.core import predictions
from trialbook.core.entities import Artifact, Evaluation, RunRecord

pytestmark = pytest.mark.slow

RUN = "v1_review"
SECOND = "v2_review_two_epochs"
SYSTEM_KEYS = {"system/epoch_time_s", "system/cpu_percent", "system/ram_used_mib", "system/process_rss_mib"}
COUNTS = {"train": 16, "val": 6, "test": 5}
TRAIN = ["model=yolo11n.yaml", "data=data/shapes/data.yaml", "epochs=1", "imgsz=64", "batch=8"]
TRAIN += ["workers=0", "device=cpu", "seed=0", "amp=False"]
EVAL_PLOTS = {
    "confusion_matrix.png",
    "confusion_matrix_normalized.png",
    "BoxPR_curve.png",
    "BoxF1_curve.png",
    "BoxP_curve.png",
    "BoxR_curve.png",
    "val_batch0_labels.jpg",
    "val_batch0_pred.jpg",
}
TRAIN_PLOTS = {"results.png", "labels.jpg", "train_batch0.jpg"}
PNG, JPEG = b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"
CAP_VAR = "TRIALBOOK_PREDICTIONS_MAX_IMAGES"
Reviewed = tuple[Shell, dict[str, subprocess.CompletedProcess[str]]]


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory: pytest.TempPathFactory) -> Reviewed:
    require_ultralytics()
    tb = tagged_shapes(tmp_path_factory, "review", COUNTS, ["square", "bar"])
    system = {"TRIALBOOK_SYSTEM_METRICS": "1"}  # as a user has it (the suite turns it off)
    out = {"train": tb("yolo", "train", RUN, "--", *TRAIN, env=system)}
    second = [a.replace("epochs=1", "epochs=2") for a in TRAIN]
    out["second"] = tb("yolo", "train", SECOND, "--parent", RUN, "--", *second, env=system)
    out["review"] = tb("review", SECOND, "--baseline", RUN, "--json")
    out["test"] = tb("yolo", "val", RUN, "--split", "test")
    out["capped"] = tb("yolo", "val", RUN, "--split", "val", env={CAP_VAR: "2"})
    return tb, out


def _book(tb: Shell) -> tuple[Book, RunRecord]:
    book = Book.open(str(tb.cwd))
    return book, book.run(RUN, "shapes")


def _evaluations(book: Book, run: RunRecord, split: str) -> list[Evaluation]:
    return [e for e in book.store.list_evaluations([run.id], reveal=True) if e.split == split]


def _predictions(book: Book, artifacts: list[Artifact], evaluation: Evaluation) -> predictions.Predictions:
    (found,) = [
        a for a in artifacts if a.name == predictions.ARTIFACT_NAME and a.evaluation_id == evaluation.id
    ]
    return predictions.decode(book.blobs.get_bytes(found.digest))


def _thumbnails_are_jpegs(book: Book, found: predictions.Predictions) -> None:
    from PIL import Image

    assert found.thumbs and all(i.thumb for i in found.images)
    for digest in found.thumbs:
        data = book.blobs.get_bytes(digest)
        assert data.startswith(JPEG)
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "JPEG" and max(image.size) <= predictions.THUMB_SIZE


def test_a_training_records_its_plots(reviewed: Reviewed) -> None:
    tb, _ = reviewed
    book, run = _book(tb)
    val = _evaluations(book, run, "val")[0]
    artifacts = {a.name: a for a in book.store.list_artifacts(run.id) if a.evaluation_id in (None, val.id)}
    assert set(artifacts) >= EVAL_PLOTS | TRAIN_PLOTS
    folder = tb.cwd / "runs" / "detect" / RUN
    for name in EVAL_PLOTS | TRAIN_PLOTS:
        artifact = artifacts[name]
        data = book.blobs.get_bytes(artifact.digest)
        assert data.startswith(PNG if name.endswith(".png") else JPEG), name
        assert (artifact.digest, artifact.size) == hash_file(folder / name)  # the file Ultralytics left
        assert artifact.evaluation_id == (val.id if name in EVAL_PLOTS else None), name


def test_the_val_predictions_hold_every_image_with_its_labels(reviewed: Reviewed) -> None:
    tb, _ = reviewed
    book, run = _book(tb)
    val = _evaluations(book, run, "val")[0]
    found = _predictions(book, book.store.list_artifacts(run.id), val)
    assert found.split == "val" and found.task == "detect" and found.class_names == ["square", "bar"]
    assert found.split_digest == val.split_digest == run.split_digests["val"]
    root = tb.cwd / "data" / "shapes"
    images = sorted(p.relative_to(root).as_posix() for p in (root / "images" / "val").iterdir())
    assert [i.image for i in found.images] == images and len(images) == COUNTS["val"]
    for entry in found.images:
        assert entry.hash == hash_file(root / entry.image)[0]
        assert (entry.width, entry.height) == (64, 64)
        rows = (root / "labels" / "val" / Path(entry.image).with_suffix(".txt").name).read_text().split("\n")
        expected = []
        for row in filter(None, rows):
            c, x, y, w, h = row.split()
            cx, cy, bw, bh = map(float, (x, y, w, h))
            expected.append((int(c), cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2))
        assert len(entry.gt) == len(expected)
        for got, want in zip(entry.gt, expected, strict=True):  # in the label file's order
            assert got[0] == want[0] and got[1:] == pytest.approx(want[1:], abs=2e-3), entry.image
        assert all(p[1] >= predictions.CONF_FLOOR and all(0 <= v <= 1 for v in p[2:]) for p in entry.pred)
    _thumbnails_are_jpegs(book, found)


def test_a_thumbnail_is_the_same_bytes_for_the_same_image(reviewed: Reviewed) -> None:
    from trialbook.integrations.yolo_review import thumbnail_bytes

    tb, _ = reviewed
    book, run = _book(tb)
    found = _predictions(book, book.store.list_artifacts(run.id), _evaluations(book, run, "val")[0])
    entry = found.images[0]
    assert entry.thumb is not None
    image = tb.cwd / "data" / "shapes" / entry.image
    assert thumbnail_bytes(image) == thumbnail_bytes(image) == book.blobs.get_bytes(entry.thumb)


def test_the_test_split_plots_and_predictions_are_sealed(reviewed: Reviewed) -> None:
    tb, out = reviewed
    done = out["test"]
    printed = done.stdout + done.stderr
    assert "sealed" in done.stdout and " all " not in printed and "Speed:" not in printed
    test_dir = tb.cwd / "runs" / "detect" / RUN / "test"
    assert test_dir.is_dir() and not list(test_dir.iterdir())  # nothing of the test split stays on disk
    book, run = _book(tb)
    (test,) = _evaluations(book, run, "test")
    assert test.sealed
    shown = book.store.list_artifacts(run.id)
    revealed = book.store.list_artifacts(run.id, reveal=True)
    assert not [a for a in shown if a.evaluation_id == test.id]
    sealed = {a.name for a in revealed if a.evaluation_id == test.id}
    assert EVAL_PLOTS | {predictions.ARTIFACT_NAME} <= sealed
    found = _predictions(book, revealed, test)
    assert found.split == "test" and len(found.images) == COUNTS["test"]
    assert found.split_digest == test.split_digest == run.split_digests["test"]
    _thumbnails_are_jpegs(book, found)


def test_a_split_over_the_cap_records_no_predictions_and_warns_once(reviewed: Reviewed) -> None:
    tb, out = reviewed
    done = out["capped"]
    warned = [line for line in done.stderr.splitlines() if "TrackingWarning" in line]
    assert len(warned) == 1, done.stderr
    assert f"{COUNTS['val']} images" in warned[0] and "the 2 " in warned[0] and CAP_VAR in warned[0]
    assert "no predictions" in done.stdout
    book, run = _book(tb)
    capped = _evaluations(book, run, "val")[-1]
    attached = {a.name for a in book.store.list_artifacts(run.id) if a.evaluation_id == capped.id}
    assert predictions.ARTIFACT_NAME not in attached and attached >= EVAL_PLOTS


def test_a_training_records_the_machines_figures_per_epoch(reviewed: Reviewed) -> None:
    tb, _ = reviewed
    book, _ = _book(tb)
    run = book.run(SECOND, "shapes")
    history = book.store.get_all_history(run.id)
    assert set(history) >= SYSTEM_KEYS
    assert not [k for k in history if k.startswith("system/gpu")]  # no GPU here: nothing of one
    for key in SYSTEM_KEYS:
        assert [e for e, _ in history[key]] == [1, 2], key  # numbered as results.csv numbers epochs
    assert all(v > 0 for _, v in history["system/epoch_time_s"] + history["system/process_rss_mib"])


def test_review_lists_every_val_image_with_counts_for_both_runs(reviewed: Reviewed) -> None:
    import json

    _, out = reviewed
    got = json.loads(out["review"].stdout)
    assert (got["candidate"], got["baseline"], got["split"]) == (SECOND, RUN, "val")
    assert len(got["images"]) == COUNTS["val"]
    for image in got["images"]:
        for side in ("candidate", "baseline"):
            assert all(isinstance(image[side][k], int) and image[side][k] >= 0 for k in ("tp", "fp", "fn"))
        c, b = image["candidate"], image["baseline"]
        assert c["tp"] + c["fn"] == b["tp"] + b["fn"]  # the same ground truth
        assert image["delta"] == (c["fp"] + c["fn"]) - (b["fp"] + b["fn"])
    assert [i["delta"] for i in got["images"]] == sorted((i["delta"] for i in got["images"]), reverse=True)
    assert set(got["classes"]) <= {"square", "bar"}
