"""Review two runs image by image: which images of a split the candidate gets wrong that
the baseline got right, and per class what it gained and lost.

Each run's per-image predictions (``core.predictions``: one ``predictions.json.gz`` per
evaluation) are matched to the ground truth (``core.matching``: same class, IoU at least
``iou``, greedy by confidence), at confidence ``conf`` and above. Both runs are measured
against one truth, the candidate file's boxes; they must have been evaluated on the same
split (its digest, or else the same images). Test predictions are sealed like test
numbers: no review reads them.

When the project's comparison metric is one class's AP or recall (``ap50-95:pallet``,
``r@p0.95:pallet``), that class is the review's ``focus_class``: images are sorted by the
candidate's errors on it against the baseline's first (false negatives and false
positives of that class), then as usual.
"""

from __future__ import annotations

import functools
import gc
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from typing_extensions import TypedDict

from trialbook.api import Book
from trialbook.core.entities import Artifact, Evaluation, RunRecord
from trialbook.core.matching import ImageMatch, match_image
from trialbook.core.metrics import parse_class_key
from trialbook.core.predictions import ARTIFACT_NAME, Box, ImagePredictions, Pred, Predictions, decode
from trialbook.errors import InvalidInput, NotFound
from trialbook.services.blobs import check_digest
from trialbook.services.decisions import candidate_and_baseline

__all__ = [
    "ClassTally",
    "Counts",
    "ImageReview",
    "Review",
    "RunImage",
    "RunImages",
    "load_predictions",
    "review",
    "run_images",
    "thumbnail_bytes",
]

SEALED = "test predictions are sealed; only a decision reveals the test split"


class CountsJSON(TypedDict):
    tp: int
    fp: int
    fn: int


@dataclass(frozen=True)
class Counts:
    """True positives, false positives and false negatives."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def errors(self) -> int:
        """What went wrong: false positives plus false negatives."""
        return self.fp + self.fn

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    def to_json(self) -> CountsJSON:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn}


def _counts(m: ImageMatch) -> Counts:
    return Counts(m.tp, m.fp, m.fn)


@dataclass(frozen=True)
class _Picture:
    """An image of the split: its path below the dataset root, content hash, thumbnail
    (a blob digest) and size in pixels."""

    image: str
    hash: str
    thumb: str | None
    width: int
    height: int

    def _picture(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "hash": self.hash,
            "thumb": self.thumb,
            "width": self.width,
            "height": self.height,
        }


def _picture_of(i: ImagePredictions, thumb: str | None = None) -> dict[str, Any]:
    """The ``_Picture`` fields of an image of a predictions file."""
    return {"image": i.image, "hash": i.hash, "thumb": i.thumb or thumb, "width": i.width, "height": i.height}


@dataclass(frozen=True)
class ImageReview(_Picture):
    """One image under both runs. ``delta`` is the candidate's errors minus the
    baseline's: above 0 the candidate is worse on this image. ``candidate_pred`` and
    ``baseline_pred`` are the predictions at ``conf`` and above, best first;
    ``*_matched[j]`` says whether prediction ``j`` matched a box (a true positive),
    ``*_found[i]`` whether ground-truth box ``i`` was found (else a false negative)."""

    image: str
    hash: str
    thumb: str | None
    width: int
    height: int
    candidate: Counts
    baseline: Counts
    delta: int
    gt: list[Box]
    candidate_pred: list[Pred]
    baseline_pred: list[Pred]
    candidate_matched: list[bool] = field(default_factory=list)
    baseline_matched: list[bool] = field(default_factory=list)
    candidate_found: list[bool] = field(default_factory=list)
    baseline_found: list[bool] = field(default_factory=list)

    def to_json(self, *, boxes: bool = False) -> dict[str, Any]:
        out = self._picture()
        out.update(candidate=self.candidate.to_json(), baseline=self.baseline.to_json(), delta=self.delta)
        if boxes:
            out.update(
                gt=[list(b) for b in self.gt],
                candidate_pred=[list(p) for p in self.candidate_pred],
                baseline_pred=[list(p) for p in self.baseline_pred],
                candidate_matched=self.candidate_matched,
                baseline_matched=self.baseline_matched,
                candidate_found=self.candidate_found,
                baseline_found=self.baseline_found,
            )
        return out


class ClassTallyJSON(TypedDict):
    gained: int
    lost: int
    fp_added: int
    fp_removed: int
    candidate: CountsJSON
    baseline: CountsJSON


@dataclass(frozen=True)
class ClassTally:
    """One class over every image: ``gained`` ground-truth boxes the candidate finds and
    the baseline misses, ``lost`` the opposite; ``fp_added`` / ``fp_removed`` the false
    positives the candidate has more / fewer than the baseline, image by image."""

    gained: int
    lost: int
    fp_added: int
    fp_removed: int
    candidate: Counts
    baseline: Counts

    def to_json(self) -> ClassTallyJSON:
        return {
            "gained": self.gained,
            "lost": self.lost,
            "fp_added": self.fp_added,
            "fp_removed": self.fp_removed,
            "candidate": self.candidate.to_json(),
            "baseline": self.baseline.to_json(),
        }


def _limited(items: Sequence[Any], limit: int | None) -> Sequence[Any]:
    return items if limit is None else items[: max(limit, 0)]


@dataclass(frozen=True)
class Review:
    """``review`` of two runs: every image, worst for the candidate first, and the
    per-class tallies (keyed by class name, in class order)."""

    project: str
    candidate: str
    baseline: str
    split: str
    iou: float
    conf: float
    class_names: list[str]
    images: list[ImageReview]
    classes: dict[str, ClassTally]
    split_digest: str | None = None
    # the protocol metric's class, whose errors sort the images first (module docstring)
    focus_class: str | None = None

    @property
    def totals(self) -> tuple[Counts, Counts]:
        """The candidate's and the baseline's counts over every image."""
        cand, base = Counts(), Counts()
        for t in self.classes.values():
            cand, base = cand + t.candidate, base + t.baseline
        return cand, base

    @property
    def worse(self) -> int:
        """How many images the candidate gets more wrong than the baseline."""
        return sum(1 for i in self.images if i.delta > 0)

    @property
    def better(self) -> int:
        return sum(1 for i in self.images if i.delta < 0)

    def to_json(self, *, boxes: bool = False, limit: int | None = None) -> dict[str, Any]:
        """``review --json`` (INTERFACE.md): the first ``limit`` images (all for None),
        with their boxes and matches when ``boxes``."""
        cand, base = self.totals
        return {
            "project": self.project,
            "candidate": self.candidate,
            "baseline": self.baseline,
            "split": self.split,
            "split_digest": self.split_digest,
            "iou": self.iou,
            "conf": self.conf,
            "class_names": list(self.class_names),
            "totals": {"candidate": cand.to_json(), "baseline": base.to_json()},
            "image_count": len(self.images),
            "worse": self.worse,
            "better": self.better,
            "images": [i.to_json(boxes=boxes) for i in _limited(self.images, limit)],
            "classes": {name: t.to_json() for name, t in self.classes.items()},
            "focus_class": self.focus_class,
        }


@dataclass(frozen=True)
class RunImage(_Picture):
    """One image under one run (``matched[j]``: prediction ``j`` matched a box;
    ``found[i]``: ground-truth box ``i`` was found)."""

    counts: Counts
    gt: list[Box]
    pred: list[Pred]
    matched: list[bool] = field(default_factory=list)
    found: list[bool] = field(default_factory=list)

    def to_json(self, *, boxes: bool = False) -> dict[str, Any]:
        out = self._picture()
        out["counts"] = self.counts.to_json()
        if boxes:
            out.update(
                gt=[list(b) for b in self.gt],
                pred=[list(p) for p in self.pred],
                matched=self.matched,
                found=self.found,
            )
        return out


@dataclass(frozen=True)
class RunImages:
    """One run's images, the most wrong (false positives plus false negatives) first."""

    project: str
    run: str
    split: str
    iou: float
    conf: float
    class_names: list[str]
    images: list[RunImage]

    @property
    def totals(self) -> Counts:
        total = Counts()
        for i in self.images:
            total = total + i.counts
        return total

    def to_json(self, *, boxes: bool = False, limit: int | None = None) -> dict[str, Any]:
        return {
            "project": self.project,
            "run": self.run,
            "split": self.split,
            "iou": self.iou,
            "conf": self.conf,
            "class_names": list(self.class_names),
            "totals": self.totals.to_json(),
            "image_count": len(self.images),
            "images": [i.to_json(boxes=boxes) for i in _limited(self.images, limit)],
        }


# --------------------------------------------------------------------------- loading
def _check_threshold(value: float, flag: str, what: str) -> float:
    v = float(value)
    if not math.isfinite(v) or not 0 < v <= 1:
        raise InvalidInput(f"--{flag} {value}: the {what} must be greater than 0 and at most 1")
    return v


def _check_split(split: str) -> None:
    if split == "test":
        raise InvalidInput(SEALED)
    if split != "val":
        raise InvalidInput(f"review reads the val split's predictions, not {split!r}'s (test is sealed)")


def _fix(run: RunRecord, split: str) -> str:
    return f"`trialbook yolo val {run.project}/{run.name} --split {split}`"


def find_predictions(book: Book, run: RunRecord, split: str) -> tuple[Evaluation, Artifact] | None:
    """The latest evaluation of ``run`` on ``split`` that has a per-image predictions file,
    and that file's artifact; ``None`` when none has. Reads the lists only (no file)."""
    evaluations = [e for e in book.store.list_evaluations([run.id]) if e.split == split and not e.sealed]
    files = {
        a.evaluation_id: a
        for a in book.store.list_artifacts(run.id)  # oldest first: the latest file of an evaluation wins
        if a.name == ARTIFACT_NAME and a.evaluation_id
    }
    found = [(ev, files[ev.id]) for ev in evaluations if ev.id in files]
    return found[-1] if found else None


@functools.lru_cache(maxsize=4)
def _decoded(blobs: Any, digest: str, where: str) -> Predictions:
    """A predictions file by digest, decoded once: the bytes of a digest never change, so
    the UI's "show more" and a reload do not decode it again."""
    return decode(blobs.get_bytes(digest), where=where)


def load_predictions(book: Book, run: RunRecord, split: str) -> tuple[Evaluation, Predictions]:
    """The latest evaluation of ``run`` on ``split`` that has per-image predictions, and
    those predictions. ``NotFound`` (with the command that records them) when none has;
    ``InvalidInput`` for the sealed test split."""
    _check_split(split)
    found = find_predictions(book, run, split)
    if found is None:
        evaluations = [e for e in book.store.list_evaluations([run.id]) if e.split == split]
        had = (
            f"its {len(evaluations)} {split} evaluation(s) recorded none"
            if evaluations
            else f"no {split} evaluation"
        )
        raise NotFound(
            f"run {run.project}/{run.name} has no per-image predictions on the {split} split ({had}): "
            f"record them with {_fix(run, split)}"
        )
    ev, artifact = found
    if book.blobs is None:
        raise NotFound(f"{book.uri} keeps no artifact files: the predictions of {run.name} are not here")
    where = f"{run.project}/{run.name}'s {ARTIFACT_NAME} ({split} evaluation {ev.id[:12]})"
    return ev, _decoded(book.blobs, artifact.digest, where)


def thumbnail_bytes(book: Book, digest: str) -> bytes:
    """The JPEG thumbnail stored under ``digest`` (``InvalidInput`` for a malformed
    digest, ``NotFound`` when the book keeps no such blob)."""
    check_digest(digest)
    if book.blobs is None:
        raise NotFound(f"{book.uri} keeps no artifact files")
    data: bytes = book.blobs.get_bytes(digest)
    return data


def _digest(ev: Evaluation, preds: Predictions, run: RunRecord, split: str) -> str | None:
    return preds.split_digest or ev.split_digest or run.split_digests.get(split)


def _same_split(
    split: str,
    cand: tuple[RunRecord, Evaluation, Predictions],
    base: tuple[RunRecord, Evaluation, Predictions],
) -> str | None:
    """The split digest both runs were evaluated on (None when unknown); ``InvalidInput``
    with the fix when they were evaluated on different splits or images."""
    (cr, ce, cp), (br, be, bp) = cand, base
    cd, bd = _digest(ce, cp, cr, split), _digest(be, bp, br, split)
    fix = (
        f"evaluate both on one split (`trialbook yolo val RUN --split {split}` evaluates RUN on "
        f"its pinned dataset version's {split} split), or review against a baseline pinned to a "
        f"version with the same {split} split"
    )
    if cd and bd and cd != bd:

        def of(run: RunRecord, digest: str) -> str:
            return f"{run.name}: {digest[:12]}" + (f" of {run.dataset}" if run.dataset else "")

        raise InvalidInput(
            f"{cr.name} and {br.name} were evaluated on different {split} splits "
            f"({of(cr, cd)}, {of(br, bd)}): {fix}"
        )
    ch = {i.image: i.hash for i in cp.images}
    bh = {i.image: i.hash for i in bp.images}
    if ch != bh:
        only_c, only_b = len(ch.keys() - bh.keys()), len(bh.keys() - ch.keys())
        changed = sum(1 for k in ch.keys() & bh.keys() if ch[k] != bh[k])
        raise InvalidInput(
            f"{cr.name} and {br.name} were evaluated on different {split} images ({only_c} only in "
            f"{cr.name}'s, {only_b} only in {br.name}'s, {changed} with other content): {fix}"
        )
    if cp.class_names != bp.class_names:
        raise InvalidInput(
            f"{cr.name} and {br.name} name their classes differently ({', '.join(cp.class_names)} / "
            f"{', '.join(bp.class_names)}): review needs runs trained on the same classes"
        )
    return cd or bd


def _checked(split: str, iou: float, conf: float) -> tuple[float, float]:
    """``iou`` and ``conf`` as floats, if they and ``split`` can be reviewed."""
    _check_split(split)
    return _check_threshold(iou, "iou", "IoU threshold"), _check_threshold(conf, "conf", "confidence")


def _check_floor(conf: float, *predictions: tuple[RunRecord, Predictions]) -> None:
    for run, p in predictions:
        if conf < p.conf_floor:
            raise InvalidInput(
                f"--conf {conf}: {run.name}'s predictions were recorded from confidence "
                f"{p.conf_floor} up only; use --conf {p.conf_floor} or more"
            )


# --------------------------------------------------------------------------- review
@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector paused while a review builds its hundreds of
    thousands of boxes (tuples and lists, no cycles): otherwise it walks them all again
    every few thousand allocations, which takes as long as the review itself. Re-enabled
    after, unless it was off before (another review under way in another thread)."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


class _Tally:
    """Per-class sums, as lists indexed by class."""

    def __init__(self, n: int) -> None:
        self.gained, self.lost = [0] * n, [0] * n
        self.fp_added, self.fp_removed = [0] * n, [0] * n
        self.c_tp, self.c_fp, self.c_fn = [0] * n, [0] * n, [0] * n
        self.b_tp, self.b_fp, self.b_fn = [0] * n, [0] * n, [0] * n

    def add(self, gt: Sequence[Box], c: ImageMatch, b: ImageMatch) -> None:
        """One image's matches of both runs against its ground truth ``gt``."""
        self._boxes(gt, c.found, self.c_tp, self.c_fn)
        self._boxes(gt, b.found, self.b_tp, self.b_fn)
        for box, cf, bf in zip(gt, c.found, b.found, strict=True):
            if cf != bf:
                (self.gained if cf else self.lost)[box[0]] += 1
        fp: dict[int, int] = {}  # by class: the candidate's false positives minus the baseline's
        for p, hit in zip(c.preds, c.matched, strict=True):
            if not hit:
                fp[p[0]] = fp.get(p[0], 0) + 1
                self.c_fp[p[0]] += 1
        for p, hit in zip(b.preds, b.matched, strict=True):
            if not hit:
                fp[p[0]] = fp.get(p[0], 0) - 1
                self.b_fp[p[0]] += 1
        for cls, d in fp.items():
            if d > 0:
                self.fp_added[cls] += d
            else:
                self.fp_removed[cls] -= d

    @staticmethod
    def _boxes(gt: Sequence[Box], found: Sequence[bool], tp: list[int], fn: list[int]) -> None:
        for box, hit in zip(gt, found, strict=True):
            (tp if hit else fn)[box[0]] += 1

    def classes(self, names: Sequence[str]) -> dict[str, ClassTally]:
        return {
            name: ClassTally(
                gained=self.gained[k],
                lost=self.lost[k],
                fp_added=self.fp_added[k],
                fp_removed=self.fp_removed[k],
                candidate=Counts(self.c_tp[k], self.c_fp[k], self.c_fn[k]),
                baseline=Counts(self.b_tp[k], self.b_fp[k], self.b_fn[k]),
            )
            for k, name in enumerate(names)
        }


def _image_review(i: ImagePredictions, other: ImagePredictions, c: ImageMatch, b: ImageMatch) -> ImageReview:
    cc, bc = _counts(c), _counts(b)
    return ImageReview(
        **_picture_of(i, other.thumb),
        candidate=cc,
        baseline=bc,
        delta=cc.errors - bc.errors,
        gt=i.gt,
        candidate_pred=c.preds,
        baseline_pred=b.preds,
        candidate_matched=c.matched,
        baseline_matched=b.matched,
        candidate_found=c.found,
        baseline_found=b.found,
    )


def _worst_first(r: ImageReview) -> tuple[int, int, str]:
    return -r.delta, -r.candidate.errors, r.image


def _focus(book: Book, project: str, class_names: Sequence[str]) -> int | None:
    """The index of the class of the project's comparison metric, when it is one class's
    AP or recall and that class is one of ``class_names``; otherwise ``None``."""
    parsed = parse_class_key(book.store.get_project(project).protocol.metric)
    if parsed is None or parsed.cls is None or parsed.cls not in class_names:
        return None
    return list(class_names).index(parsed.cls)


def _class_errors(gt: Sequence[Box], m: ImageMatch, k: int) -> int:
    """False negatives and false positives of class ``k`` in one image."""
    fn = sum(1 for box, hit in zip(gt, m.found, strict=True) if box[0] == k and not hit)
    return fn + sum(1 for p, hit in zip(m.preds, m.matched, strict=True) if p[0] == k and not hit)


def review(
    book: Book,
    candidate: str,
    baseline: str,
    *,
    project: str | None = None,
    split: str = "val",
    iou: float = 0.5,
    conf: float = 0.25,
) -> Review:
    """Every image of ``split`` with each run's tp, fp and fn at IoU >= ``iou`` and
    confidence >= ``conf``, worst for the candidate first (delta, then the candidate's
    errors, then the image's name), and per-class tallies of what it gained and lost.

    Refused (``InvalidInput``) for one run twice, runs of two projects, thresholds outside (0, 1], the
    sealed test split, and runs evaluated on different splits; ``NotFound`` (with the
    command to run) when a run has no predictions on the split."""
    iou, conf = _checked(split, iou, conf)
    cand, base, name = candidate_and_baseline(book, candidate, baseline, project, "review")
    with _collector_paused():
        ce, cp = load_predictions(book, cand, split)
        be, bp = load_predictions(book, base, split)
        _check_floor(conf, (cand, cp), (base, bp))
        digest = _same_split(split, (cand, ce, cp), (base, be, bp))
        theirs = {i.image: i for i in bp.images}
        tally = _Tally(len(cp.class_names))
        focus = _focus(book, name, cp.class_names)
        on_focus: dict[str, tuple[int, int]] = {}  # image: (-delta, -candidate errors) on the class
        images: list[ImageReview] = []
        for i in cp.images:
            other = theirs[i.image]
            c = match_image(i.gt, i.pred, iou_min=iou, conf=conf)
            b = match_image(i.gt, other.pred, iou_min=iou, conf=conf)  # one truth for both: the candidate's
            tally.add(i.gt, c, b)
            images.append(_image_review(i, other, c, b))
            if focus is not None:
                c_err, b_err = _class_errors(i.gt, c, focus), _class_errors(i.gt, b, focus)
                on_focus[i.image] = (b_err - c_err, -c_err)
    if focus is None:
        images.sort(key=_worst_first)
    else:
        images.sort(key=lambda r: (*on_focus[r.image], *_worst_first(r)))
    return Review(
        project=name,
        candidate=cand.name,
        baseline=base.name,
        split=split,
        iou=iou,
        conf=conf,
        class_names=list(cp.class_names),
        images=images,
        classes=tally.classes(cp.class_names),
        split_digest=digest,
        focus_class=cp.class_names[focus] if focus is not None else None,
    )


def _run_image(i: ImagePredictions, m: ImageMatch) -> RunImage:
    return RunImage(
        **_picture_of(i),
        counts=_counts(m),
        gt=i.gt,
        pred=m.preds,
        matched=m.matched,
        found=m.found,
    )


def run_images(
    book: Book,
    run: str,
    *,
    project: str | None = None,
    split: str = "val",
    iou: float = 0.5,
    conf: float = 0.25,
) -> RunImages:
    """One run's images of ``split`` with its tp, fp and fn, the most wrong first (then
    by name); refused as ``review`` refuses."""
    iou, conf = _checked(split, iou, conf)
    record = book.run(run, project)
    with _collector_paused():
        _ev, preds = load_predictions(book, record, split)
        _check_floor(conf, (record, preds))
        images = [_run_image(i, match_image(i.gt, i.pred, iou_min=iou, conf=conf)) for i in preds.images]
    images.sort(key=lambda r: (-r.counts.errors, r.image))
    return RunImages(
        project=record.project,
        run=record.name,
        split=split,
        iou=iou,
        conf=conf,
        class_names=list(preds.class_names),
        images=images,
    )
