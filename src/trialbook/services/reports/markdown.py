"""A report as Markdown (GitHub tables, the decisions as text blocks)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from trialbook.core.notes import NOTE_FIELDS
from trialbook.services.reports.build import Report
from trialbook.services.reports.common import (
    RUN_COLUMNS,
    decision_title,
    num,
    protocol_rows,
    run_cells,
    spark,
    when,
)


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(_md_cell(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return [*out, ""]


def to_markdown(report: Report) -> str:
    p = report["protocol"]
    better = "higher" if report["direction"] == "max" else "lower"
    lines = [
        f"# {report['title']}",
        "",
        f"Generated {when(report['generated_at'])}. Runs are ranked by `{report['metric']}` "
        f"({better} is better; noise threshold {p['noise']}). Test results appear only in "
        "decisions.",
        "",
    ]
    if report["shipped"]:
        lines += [f"Shipped run: **{report['shipped']}**", ""]
    lines += ["## Protocol", "", *_md_table(("field", "value"), protocol_rows(report))]
    lines += ["## Protocol history", ""]
    if report["protocol_history"]:
        lines += _md_table(
            ("when", "field", "old", "new", "reason", "who"),
            [
                (
                    when(h["at"]),
                    h["field"] + (" (after runs were compared)" if h["after_comparison"] else ""),
                    num(h["old"]),
                    num(h["new"]),
                    h["reason"] or "-",
                    h["who"],
                )
                for h in report["protocol_history"]
            ],
        )
    else:
        lines += ["No changes: the default protocol.", ""]
    for c in report["metric_changes_after_comparison"]:
        lines += [
            f"> **Warning:** the comparison metric changed from `{c['old']}` to `{c['new']}` "
            f"after runs were compared ({when(c['at'])}, {c['who']}; reason: "
            f"{c['reason'] or 'none given'}).",
            "",
        ]
    lines += ["## Runs", ""]
    for w in report["warnings"]:
        lines += [f"> **Warning:** {w}", ""]
    lines += _md_table(
        (*RUN_COLUMNS, "curve"),
        [
            (*run_cells(i, row), spark(report["curves"].get(row["name"], [])))
            for i, row in enumerate(report["runs"], 1)
        ],
    )
    if report["config_diff"]:
        names = [row["name"] for row in report["runs"]]
        lines += ["## Config keys that differ", ""]
        lines += _md_table(
            ("key", *names), [(k, *(num(v.get(n)) for n in names)) for k, v in report["config_diff"].items()]
        )
    lines += ["## Decisions", ""]
    if not report["decisions"]:
        lines += ["No decisions yet.", ""]
    for d in report["decisions"]:
        lines += [f"### {decision_title(d)}", "", "```text", d["text"], "```", ""]
    lines += ["## Notes", ""]
    for row in report["runs"]:
        note: Mapping[str, Any] | None = row["note"]
        lines += [f"### {row['name']}", ""]
        if not note:
            lines += ["_No note yet (note debt)._", ""]
            continue
        lines += [f"- **{f}:** {_md_cell(note[f])}" for f in (*NOTE_FIELDS, "text") if note.get(f)]
        lines += [""]
    return "\n".join(lines)
