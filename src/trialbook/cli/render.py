"""Human output of the CLI (rich tables). JSON output never passes through here."""

from __future__ import annotations

import datetime as dt
import shutil
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

# Piped output keeps whole lines (names and digests are not cut to 80 columns).
console = Console(
    width=None if sys.stdout.isatty() else max(shutil.get_terminal_size((160, 24)).columns, 160))

_BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int = 24) -> str:
    """A unicode sparkline of ``values`` (NaN skipped), resampled to ``width`` cells."""
    vals = [v for v in values if v == v]
    if not vals:
        return ""
    if len(vals) > width:
        step = len(vals) / width
        vals = [vals[int(i * step)] for i in range(width - 1)] + [vals[-1]]
    lo, hi = min(vals), max(vals)
    span = (hi - lo) or 1.0
    return "".join(_BLOCKS[int((v - lo) / span * (len(_BLOCKS) - 1))] for v in vals)


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def status_text(status: str) -> str:
    color = {"finished": "green", "running": "cyan", "failed": "red", "crashed": "magenta"}
    return f"[{color.get(status, 'white')}]{status}[/]"


def runs_table(table: dict[str, Any]) -> None:
    label = " [yellow](exploratory)[/]" if table.get("exploratory") else ""
    t = Table(title=f"{table['project']}: runs ranked by {table['metric']}{label}",
              title_justify="left")
    for col in ("#", "run", "status", "dataset", "parent", "best", "final", "@epoch", "epochs",
                "note"):
        t.add_column(col, justify="right" if col in ("#", "best", "final", "@epoch", "epochs")
                     else "left", no_wrap=col in ("run", "dataset", "parent"))
    for i, r in enumerate(table["runs"], 1):
        dataset = r["dataset"] if r["pinned"] else "[red]UNPINNED[/]"
        name = r["name"] + (" [yellow](legacy name)[/]" if r.get("legacy_name") else "")
        t.add_row(str(i), name, status_text(r["status"]), dataset or "-", r["parent"] or "-",
                  fmt(r["best"]), fmt(r["final"]), fmt(r["epoch_of_best"]), str(r["epochs"]),
                  "yes" if r["has_note"] else "[yellow]note debt[/]")
    console.print(t)


def run_detail(d: dict[str, Any]) -> None:
    console.print(f"[bold]{d['project']}/{d['name']}[/]  {status_text(d['status'])}  id {d['id'][:12]}")
    dataset = d["dataset"] if d["pinned"] else "[red]UNPINNED[/]"
    console.print(f"dataset: {dataset}    parent: {d['parent'] or '-'}    "
                  f"started {when(d['created_at'])}    ended {when(d['ended_at'])}")
    git = d["env"].get("git")
    if git:
        dirty = " (dirty)" if git.get("dirty") else ""
        console.print(f"git: {git.get('branch')} {str(git.get('commit'))[:10]}{dirty}")
    if d["config"]:
        cfg = Table(title="config", title_justify="left", show_header=False)
        cfg.add_column("key")
        cfg.add_column("value")
        for k, v in d["config"].items():
            cfg.add_row(k, str(v))
        console.print(cfg)
    if d["summary"]:
        s = Table(title="metrics", title_justify="left")
        for col in ("key", "best", "final", "@epoch", "epochs"):
            s.add_column(col)
        for k, v in d["summary"].items():
            nan = f" ({v['nan_count']} NaN)" if v["nan_count"] else ""
            s.add_row(k, fmt(v["best"]), fmt(v["final"]), fmt(v["epoch_of_best"]),
                      f"{v['epochs']}{nan}")
        console.print(s)
    for ev in d["evaluations"]:
        if ev["sealed"]:
            console.print(f"evaluation [bold]{ev['split']}[/]: [yellow]sealed[/] "
                          "(revealed only by `trialbook decide`)")
            continue
        metrics = ", ".join(f"{k}={fmt(v)}" for k, v in ev["metrics"].items())
        console.print(f"evaluation [bold]{ev['split']}[/]: {metrics}")
        if ev["per_class_ap"]:
            console.print("  per-class AP: " + ", ".join(
                f"{k} {fmt(v, 3)}" for k, v in ev["per_class_ap"].items()))
        if ev["latency_ms"] is not None:
            console.print(f"  latency: {ev['latency_ms']:.2f} ms on {ev['device'] or '?'}")
    for a in d["artifacts"]:
        console.print(f"artifact: {a['name']} ({a['size']} bytes, {a['digest'][:12]})")
    note = d["note"]
    if note:
        console.print("[bold]note[/]")
        for f in ("hypothesis", "change", "result", "next", "text"):
            if note[f]:
                console.print(f"  {f}: {note[f]}")
    else:
        console.print("[yellow]no note yet (note debt)[/]")


def dataset_counts(version: dict[str, Any]) -> None:
    """Per-split totals and per-class images / instances of one version."""
    names = version.get("class_names") or []
    t = Table(title="per split and class (images / instances)", title_justify="left")
    t.add_column("split")
    t.add_column("images", justify="right")
    t.add_column("instances", justify="right")
    t.add_column("background", justify="right")
    for name in names:
        t.add_column(name, justify="right")
    for split, c in version["splits"].items():
        per = c.get("classes", {})
        cells = [f"{per.get(n, {}).get('images', 0)} / {per.get(n, {}).get('instances', 0)}"
                 for n in names]
        t.add_row(split, str(c.get("images", 0)), str(c.get("instances", 0)),
                  str(c.get("background", 0)), *cells)
    console.print(t)


def dataset_list(items: list[dict[str, Any]]) -> None:
    t = Table(title="dataset versions", title_justify="left")
    for col in ("dataset", "version", "tags", "images (train/val/test)", "created", "source"):
        t.add_column(col, no_wrap=col in ("dataset", "version"))
    for v in items:
        counts = "/".join(str(v["splits"].get(s, {}).get("images", "-")) for s in ("train", "val", "test"))
        t.add_row(v["name"], v["short"], ", ".join(v["tags"]) or "-", counts, when(v["created_at"]),
                  v["source"] or "-")
    console.print(t)


def dataset_diff(d: dict[str, Any], left: str, right: str) -> None:
    """Files added / removed / changed per split, and per-class deltas."""
    if d["clean"]:
        console.print(f"[green]clean[/]: {right} matches {left}")
        return
    console.print(f"[yellow]{right} differs from {left}[/]")
    for split, s in d.get("splits", {}).items():
        added, removed, changed = s.get("added", []), s.get("removed", []), s.get("changed", [])
        if not (added or removed or changed or s.get("classes")):
            continue
        console.print(f"  [bold]{split}[/]: +{len(added)} added, -{len(removed)} removed, "
                      f"~{len(changed)} changed")
        for label, paths in (("+", added), ("-", removed), ("~", changed)):
            for p in paths[:5]:
                console.print(f"    {label} {p}")
            if len(paths) > 5:
                console.print(f"    {label} ... and {len(paths) - 5} more")
        for cls, delta in s.get("classes", {}).items():
            console.print(f"    {cls}: images {delta.get('images', 0):+d}, "
                          f"instances {delta.get('instances', 0):+d}")
