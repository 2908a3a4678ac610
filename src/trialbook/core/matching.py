"""Predicted boxes matched to the ground truth of one image, as COCO and Ultralytics
count hits: the predictions at or above a confidence, best first, each take the
unmatched ground-truth box of their class with the highest IoU, if that IoU is at least
the threshold. A matched prediction is a true positive, an unmatched one a false
positive (a duplicate of a box already found is one), an unmatched ground-truth box a
false negative.

Boxes are ``core.predictions`` rows: ground truth ``(cls, x1, y1, x2, y2)``, predictions
``(cls, conf, x1, y1, x2, y2)``. Pure; plain loops (a review matches every box of two
runs over thousands of images, so the inner loop stays tight).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter

from trialbook.core.predictions import Box, Pred

# An IoU this close below the threshold still counts as reaching it: boxes are stored to 4
# decimals, so a box drawn to overlap exactly half can compute to 0.49999999999.
IOU_TOLERANCE = 1e-9

_conf = itemgetter(1)


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """The intersection over union of two ``(x1, y1, x2, y2)`` boxes; 0 when they do not
    overlap or both are empty."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class ImageMatch:
    """One run's predictions on one image against its ground truth.

    ``preds`` are the predictions kept (confidence at least the threshold), best first;
    ``matched[j]`` says whether ``preds[j]`` matched a ground-truth box, and
    ``found[i]`` whether ground-truth box ``i`` was matched."""

    preds: list[Pred]
    matched: list[bool]
    found: list[bool]

    @property
    def tp(self) -> int:
        return sum(self.found)

    @property
    def fp(self) -> int:
        return len(self.matched) - sum(self.matched)

    @property
    def fn(self) -> int:
        return len(self.found) - sum(self.found)


_GtBox = tuple[int, float, float, float, float, float]  # index, x1, y1, x2, y2, area


def _best_box(boxes: list[_GtBox], found: list[bool], p: Pred, floor: float) -> int:
    """The index of the unmatched box of ``boxes`` that ``p`` overlaps most, at IoU
    ``floor`` or more (the first of equals); -1 for none."""
    _c, _s, x1, y1, x2, y2 = p
    area = (x2 - x1) * (y2 - y1)
    best, at = floor, -1
    for i, gx1, gy1, gx2, gy2, garea in boxes:
        if found[i]:
            continue
        iw = (x2 if x2 < gx2 else gx2) - (x1 if x1 > gx1 else gx1)
        if iw <= 0:
            continue
        ih = (y2 if y2 < gy2 else gy2) - (y1 if y1 > gy1 else gy1)
        if ih <= 0:
            continue
        inter = iw * ih
        union = area + garea - inter
        if union <= 0:
            continue
        v = inter / union
        if v > best or (at < 0 and v >= best):
            best, at = v, i
    return at


def match_image(gt: Sequence[Box], pred: Sequence[Pred], *, iou_min: float, conf: float) -> ImageMatch:
    """Match ``pred`` (those with confidence >= ``conf``) to ``gt``: greedily by
    confidence (ties keep the given order), each to the unmatched box of its class with
    the highest IoU >= ``iou_min`` (ties: the first such box)."""
    kept = sorted((p for p in pred if p[1] >= conf), key=_conf, reverse=True)
    found = [False] * len(gt)
    hit = [False] * len(kept)
    if not gt or not kept:
        return ImageMatch(kept, hit, found)
    by_class: dict[int, list[_GtBox]] = {}  # the ground-truth boxes of each class
    for i, (c, x1, y1, x2, y2) in enumerate(gt):
        by_class.setdefault(c, []).append((i, x1, y1, x2, y2, (x2 - x1) * (y2 - y1)))
    floor = iou_min - IOU_TOLERANCE
    for j, p in enumerate(kept):
        boxes = by_class.get(p[0])
        if boxes:
            at = _best_box(boxes, found, p, floor)
            if at >= 0:
                found[at] = hit[j] = True
    return ImageMatch(kept, hit, found)
