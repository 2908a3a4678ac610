"""``services.review`` on real books: the hand-made images of ``support.review_cases``
counted by hand, their order, the per-class tallies, the JSON, and every refusal; the
same review over a team server."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import review_cases as rc
from support.review_book import make_review_book
from support.runs import VAL_B, add_run
from support.server import start
from trialbook.api import Book
from trialbook.core.predictions import ARTIFACT_NAME
from trialbook.errors import InvalidInput, NotFound
from trialbook.services.review import (
    ClassTally,
    Counts,
    Review,
    load_predictions,
    review,
    run_images,
    thumbnail_bytes,
)


@pytest.fixture
def filled(book: Book, tmp_path: Path) -> Iterator[Book]:
    """The hand-made candidate and baseline (``support.review_cases``)."""
    rc.hand_made_book(book, tmp_path / "files")
    yield book


def counted(r: Review) -> dict[str, tuple[tuple[int, int, int], tuple[int, int, int], int]]:
    return {
        i.image: (
            (i.candidate.tp, i.candidate.fp, i.candidate.fn),
            (i.baseline.tp, i.baseline.fp, i.baseline.fn),
            i.delta,
        )
        for i in r.images
    }


def test_every_image_counted_as_by_hand_worst_first(filled: Book) -> None:
    r = review(filled, rc.CANDIDATE, "v1_base")
    assert (r.project, r.candidate, r.baseline, r.split, r.iou, r.conf) == (
        "pallets",
        "v2_cand",
        "v1_base",
        "val",
        0.5,
        0.25,
    )
    assert counted(r) == rc.EXPECTED
    assert [i.image for i in r.images] == rc.WORST_FIRST
    assert r.totals == (Counts(4, 3, 1), Counts(4, 2, 1))
    assert (r.worse, r.better) == (1, 2)
    assert r.classes == {
        "pallet": ClassTally(
            gained=0, lost=1, fp_added=2, fp_removed=0, candidate=Counts(2, 3, 1), baseline=Counts(3, 1, 0)
        ),
        "forklift": ClassTally(
            gained=1, lost=0, fp_added=0, fp_removed=1, candidate=Counts(2, 0, 0), baseline=Counts(1, 1, 1)
        ),
    }


def test_the_boxes_of_an_image_and_which_matched(filled: Book) -> None:
    b = review(filled, rc.CANDIDATE, rc.BASELINE).images[0]
    assert b.image == "b.jpg" and b.gt == rc.GT["b.jpg"]
    assert [p[1] for p in b.candidate_pred] == [0.9, 0.6, 0.55]  # best first
    assert b.candidate_matched == [False, True, False]  # off, found, the double
    assert b.candidate_found == [False, True]
    assert b.baseline_pred == [(0, 0.8, *rc.P2), (0, 0.7, *rc.P3)]  # the clutter under 0.25 left out
    assert b.baseline_matched == [True, True] and b.baseline_found == [True, True]
    assert (b.width, b.height, b.hash) == (640, 480, rc.image_hash("b.jpg"))


def test_thresholds_change_the_counts(filled: Book) -> None:
    strict = counted(review(filled, rc.CANDIDATE, rc.BASELINE, iou=0.6))
    assert strict["d.jpg"] == ((0, 1, 1), (1, 0, 0), 2)  # half of the forklift is no longer enough
    assert [i.image for i in review(filled, rc.CANDIDATE, rc.BASELINE, iou=0.6).images][:2] == [
        "b.jpg",
        "d.jpg",
    ]
    sure = counted(review(filled, rc.CANDIDATE, rc.BASELINE, conf=0.65))
    assert sure["b.jpg"] == ((0, 1, 2), (2, 0, 0), 3)  # only the off pallet is sure enough
    assert sure["a.jpg"] == ((2, 0, 0), (1, 1, 1), -2)  # the ghost (0.5) is gone


def test_json_keys_limit_and_boxes(filled: Book) -> None:
    doc = review(filled, rc.CANDIDATE, rc.BASELINE).to_json()
    for key in ("candidate", "baseline", "split", "iou", "conf", "images", "classes"):
        assert key in doc
    assert doc["image_count"] == 4 and len(doc["images"]) == 4
    assert doc["images"][0] == {
        "image": "b.jpg",
        "hash": rc.image_hash("b.jpg"),
        "thumb": doc["images"][0]["thumb"],
        "width": 640,
        "height": 480,
        "candidate": {"tp": 1, "fp": 2, "fn": 1},
        "baseline": {"tp": 2, "fp": 0, "fn": 0},
        "delta": 3,
    }
    assert doc["classes"]["forklift"] == {
        "gained": 1,
        "lost": 0,
        "fp_added": 0,
        "fp_removed": 1,
        "candidate": {"tp": 2, "fp": 0, "fn": 0},
        "baseline": {"tp": 1, "fp": 1, "fn": 1},
    }
    assert doc["totals"] == {
        "candidate": {"tp": 4, "fp": 3, "fn": 1},
        "baseline": {"tp": 4, "fp": 2, "fn": 1},
    }
    limited = review(filled, rc.CANDIDATE, rc.BASELINE).to_json(limit=1, boxes=True)
    assert [i["image"] for i in limited["images"]] == ["b.jpg"] and limited["image_count"] == 4
    b = limited["images"][0]
    assert b["gt"] == [list(box) for box in rc.GT["b.jpg"]]
    assert b["candidate_matched"] == [False, True, False] and b["baseline_found"] == [True, True]


def test_thumbnails_by_digest(filled: Book, tmp_path: Path) -> None:
    thumbs = {i.image: i.thumb for i in review(filled, rc.CANDIDATE, rc.BASELINE).images}
    files = {d: p for d, p in rc.thumbnails(tmp_path / "again").items()}
    digest = thumbs["a.jpg"]
    assert digest is not None
    assert thumbnail_bytes(filled, digest) == files[digest].read_bytes()
    assert thumbnail_bytes(filled, digest)[:2] == b"\xff\xd8"  # a JPEG
    with pytest.raises(InvalidInput, match="not a blob digest"):
        thumbnail_bytes(filled, "../book.db")
    with pytest.raises(NotFound):
        thumbnail_bytes(filled, "0" * 64)


def test_one_run_most_wrong_first(filled: Book) -> None:
    mine = run_images(filled, rc.CANDIDATE)
    assert [(i.image, i.counts) for i in mine.images] == [
        ("b.jpg", Counts(1, 2, 1)),
        ("a.jpg", Counts(2, 1, 0)),
        ("c.jpg", Counts(0, 0, 0)),
        ("d.jpg", Counts(1, 0, 0)),
    ]
    assert mine.totals == Counts(4, 3, 1)
    assert mine.images[0].matched == [False, True, False]
    doc = mine.to_json(limit=1, boxes=True)
    assert doc["run"] == "v2_cand" and doc["image_count"] == 4
    assert doc["images"][0]["counts"] == {"tp": 1, "fp": 2, "fn": 1}
    assert doc["images"][0]["found"] == [False, True]


def test_the_latest_evaluation_with_predictions_is_reviewed(filled: Book, tmp_path: Path) -> None:
    run = filled.run(rc.CANDIDATE)
    handle = filled.attach(run)
    handle.log_eval("val", {"metrics/mAP50-95(B)": 0.6})  # a later evaluation without predictions
    assert counted(review(filled, rc.CANDIDATE, rc.BASELINE))["b.jpg"] == rc.EXPECTED["b.jpg"]
    better = {**rc.CAND_PREDS, "b.jpg": rc.BASE_PREDS["b.jpg"]}
    from support.review_book import log_predictions

    log_predictions(handle, rc.predictions(better), tmp_path / "files", {})
    ev, preds = load_predictions(filled, run, "val")
    assert (
        ev.id
        == max(
            (e for e in filled.store.list_evaluations([run.id]) if e.split == "val"),
            key=lambda e: e.created_at,
        ).id
    )
    assert len(preds.images) == 4
    assert counted(review(filled, rc.CANDIDATE, rc.BASELINE))["b.jpg"] == ((2, 0, 0), (2, 0, 0), 0)


def test_runs_evaluated_on_different_splits_are_refused(book: Book, tmp_path: Path) -> None:
    rc.add_reviewed_run(book, rc.BASELINE, rc.predictions(rc.BASE_PREDS), tmp_path)
    other = rc.predictions(rc.CAND_PREDS, split_digest=VAL_B)
    rc.add_reviewed_run(book, "v2_other", other, tmp_path, digests={"val": VAL_B})
    with pytest.raises(InvalidInput) as refused:
        review(book, "v2_other", rc.BASELINE)
    text = str(refused.value)
    assert "v2_other and v1_base were evaluated on different val splits" in text
    assert f"(v2_other: {VAL_B[:12]} of pallets:v1, v1_base: {'a' * 12} of pallets:v1)" in text
    assert "evaluate both on one split (`trialbook yolo val RUN --split val` evaluates RUN" in text


def test_unknown_splits_are_compared_by_their_images(book: Book, tmp_path: Path) -> None:
    rc.add_reviewed_run(
        book, "v1_loose", rc.predictions(rc.BASE_PREDS, split_digest=None), tmp_path, digests={}
    )
    same = rc.predictions(rc.CAND_PREDS, split_digest=None)
    rc.add_reviewed_run(book, "v2_loose", same, tmp_path, digests={})
    assert review(book, "v2_loose", "v1_loose").split_digest is None
    fewer = rc.predictions({k: v for k, v in rc.CAND_PREDS.items() if k != "c.jpg"}, split_digest=None)
    rc.add_reviewed_run(book, "v3_fewer", fewer, tmp_path, digests={})
    with pytest.raises(
        InvalidInput, match=r"different val images \(0 only in v3_fewer's, 1 only in v1_loose's"
    ):
        review(book, "v3_fewer", "v1_loose")


def test_other_class_names_are_refused(book: Book, tmp_path: Path) -> None:
    rc.add_reviewed_run(book, rc.BASELINE, rc.predictions(rc.BASE_PREDS), tmp_path)
    renamed = rc.predictions(rc.CAND_PREDS, classes=["pallet", "truck"])
    rc.add_reviewed_run(book, "v2_renamed", renamed, tmp_path)
    with pytest.raises(InvalidInput, match="name their classes differently"):
        review(book, "v2_renamed", rc.BASELINE)


def test_a_run_without_predictions_says_how_to_record_them(filled: Book, tmp_path: Path) -> None:
    rc.add_reviewed_run(filled, "v0_bare", None, tmp_path)
    with pytest.raises(NotFound) as missing:
        review(filled, rc.CANDIDATE, "v0_bare")
    assert str(missing.value) == (
        "run pallets/v0_bare has no per-image predictions on the val split (its 1 val evaluation(s) "
        "recorded none): record them with `trialbook yolo val pallets/v0_bare --split val`"
    )
    add_run(filled, "v0_never", digests={})
    with pytest.raises(NotFound, match=r"\(no val evaluation\)"):
        run_images(filled, "v0_never")


def test_test_predictions_are_sealed(filled: Book, tmp_path: Path) -> None:
    with pytest.raises(
        InvalidInput, match="test predictions are sealed; only a decision reveals the test split"
    ):
        review(filled, rc.CANDIDATE, rc.BASELINE, split="test")
    with pytest.raises(InvalidInput, match="sealed"):
        run_images(filled, rc.CANDIDATE, split="test")
    # predictions recorded on the test split only are not a val split's
    rc.add_reviewed_run(
        filled, "v3_tested", rc.predictions(rc.CAND_PREDS, split="test"), tmp_path, split="test"
    )
    run = filled.run("v3_tested")
    assert [a.name for a in filled.store.list_artifacts(run.id)] == []  # sealed with the evaluation
    assert ARTIFACT_NAME in [a.name for a in filled.store.list_artifacts(run.id, reveal=True)]
    with pytest.raises(NotFound, match="v3_tested has no per-image predictions on the val split"):
        review(filled, "v3_tested", rc.BASELINE)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"iou": 0.0}, "--iou 0.0: the IoU threshold must be greater than 0 and at most 1"),
        ({"iou": 1.5}, "--iou 1.5: the IoU threshold"),
        ({"iou": math.nan}, "--iou nan"),
        ({"conf": 0.0}, "--conf 0.0: the confidence must be greater than 0 and at most 1"),
        ({"conf": -0.2}, "--conf -0.2"),
        ({"conf": 0.001}, r"--conf 0.001: v2_cand's predictions were recorded from confidence 0.01 up only"),
        ({"split": "train"}, "review reads the val split's predictions, not 'train''s (test is sealed)"),
    ],
)
def test_bad_options_are_refused(filled: Book, kw: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        review(filled, rc.CANDIDATE, rc.BASELINE, **kw)  # type: ignore[arg-type]


def test_one_run_twice_or_runs_of_two_projects_are_refused(filled: Book, tmp_path: Path) -> None:
    rc.add_reviewed_run(filled, "v1_elsewhere", rc.predictions(rc.BASE_PREDS), tmp_path, project="forklifts")
    with pytest.raises(InvalidInput, match="review needs runs of one project"):
        review(filled, rc.CANDIDATE, "forklifts/v1_elsewhere")
    with pytest.raises(InvalidInput, match=r"candidate and baseline are the same run \(v2_cand\)"):
        review(filled, rc.CANDIDATE, "pallets/v2_cand")


def test_review_over_a_team_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same service on a remote book: evaluations, artifacts and blobs over HTTP."""
    monkeypatch.setenv("TRIALBOOK_USER", "tester")
    monkeypatch.setenv("TRIALBOOK_OUTBOX", str(tmp_path / "outbox.db"))
    world = make_review_book(tmp_path / "served", images=12, worse=4, better=2)
    local = review(world.book, world.candidate, world.baseline)
    world.book.close()
    with start(str(tmp_path / "served" / "book")) as served:
        remote = Book.open(served.url)
        try:
            over_http = review(remote, world.candidate, world.baseline)
            assert over_http == local
            assert [i.delta > 0 for i in over_http.images[:4]] == [True] * 4  # the 4 made worse come first
            thumb = over_http.images[0].thumb
            assert thumb is not None and thumbnail_bytes(remote, thumb)[:2] == b"\xff\xd8"
            with pytest.raises(InvalidInput, match="different val splits"):
                review(remote, world.other_split, world.baseline)
            with pytest.raises(NotFound, match="trialbook yolo val"):
                review(remote, world.no_predictions, world.baseline)
        finally:
            remote.close()
