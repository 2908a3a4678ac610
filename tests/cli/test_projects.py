"""project create / show / set: defaults, aliases, the audit, the metric-change rule."""

from __future__ import annotations

import pytest

from support.cli import CLI, as_json
from support.runs import MAP, add_run
from trialbook.api import Book
from trialbook.services import projects as discipline


def test_create_show_and_defaults(tb: CLI) -> None:
    out = as_json(tb("project", "create", "pallets", "--json"))
    assert out["name"] == "pallets"
    assert out["protocol"] == {
        "metric": MAP,
        "direction": "max",
        "noise": 0.005,
        "class_floor": 0.9,
        "latency_budget_ms": None,
        "device": None,
        "naming_pattern": r"^v\d+[a-z]?_[a-z0-9][a-z0-9_.\-]*$",
        "test_budget": 5,
        "convergence_target": None,
        "precision_level": 0.95,
    }
    assert out["history"] == [] and out["shipped"] is None
    again = tb("project", "create", "pallets", code=1)
    assert "project 'pallets' already exists" in again.stderr
    human = tb("project", "show", "pallets").stdout
    assert "metrics/mAP50-95(B)" in human and "protocol history: none" in human
    missing = tb("project", "show", "nope", code=1)
    assert "no project named 'nope': the book has pallets (trialbook projects)" in missing.stderr
    assert "trialbook project create nope" in missing.stderr


def test_create_with_options_is_audited(tb: CLI) -> None:
    out = as_json(
        tb(
            "project",
            "create",
            "seg",
            "--metric",
            "map50-95(m)",
            "--latency-budget",
            "8",
            "--device",
            "jetson-orin-nx",
            "--json",
        )
    )
    assert out["protocol"]["metric"] == "metrics/mAP50-95(M)"
    assert out["protocol"]["latency_budget_ms"] == 8.0
    assert {h["field"] for h in out["history"]} == {"metric", "latency_budget_ms", "device"}
    assert all(h["reason"] == "set when the project was created" for h in out["history"])


def test_set_records_who_when_old_new_and_reason(tb: CLI, sqlite_book: Book) -> None:
    tb("project", "create", "pallets")
    out = as_json(
        tb(
            "project",
            "set",
            "pallets",
            "--noise",
            "0.01",
            "--class-floor",
            "0.85",
            "--test-budget",
            "3",
            "--convergence-target",
            "0.45",
            "--reason",
            "measured spread",
            "--json",
        )
    )
    assert {c["field"]: (c["old"], c["new"]) for c in out["changed"]} == {
        "noise": (0.005, 0.01),
        "class_floor": (0.9, 0.85),
        "test_budget": (5, 3),
        "convergence_target": (None, 0.45),
    }
    history = out["history"]
    assert [h["field"] for h in history] == ["noise", "class_floor", "test_budget", "convergence_target"]
    assert all(h["who"] == "tester" and h["reason"] == "measured spread" and h["at"] > 0 for h in history)
    # aliases, and the direction follows the metric unless given
    out = as_json(tb("project", "set", "pallets", "--metric", "map50", "--json"))
    assert out["protocol"]["metric"] == "metrics/mAP50(B)" and out["protocol"]["direction"] == "max"
    out = as_json(tb("project", "set", "pallets", "--metric", "val/box_loss", "--json"))
    assert out["protocol"]["direction"] == "min"
    out = as_json(tb("project", "set", "pallets", "--metric", "accuracy_top1", "--json"))
    assert out["protocol"]["metric"] == "metrics/accuracy_top1"
    assert out["protocol"]["direction"] == "max"
    human = tb("project", "set", "pallets", "--device", "jetson-orin-nx").stdout
    assert "device: not set -> jetson-orin-nx" in human


def test_bad_values_name_the_field(tb: CLI) -> None:
    tb("project", "create", "pallets")
    for args, message in (
        (["--noise", "-1"], "noise must be a number >= 0"),
        (["--class-floor", "1.5"], "class_floor must be in (0, 1]"),
        (["--metric", "lr/pg0"], "no better direction"),
        (["--naming-pattern", "(oops"], "not a regular expression"),
        ([], "nothing to change"),
    ):
        result = tb("project", "set", "pallets", *args, code=1)
        assert message in result.stderr, result.stderr
    bad_choice = tb("project", "set", "pallets", "--direction", "up", code=2)
    assert "'up' is not one of" in bad_choice.stderr


def test_metric_change_after_compare_needs_a_reason_and_shows_in_lint_and_reports(
    tb: CLI, sqlite_book: Book
) -> None:
    add_run(sqlite_book, "v1_base", curve=[0.3, 0.5], note={"hypothesis": "h"})
    add_run(sqlite_book, "v2_more", curve=[0.4, 0.6], note={"hypothesis": "h"})
    # before any comparison: no reason needed (and an exploratory compare does not count)
    tb("project", "set", "pallets", "--metric", "map50")
    tb("compare", "v1_base", "v2_more", "--metric", "val/box_loss")
    tb("project", "set", "pallets", "--metric", "map50-95")
    assert discipline.compared_at(sqlite_book, "pallets") is None
    tb("compare", "v1_base", "v2_more")
    assert discipline.compared_at(sqlite_book, "pallets") is not None
    refused = tb("project", "set", "pallets", "--metric", "map50", code=1)
    assert "have already been compared on metrics/mAP50-95(B)" in refused.stderr
    assert "--reason" in refused.stderr
    assert as_json(tb("project", "show", "pallets", "--json"))["protocol"]["metric"] == MAP
    tb("project", "set", "pallets", "--metric", "map50", "--reason", "the customer scores at IoU 0.5")
    shown = as_json(tb("project", "show", "pallets", "--json"))
    assert shown["history"][-1]["after_comparison"] is True
    assert shown["metric_changes_after_comparison"][0]["new"] == "metrics/mAP50(B)"
    assert "(after runs were compared)" in tb("project", "show", "pallets").stdout
    problems = as_json(tb("lint", "--json"))["problems"]
    changed = [p for p in problems if p["kind"] == "metric_changed_after_comparison"]
    assert len(changed) == 1 and changed[0]["run"] is None
    assert "the customer scores at IoU 0.5" in changed[0]["detail"]
    report = tb("export", "--project", "pallets", "--format", "md").stdout
    assert "after runs were compared" in report and "the customer scores at IoU 0.5" in report


def test_a_decision_counts_as_a_comparison(tb: CLI, sqlite_book: Book) -> None:
    add_run(sqlite_book, "v1_base", curve=[0.5])
    add_run(sqlite_book, "v2_more", curve=[0.6])
    tb("decide", "v2_more", "--baseline", "v1_base")
    assert "needs a reason" in tb("project", "set", "pallets", "--metric", "map50", code=1).stderr


def test_set_on_a_project_not_there_yet_creates_it_audited(tb: CLI, sqlite_book: Book) -> None:
    # right after `data tag shapes ...` there is no project "shapes" yet
    args = ("project", "set", "shapes", "--latency-budget", "50", "--device", "cpu-laptop")
    human = tb(*args).stdout
    assert human.startswith("created project shapes (it did not exist yet)\n")
    assert "latency_budget_ms: not set -> 50.0 ms" in human and "device: not set -> cpu-laptop" in human
    shown = as_json(tb("project", "show", "shapes", "--json"))
    assert shown["protocol"]["latency_budget_ms"] == 50.0 and shown["protocol"]["device"] == "cpu-laptop"
    assert [(h["field"], h["old"], h["new"], h["who"], h["reason"]) for h in shown["history"]] == [
        ("latency_budget_ms", None, 50.0, "tester", "set when the project was created"),
        ("device", None, "cpu-laptop", "tester", "set when the project was created"),
    ]
    again = as_json(tb("project", "set", "shapes", "--test-budget", "3", "--reason", "small set", "--json"))
    assert again["created"] is False and again["history"][-1]["reason"] == "small set"
    assert as_json(tb("project", "set", "other", "--noise", "0.01", "--json"))["created"] is True


def test_a_refused_set_or_create_leaves_no_project(tb: CLI, sqlite_book: Book) -> None:
    for command in ("set", "create"):
        refused = tb("project", command, "shapes", "--class-floor", "2", code=1)
        assert "class_floor must be in (0, 1]" in refused.stderr
        assert sqlite_book.store.list_projects() == []
    assert "nothing to change" in tb("project", "set", "shapes", code=1).stderr
    assert "must not contain '/'" in tb("project", "set", "a/b", "--noise", "0.01", code=1).stderr
    assert sqlite_book.store.list_projects() == []


def test_projects_lists_each_project_with_its_run_counts(tb: CLI, sqlite_book: Book) -> None:
    empty = tb("projects")
    assert "has no projects yet" in empty.stdout and "trialbook project create NAME" in empty.stdout
    assert as_json(tb("projects", "--json"))["projects"] == []
    add_run(sqlite_book, "v1_base", curve=[0.5], note={"result": "ok"})
    add_run(sqlite_book, "v2_more", curve=[0.6])
    add_run(sqlite_book, "v1_seg", project="seg", status="running")
    tb("project", "set", "shapes", "--noise", "0.01")
    listed = {p["name"]: p for p in as_json(tb("projects", "--json"))["projects"]}
    assert sorted(listed) == ["pallets", "seg", "shapes"]
    assert (listed["pallets"]["runs"], listed["pallets"]["note_debt"]) == (2, 1)
    assert (listed["seg"]["runs"], listed["seg"]["running"]) == (1, 1)
    assert listed["shapes"]["runs"] == 0
    rows = {line.split()[1]: line.split() for line in tb("projects").stdout.splitlines() if "│" in line}
    assert rows["pallets"][5] == "2" and rows["shapes"][5] == "0"


def test_who_is_the_os_login_name_when_user_is_unset(tb: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import pwd

    for var in ("TRIALBOOK_USER", "USER", "LOGNAME", "LNAME", "USERNAME"):
        monkeypatch.delenv(var, raising=False)
    login = pwd.getpwuid(os.getuid()).pw_name  # where getpass looks last
    out = as_json(tb("project", "set", "shapes", "--noise", "0.01", "--json"))
    assert out["history"][0]["who"] == login != "unknown"
    monkeypatch.setenv("TRIALBOOK_USER", "  ana  ")
    out = as_json(tb("project", "set", "shapes", "--noise", "0.02", "--json"))
    assert out["history"][-1]["who"] == "ana"
