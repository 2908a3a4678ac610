"""A report as Markdown (GitHub tables, the decisions as text blocks).

Every text that comes from a book (names, notes, reasons, tags, config values) is
escaped for where it goes, so that a note holding ``<script>`` or ``<img onerror=...>``
shows as text and never as HTML in a Markdown viewer:

* in prose, headings, lists and table cells: HTML-escaped (``&``, ``<``, ``>``), on one
  line (line breaks become spaces), with backslashes doubled (so that text cannot escape
  the ``|`` of a cell) and, in table cells and notes, ``|`` escaped, so each row stays one
  row of its table;
* in code spans and fenced blocks, where Markdown shows text as it is: fenced with more
  backticks than the text holds in a row, so it cannot close the fence.
"""

from __future__ import annotations

import html
import re
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

_LINE_BREAKS = re.compile(r"\r\n|[\r\n\u2028\u2029\x0b\x0c\x85]")
_BACKTICKS = re.compile(r"`+")


def _md_text(value: Any) -> str:
    """``value`` as Markdown text on one line: HTML-escaped, backslashes doubled."""
    text = html.escape(str(value), quote=False).replace("\\", "\\\\")
    return _LINE_BREAKS.sub(" ", text)


def _md_cell(value: Any) -> str:
    """``value`` as the text of one table cell (see the module docstring)."""
    return _md_text(value).replace("|", "\\|")


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks in ``text`` (at least three)."""
    longest = max((len(m) for m in _BACKTICKS.findall(text)), default=0)
    return "`" * max(3, longest + 1)


def _md_code(value: Any) -> str:
    """``value`` as an inline code span, shown exactly (on one line)."""
    text = _LINE_BREAKS.sub(" ", str(value))
    longest = max((len(m) for m in _BACKTICKS.findall(text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(_md_cell(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return [*out, ""]


def to_markdown(report: Report) -> str:
    p = report["protocol"]
    better = "higher" if report["direction"] == "max" else "lower"
    lines = [
        f"# {_md_text(report['title'])}",
        "",
        f"Generated {when(report['generated_at'])}. Runs are ranked by {_md_code(report['metric'])} "
        f"({better} is better; noise threshold {_md_text(p['noise'])}). Test results appear only in "
        "decisions.",
        "",
    ]
    if report["shipped"]:
        lines += [f"Shipped run: **{_md_text(report['shipped'])}**", ""]
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
            f"> **Warning:** the comparison metric changed from {_md_code(c['old'])} to "
            f"{_md_code(c['new'])} after runs were compared ({when(c['at'])}, {_md_text(c['who'])}; "
            f"reason: {_md_text(c['reason'] or 'none given')}).",
            "",
        ]
    lines += ["## Runs", ""]
    for w in report["warnings"]:
        lines += [f"> **Warning:** {_md_text(w)}", ""]
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
        fence = _fence(d["text"])
        lines += [f"### {_md_text(decision_title(d))}", "", f"{fence}text", d["text"], fence, ""]
    lines += ["## Notes", ""]
    for row in report["runs"]:
        note: Mapping[str, Any] | None = row["note"]
        lines += [f"### {_md_text(row['name'])}", ""]
        if not note:
            lines += ["_No note yet (note debt)._", ""]
            continue
        lines += [f"- **{f}:** {_md_cell(note[f])}" for f in (*NOTE_FIELDS, "text") if note.get(f)]
        lines += [""]
    return "\n".join(lines)
