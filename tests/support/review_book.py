"""A book for the run review's UI: runs with per-image predictions, thumbnails and plots,
written with the real API (``log_eval``, ``log_artifact(path, evaluation=ev, blobs=...)``).

``make_review_book(folder)`` fills a new SQLite book with project ``pallets``:

* ``v1_base`` and ``v2_candidate``, pinned to the same val split, each with a val
  evaluation whose ``predictions.json.gz`` (``core.predictions.encode``) covers the same
  ``images`` warehouse pictures (pallets and forklifts), a JPEG thumbnail per image made
  with PIL (passed as ``blobs=``, so stored once per content), the training plot
  ``results.png`` and the evaluation's plots (``confusion_matrix.png``, ``BoxPR_curve.png``);
  a sealed test evaluation with a plot and predictions of its own (which must never show);
* ``v0_no_predictions``: a val evaluation and no predictions;
* ``v3_other_split``: predictions made on another val split.

The candidate is worse than the baseline on the first ``worse`` images (it misses a
pallet and calls a shadow a forklift) and better on the next ``better`` ones; the rest
are the same. Everything is seeded: the same call makes the same book, and
``ReviewWorld.predictions`` holds what each run recorded, for tests to count boxes with.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from blake3 import blake3
from PIL import Image, ImageDraw

from support.runs import MAP, VAL_B, add_run, set_protocol
from trialbook.api import Book, RunHandle
from trialbook.core.entities import Evaluation
from trialbook.core.predictions import (
    ARTIFACT_NAME,
    THUMB_SIZE,
    Box,
    ImagePredictions,
    Pred,
    Predictions,
    encode,
    sort_preds,
)

PROJECT = "pallets"
BASELINE = "v1_base"
CANDIDATE = "v2_candidate"
NO_PREDICTIONS = "v0_no_predictions"
OTHER_SPLIT = "v3_other_split"
CLASSES = ["pallet", "forklift"]
WIDTH, HEIGHT = 1280, 960  # the "original" images
CONF = 0.25  # the review's default confidence: what the page draws
TRAIN_PLOTS = ("results.png",)
EVAL_PLOTS = ("confusion_matrix.png", "BoxPR_curve.png")
TEST_PLOT = "test_confusion_matrix.png"  # a sealed evaluation's plot: never shown
SHADOW = (0.62, 0.5, 0.82, 0.9)  # where the candidate calls a shadow a forklift

RGB = tuple[int, int, int]
COLOURS: dict[int, RGB] = {0: (150, 104, 58), 1: (236, 178, 26)}


@dataclass
class ReviewWorld:
    """What ``make_review_book`` wrote: the book, the run names, and per run the
    ``Predictions`` recorded for its val evaluation."""

    book: Book
    folder: Path
    project: str = PROJECT
    baseline: str = BASELINE
    candidate: str = CANDIDATE
    no_predictions: str = NO_PREDICTIONS
    other_split: str = OTHER_SPLIT
    predictions: dict[str, Predictions] = field(default_factory=dict)
    thumbs: dict[str, Path] = field(default_factory=dict)  # digest -> the JPEG file

    def image(self, run: str, name: str) -> ImagePredictions:
        return next(i for i in self.predictions[run].images if i.image == name)

    def shown(self, run: str, name: str, conf: float = CONF) -> int:
        """The predicted boxes of ``run`` on image ``name`` at or above ``conf``."""
        return sum(1 for p in self.image(run, name).pred if p[1] >= conf)


# --------------------------------------------------------------------------- pictures
def _scene(rng: random.Random, n_pallets: int, n_forklifts: int) -> list[Box]:
    """Ground-truth boxes of one warehouse picture: pallets on the floor, forklifts."""
    boxes: list[Box] = []
    for _ in range(n_pallets):
        w, h = rng.uniform(0.1, 0.2), rng.uniform(0.07, 0.12)
        x, y = rng.uniform(0.02, 0.98 - w), rng.uniform(0.55, 0.97 - h)
        boxes.append((0, x, y, x + w, y + h))
    for _ in range(n_forklifts):
        w, h = rng.uniform(0.18, 0.3), rng.uniform(0.3, 0.45)
        x, y = rng.uniform(0.02, 0.98 - w), rng.uniform(0.3, 0.95 - h)
        boxes.append((1, x, y, x + w, y + h))
    return [(c, round(x1, 4), round(y1, 4), round(x2, 4), round(y2, 4)) for c, x1, y1, x2, y2 in boxes]


def draw_thumbnail(path: Path, boxes: list[Box], rng: random.Random, *, shadow: bool = False) -> Path:
    """A JPEG thumbnail (longest side ``THUMB_SIZE``) of a warehouse floor with the objects
    of ``boxes`` painted in: racks at the back, pallets in brown, forklifts in yellow;
    with ``shadow``, a dark patch on the floor where the candidate sees a forklift."""
    w, h = THUMB_SIZE, THUMB_SIZE * HEIGHT // WIDTH
    img = Image.new("RGB", (w, h), (122, 126, 132))
    d = ImageDraw.Draw(img)
    tone = rng.randint(-12, 12)
    d.rectangle([0, 0, w, int(h * 0.45)], fill=(92 + tone, 98 + tone, 108 + tone))  # the wall
    for x in range(6, w, 42):  # racks of boxes
        d.rectangle([x, int(h * 0.08), x + 34, int(h * 0.45)], outline=(58, 62, 70), width=2)
        for y in range(int(h * 0.15), int(h * 0.45), 14):
            d.line([x, y, x + 34, y], fill=(150, 154, 160), width=2)
            for bx in range(x + 3, x + 30, 9):
                d.rectangle([bx, y - 7, bx + 6, y - 1], fill=(186 + tone, 160 + tone, 120 + tone))
    d.line([0, int(h * 0.72), w, int(h * 0.72)], fill=(222, 196, 40), width=2)  # a floor marking
    if shadow:
        x1, y1, x2, y2 = SHADOW
        d.ellipse([x1 * w, (y1 + 0.15) * h, x2 * w, y2 * h], fill=(84, 86, 92))
    for cls, x1, y1, x2, y2 in boxes:
        box = [x1 * w, y1 * h, x2 * w, y2 * h]
        if cls == 0:
            d.rectangle(box, fill=COLOURS[0], outline=(90, 60, 30))
            for k in range(1, 3):
                yy = box[1] + (box[3] - box[1]) * k / 3
                d.line([box[0], yy, box[2], yy], fill=(110, 76, 40))
        else:
            d.rectangle([box[0], box[1] + (box[3] - box[1]) * 0.35, box[2], box[3]], fill=COLOURS[1])
            d.rectangle([box[0] + 2, box[1], box[0] + 5, box[3]], fill=(50, 50, 50))  # the mast
            d.ellipse([box[0] + 3, box[3] - 7, box[0] + 11, box[3] + 1], fill=(30, 30, 30))
            d.ellipse([box[2] - 11, box[3] - 7, box[2] - 3, box[3] + 1], fill=(30, 30, 30))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, "JPEG", quality=82)
    return path


def plot_png(path: Path, title: str, seed: int) -> Path:
    """A small PNG standing in for one of Ultralytics' plots: a title bar and a curve."""
    rng = random.Random(seed)
    img = Image.new("RGB", (480, 320), (255, 255, 255))
    d = ImageDraw.Draw(img)
    d.rectangle([0, 0, 479, 28], fill=(230, 236, 246))
    d.text((10, 8), title, fill=(20, 30, 50))
    d.rectangle([40, 40, 460, 300], outline=(120, 120, 120))
    points, y = [], 280.0
    for x in range(40, 461, 20):
        y = max(50.0, y - rng.uniform(0, 22))
        points.append((x, y))
    d.line(points, fill=(31, 119, 180), width=3)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, "PNG")
    return path


# --------------------------------------------------------------------------- predictions
def _jitter(rng: random.Random, b: Box, conf: float, spread: float = 0.01) -> Pred:
    cls, x1, y1, x2, y2 = b
    moved = [min(1.0, max(0.0, v + rng.uniform(-spread, spread))) for v in (x1, y1, x2, y2)]
    return (cls, round(conf, 4), *(round(v, 4) for v in moved))  # type: ignore[return-value]


def _noise(rng: random.Random) -> Pred:
    """A low-confidence prediction, under the page's confidence: never drawn."""
    x, y = rng.uniform(0, 0.8), rng.uniform(0, 0.8)
    return (rng.randint(0, 1), round(rng.uniform(0.02, 0.2), 4), x, y, x + 0.1, y + 0.1)


def _baseline_preds(rng: random.Random, gt: list[Box], k: int, better: range) -> list[Pred]:
    preds = [_jitter(rng, b, rng.uniform(0.55, 0.95)) for b in gt]
    if k in better and gt:  # the baseline misses one box here, and sees a ghost
        preds = [*preds[1:], (1, 0.41, 0.05, 0.05, 0.25, 0.4)]
    return [*preds, _noise(rng)]


def _candidate_preds(rng: random.Random, gt: list[Box], k: int, worse: range) -> list[Pred]:
    preds = [_jitter(rng, b, rng.uniform(0.55, 0.95)) for b in gt]
    if k in worse and gt:
        # misses a pallet, and calls a shadow on the floor a forklift (two on the worst)
        missed = next((i for i, b in enumerate(gt) if b[0] == 0), 0)
        preds = [p for i, p in enumerate(preds) if i != missed]
        preds.append((1, round(0.3 + 0.05 * (k % 5), 4), *SHADOW))
        if k < 2:
            preds.append((1, 0.33, 0.1, 0.55, 0.28, 0.92))
    return [*preds, _noise(rng)]


@dataclass(frozen=True)
class Picture:
    name: str
    hash: str
    gt: list[Box]
    thumb: str  # the digest of its thumbnail


def scene(
    images: int,
    *,
    seed: int,
    folder: Path,
    drawn: int | None = None,
    names: list[str] | None = None,
    shadows: int = 0,
) -> tuple[list[Picture], dict[str, Path]]:
    """``images`` pictures and their thumbnails by digest (drawn into ``folder``; only the
    first ``drawn``, which the others then share). ``names``: the first pictures' names;
    ``shadows``: the first pictures with a shadow on the floor."""
    from trialbook.artifacts.local import hash_file

    rng = random.Random(seed)
    out: list[Picture] = []
    thumbs: dict[str, Path] = {}
    for k in range(images):
        name = names[k] if names and k < len(names) else f"images/val/aisle{k // 20 + 1:02d}_{k:04d}.jpg"
        gt = _scene(rng, rng.randint(1, 4), rng.randint(0, 2) if k % 3 else 1)
        if drawn is None or k < drawn:
            digest, _ = hash_file(
                draw_thumbnail(folder / "thumbs" / f"{k:04d}.jpg", gt, rng, shadow=k < shadows)
            )
            thumbs[digest] = folder / "thumbs" / f"{k:04d}.jpg"
        else:
            digest = out[k % drawn].thumb
        out.append(Picture(name, blake3(name.encode()).hexdigest(), gt, digest))
    return out, thumbs


def predictions_of(
    pictures: list[Picture],
    *,
    candidate: bool,
    seed: int,
    worse: int,
    better: int,
    split_digest: str | None,
    split: str = "val",
    classes: list[str] | None = None,
) -> Predictions:
    """What a run predicted on ``pictures``: the candidate worse on the first ``worse``,
    the baseline worse on the next ``better``."""
    rng = random.Random(seed + (1 if candidate else 2))
    images = []
    for k, pic in enumerate(pictures):
        if candidate:
            pred = _candidate_preds(rng, pic.gt, k, range(worse))
        else:
            pred = _baseline_preds(rng, pic.gt, k, range(worse, worse + better))
        images.append(
            ImagePredictions(
                image=pic.name,
                hash=pic.hash,
                width=WIDTH,
                height=HEIGHT,
                thumb=pic.thumb,
                gt=pic.gt,
                pred=sort_preds(pred),
            )
        )
    names = list(classes or CLASSES)
    return Predictions(split=split, class_names=names, images=images, split_digest=split_digest)


def log_predictions(
    handle: RunHandle,
    predictions: Predictions,
    folder: Path,
    thumbs: dict[str, Path],
    *,
    split: str = "val",
    evaluation: Evaluation | None = None,
) -> Evaluation:
    """``predictions`` attached to ``evaluation`` of ``handle``'s run (default: a new
    evaluation of ``split``), its thumbnails as the file's blobs, and the evaluation's
    plots; the evaluation."""
    ev = evaluation or handle.log_eval(
        split,
        {MAP: 0.5},
        per_class_ap={"pallet": 0.5, "forklift": 0.6},
        confusion_matrix=[[40, 3, 2], [4, 30, 1], [5, 2, 0]],
        class_names=[*CLASSES, "background"],
    )
    path = folder / f"{handle.name}-{ev.split}-{ARTIFACT_NAME}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode(predictions))
    used = [thumbs[d] for d in predictions.thumbs]
    handle.log_artifact(path, ARTIFACT_NAME, evaluation=ev, blobs=used)
    plots = EVAL_PLOTS if ev.split == "val" else (TEST_PLOT,)
    for i, name in enumerate(plots):
        png = plot_png(folder / f"{handle.name}-{ev.split}-{name}", f"{handle.name} {ev.split} {name}", i)
        handle.log_artifact(png, name, evaluation=ev)
    return ev


def add_predictions(
    book: Book, folder: Path, runs: dict[str, bool], *, images: int = 6, seed: int = 14
) -> list[str]:
    """Predictions for the latest val evaluation of each of ``runs`` (run name -> whether
    it plays the candidate, the worse one) of project ``pallets``, on one set of
    ``images`` pictures; the thumbnails' digests."""
    pictures, thumbs = scene(images, seed=seed, folder=folder, shadows=2)
    for name, is_candidate in runs.items():
        record = book.run(name, PROJECT)
        ev = [e for e in book.store.list_evaluations([record.id]) if e.split == "val"][-1]
        preds = predictions_of(
            pictures, candidate=is_candidate, seed=seed, worse=2, better=1, split_digest=ev.split_digest
        )
        log_predictions(book.attach(record), preds, folder, thumbs, evaluation=ev)
    return list(thumbs)


def make_review_book(
    folder: Path,
    *,
    images: int = 12,
    worse: int = 4,
    better: int = 2,
    seed: int = 14,
    distinct_thumbs: int | None = None,
    extras: bool = True,
    names: list[str] | None = None,
    classes: list[str] | None = None,
) -> ReviewWorld:
    """A new book in ``folder`` (module docstring). ``distinct_thumbs``: draw only that
    many thumbnails and let the images share them (large benchmark books); ``extras``: the
    runs without predictions and on another split too; ``names``, ``classes``: the first
    images' names and the class names (hostile text, for escaping tests)."""
    folder.mkdir(parents=True, exist_ok=True)
    book = Book.open(str(folder / "book"), create=True)
    set_protocol(book, PROJECT)
    files = folder / "files"
    pictures, thumbs = scene(
        images, seed=seed, folder=files, drawn=distinct_thumbs, names=names, shadows=worse
    )
    world = ReviewWorld(book=book, folder=folder, thumbs=thumbs)

    def predicted(
        pics: list[Picture], candidate: bool, digest: str | None, split: str = "val"
    ) -> Predictions:
        return predictions_of(
            pics,
            candidate=candidate,
            seed=seed,
            worse=worse,
            better=better,
            split_digest=digest,
            split=split,
            classes=classes,
        )

    for name, is_candidate, curve in (
        (BASELINE, False, [0.2, 0.35, 0.45, 0.5]),
        (CANDIDATE, True, [0.2, 0.38, 0.47, 0.52]),
    ):
        record = add_run(book, name, curve=curve, parent=BASELINE if is_candidate else None)
        handle = book.attach(record)
        for i, plot in enumerate(TRAIN_PLOTS):
            handle.log_artifact(plot_png(files / f"{name}-{plot}", f"{name} {plot}", i + 7), plot)
        world.predictions[name] = predicted(pictures, is_candidate, record.split_digests.get("val"))
        log_predictions(handle, world.predictions[name], files, thumbs)
        test = predicted(pictures[:3], is_candidate, None, "test")
        log_predictions(handle, test, files, thumbs, split="test")
    if extras:
        bare = book.attach(add_run(book, NO_PREDICTIONS, curve=[0.1, 0.2]))
        bare.log_eval("val", {MAP: 0.2})
        other = add_run(book, OTHER_SPLIT, curve=[0.2, 0.3], digests={"val": VAL_B, "train": "f" * 64})
        world.predictions[OTHER_SPLIT] = predicted(pictures, True, VAL_B)
        log_predictions(book.attach(other), world.predictions[OTHER_SPLIT], files, thumbs)
    return world
