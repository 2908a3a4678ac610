"""Four hand-made images whose review is counted by hand, for ``trialbook review``'s
service and command tests; the runs' predictions are written with the real API
(``support.review_book.log_predictions``: ``log_eval``, then ``log_artifact(path,
evaluation=ev, blobs=thumbnails)``).

Classes ``pallet`` (0) and ``forklift`` (1); at IoU 0.5 and confidence 0.25:

========  =====================================  ============  ============  =====
image     what happens                           candidate     baseline      delta
========  =====================================  ============  ============  =====
``a.jpg`` the baseline calls the forklift a      tp 2 fp 1     tp 1 fp 1     -1
          pallet; the candidate finds both and   fn 0          fn 1
          sees a pallet ghost (0.5)
``b.jpg`` the candidate's first pallet is off    tp 1 fp 2     tp 2 fp 0     +3
          (IoU 1/3), its second doubled          fn 1          fn 0
``c.jpg`` no boxes; the baseline sees a          0 0 0         tp 0 fp 1     -1
          forklift ghost (0.3)                                 fn 0
``d.jpg`` the candidate's forklift covers half   tp 1 fp 0     tp 1 fp 0     0
          of it (IoU exactly 0.5)                fn 0          fn 0
========  =====================================  ============  ============  =====

Worst for the candidate first: b, d, a, c (a before c: the same delta, more candidate
errors). Per class: pallet lost 1 (b's first), fp added 2 (b), candidate 2/3/1,
baseline 3/1/0; forklift gained 1 (a's), fp removed 1 (c), candidate 2/0/0, baseline
1/1/1. Below 0.25 each run has clutter that never counts.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path

from support.review_book import draw_thumbnail, log_predictions
from support.runs import VAL_A, add_run
from trialbook.api import Book
from trialbook.artifacts.local import hash_file
from trialbook.core.entities import RunRecord
from trialbook.core.predictions import Box, ImagePredictions, Pred, Predictions, sort_preds

CANDIDATE, BASELINE = "v2_cand", "v1_base"
CLASSES = ["pallet", "forklift"]
IMAGES = ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]

P1 = (0.1, 0.1, 0.3, 0.3)
P2 = (0.2, 0.2, 0.4, 0.4)
P3 = (0.6, 0.6, 0.8, 0.8)
F1 = (0.5, 0.5, 0.9, 0.9)
F2 = (0.0, 0.0, 0.5, 1.0)
CLUTTER: Pred = (0, 0.1, 0.0, 0.0, 0.05, 0.05)

GT: dict[str, list[Box]] = {
    "a.jpg": [(0, *P1), (1, *F1)],
    "b.jpg": [(0, *P2), (0, *P3)],
    "c.jpg": [],
    "d.jpg": [(1, *F2)],
}
CAND_PREDS: dict[str, list[Pred]] = {
    "a.jpg": [(0, 0.9, *P1), (1, 0.8, *F1), (0, 0.5, 0.6, 0.1, 0.7, 0.2), CLUTTER],
    "b.jpg": [(0, 0.9, 0.3, 0.2, 0.5, 0.4), (0, 0.6, *P3), (0, 0.55, *P3)],
    "c.jpg": [CLUTTER],
    "d.jpg": [(1, 0.9, 0.0, 0.0, 0.25, 1.0)],
}
BASE_PREDS: dict[str, list[Pred]] = {
    "a.jpg": [(0, 0.9, *P1), (0, 0.7, *F1)],
    "b.jpg": [(0, 0.8, *P2), (0, 0.7, *P3), CLUTTER],
    "c.jpg": [(1, 0.3, 0.4, 0.4, 0.6, 0.6)],
    "d.jpg": [(1, 0.9, *F2)],
}
# image: (candidate tp, fp, fn), (baseline tp, fp, fn), delta
EXPECTED: dict[str, tuple[tuple[int, int, int], tuple[int, int, int], int]] = {
    "a.jpg": ((2, 1, 0), (1, 1, 1), -1),
    "b.jpg": ((1, 2, 1), (2, 0, 0), 3),
    "c.jpg": ((0, 0, 0), (0, 1, 0), -1),
    "d.jpg": ((1, 0, 0), (1, 0, 0), 0),
}
WORST_FIRST = ["b.jpg", "d.jpg", "a.jpg", "c.jpg"]


def image_hash(name: str) -> str:
    return f"{sum(map(ord, name)):064x}"


def predictions(
    preds: Mapping[str, Sequence[Pred]],
    *,
    gt: Mapping[str, Sequence[Box]] = GT,
    split_digest: str | None = VAL_A,
    thumbs: Mapping[str, str] | None = None,
    classes: Sequence[str] = CLASSES,
    split: str = "val",
) -> Predictions:
    """The predictions file of one run: ``preds`` per image (in that order) over ``gt``."""
    return Predictions(
        split=split,
        class_names=list(classes),
        split_digest=split_digest,
        images=[
            ImagePredictions(
                image=name,
                hash=image_hash(name),
                width=640,
                height=480,
                thumb=(thumbs or {}).get(name),
                gt=list(gt.get(name, [])),
                pred=sort_preds(p),
            )
            for name, p in preds.items()
        ],
    )


def thumbnails(folder: Path) -> dict[str, Path]:
    """A JPEG thumbnail of each image, by its digest (``blobs=`` of ``log_artifact``)."""
    rng = random.Random(4)
    out = {}
    for name in IMAGES:
        path = draw_thumbnail(folder / "thumbs" / name, GT[name], rng)
        out[hash_file(path)[0]] = path
    return out


def add_reviewed_run(
    book: Book,
    name: str,
    preds: Predictions | None,
    folder: Path,
    *,
    project: str = "pallets",
    digests: Mapping[str, str] | None = None,
    thumbs: Mapping[str, Path] | None = None,
    split: str = "val",
) -> RunRecord:
    """A run (``support.runs.add_run``) whose ``split`` evaluation carries ``preds`` (none:
    a val evaluation without predictions)."""
    record = add_run(book, name, project=project, digests=digests, pinned=digests != {})
    handle = book.attach(record)
    if preds is None:
        handle.log_eval(split, {"metrics/mAP50-95(B)": 0.4})
    else:
        log_predictions(handle, preds, folder, dict(thumbs or {}), split=split)
    return record


def hand_made_book(book: Book, folder: Path) -> dict[str, str]:
    """``v1_base`` and ``v2_cand`` with the predictions of the module's table, the
    baseline's file listing the images in another order; thumbnails for each image.
    Returns each image's thumbnail digest."""
    thumbs = thumbnails(folder)
    by_image = dict(zip(IMAGES, thumbs, strict=True))
    add_reviewed_run(
        book,
        BASELINE,
        predictions(dict(reversed(BASE_PREDS.items())), thumbs=by_image),
        folder,
        thumbs=thumbs,
    )
    add_reviewed_run(book, CANDIDATE, predictions(CAND_PREDS, thumbs=by_image), folder, thumbs=thumbs)
    return by_image
