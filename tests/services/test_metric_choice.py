"""Every metric of the lesson's table can be the one pre-chosen metric (issue 16): one
class's AP, the recall at a fixed precision and the latency on the target, chosen with
``project set``, audited, refused with what is known, and used by compare and decide.

Runs are made through the real API on real books (SQLite, and PostgreSQL where it is
set); the per-class keys are logged as the Ultralytics callback logs them
(``core.classkeys``)."""

from __future__ import annotations

import pytest

import trialbook as tb
from trialbook.api import Book
from trialbook.core.classkeys import ap_key, recall_key
from trialbook.services import compare, decisions, projects

MAP = "metrics/mAP50-95(B)"
DEVICE = "jetson-orin-nx"
PALLET = ap_key("pallet")


def _run(
    book: Book,
    name: str,
    *,
    overall: float,
    pallet: float,
    box: float,
    parent: str | None = None,
    latency: list[float] | None = None,
    device: str = DEVICE,
) -> None:
    """A run with per-epoch overall mAP, per-class AP and recall at precision 0.95, a val
    and a test evaluation with the same keys, and a latency measurement if given."""
    with book.start("pallets", name, parent=parent, allow_unpinned=True) as run:
        for epoch, f in enumerate((0.5, 1.0)):
            run.log(
                {
                    MAP: overall * f,
                    PALLET: pallet * f,
                    ap_key("box"): box * f,
                    ap_key("pallet", iou="50"): min(1.0, pallet * f + 0.1),
                    recall_key(0.95): pallet * f,
                    recall_key(0.95, "pallet"): pallet * f,
                },
                epoch=epoch,
            )
        keys = {MAP: overall, PALLET: pallet, ap_key("box"): box, recall_key(0.95): pallet}
        per_class = {"pallet": pallet, "box": box}
        run.log_eval("val", keys, per_class_ap=per_class, class_names=["pallet", "box"])
        run.log_eval("test", {k: v - 0.01 for k, v in keys.items()}, per_class_ap=per_class)
        if latency is not None:
            run.log_latency(device, latency)


@pytest.fixture
def filled(book: Book) -> Book:
    """v1_base, and v2_pallets: worse overall, much better on pallets, faster on the target."""
    projects.create_project(book, "pallets", {"latency_budget_ms": 50.0, "device": DEVICE})
    _run(book, "v1_base", overall=0.60, pallet=0.40, box=0.70, latency=[12.0, 12.0, 13.0])
    _run(book, "v2_pallets", overall=0.58, pallet=0.52, box=0.69, parent="v1_base", latency=[9.0, 9.0, 10.0])
    return book


def gate(view: decisions.DecisionView, name: str) -> decisions.GateView:
    return next(g for g in view["gates"] if g["gate"] == name)


def test_one_class_ap_is_chosen_audited_compared_and_decided_on(filled: Book) -> None:
    changed = projects.set_protocol(filled, "pallets", {"metric": "AP50-95:pallet"}, "pallets pay")
    assert changed["protocol"]["metric"] == PALLET and changed["protocol"]["direction"] == "max"
    assert changed["changed"][0] == {"field": "metric", "old": MAP, "new": PALLET}
    history = projects.project_info(filled, "pallets")["history"]
    assert [(h["field"], h["old"], h["new"], h["reason"], h["who"]) for h in history][-1] == (
        "metric",
        MAP,
        PALLET,
        "pallets pay",
        "tester",
    )
    # compare ranks on pallet AP: the run that is worse overall comes first
    view = compare.compare_runs(filled, ["v1_base", "v2_pallets"], project="pallets")
    assert view["metric"] == PALLET and not view["exploratory"]
    assert [r["name"] for r in view["runs"]] == ["v2_pallets", "v1_base"]
    assert view["runs"][0]["best"] == pytest.approx(0.52) and view["runs"][0]["curve"][-1][1] == 0.52
    # the overall metric is now exploratory, and ranks the other way
    other = compare.compare_runs(filled, ["v1_base", "v2_pallets"], project="pallets", metric="map50-95")
    assert other["exploratory"] and [r["name"] for r in other["runs"]] == ["v1_base", "v2_pallets"]
    decided = decisions.decide(filled, "v2_pallets", "v1_base", project="pallets")
    assert decided["metric"] == PALLET
    improvement = gate(decided, "improvement")
    assert improvement["passed"] and PALLET in improvement["detail"]
    assert "0.5200 vs baseline v1_base 0.4000" in improvement["detail"]
    assert "(12.00 AP points)" in improvement["detail"]
    test_set = gate(decided, "test_set")
    assert test_set["passed"] and f"test {PALLET}: candidate v2_pallets 0.5100" in test_set["detail"]
    assert decided["verdict"] == "WIN", decided["text"]
    assert f"Metric:    {PALLET}" in decided["text"]


def test_an_unknown_class_is_refused_with_the_known_classes(filled: Book) -> None:
    with pytest.raises(tb.InvalidInput) as err:
        projects.set_protocol(filled, "pallets", {"metric": "ap50-95:palet"})
    text = str(err.value)
    assert "'metrics/AP50-95(B)/palet'" in text and "class 'palet'" in text
    assert "known classes (with metrics/AP50-95(B)/CLASS): box, pallet" in text
    # AP50 of one class: only pallet has it
    with pytest.raises(tb.InvalidInput, match=r"known classes \(with metrics/AP50\(B\)/CLASS\): pallet"):
        projects.set_protocol(filled, "pallets", {"metric": "ap50:box"})
    assert filled.store.get_project("pallets").protocol.metric == MAP  # nothing changed
    assert [h["field"] for h in projects.project_info(filled, "pallets")["history"]] == [
        "latency_budget_ms",
        "device",
    ]


def test_a_class_only_in_per_class_ap_is_named_with_the_fix(book: Book) -> None:
    projects.create_project(book, "pallets")
    with book.start("pallets", "v1_old", allow_unpinned=True) as run:  # recorded before issue 16
        run.log({MAP: 0.5}, epoch=0)
        run.log_eval("val", {MAP: 0.5}, per_class_ap={"pallet": 0.4, "box": 0.6})
    with pytest.raises(tb.InvalidInput) as err:
        projects.set_protocol(book, "pallets", {"metric": "ap50-95:pallet"})
    assert "class 'pallet' has per-class AP in an evaluation" in str(err.value)
    assert "trialbook yolo val RUN --split val" in str(err.value)


def test_a_project_with_no_runs_accepts_a_class_in_advance(book: Book) -> None:
    made = projects.set_protocol(book, "forklifts", {"metric": "AP50-95:Fork Lift"}, create=True)
    assert made["created"] and made["protocol"]["metric"] == "metrics/AP50-95(B)/Fork Lift"
    assert made["protocol"]["direction"] == "max"


def test_recall_at_precision_follows_the_precision_level(filled: Book) -> None:
    changed = projects.set_protocol(filled, "pallets", {"metric": "R@P0.95:pallet"}, "alarms")
    assert changed["protocol"]["metric"] == "metrics/R@P0.95(B)/pallet"
    # another level while the metric is at 0.95: refused, naming the key that matches it
    with pytest.raises(tb.InvalidInput) as err:
        projects.set_protocol(filled, "pallets", {"precision_level": 0.9}, "stricter")
    assert "--metric r@p0.9:pallet (metrics/R@P0.9(B)/pallet)" in str(err.value)
    projects.set_protocol(filled, "pallets", {"metric": "map50-95"}, "back")
    with pytest.raises(tb.InvalidInput, match=r"precision level is 0.9: use --metric r@p0.9 "):
        projects.set_protocol(filled, "pallets", {"precision_level": 0.9, "metric": "r@p0.95"}, "x")
    # the level alone, then the key at it: no run has logged R@P0.9 yet
    level = projects.set_protocol(filled, "pallets", {"precision_level": 0.9}, "stricter")
    assert level["protocol"]["precision_level"] == 0.9
    assert level["changed"] == [{"field": "precision_level", "old": 0.95, "new": 0.9}]
    with pytest.raises(tb.InvalidInput, match=r"recall keys there: metrics/R@P0.95\(B\)"):
        projects.set_protocol(filled, "pallets", {"metric": "r@p0.9"}, "x")
    with pytest.raises(tb.InvalidInput, match=r"precision_level must be in \(0, 1\]"):
        projects.set_protocol(filled, "pallets", {"precision_level": 1.5})


def test_latency_is_chosen_with_its_noise_in_ms_ranked_and_decided_on(filled: Book) -> None:
    changed = projects.set_protocol(filled, "pallets", {"metric": "latency"}, "edge box")
    proto = changed["protocol"]
    assert proto["metric"] == "latency/p50_ms" and proto["direction"] == "min" and proto["noise"] == 0.5
    assert changed["notes"] == [
        "noise threshold set to 0.5 ms (the latency default); give --noise to choose another"
    ]
    _run(filled, "v3_slow_here", overall=0.6, pallet=0.5, box=0.7, latency=[1.0], device="laptop")
    view = compare.compare_runs(filled, ["v1_base", "v2_pallets", "v3_slow_here"], project="pallets")
    assert view["direction"] == "min"
    assert [(r["name"], r["best"]) for r in view["runs"]] == [
        ("v2_pallets", 9.0),
        ("v1_base", 12.0),
        ("v3_slow_here", None),  # measured on another device only
    ]
    assert any(
        "no latency measured on jetson-orin-nx for v3_slow_here" in w
        and "trialbook yolo latency v3_slow_here --device jetson-orin-nx" in w
        for w in view["warnings"]
    )
    decided = decisions.decide(filled, "v2_pallets", "v1_base", project="pallets")
    improvement = gate(decided, "improvement")
    assert improvement["passed"], improvement
    assert "candidate v2_pallets 9.0 ms vs baseline v1_base 12.0 ms" in improvement["detail"]
    assert "faster by 3.0 ms, more than the noise threshold 0.5 ms" in improvement["detail"]
    assert (
        gate(decided, "test_set")["passed"]
        and "no test latency to compare" in gate(decided, "test_set")["detail"]
    )
    assert decided["verdict"] == "WIN" and "noise 0.5 ms" in decided["text"]
    missing = decisions.decide(filled, "v3_slow_here", "v1_base", project="pallets")
    failed = gate(missing, "improvement")
    assert (
        not failed["passed"] and "no latency (latency/p50_ms) measured on jetson-orin-nx" in failed["detail"]
    )
    assert failed["hint"] and "trialbook yolo latency RUN --device jetson-orin-nx" in failed["hint"]
    # back to an accuracy metric without --noise: the accuracy default again
    back = projects.set_protocol(filled, "pallets", {"metric": "map50-95"}, "back")
    assert back["protocol"]["noise"] == 0.005 and back["protocol"]["direction"] == "max"


def test_latency_needs_a_device_and_keeps_a_given_noise(book: Book) -> None:
    projects.create_project(book, "pallets")
    with pytest.raises(tb.InvalidInput, match="trialbook project set pallets --metric latency --device NAME"):
        projects.set_protocol(book, "pallets", {"metric": "latency"})
    given = projects.set_protocol(book, "pallets", {"metric": "latency", "device": DEVICE, "noise": 1.5})
    assert given["protocol"]["noise"] == 1.5 and given["notes"] == []
