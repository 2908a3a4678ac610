"""The per-class gate on a real tagged dataset: the pinned version's val split says which
classes can be judged. A class with val instances never detected (AP 0) fails by name; a
class without val instances is listed as not evaluable, and passes (issue 11, item 9)."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.datasets import box, make_dataset
from trialbook.api import Book
from trialbook.services import datasets, decisions, projects

MAP = "metrics/mAP50-95(B)"


@pytest.fixture
def tagged(book: Book, tmp_path: Path) -> Book:
    """shapes:v1, classes cat, dog, bird: the val split holds cats and birds, no dog."""
    splits = {
        "train": {"a.jpg": [box(0), box(1), box(2)]},
        "val": {"e.jpg": [box(2)], "f.jpg": [box(0), box(2), box(2)]},
        "test": {"g.jpg": [box(1)]},
    }
    data = make_dataset(tmp_path / "data", splits)
    datasets.tag(book, "shapes", str(data), "v1")
    projects.set_protocol(book, "shapes", {"latency_budget_ms": 50.0, "device": "cpu"}, create=True)
    return book


def run(book: Book, name: str, val: float, per_class: dict[str, float], parent: str | None = None) -> None:
    with book.start("shapes", name, dataset="shapes:v1", parent=parent) as r:
        r.log_eval("val", {MAP: val}, per_class_ap=per_class, latency_ms=10.0, device="cpu")
        r.log_eval("test", {MAP: val})


def per_class_gate(book: Book) -> dict[str, object]:
    view = decisions.decide(book, "v2_cand", "v1_base", project="shapes")
    return next(dict(g) for g in view["gates"] if g["gate"] == "per_class")


def test_a_class_without_val_instances_is_not_evaluable(tagged: Book) -> None:
    # dog has no val instance: an AP 0 logged for it by hand is not judged
    run(tagged, "v1_base", 0.40, {"cat": 0.40, "dog": 0.0, "bird": 0.30})
    run(tagged, "v2_cand", 0.50, {"cat": 0.45, "dog": 0.0, "bird": 0.35}, parent="v1_base")
    gate = per_class_gate(tagged)
    assert gate["passed"] is True
    assert str(gate["detail"]).startswith("all 2 classes have AP above 0 and at least 0.90 × the baseline's")
    assert str(gate["detail"]).endswith("; not evaluable (no val instances): dog")


def test_a_class_with_val_instances_at_ap_0_fails_by_name(tagged: Book) -> None:
    run(tagged, "v1_base", 0.40, {"cat": 0.40, "bird": 0.0})
    run(tagged, "v2_cand", 0.50, {"cat": 0.45, "bird": 0.0}, parent="v1_base")
    gate = per_class_gate(tagged)
    assert gate["passed"] is False
    detail = str(gate["detail"])
    assert detail.startswith("1 of 2 classes fail: bird never detected: AP 0 in the candidate")
    assert "not evaluable (no val instances): dog" in detail


def test_a_class_with_val_instances_the_candidate_has_no_ap_for_fails(tagged: Book) -> None:
    run(tagged, "v1_base", 0.40, {"cat": 0.40})
    run(tagged, "v2_cand", 0.50, {"cat": 0.45}, parent="v1_base")
    gate = per_class_gate(tagged)
    assert gate["passed"] is False
    assert "bird missing in the candidate (not in the baseline's AP)" in str(gate["detail"])
