"""A report as CSV: one row per run, ranked."""

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
        writer.writerow(
            [
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
        )
    return out.getvalue()
