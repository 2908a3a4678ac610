"""Notes: the drafted result line and note debt (trialbook.core.notes)."""

from __future__ import annotations

from typing import Any

import pytest

from trialbook.core.entities import Note
from trialbook.core.notes import NOTE_FIELDS, draft_result, note_debt, short_metric_name

MAP = "metrics/mAP50-95(B)"


def test_draft_result_example_from_the_design() -> None:
    line = draft_result(
        MAP,
        0.51,
        0.59,
        {"pallet": 0.31, "forklift": 0.60},
        {"pallet": 0.58, "forklift": 0.601},
        0.005,
    )
    assert line == "pallet AP 0.31 → 0.58; overall mAP 0.51 → 0.59"


def test_draft_result_biggest_moves_first_in_either_direction() -> None:
    line = draft_result(
        MAP,
        0.50,
        0.52,
        {"a": 0.50, "b": 0.50, "c": 0.50},
        {"a": 0.55, "b": 0.30, "c": 0.60},
        0.005,
    )
    assert line == "b AP 0.50 → 0.30; c AP 0.50 → 0.60; a AP 0.50 → 0.55; overall mAP 0.50 → 0.52"


def test_draft_result_move_exactly_at_noise_is_left_out() -> None:
    line = draft_result(MAP, 0.50, 0.60, {"a": 0.510}, {"a": 0.515}, 0.005)
    assert line == "overall mAP 0.50 → 0.60"


def test_draft_result_class_in_one_run_only_is_left_out() -> None:
    line = draft_result(MAP, 0.50, 0.60, {"a": 0.5}, {"b": 0.9}, 0.005)
    assert line == "overall mAP 0.50 → 0.60"


def test_draft_result_overall_within_noise_says_so() -> None:
    line = draft_result(MAP, 0.512, 0.514, {}, {}, 0.005)
    assert line == "overall mAP 0.51 → 0.51 (within noise)"


def test_draft_result_without_parent() -> None:
    assert draft_result(MAP, None, 0.59, None, {"pallet": 0.5}, 0.005) == (
        "overall mAP 0.59 (no parent run to compare)"
    )


def test_draft_result_without_run_value() -> None:
    assert draft_result(MAP, 0.5, None, {}, {}, 0.005) == "overall mAP not recorded"


@pytest.mark.parametrize(
    ("key", "short"),
    [
        ("metrics/mAP50-95(B)", "mAP"),
        ("metrics/mAP50(B)", "mAP50"),
        ("metrics/mAP50-95(M)", "mask mAP"),
        ("metrics/mAP50(P)", "pose mAP50"),
        ("metrics/accuracy_top1", "accuracy_top1"),
        ("val/box_loss", "box_loss"),
        ("loss", "loss"),
    ],
)
def test_short_metric_name(key: str, short: str) -> None:
    assert short_metric_name(key) == short


def test_note_fields() -> None:
    assert NOTE_FIELDS == ("hypothesis", "change", "result", "next")


def test_note_debt_finished_without_note() -> None:
    assert note_debt(None, "finished") is True


def test_note_debt_empty_or_blank_note() -> None:
    assert note_debt(Note(run_id="r1"), "finished") is True
    assert note_debt(Note(run_id="r1", result="   ", text="\n"), "finished") is True
    assert note_debt({"hypothesis": "", "next": None}, "finished") is True


@pytest.mark.parametrize("field", [*NOTE_FIELDS, "text"])
def test_any_written_field_clears_the_debt(field: str) -> None:
    written: dict[str, Any] = {field: "smaller lr helps"}
    assert note_debt(Note(run_id="r1", **written), "finished") is False
    assert note_debt({field: "smaller lr helps"}, "finished") is False


@pytest.mark.parametrize("status", ["running", "failed", "crashed"])
def test_only_finished_runs_are_in_debt(status: str) -> None:
    assert note_debt(None, status) is False
