"""``trialbook review`` on a real SQLite book: the hand-made images of
``support.review_cases`` as a table and as JSON, and the refusals as one line on stderr."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import review_cases as rc
from support.cli import CLI, as_json
from support.runs import VAL_B
from trialbook.api import Book

REVIEW = ("review", rc.CANDIDATE, "--baseline", rc.BASELINE)


@pytest.fixture
def filled(tb: CLI, sqlite_book: Book, tmp_path: Path) -> CLI:
    rc.hand_made_book(sqlite_book, tmp_path / "files")
    return tb


def test_json_lists_every_image_worst_first(filled: CLI) -> None:
    doc = as_json(filled(*REVIEW, "--json"))
    assert {"candidate", "baseline", "split", "iou", "conf", "images", "classes"} <= doc.keys()
    assert (doc["candidate"], doc["baseline"], doc["split"], doc["iou"], doc["conf"]) == (
        "v2_cand",
        "v1_base",
        "val",
        0.5,
        0.25,
    )
    assert [i["image"] for i in doc["images"]] == rc.WORST_FIRST
    for i in doc["images"]:
        cand, base, delta = rc.EXPECTED[i["image"]]
        assert {"image", "candidate", "baseline", "delta"} <= i.keys()
        assert i["candidate"] == dict(zip(("tp", "fp", "fn"), cand, strict=True))
        assert i["baseline"] == dict(zip(("tp", "fp", "fn"), base, strict=True))
        assert i["delta"] == delta
        assert all(type(v) is int for v in (*i["candidate"].values(), *i["baseline"].values(), i["delta"]))
    assert doc["classes"]["pallet"]["lost"] == 1 and doc["classes"]["forklift"]["gained"] == 1


def test_json_limit_and_thresholds(filled: CLI) -> None:
    doc = as_json(filled(*REVIEW, "--json", "--limit", "2", "--iou", "0.6", "--conf", "0.3"))
    assert [i["image"] for i in doc["images"]] == ["b.jpg", "d.jpg"]
    assert doc["image_count"] == 4 and (doc["iou"], doc["conf"]) == (0.6, 0.3)
    assert doc["images"][1]["candidate"] == {"tp": 0, "fp": 1, "fn": 1}


def test_the_table_worst_first_with_totals_and_classes(filled: CLI) -> None:
    out = filled(*REVIEW, "--limit", "2").stdout
    assert "pallets: v2_cand (candidate) against v1_base (baseline) on the val split aaaaaaaaaaaa" in out
    assert "IoU >= 0.5, confidence >= 0.25" in out
    assert "4 images: the candidate is worse on 1, better on 2, the same on 1" in out
    lines = out.splitlines()
    totals = next(k for k, line in enumerate(lines) if line.startswith("totals"))
    cells = {
        row.split()[1]: row.split("│")[2:-1]
        for row in lines[totals:]
        if row.split()[1:2] in (["candidate"], ["baseline"], ["change"])
    }
    assert [c.strip() for c in cells["candidate"]] == ["4", "3", "1", "4"]
    assert [c.strip() for c in cells["baseline"]] == ["4", "2", "1", "3"]
    assert [c.strip() for c in cells["change"]] == ["0", "+1", "0", "+1"]
    b = next(line for line in lines if "b.jpg" in line)
    assert [c.strip() for c in b.split("│")[1:-1]] == ["1", "b.jpg", "1", "2", "1", "2", "0", "0", "+3"]
    assert "d.jpg" in out and "a.jpg" not in out  # two shown
    assert "2 more images: --limit N for more, --all for every one (--json prints every one)" in out
    pallet = next(line for line in lines if "pallet" in line and "│" in line)
    assert [c.strip() for c in pallet.split("│")[1:-1]] == ["pallet", "0", "1", "2", "0", "2/3/1", "3/1/0"]
    everything = filled(*REVIEW, "--all").stdout
    assert "c.jpg" in everything and "more image" not in everything


def test_all_and_limit_do_not_go_together(filled: CLI) -> None:
    assert "--all shows every image" in filled(*REVIEW, "--all", "--limit", "3", code=2).stderr


def test_refusals_are_one_line_on_stderr(filled: CLI, sqlite_book: Book, tmp_path: Path) -> None:
    other = rc.predictions(rc.CAND_PREDS, split_digest=VAL_B)
    rc.add_reviewed_run(sqlite_book, "v3_other", other, tmp_path, digests={"val": VAL_B})
    rc.add_reviewed_run(sqlite_book, "v0_bare", None, tmp_path)
    cases = {
        ("v3_other", "--json"): "v3_other and v1_base were evaluated on different val splits",
        ("v0_bare",): "record them with `trialbook yolo val pallets/v0_bare --split val`",
        (
            rc.CANDIDATE,
            "--split",
            "test",
        ): "test predictions are sealed; only a decision reveals the test split",
        (rc.CANDIDATE, "--iou", "2"): "--iou 2.0: the IoU threshold must be greater than 0 and at most 1",
        (rc.CANDIDATE, "--conf", "0"): "--conf 0.0: the confidence must be greater than 0 and at most 1",
        ("v9_missing",): "no run named 'v9_missing'",
    }
    for (cand, *rest), message in cases.items():
        result = filled("review", cand, "--baseline", rc.BASELINE, *rest, code=1)
        assert result.stderr.startswith("Error: ") and message in result.stderr, result.stderr
        assert result.stdout == ""
    assert (
        "evaluate both on one split" in filled("review", "v3_other", "--baseline", rc.BASELINE, code=1).stderr
    )
