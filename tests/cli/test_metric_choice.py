"""``project set --metric`` with one class's AP, recall at a precision and latency (issue
16), through the command line on a real book: refused with the known classes, audited,
and used by compare and decide."""

from __future__ import annotations

from support.cli import CLI, as_json
from trialbook.api import Book
from trialbook.core.classkeys import ap_key, recall_key

MAP = "metrics/mAP50-95(B)"
DEVICE = "jetson-orin-nx"
PALLET = ap_key("pallet")


def _runs(book: Book) -> None:
    """v1_base and v2_pallets (worse overall, better on pallets), as the callback logs them."""
    for name, overall, pallet, ms in (("v1_base", 0.60, 0.40, 12.0), ("v2_pallets", 0.58, 0.52, 9.0)):
        with book.start("pallets", name, allow_unpinned=True) as run:
            keys = {MAP: overall, PALLET: pallet, ap_key("box"): 0.7, recall_key(0.95): pallet}
            run.log(keys, epoch=0)
            run.log_eval("val", keys, per_class_ap={"pallet": pallet, "box": 0.7})
            run.log_eval("test", keys, per_class_ap={"pallet": pallet, "box": 0.7})
            run.log_latency(DEVICE, [ms])


def test_one_class_ap_through_the_cli(tb: CLI, sqlite_book: Book) -> None:
    tb("project", "set", "pallets", "--latency-budget", "50", "--device", DEVICE)
    _runs(sqlite_book)
    refused = tb("project", "set", "pallets", "--metric", "AP50-95:palet", code=1)
    assert "known classes (with metrics/AP50-95(B)/CLASS): box, pallet" in refused.stderr
    out = as_json(
        tb("project", "set", "pallets", "--metric", "AP50-95:pallet", "--reason", "pallets pay", "--json")
    )
    assert out["protocol"]["metric"] == PALLET and out["notes"] == []
    events = as_json(tb("audit", "--project", "pallets", "--json"))["events"]
    assert any(PALLET in e["detail"] and "pallets pay" in e["detail"] for e in events), events
    compared = as_json(tb("compare", "v1_base", "v2_pallets", "--json"))
    assert compared["metric"] == PALLET and [r["name"] for r in compared["runs"]] == ["v2_pallets", "v1_base"]
    decided = as_json(tb("decide", "v2_pallets", "--baseline", "v1_base", "--json"))
    improvement = decided["gates"][0]
    assert improvement["gate"] == "improvement" and improvement["passed"] and PALLET in improvement["detail"]
    assert decided["verdict"] == "WIN"


def test_latency_and_precision_level_through_the_cli(tb: CLI, sqlite_book: Book) -> None:
    tb("project", "set", "pallets", "--latency-budget", "50", "--device", DEVICE)
    _runs(sqlite_book)
    human = tb("project", "set", "pallets", "--metric", "latency", "--reason", "edge").stdout
    assert "note: noise threshold set to 0.5 ms (the latency default)" in human
    decided = tb("decide", "v2_pallets", "--baseline", "v1_base").stdout
    assert "faster by 3.0 ms, more than the noise threshold 0.5 ms" in decided
    assert "Metric:    latency/p50_ms (lower is better; noise 0.5 ms)" in decided
    tb("project", "set", "pallets", "--metric", "r@p0.95", "--reason", "alarms")
    refused = tb("project", "set", "pallets", "--precision-level", "0.9", code=1)
    assert "use --metric r@p0.9 (metrics/R@P0.9(B))" in refused.stderr
    help_text = tb("project", "set", "--help").stdout
    assert "ap50-95:CLASS" in help_text and "--precision-level" in help_text
