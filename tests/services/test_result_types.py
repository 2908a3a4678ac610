"""The JSON documents users rely on come from the services' typed results: every key
INTERFACE.md promises is declared in the result's TypedDict (so mypy checks whoever
builds or reads it), and what the commands print has exactly the declared keys."""

from __future__ import annotations

from typing import Any

import pytest

from support.cli import cli_json as run_json
from trialbook.api import Book
from trialbook.services.compare import ComparedRun, Comparison
from trialbook.services.datasets import DataStatus
from trialbook.services.decisions import DecisionsList, DecisionView, GateView
from trialbook.services.lint import LintProblem, LintReport
from trialbook.services.runs import EvaluationView, RunLine, RunsTable, RunView, SummaryView

# INTERFACE.md, "JSON keys relied on"
PROMISED: list[tuple[Any, set[str]]] = [
    (RunsTable, {"project", "metric", "runs"}),
    (
        RunLine,
        {
            "name",
            "status",
            "dataset",
            "pinned",
            "parent",
            "best",
            "final",
            "epoch_of_best",
            "epochs",
            "has_note",
        },
    ),
    (
        RunView,
        {
            "name",
            "project",
            "status",
            "dataset",
            "pinned",
            "parent",
            "config",
            "summary",
            "evaluations",
            "note",
        },
    ),
    (SummaryView, {"best", "final", "epoch_of_best"}),
    (EvaluationView, {"split", "sealed", "metrics", "per_class_ap", "latency_ms"}),
    (Comparison, {"metric", "exploratory", "comparable", "runs"}),
    (
        ComparedRun,
        {
            "name",
            "best",
            "final",
            "epoch_of_best",
            "convergence_epoch",
            "epochs_to_95pct",
            "drops",
            "max_drawdown",
        },
    ),
    (DecisionView, {"candidate", "baseline", "verdict", "gates", "test_reveals_used", "test_budget"}),
    (GateView, {"gate", "passed", "detail"}),
    (DataStatus, {"dataset", "tag", "clean", "added", "removed", "changed"}),
    (LintReport, {"problems"}),
    (LintProblem, {"run", "kind", "detail"}),
    (DecisionsList, {"decisions"}),
    (
        DecisionView,
        {
            "id",
            "project",
            "who",
            "at",
            "candidate",
            "baseline",
            "verdict",
            "gates",
            "revealed",
            "test_reveals_used",
            "test_budget",
        },
    ),
]


def declared(kind: Any) -> set[str]:
    return set(kind.__required_keys__) | set(kind.__optional_keys__)


@pytest.mark.parametrize(("kind", "keys"), PROMISED, ids=lambda v: getattr(v, "__name__", ""))
def test_promised_keys_are_declared(kind: Any, keys: set[str]) -> None:
    assert keys - declared(kind) == set()


def test_printed_documents_have_exactly_the_declared_keys(demo_book: Book) -> None:
    def cli_json(*args: str) -> Any:
        return run_json(demo_book.uri, *args, codes=(0, 1))

    table = cli_json("runs")
    assert set(table) == declared(RunsTable)
    # the one-query table reads no tags and draws no sparkline: the optional keys
    assert {k for row in table["runs"] for k in row} == declared(RunLine) - {"tags", "spark"}
    shown = cli_json("show", "v3_pallets_added_imgsz_640")
    assert set(shown) == declared(RunView) - {"decisions"}  # only the run page shows decisions
    assert {k for s in shown["summary"].values() for k in s} == declared(SummaryView)
    assert {k for e in shown["evaluations"] for k in e} == declared(EvaluationView)
    compared = cli_json("compare", "v1_baseline", "v2_imgsz_1024")
    assert set(compared) == declared(Comparison)
    assert {k for r in compared["runs"] for k in r} == declared(ComparedRun)
    decided = cli_json("decide", "v3_pallets_added_imgsz_640", "--baseline", "v2_imgsz_1024")
    assert set(decided) == declared(DecisionView)
    assert {k for g in decided["gates"] for k in g} == declared(GateView)
    assert set(cli_json("decisions")) == declared(DecisionsList)
    linted = cli_json("lint")
    assert set(linted) == declared(LintReport)
    assert {k for p in linted["problems"] + linted["notices"] for k in p} <= declared(LintProblem)
    status = cli_json("data", "status", "pallets:v2")
    assert set(status) == declared(DataStatus)
