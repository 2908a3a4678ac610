"""A report as CSV: one row per run, ranked.

Text cells are guarded against CSV (formula) injection, as OWASP advises: a text that
starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return, which a spreadsheet
would run as a formula (``=cmd|' /C calc'!A0``), gets a leading ``'``, so it shows as the
text it is. Numbers are written as numbers (a negative value stays a number).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

from trialbook.core.notes import NOTE_FIELDS
from trialbook.services.reports.build import Report

CSV_COLUMNS = (
    "rank",
    "run",
    "status",
    "dataset",
    "pinned",
    "parent",
    "shipped",
    "metric",
    "best",
    "final",
    "epoch_of_best",
    "epochs",
    "convergence_epoch",
    "epochs_to_95pct",
    "drop_count",
    "max_drawdown",
    "val_value",
    *NOTE_FIELDS,
    "text",
    "decisions",
)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value`` for a CSV cell: text that a spreadsheet would take for a formula gets a
    leading ``'``; numbers, booleans and other text are kept as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def to_csv(report: Report) -> str:
    """One row per run, ranked; ``decisions`` lists the run's verdicts as a candidate."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for i, row in enumerate(report["runs"], 1):
        note: Mapping[str, Any] = row["note"] or {}
        verdicts = "; ".join(
            f"{d['verdict']} vs {d['baseline']}" for d in report["decisions"] if d["candidate"] == row["name"]
        )
        cells: list[Any] = [
            i,
            row["name"],
            row["status"],
            row["dataset"] or "",
            row["pinned"],
            row["parent"] or "",
            row.get("shipped", False),
            report["metric"],
            *(
                "" if row[k] is None else row[k]
                for k in (
                    "best",
                    "final",
                    "epoch_of_best",
                    "epochs",
                    "convergence_epoch",
                    "epochs_to_95pct",
                    "drop_count",
                    "max_drawdown",
                    "val_value",
                )
            ),
            *(note.get(f, "") for f in (*NOTE_FIELDS, "text")),
            verdicts,
        ]
        writer.writerow([safe_cell(c) for c in cells])
    return out.getvalue()
