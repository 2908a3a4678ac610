"""Predictions matched to ground truth on hand-made boxes (trialbook.core.matching)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trialbook.core.matching import iou, match_image
from trialbook.core.predictions import Box, Pred

WHOLE = (0.0, 0.0, 1.0, 1.0)


def counts(
    gt: list[Box], pred: list[Pred], *, iou_min: float = 0.5, conf: float = 0.25
) -> tuple[int, int, int]:
    m = match_image(gt, pred, iou_min=iou_min, conf=conf)
    return m.tp, m.fp, m.fn


def test_iou_of_boxes() -> None:
    assert iou(WHOLE, WHOLE) == 1.0
    assert iou(WHOLE, (0.0, 0.0, 0.5, 1.0)) == 0.5
    assert iou((0.0, 0.0, 0.5, 0.5), (0.25, 0.25, 0.75, 0.75)) == pytest.approx(0.0625 / 0.4375)
    assert iou((0.0, 0.0, 0.5, 0.5), (0.5, 0.0, 1.0, 0.5)) == 0.0  # touching edges
    assert iou((0.0, 0.0, 0.2, 0.2), (0.5, 0.5, 0.9, 0.9)) == 0.0
    assert iou((0.3, 0.3, 0.3, 0.3), (0.3, 0.3, 0.3, 0.3)) == 0.0  # empty boxes


def test_the_most_confident_prediction_takes_the_box() -> None:
    gt: list[Box] = [(0, 0.1, 0.1, 0.5, 0.5)]
    low_but_exact: Pred = (0, 0.6, 0.1, 0.1, 0.5, 0.5)
    high_but_loose: Pred = (0, 0.9, 0.1, 0.1, 0.55, 0.5)  # IoU 0.889
    m = match_image(gt, [low_but_exact, high_but_loose], iou_min=0.5, conf=0.25)
    assert m.preds == [high_but_loose, low_but_exact]  # best first
    assert m.matched == [True, False]  # the exact one came second: a duplicate, a false positive
    assert m.found == [True]
    assert (m.tp, m.fp, m.fn) == (1, 1, 0)


def test_a_prediction_takes_the_unmatched_box_it_overlaps_most() -> None:
    gt: list[Box] = [(0, 0.0, 0.0, 0.4, 0.4), (0, 0.1, 0.0, 0.5, 0.4)]
    first: Pred = (0, 0.9, 0.1, 0.0, 0.5, 0.4)  # exactly box 1; IoU 0.6 with box 0
    second: Pred = (0, 0.8, 0.05, 0.0, 0.45, 0.4)  # IoU 0.778 with both: box 1 is taken, so box 0
    m = match_image(gt, [second, first], iou_min=0.5, conf=0.25)
    assert m.found == [True, True]
    assert m.matched == [True, True]
    # greedy, not the best assignment: the first takes box 1, and the second's only box is gone
    third: Pred = (0, 0.7, 0.1, 0.0, 0.5, 0.4)
    m = match_image(gt[1:], [third, first], iou_min=0.5, conf=0.25)
    assert (m.tp, m.fp, m.fn) == (1, 1, 0)


def test_equal_overlaps_go_to_the_first_box() -> None:
    gt: list[Box] = [(0, 0.0, 0.0, 0.5, 1.0), (0, 0.5, 0.0, 1.0, 1.0)]
    middle: Pred = (0, 0.9, 0.25, 0.0, 0.75, 1.0)  # IoU 1/3 with each
    assert match_image(gt, [middle], iou_min=0.3, conf=0.25).found == [True, False]


def test_equal_confidences_keep_the_given_order() -> None:
    gt: list[Box] = [(0, *WHOLE)]
    a: Pred = (0, 0.5, 0.0, 0.0, 1.0, 0.6)
    b: Pred = (0, 0.5, *WHOLE)
    assert match_image(gt, [a, b], iou_min=0.5, conf=0.25).matched == [True, False]
    assert match_image(gt, [b, a], iou_min=0.5, conf=0.25).matched == [True, False]


def test_a_box_of_another_class_is_a_false_positive_and_a_miss() -> None:
    assert counts([(0, *WHOLE)], [(1, 0.9, *WHOLE)]) == (0, 1, 1)
    assert counts([(0, *WHOLE), (1, *WHOLE)], [(1, 0.9, *WHOLE), (0, 0.8, *WHOLE)]) == (2, 0, 0)


def test_reaching_the_iou_threshold_exactly_counts() -> None:
    gt: list[Box] = [(0, *WHOLE)]
    half: Pred = (0, 0.9, 0.0, 0.0, 0.5, 1.0)
    assert counts(gt, [half], iou_min=0.5) == (1, 0, 0)
    assert counts(gt, [half], iou_min=0.5001) == (0, 1, 1)
    assert counts(gt, [(0, 0.9, 0.0, 0.0, 0.4999, 1.0)], iou_min=0.5) == (0, 1, 1)
    # the left half of 0.01..0.13 computes a hair under 0.5 in floating point: still a match
    small: list[Box] = [(0, 0.01, 0.7, 0.13, 0.8)]
    left: Pred = (0, 0.9, 0.01, 0.7, 0.07, 0.8)
    assert iou(left[2:], small[0][1:]) < 0.5
    assert counts(small, [left], iou_min=0.5) == (1, 0, 0)


def test_predictions_below_the_confidence_are_left_out() -> None:
    gt: list[Box] = [(0, *WHOLE)]
    m = match_image(gt, [(0, 0.2499, *WHOLE), (0, 0.1, 0.5, 0.5, 0.6, 0.6)], iou_min=0.5, conf=0.25)
    assert (m.preds, m.tp, m.fp, m.fn) == ([], 0, 0, 1)
    assert counts(gt, [(0, 0.25, *WHOLE)], conf=0.25) == (1, 0, 0)  # at the threshold: kept


def test_duplicates_are_false_positives() -> None:
    gt: list[Box] = [(0, 0.1, 0.1, 0.3, 0.3), (0, 0.6, 0.6, 0.9, 0.9)]
    preds: list[Pred] = [(0, 0.9, 0.1, 0.1, 0.3, 0.3)] * 3 + [(0, 0.4, 0.6, 0.6, 0.9, 0.9)]
    assert counts(gt, preds) == (2, 2, 0)


def test_empty_images() -> None:
    assert counts([], []) == (0, 0, 0)
    assert counts([], [(0, 0.9, *WHOLE), (1, 0.3, *WHOLE)]) == (0, 2, 0)
    assert counts([(0, *WHOLE), (0, 0.1, 0.1, 0.2, 0.2)], []) == (0, 0, 2)
    m = match_image([(0, *WHOLE)], [], iou_min=0.5, conf=0.25)
    assert (m.preds, m.matched, m.found) == ([], [], [False])


_coord = st.integers(0, 20).map(lambda v: v / 20)


@st.composite
def _box(draw: st.DrawFn) -> tuple[float, float, float, float]:
    x1, x2 = sorted((draw(_coord), draw(_coord)))
    y1, y2 = sorted((draw(_coord), draw(_coord)))
    return x1, y1, x2, y2


_gt = st.lists(st.tuples(st.integers(0, 2), _box()).map(lambda t: (t[0], *t[1])), max_size=8)
_pred = st.lists(
    st.tuples(st.integers(0, 2), st.integers(1, 100).map(lambda v: v / 100), _box()).map(
        lambda t: (t[0], t[1], *t[2])
    ),
    max_size=12,
)


@given(
    gt=_gt,
    pred=_pred,
    iou_min=st.sampled_from([0.1, 0.5, 0.75, 1.0]),
    conf=st.sampled_from([0.01, 0.25, 0.6]),
)
def test_every_box_is_counted_once(gt: list[Box], pred: list[Pred], iou_min: float, conf: float) -> None:
    m = match_image(gt, pred, iou_min=iou_min, conf=conf)
    kept = [p for p in pred if p[1] >= conf]
    assert m.tp + m.fn == len(gt)
    assert m.tp + m.fp == len(kept)
    assert sorted(m.preds) == sorted(kept)
    assert [p[1] for p in m.preds] == sorted((p[1] for p in kept), reverse=True)
    # a found box has a kept prediction of its class over it
    for box, found in zip(gt, m.found, strict=True):
        if found:
            assert any(p[0] == box[0] and iou(p[2:], box[1:]) >= iou_min - 1e-9 for p in m.preds)
