"""A report as one self-contained HTML file: inline CSS and an inline SVG overlay chart
drawn here, no scripts, no network."""

from __future__ import annotations

import html
import itertools
import math
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
    when,
)

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


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    return [lo + (hi - lo) * i / (n - 1) for i in range(n)]


def epoch_ticks(lo: float, hi: float, most: int = 8) -> list[int]:
    """Whole-number ticks from ``lo`` to ``hi`` (epochs), at most ``most`` of them, spaced
    1, 2, 5, 10, 20, 50 ... apart: a 3-epoch run gets 0, 1, 2, never 0.5 or 1.5."""
    span = max(hi - lo, 1.0)
    steps = (m * 10**k for k in itertools.count() for m in (1, 2, 5))
    step = next(s for s in steps if span / s <= most - 1)
    return list(range(math.ceil(lo / step) * step, math.floor(hi) + 1, step))


def overlay_svg(
    curves: dict[str, list[list[float]]], metric: str, *, width: int = 760, height: int = 360
) -> str:
    """An inline SVG chart: every run's curve of ``metric`` over the epochs (whole-number
    epoch ticks), and its legend as an HTML list below it."""
    series = {name: pts for name, pts in curves.items() if pts}
    esc = html.escape
    if not series:
        return '<p class="muted">No per-epoch values of the metric to draw.</p>'
    left, right, top, bottom = 60, 20, 20, 40
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

    legend: list[str] = []
    parts = [
        '<figure class="overlay">',
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{esc(metric)} per epoch">',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fff" stroke="#ccc"/>',
    ]
    for t in _ticks(y0, y1):
        y = sy(t)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{t:.3f}</text>')
    for e in epoch_ticks(x0, x1):
        x = sx(e)
        parts.append(
            f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle" font-size="11">{e}</text>'
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
        legend.append(f'<li><span class="swatch" style="background:{color}"></span>{esc(name)}</li>')
    parts.append("</svg>")
    # the legend is text beside the drawing: long run names wrap instead of being clipped
    parts.append('<ul class="legend">' + "".join(legend) + "</ul></figure>")
    return "\n".join(parts)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;
color:#222;padding:0 1em}
div.table{overflow-x:auto;margin:.5em 0 1.5em}table{border-collapse:collapse}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;font-size:14px}th{background:#f4f4f4}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.warn{background:#fff4d6;border-left:4px solid #f0b400;padding:6px 10px;margin:.5em 0}
pre{background:#f7f7f7;padding:10px;font-size:13px;white-space:pre-wrap;overflow-wrap:anywhere}
.muted{color:#777}figure.overlay{margin:0 0 1em}svg.chart{max-width:100%;height:auto}
ul.legend{list-style:none;padding:0;margin:.3em 0 0 60px;display:flex;flex-wrap:wrap;gap:4px 18px}
ul.legend li{overflow-wrap:anywhere}
.swatch{display:inline-block;width:20px;height:3px;vertical-align:middle;margin-right:6px}
.WIN{color:#137333}.MORE_EXPERIMENTS{color:#b3261e}
"""


def _html_table(header: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[int] = ()) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(str(h))}</th>" for h in header)
    # a table wider than the window scrolls in its own box; the page itself never does
    out = [f'<div class="table"><table><thead><tr>{head}</tr></thead><tbody>']
    for row in rows:
        cells = "".join(
            f'<td class="num">{esc(str(c))}</td>' if i in numeric else f"<td>{esc(str(c))}</td>"
            for i, c in enumerate(row)
        )
        out.append(f"<tr>{cells}</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)


def to_html(report: Report) -> str:
    esc = html.escape
    p = report["protocol"]
    better = "higher" if report["direction"] == "max" else "lower"
    body = [
        f"<h1>{esc(report['title'])}</h1>",
        f'<p class="muted">Generated {esc(when(report["generated_at"]))}. Runs are ranked by '
        f"<code>{esc(report['metric'])}</code> ({better} is better; noise threshold "
        f"{esc(str(p['noise']))}). Test results appear only in decisions.</p>",
    ]
    if report["shipped"]:
        body.append(f"<p>Shipped run: <strong>{esc(report['shipped'])}</strong></p>")
    body += [
        "<h2>Protocol</h2>",
        _html_table(("field", "value"), protocol_rows(report)),
        "<h2>Protocol history</h2>",
    ]
    if report["protocol_history"]:
        body.append(
            _html_table(
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
        )
    else:
        body.append("<p>No changes: the default protocol.</p>")
    for c in report["metric_changes_after_comparison"]:
        body.append(
            f'<p class="warn">The comparison metric changed from <code>{esc(str(c["old"]))}'
            f"</code> to <code>{esc(str(c['new']))}</code> after runs were compared "
            f"({esc(when(c['at']))}, {esc(c['who'])}; reason: "
            f"{esc(c['reason'] or 'none given')}).</p>"
        )
    body.append("<h2>Runs</h2>")
    body += [f'<p class="warn">{esc(w)}</p>' for w in report["warnings"]]
    body.append(
        _html_table(
            RUN_COLUMNS,
            [run_cells(i, row) for i, row in enumerate(report["runs"], 1)],
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
                [(k, *(num(v.get(n)) for n in names)) for k, v in report["config_diff"].items()],
            ),
        ]
    body.append("<h2>Decisions</h2>")
    if not report["decisions"]:
        body.append("<p>No decisions yet.</p>")
    for d in report["decisions"]:
        body += [
            f'<h3 class="{esc(d["verdict"])}">{esc(decision_title(d))}</h3>',
            f"<pre>{esc(d['text'])}</pre>",
        ]
    body.append("<h2>Notes</h2>")
    for row in report["runs"]:
        note: Mapping[str, Any] | None = row["note"]
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
