"""ship: a WIN decision or --force --reason; one shipped run per project, with history."""

from __future__ import annotations

from discipline_helpers import DEVICE, add_run, as_json, set_protocol


def setup(book):
    set_protocol(book, latency_budget_ms=8.0, device=DEVICE)
    common = {"per_class": {"pallet": 0.5}, "latency": 4.0}
    add_run(book, "v1_base", val=0.50, test=0.5, **common)
    add_run(book, "v2_better", val=0.60, test=0.6, **common)
    add_run(book, "v3_worse", val=0.40, test=0.4, **common)
    add_run(book, "v1_z", project="other")


def test_ship_needs_a_win(tb, sbook):
    setup(sbook)
    refused = tb("ship", "v2_better", code=1)
    assert "cannot ship v2_better: it has no decision" in refused.stderr
    assert "trialbook decide v2_better --baseline" in refused.stderr and "--force" in refused.stderr
    tb("decide", "v3_worse", "--baseline", "v1_base")
    lost = tb("ship", "v3_worse", code=1)
    assert "its last decision (against v1_base) was MORE_EXPERIMENTS" in lost.stderr
    no_reason = tb("ship", "v3_worse", "--force", code=1)
    assert "--force needs --reason" in no_reason.stderr
    assert as_json(tb("project", "show", "pallets", "--json"))["shipped"] is None


def test_ship_on_win_then_forced_one_per_project_with_history(tb, sbook):
    setup(sbook)
    win = as_json(tb("decide", "v2_better", "--baseline", "v1_base", "--json"))
    assert win["verdict"] == "WIN"
    out = as_json(tb("ship", "v2_better", "--json"))
    assert out["run"] == "v2_better" and out["forced"] is False
    assert out["decision_id"] == win["id"] and out["previous"] is None
    again = as_json(tb("ship", "v2_better", "--json"))
    assert again["already_shipped"] is True and len(again["ships"]) == 1
    human = tb("ship", "v3_worse", "--force", "--reason", "rollback: v2 misses night pallets").stdout
    assert "shipped v3_worse" in human and "was v2_better" in human and "forced" in human
    shown = as_json(tb("project", "show", "pallets", "--json"))
    assert shown["shipped"] == "v3_worse"
    assert [(s["run"], s["forced"], s["reason"]) for s in shown["ships"]] == [
        ("v2_better", False, None),
        ("v3_worse", True, "rollback: v2 misses night pallets"),
    ]
    assert all(s["who"] == "tester" for s in shown["ships"])
    assert "rollback: v2 misses night pallets" in tb("project", "show", "pallets").stdout
    # the other project is untouched
    assert as_json(tb("project", "show", "other", "--json"))["shipped"] is None
    report = tb("export", "--project", "pallets", "--format", "md").stdout
    assert "Shipped run: **v3_worse**" in report
