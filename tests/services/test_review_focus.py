"""``review`` sorts by the protocol metric's class first when it is one class's AP or
recall (issue 16): the images the candidate gets more wrong on that class come first."""

from __future__ import annotations

from pathlib import Path

from support import review_cases as rc
from trialbook.api import Book
from trialbook.core.classkeys import ap_key
from trialbook.core.predictions import Pred
from trialbook.services.review import ImageReview, review


def _on(cls: int, r: ImageReview) -> int:
    """The candidate's errors on class ``cls`` minus the baseline's, counted from the boxes."""

    def errors(found: list[bool], preds: list[Pred], matched: list[bool]) -> int:
        fn = sum(1 for box, hit in zip(r.gt, found, strict=True) if box[0] == cls and not hit)
        return fn + sum(1 for p, hit in zip(preds, matched, strict=True) if p[0] == cls and not hit)

    return errors(r.candidate_found, r.candidate_pred, r.candidate_matched) - errors(
        r.baseline_found, r.baseline_pred, r.baseline_matched
    )


def test_the_protocol_class_sorts_first(book: Book, tmp_path: Path) -> None:
    rc.hand_made_book(book, tmp_path / "files")
    plain = review(book, rc.CANDIDATE, "v1_base")
    assert plain.focus_class is None and [i.image for i in plain.images] == rc.WORST_FIRST
    book.store.update_protocol("pallets", {"metric": ap_key("forklift")}, reason="forklifts", who="t")
    focused = review(book, rc.CANDIDATE, "v1_base")
    assert focused.focus_class == "forklift" and focused.to_json()["focus_class"] == "forklift"
    k = focused.class_names.index("forklift")
    deltas = [_on(k, i) for i in focused.images]
    assert deltas == sorted(deltas, reverse=True) and len(set(deltas)) > 1
    assert sorted(i.image for i in focused.images) == sorted(rc.WORST_FIRST)  # the same images
