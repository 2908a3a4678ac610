"""What the md, html and csv renderers share: the run table's columns and cells, the
protocol rows and titles. Numbers and times are ``core.format``'s, as in the CLI and the UI."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trialbook.core.curves import sparkline
from trialbook.core.format import num, when
from trialbook.services.reports.build import Report, ReportRun


def spark(points: Sequence[Sequence[float]], width: int = 24) -> str:
    return sparkline([float(v) for _, v in points], width)


def dataset_cell(row: ReportRun) -> str:
    return str(row["dataset"] or "-") if row["pinned"] else f"UNPINNED ({row['dataset'] or 'no dataset'})"


def decision_title(d: Any) -> str:
    verdict = "WIN" if d["verdict"] == "WIN" else "MORE EXPERIMENTS"
    return f"{d['candidate']} vs {d['baseline']}: {verdict} ({when(d['at'])}, {d['who']})"


RUN_COLUMNS = (
    "#",
    "run",
    "status",
    "dataset",
    "parent",
    "best",
    "final",
    "@epoch",
    "epochs",
    "converged @",
    "95% @",
    "drops",
    "max drawdown",
)


def run_cells(i: int, row: ReportRun) -> list[str]:
    name = row["name"] + (" (shipped)" if row.get("shipped") else "")
    return [
        str(i),
        name,
        row["status"],
        dataset_cell(row),
        row["parent"] or "-",
        num(row["best"]),
        num(row["final"]),
        num(row["epoch_of_best"]),
        num(row["epochs"]),
        num(row["convergence_epoch"]),
        num(row["epochs_to_95pct"]),
        num(row["drop_count"]),
        num(row["max_drawdown"]),
    ]


def protocol_rows(report: Report) -> list[tuple[str, str]]:
    return [(k, num(v) if v is not None else "not set") for k, v in report["protocol"].items()]
