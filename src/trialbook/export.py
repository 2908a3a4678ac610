"""Reports, the lessons archive: a project or some of its runs as Markdown, HTML, CSV or JSON.

A report holds the protocol and its audit history (metric changes made after runs were
compared are flagged), the runs ranked by the protocol metric with their curve analytics,
the curves, the config keys that differ, the decisions and the notes. Sealed test
numbers appear only inside decisions, which are where reveals live. The HTML report is
one self-contained file: inline CSS and an inline SVG overlay chart drawn here, no
scripts, no network.
"""

from __future__ import annotations

import csv
import html
import io
import json
import time
from collections.abc import Sequence
from typing import Any

from trialbook import discipline
from trialbook.api import Book
from trialbook.core.curves import sparkline
from trialbook.core.notes import NOTE_FIELDS
from trialbook.errors import InvalidInput
from trialbook.views import evaluation_dict, note_dict, pick_project

FORMATS = ("md", "html", "csv", "json")
_PALETTE = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#7f7f7f",
    "#bcbd22",
)


# --------------------------------------------------------------------------- the data
def build_report(book: Book, runs: Sequence[str] = (), *, project: str | None = None) -> dict[str, Any]:
    """The report as one dict (the ``json`` format): all of ``project``'s runs, or ``runs``."""
    if runs:
        records = [book.run(r, project) for r in dict.fromkeys(runs)]
        names = sorted({r.project for r in records})
        if len(names) > 1:
            raise InvalidInput(
                f"export: the runs are in several projects ({', '.join(names)}); export one project at a time"
            )
        name = names[0]
    else:
        name = pick_project(book, project)
        records = book.store.list_runs(name)
    info = discipline.project_info(book, name)
    proto = info["protocol"]
    if records:
        compared = discipline.compare(book, [f"{r.project}/{r.name}" for r in records], record=False)
    else:
        compared = {"runs": [], "config_diff": {}, "comparable": True, "warnings": []}
    by_name = {r.name: r for r in records}
    ids = [r.id for r in records]
    notes = book.store.get_notes(ids)
    evaluations: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    for ev in book.store.list_evaluations(ids):
        evaluations[ev.run_id].append(evaluation_dict(ev))
    rows = []
    for row in compared["runs"]:
        record = by_name[row["name"]]
        rows.append(
            {
                **{k: v for k, v in row.items() if k != "curve"},
                "config": record.config,
                "evaluations": evaluations[record.id],
                "note": note_dict(notes.get(record.id)),
                "shipped": info["shipped"] == record.name,
            }
        )
    all_decisions = discipline.decisions(book, name)["decisions"]
    chosen = (
        all_decisions
        if not runs
        else [d for d in all_decisions if d["candidate"] in by_name or d["baseline"] in by_name]
    )
    return {
        "title": f"trialbook report: {name}",
        "generated_at": time.time(),
        "project": name,
        "metric": proto["metric"],
        "direction": proto["direction"],
        "protocol": proto,
        "protocol_history": info["history"],
        "metric_changes_after_comparison": info["metric_changes_after_comparison"],
        "shipped": info["shipped"],
        "ships": info["ships"],
        "test_splits": info["test_splits"],
        "comparable": compared["comparable"],
        "warnings": compared["warnings"],
        "runs": rows,
        "curves": {row["name"]: row["curve"] for row in compared["runs"]},
        "config_diff": compared["config_diff"],
        "decisions": chosen,
    }


def render(report: dict[str, Any], fmt: str) -> str:
    """The report in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "json":
        return json.dumps(report, indent=2, default=str, allow_nan=False) + "\n"
    if fmt == "md":
        return to_markdown(report)
    if fmt == "html":
        return to_html(report)
    if fmt == "csv":
        return to_csv(report)
    raise InvalidInput(f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}")


# --------------------------------------------------------------------------- helpers
def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def _spark(points: Sequence[Sequence[float]], width: int = 24) -> str:
    return sparkline([float(v) for _, v in points], width)


def _dataset(row: dict[str, Any]) -> str:
    return str(row["dataset"] or "-") if row["pinned"] else f"UNPINNED ({row['dataset'] or 'no dataset'})"


def _decision_title(d: dict[str, Any]) -> str:
    verdict = "WIN" if d["verdict"] == "WIN" else "MORE EXPERIMENTS"
    return f"{d['candidate']} vs {d['baseline']}: {verdict} ({_when(d['at'])}, {d['who']})"


_RUN_COLUMNS = (
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


def _run_cells(i: int, row: dict[str, Any]) -> list[str]:
    name = row["name"] + (" (shipped)" if row.get("shipped") else "")
    return [
        str(i),
        name,
        row["status"],
        _dataset(row),
        row["parent"] or "-",
        _num(row["best"]),
        _num(row["final"]),
        _num(row["epoch_of_best"]),
        _num(row["epochs"]),
        _num(row["convergence_epoch"]),
        _num(row["epochs_to_95pct"]),
        _num(row["drop_count"]),
        _num(row["max_drawdown"]),
    ]


def _protocol_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    return [(k, _num(v) if v is not None else "not set") for k, v in report["protocol"].items()]


# --------------------------------------------------------------------------- markdown
def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(_md_cell(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return [*out, ""]


def to_markdown(report: dict[str, Any]) -> str:
    p = report["protocol"]
    better = "higher" if report["direction"] == "max" else "lower"
    lines = [
        f"# {report['title']}",
        "",
        f"Generated {_when(report['generated_at'])}. Runs are ranked by `{report['metric']}` "
        f"({better} is better; noise threshold {p['noise']}). Test results appear only in "
        "decisions.",
        "",
    ]
    if report["shipped"]:
        lines += [f"Shipped run: **{report['shipped']}**", ""]
    lines += ["## Protocol", "", *_md_table(("field", "value"), _protocol_rows(report))]
    lines += ["## Protocol history", ""]
    if report["protocol_history"]:
        lines += _md_table(
            ("when", "field", "old", "new", "reason", "who"),
            [
                (
                    _when(h["at"]),
                    h["field"] + (" (after runs were compared)" if h["after_comparison"] else ""),
                    _num(h["old"]),
                    _num(h["new"]),
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
            f"after runs were compared ({_when(c['at'])}, {c['who']}; reason: "
            f"{c['reason'] or 'none given'}).",
            "",
        ]
    lines += ["## Runs", ""]
    for w in report["warnings"]:
        lines += [f"> **Warning:** {w}", ""]
    lines += _md_table(
        (*_RUN_COLUMNS, "curve"),
        [
            (*_run_cells(i, row), _spark(report["curves"].get(row["name"], [])))
            for i, row in enumerate(report["runs"], 1)
        ],
    )
    if report["config_diff"]:
        names = [row["name"] for row in report["runs"]]
        lines += ["## Config keys that differ", ""]
        lines += _md_table(
            ("key", *names), [(k, *(_num(v.get(n)) for n in names)) for k, v in report["config_diff"].items()]
        )
    lines += ["## Decisions", ""]
    if not report["decisions"]:
        lines += ["No decisions yet.", ""]
    for d in report["decisions"]:
        lines += [f"### {_decision_title(d)}", "", "```text", d["text"], "```", ""]
    lines += ["## Notes", ""]
    for row in report["runs"]:
        note = row["note"]
        lines += [f"### {row['name']}", ""]
        if not note:
            lines += ["_No note yet (note debt)._", ""]
            continue
        lines += [f"- **{f}:** {_md_cell(note[f])}" for f in (*NOTE_FIELDS, "text") if note.get(f)]
        lines += [""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- csv
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


def to_csv(report: dict[str, Any]) -> str:
    """One row per run, ranked; ``decisions`` lists the run's verdicts as a candidate."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for i, row in enumerate(report["runs"], 1):
        note = row["note"] or {}
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


# --------------------------------------------------------------------------- html
def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    return [lo + (hi - lo) * i / (n - 1) for i in range(n)]


def overlay_svg(
    curves: dict[str, list[list[float]]], metric: str, *, width: int = 760, height: int = 360
) -> str:
    """An inline SVG chart: every run's curve of ``metric`` over the epochs, with a legend."""
    series = {name: pts for name, pts in curves.items() if pts}
    esc = html.escape
    if not series:
        return '<p class="muted">No per-epoch values of the metric to draw.</p>'
    left, right, top, bottom = 60, 190, 20, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    xs = [p[0] for pts in series.values() for p in pts]
    ys = [p[1] for pts in series.values() for p in pts]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y0, y1 = y0 - 0.5 * (abs(y0) or 1), y1 + 0.5 * (abs(y1) or 1)

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * plot_w

    def sy(y: float) -> float:
        return top + plot_h - (y - y0) / (y1 - y0) * plot_h

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{esc(metric)} per epoch">',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fff" stroke="#ccc"/>',
    ]
    for t in _ticks(y0, y1):
        y = sy(t)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{t:.3f}</text>')
    for t in _ticks(x0, x1):
        x = sx(t)
        parts.append(
            f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle" font-size="11">{t:.0f}</text>'
        )
    parts.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle" font-size="12">epoch</text>'
    )
    parts.append(
        f'<text x="14" y="{top + plot_h / 2:.1f}" text-anchor="middle" font-size="12" '
        f'transform="rotate(-90 14 {top + plot_h / 2:.1f})">{esc(metric)}</text>'
    )
    for i, (name, pts) in enumerate(series.items()):
        color = _PALETTE[i % len(_PALETTE)]
        path = " ".join(f"{sx(e):.1f},{sy(v):.1f}" for e, v in pts)
        parts.append(
            f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{path}">'
            f"<title>{esc(name)}</title></polyline>"
        )
        ly = top + 14 + i * 18
        parts.append(
            f'<line x1="{left + plot_w + 12}" y1="{ly - 4}" x2="{left + plot_w + 32}" '
            f'y2="{ly - 4}" stroke="{color}" stroke-width="3"/>'
        )
        parts.append(f'<text x="{left + plot_w + 38}" y="{ly}" font-size="12">{esc(name)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;
color:#222;padding:0 1em}
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ddd;padding:4px 8px;
text-align:left;font-size:14px}th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:
tabular-nums}.warn{background:#fff4d6;border-left:4px solid #f0b400;padding:6px 10px;margin:.5em 0}
pre{background:#f7f7f7;padding:10px;overflow-x:auto;font-size:13px}.muted{color:#777}
.WIN{color:#137333}.MORE_EXPERIMENTS{color:#b3261e}
"""


def _html_table(header: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[int] = ()) -> str:
    esc = html.escape
    out = ["<table><thead><tr>" + "".join(f"<th>{esc(str(h))}</th>" for h in header) + "</tr></thead><tbody>"]
    for row in rows:
        cells = "".join(
            f'<td class="num">{esc(str(c))}</td>' if i in numeric else f"<td>{esc(str(c))}</td>"
            for i, c in enumerate(row)
        )
        out.append(f"<tr>{cells}</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def to_html(report: dict[str, Any]) -> str:
    esc = html.escape
    p = report["protocol"]
    better = "higher" if report["direction"] == "max" else "lower"
    body = [
        f"<h1>{esc(report['title'])}</h1>",
        f'<p class="muted">Generated {esc(_when(report["generated_at"]))}. Runs are ranked by '
        f"<code>{esc(report['metric'])}</code> ({better} is better; noise threshold "
        f"{esc(str(p['noise']))}). Test results appear only in decisions.</p>",
    ]
    if report["shipped"]:
        body.append(f"<p>Shipped run: <strong>{esc(report['shipped'])}</strong></p>")
    body += [
        "<h2>Protocol</h2>",
        _html_table(("field", "value"), _protocol_rows(report)),
        "<h2>Protocol history</h2>",
    ]
    if report["protocol_history"]:
        body.append(
            _html_table(
                ("when", "field", "old", "new", "reason", "who"),
                [
                    (
                        _when(h["at"]),
                        h["field"] + (" (after runs were compared)" if h["after_comparison"] else ""),
                        _num(h["old"]),
                        _num(h["new"]),
                        h["reason"] or "-",
                        h["who"],
                    )
                    for h in report["protocol_history"]
                ],
            )
        )
    else:
        body.append("<p>No changes: the default protocol.</p>")
    for c in report["metric_changes_after_comparison"]:
        body.append(
            f'<p class="warn">The comparison metric changed from <code>{esc(str(c["old"]))}'
            f"</code> to <code>{esc(str(c['new']))}</code> after runs were compared "
            f"({esc(_when(c['at']))}, {esc(c['who'])}; reason: "
            f"{esc(c['reason'] or 'none given')}).</p>"
        )
    body.append("<h2>Runs</h2>")
    body += [f'<p class="warn">{esc(w)}</p>' for w in report["warnings"]]
    body.append(
        _html_table(
            _RUN_COLUMNS,
            [_run_cells(i, row) for i, row in enumerate(report["runs"], 1)],
            numeric=(0, 5, 6, 7, 8, 9, 10, 11, 12),
        )
    )
    body += ["<h2>Curves</h2>", overlay_svg(report["curves"], report["metric"])]
    if report["config_diff"]:
        names = [row["name"] for row in report["runs"]]
        body += [
            "<h2>Config keys that differ</h2>",
            _html_table(
                ("key", *names),
                [(k, *(_num(v.get(n)) for n in names)) for k, v in report["config_diff"].items()],
            ),
        ]
    body.append("<h2>Decisions</h2>")
    if not report["decisions"]:
        body.append("<p>No decisions yet.</p>")
    for d in report["decisions"]:
        body += [
            f'<h3 class="{esc(d["verdict"])}">{esc(_decision_title(d))}</h3>',
            f"<pre>{esc(d['text'])}</pre>",
        ]
    body.append("<h2>Notes</h2>")
    for row in report["runs"]:
        note = row["note"]
        body.append(f"<h3>{esc(row['name'])}</h3>")
        if not note:
            body.append('<p class="muted">No note yet (note debt).</p>')
            continue
        body.append(
            "<ul>"
            + "".join(
                f"<li><strong>{f}:</strong> {esc(note[f])}</li>"
                for f in (*NOTE_FIELDS, "text")
                if note.get(f)
            )
            + "</ul>"
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(report['title'])}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
