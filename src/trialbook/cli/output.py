"""Human output of the CLI (rich tables). JSON output never passes through here."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from trialbook.core.curves import sparkline
from trialbook.core.format import metric, ms, protocol_value, short_digest, size, when
from trialbook.core.format import num as fmt

if TYPE_CHECKING:
    from trialbook.services.compare import Comparison
    from trialbook.services.datasets import DatasetDiff, DataStatus, VersionView
    from trialbook.services.decisions import DecisionsList, DecisionView, ShipResult
    from trialbook.services.lint import LintReport, NameSuggestion, NoiseReport
    from trialbook.services.notes import NoteDraft, NoteHistory, NoteSearch, NoteView, RunNote
    from trialbook.services.projects import ProjectInfo, ProjectsOverview, ProtocolChanged
    from trialbook.services.runs import EvaluationView, RunsTable, RunView, SummaryView

__all__ = ["console", "esc", "fmt", "sparkline", "when"]

# Piped output keeps whole lines (names and digests are not cut to 80 columns).
console = Console(
    width=None if sys.stdout.isatty() else max(shutil.get_terminal_size((160, 24)).columns, 160)
)


def status_text(status: str) -> str:
    color = {"finished": "green", "running": "cyan", "failed": "red", "crashed": "magenta"}
    return f"[{color.get(status, 'white')}]{status}[/]"


FIRST_RUN = (
    "record a first run, tag the dataset (`trialbook data tag shapes data.yaml --tag v1`), then "
    "`trialbook yolo train v1_baseline -d shapes:v1 -- model=yolo11n.pt data=data.yaml`; "
    'or in Python `with tb.start(project="shapes", name="v1_baseline", dataset="shapes:v1") as run: ...`'
)
SHIPPED = "[green](shipped)[/]"


def runs_table(table: RunsTable) -> None:
    """The page of runs asked for, then (when there are more) how many and how to see them."""
    if table["project"] is None:
        _plain(f"no runs yet: this book has no project. To {FIRST_RUN}")
        return
    filters = _runs_filters(table)
    if not table["runs"]:
        if table["total"]:
            _plain(f"no runs at offset {table['offset']:,}: {_runs_count(table['total'], filters)}")
        elif filters:
            _plain(f"no runs of project {table['project']} match {filters}")
        else:
            _plain(f"project {table['project']} has no runs yet. To {FIRST_RUN}")
        return
    console.print(_runs_grid(table, filters))
    more = _runs_more(table, filters)
    if more:
        _plain(more)


def _runs_grid(table: RunsTable, filters: str) -> Table:
    label = " [yellow](exploratory)[/]" if table.get("exploratory") else ""
    how = f"ranked by {esc(table['metric'])}{label}"
    if table.get("sort", "rank") != "rank":
        order = f" {table['order']}" if table.get("order") else ""
        how = f"sorted by {table['sort']}{order} ({esc(table['metric'])}{label})"
    where = f", {esc(filters)}" if filters else ""
    t = Table(title=f"{esc(table['project'])}: runs {how}{where}", title_justify="left")
    for col in ("#", "run", "status", "dataset", "parent", "best", "final", "@epoch", "epochs", "note"):
        t.add_column(
            col,
            justify="right" if col in ("#", "best", "final", "@epoch", "epochs") else "left",
            no_wrap=col in ("run", "dataset", "parent"),
        )
    for i, r in enumerate(table["runs"], table.get("offset", 0) + 1):
        dataset = esc(r["dataset"]) if r["pinned"] else "[red]UNPINNED[/]"
        name = esc(r["name"]) + (" [yellow](legacy name)[/]" if r.get("legacy_name") else "")
        name += f" {SHIPPED}" if r["shipped"] else ""
        t.add_row(
            str(r.get("rank", i)),
            name,
            status_text(r["status"])
            + (f" [red]({r['unwritten']} points unwritten)[/]" if r["unwritten"] else ""),
            dataset or "-",
            esc(r["parent"] or "-"),
            fmt(r["best"]),
            fmt(r["final"]),
            fmt(r["epoch_of_best"]),
            str(r["epochs"]),
            "yes" if r["has_note"] else "[yellow]note debt[/]",
        )
    return t


def _runs_filters(table: RunsTable) -> str:
    """The filters of the table in words ("" for none): ``status failed|crashed, name 'lr'``."""
    f = table.get("filters") or {}
    parts = []
    if f.get("status"):
        parts.append("status " + "|".join(f["status"]))
    if f.get("dataset") is not None:
        parts.append(f"dataset {f['dataset']}" if f["dataset"] else "no dataset")
    if f.get("tag"):
        parts.append(f"tag {f['tag']}")
    text = (f.get("q") or "").strip()
    if text:
        parts.append(f"name containing {text!r}")
    return ", ".join(parts)


def _runs_count(total: int, filters: str) -> str:
    runs = "run" if total == 1 else "runs"
    return f"{total:,} {runs} match {filters}" if filters else f"the project has {total:,} {runs}"


def _runs_more(table: RunsTable, filters: str) -> str:
    """The line under a page that is not the whole table: how many more runs and the
    options that show them ("" when every run is shown)."""
    offset, total, shown = table.get("offset", 0), table["total"], len(table["runs"])
    end = offset + shown
    more = total - end
    where = f" matching {filters}" if filters else ""
    span = f"{offset + 1:,}" if shown == 1 else f"{offset + 1:,}-{end:,}"
    if more <= 0:  # the last page, or every run
        return f"{'run' if shown == 1 else 'runs'} {span} of {total:,}{where}" if offset else ""
    runs = "run" if more == 1 else "runs"
    narrow = "" if filters else "; narrow with --status, --dataset, --tag, --name"
    return (
        f"{more:,} more {runs}{where} (showing {span} of {total:,}): "
        f"--offset {end} for the next, --limit N, --all for every one{narrow}; order with --sort, --order"
    )


def run_detail(d: RunView, *, all_config: bool = False) -> None:
    """One run, what matters first: status and lineage, the summary of its metrics, its
    evaluations, note and decisions, then artifacts and the config (the keys the user
    asked for; the rest folded unless ``all_config``)."""
    shipped = f"  {SHIPPED}" if d["shipped"] else ""
    title = f"[bold]{esc(d['project'])}/{esc(d['name'])}[/]"
    console.print(f"{title}  {status_text(d['status'])}  id {d['id'][:12]}{shipped}")
    if d["end_reason"]:
        console.print(f"ended: {esc(d['end_reason'])}")
    if d["unwritten"]:
        console.print(
            f"[red]{d['unwritten']} points of this run are not in the book[/] (refused, or waiting in "
            "a spool file: `trialbook sync` writes what can be written)"
        )
    dataset = esc(d["dataset"]) if d["pinned"] else "[red]UNPINNED[/]"
    console.print(
        f"dataset: {dataset}    parent: {esc(d['parent'] or '-')}    "
        f"started {when(d['created_at'])}    ended {when(d['ended_at'])}"
    )
    git = d["env"].get("git")
    if git:
        dirty = " (dirty)" if git.get("dirty") else ""
        console.print(f"git: {esc(git.get('branch'))} {str(git.get('commit'))[:10]}{dirty}")
    _summary_table(d["summary"])
    for ev in d["evaluations"]:
        _evaluation(ev)
    _note_fields(d["note"])
    _run_decisions(d)
    for a in d["artifacts"]:
        console.print(f"artifact: {esc(a['name'])} ({size(a['size'])}, {a['digest'][:12]})")
    _config_part(d, all_config)


def _run_decisions(d: RunView) -> None:
    """The decisions on the run, one line each (verdict, the other run, who, when): no
    test number, which only `trialbook decisions` shows."""
    found = d.get("decisions") or []
    if not found:
        return
    console.print(f"[bold]decisions[/] (with their numbers: trialbook decisions --run {esc(d['name'])})")
    for x in found:
        role = "candidate" if x["candidate"] == d["name"] else "baseline"
        other = x["baseline"] if role == "candidate" else x["candidate"]
        versus = "against" if role == "candidate" else "as the baseline of"
        failed = [g["gate"] for g in x["gates"] if not g["passed"]]
        why = f" (failed: {', '.join(failed)})" if failed else ""
        color = "green" if x["verdict"] == "WIN" else "yellow"
        console.print(
            f"  [{color}]{x['verdict']}[/]{why} {versus} {esc(other)}, {when(x['at'])} by {esc(x['who'])} "
            f"(decision {x['id'][:12]})"
        )


def _config_part(d: RunView, all_config: bool) -> None:
    """The config keys asked for (``core.config.split_asked``), then the rest folded into
    one line, or every key with ``all_config``."""
    from trialbook.core.config import split_asked

    asked, rest = split_asked(d["config"], d["env"])
    if all_config:
        _config_table({**asked, **rest}, "every key")
        return
    _config_table(asked, "the keys asked for" if rest else "")
    if rest:
        console.print(
            f"{len(rest)} more config keys at their defaults: trialbook show {esc(d['name'])} --config"
        )


def _config_table(config: Mapping[str, Any], what: str) -> None:
    if not config:
        return
    console.print("[bold]config[/]" + (f" ({what})" if what else ""))
    cfg = Table(show_header=False)
    cfg.add_column("key")
    cfg.add_column("value")
    for k, v in config.items():
        cfg.add_row(esc(k), esc(v))
    console.print(cfg)


def _summary_table(summary: Mapping[str, SummaryView]) -> None:
    if not summary:
        return
    s = Table(title="metrics", title_justify="left")
    for col in ("key", "best", "final", "@epoch", "epochs"):
        s.add_column(col)
    for k, v in summary.items():
        nan = f" ({v['nan_count']} NaN)" if v["nan_count"] else ""
        s.add_row(k, fmt(v["best"]), fmt(v["final"]), fmt(v["epoch_of_best"]), f"{v['epochs']}{nan}")
    console.print(s)


def _evaluation(ev: EvaluationView) -> None:
    if ev["sealed"]:
        console.print(
            f"evaluation [bold]{ev['split']}[/]: [yellow]sealed[/] (revealed only by `trialbook decide`)"
        )
        return
    metrics = ", ".join(f"{k}={fmt(v)}" for k, v in (ev["metrics"] or {}).items())
    console.print(f"evaluation [bold]{ev['split']}[/]: {metrics}")
    if ev["per_class_ap"]:
        console.print(
            "  per-class AP: " + ", ".join(f"{esc(k)} {fmt(v)}" for k, v in ev["per_class_ap"].items())
        )
    if ev["latency_ms"] is not None:
        console.print(f"  latency: {ms(ev['latency_ms'])} on {esc(ev['device'] or '?')}")


def _note_fields(note: NoteView | None) -> None:
    if not note:
        console.print("[yellow]no note yet (note debt)[/]")
        return
    console.print("[bold]note[/]")
    fields: Mapping[str, Any] = note
    for f in ("hypothesis", "change", "result", "next", "text"):
        if fields[f]:
            console.print(f"  {f}: {esc(fields[f])}")


def dataset_counts(version: VersionView) -> None:
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
        per = {row["name"]: row for row in c.get("classes", [])}
        cells = [f"{per.get(n, {}).get('images', 0)} / {per.get(n, {}).get('instances', 0)}" for n in names]
        t.add_row(
            split, str(c.get("images", 0)), str(c.get("instances", 0)), str(c.get("backgrounds", 0)), *cells
        )
    console.print(t)


def dataset_list(items: list[VersionView]) -> None:
    t = Table(title="dataset versions", title_justify="left")
    for col in ("dataset", "version", "tags", "images (train/val/test)", "created", "source"):
        t.add_column(col, no_wrap=col in ("dataset", "version"))
    for v in items:
        counts = "/".join(str(v["splits"].get(s, {}).get("images", "-")) for s in ("train", "val", "test"))
        t.add_row(
            v["name"],
            v["short"],
            ", ".join(v["tags"]) or "-",
            counts,
            when(v["created_at"]),
            v["source"] or "-",
        )
    console.print(t)


def dataset_diff(d: DatasetDiff | DataStatus, left: str, right: str) -> None:
    """Files added / removed / changed per split, and per-class deltas."""
    if d["clean"]:
        console.print(f"[green]clean[/]: {right} matches {left}")
        return
    console.print(f"[yellow]{right} differs from {left}[/]")
    for split, s in d.get("splits", {}).items():
        added, removed, changed = s.get("added", []), s.get("removed", []), s.get("changed", [])
        if not (added or removed or changed or s.get("classes")):
            continue
        console.print(
            f"  [bold]{split}[/]: +{len(added)} added, -{len(removed)} removed, ~{len(changed)} changed"
        )
        for label, paths in (("+", added), ("-", removed), ("~", changed)):
            for p in paths[:5]:
                console.print(f"    {label} {p}")
            if len(paths) > 5:
                console.print(f"    {label} ... and {len(paths) - 5} more")
        for c in s.get("classes", []):
            console.print(
                f"    {c['name']}: images {c['images_before']} -> {c['images_after']} "
                f"({c['images_delta']:+d}), instances {c['instances_before']} -> "
                f"{c['instances_after']} ({c['instances_delta']:+d})"
            )


# --------------------------------------------------------------------------- the discipline
# (project, name, compare, decide, decisions, ship, note(s), lint, noise)
def esc(value: Any) -> str:
    from rich.markup import escape

    return escape(str(value))


def config_value(value: Any) -> str:
    """A config value as given (``lr0`` 0.00005 is not rounded to a metric's 4 decimals);
    ``-`` for none."""
    return "-" if value is None else str(value)


def _plain(text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def project_info(d: ProjectInfo) -> None:
    shipped = f"    shipped: [bold]{esc(d['shipped'])}[/]" if d.get("shipped") else ""
    console.print(f"[bold]project {esc(d['name'])}[/]  {d['runs']} runs, {d['decisions']} decisions{shipped}")
    t = Table(title="protocol", title_justify="left", show_header=False)
    t.add_column("field")
    t.add_column("value")
    for k, v in d["protocol"].items():
        t.add_row(k, esc(protocol_value(k, v)) if v is not None else "[yellow]not set[/]")
    console.print(t)
    if d["history"]:
        h = Table(title="protocol history", title_justify="left")
        for col in ("when", "field", "old", "new", "reason", "who"):
            h.add_column(col)
        for c in d["history"]:
            field = c["field"] + (" [yellow](after runs were compared)[/]" if c["after_comparison"] else "")
            h.add_row(
                when(c["at"]),
                field,
                esc(protocol_value(c["field"], c["old"])),
                esc(protocol_value(c["field"], c["new"])),
                esc(c["reason"] or "-"),
                esc(c["who"]),
            )
        console.print(h)
    else:
        console.print("protocol history: none (the defaults)")
    for s in d["test_splits"]:
        burned = " [red]burned[/]" if s["burned"] else ""
        console.print(
            f"test split {s['short']}: {s['reveals_used']} of {s['test_budget']} reveals used{burned}"
        )
    for ship in d["ships"]:
        how = f"forced: {esc(ship['reason'])}" if ship["forced"] else "on a WIN decision"
        console.print(f"shipped {esc(ship['run'])} {when(ship['at'])} by {esc(ship['who'])} ({how})")


def protocol_changed(d: ProtocolChanged) -> None:
    if d["created"]:
        console.print(f"created project [bold]{esc(d['name'])}[/] (it did not exist yet)")
    if not d["changed"]:
        console.print("nothing changed (the protocol already had these values)")
    for c in d["changed"]:
        old, new = protocol_value(c["field"], c["old"]), protocol_value(c["field"], c["new"])
        console.print(f"{c['field']}: {esc(old)} -> [bold]{esc(new)}[/]")
    project_info(d)


def name_suggestion(d: NameSuggestion) -> None:
    console.print(f"[bold]{esc(d['name'])}[/]")
    if d["changed"]:
        t = Table(title=f"config against {d['parent']}", title_justify="left")
        for col in ("key", d["parent"], "new"):
            t.add_column(esc(col))
        for k, (old, new) in d["changed"].items():
            t.add_row(esc(k), esc(config_value(old)), esc(config_value(new)))
        console.print(t)
    else:
        console.print(f"the config is the same as {esc(d['parent'])}'s")


def compare_table(d: Comparison) -> None:
    label = " [yellow](exploratory)[/]" if d["exploratory"] else ""
    for w in d["warnings"]:
        console.print(f"[yellow]warning:[/] {esc(w)}")
    if not d["comparable"]:
        console.print("[red]NOT COMPARABLE[/]: the runs were validated on different val splits")
    t = Table(title=f"{d['project']}: compared on {esc(d['metric'])}{label}", title_justify="left")
    for col in (
        "#",
        "run",
        "dataset",
        "val split",
        "best",
        "final",
        "@epoch",
        "converged @",
        "95% @",
        "drops",
        "max drawdown",
        "curve",
    ):
        t.add_column(
            col,
            justify="right"
            if col in ("#", "best", "final", "@epoch", "converged @", "95% @", "drops", "max drawdown")
            else "left",
            no_wrap=col in ("run", "dataset", "curve"),
        )
    for i, r in enumerate(d["runs"], 1):
        dataset = esc(r["dataset"] or "-") if r["pinned"] else "[red]UNPINNED[/]"
        t.add_row(
            str(i),
            esc(r["name"]),
            dataset,
            short_digest(r["val_split"]),
            fmt(r["best"]),
            fmt(r["final"]),
            fmt(r["epoch_of_best"]),
            fmt(r["convergence_epoch"]),
            fmt(r["epochs_to_95pct"]),
            str(r["drop_count"]),
            fmt(r["max_drawdown"]),
            sparkline([v for _, v in r["curve"]]),
        )
    console.print(t)
    if d["config_diff"]:
        names = [r["name"] for r in d["runs"]]
        c = Table(title="config keys that differ", title_justify="left")
        c.add_column("key")
        for n in names:
            c.add_column(esc(n))
        for k, values in d["config_diff"].items():
            c.add_row(esc(k), *(esc(config_value(values.get(n))) for n in names))
        console.print(c)
    elif len(d["runs"]) > 1:
        console.print("configs: identical")


def decision(d: DecisionView) -> None:
    if d.get("recorded_before"):
        _plain(
            f"Already decided: this is decision {d['id'][:12]}, recorded {when(d['at'])} by {d['who']} "
            "on the same runs, protocol and evidence; nothing was revealed or counted again "
            f"(all decisions: trialbook decisions --run {d['candidate']})."
        )
    _plain(d["text"])


def decisions_list(d: DecisionsList) -> None:
    if not d["decisions"]:
        console.print("no decisions yet")
    for x in d["decisions"]:
        color = "green" if x["verdict"] == "WIN" else "yellow"
        console.print(
            f"[bold]{when(x['at'])}[/] by {esc(x['who'])}: [{color}]{x['verdict']}[/]  "
            f"(decision {x['id'][:12]})"
        )
        _plain(x["text"])
        console.print()


def ship_result(d: ShipResult) -> None:
    if d["already_shipped"]:
        console.print(f"{esc(d['run'])} is already the shipped run of {esc(d['project'])}")
        return
    how = (
        f"[yellow]forced[/]: {esc(d['reason'])}"
        if d["forced"]
        else f"on WIN decision {str(d['decision_id'])[:12]}"
    )
    prev = f" (was {esc(d['previous'])})" if d["previous"] else ""
    console.print(f"shipped [bold]{esc(d['run'])}[/] in {esc(d['project'])}{prev}, {how}")


def note_view(d: RunNote) -> None:
    note = d["note"]
    if not note:
        console.print(f"{esc(d['run'])}: [yellow]no note yet[/]")
        return
    console.print(f"[bold]{esc(d['run'])}[/] note (version {note['version']}, {when(note['updated_at'])})")
    for f in ("hypothesis", "change", "result", "next", "text"):
        if note[f]:
            console.print(f"  {f}: {esc(note[f])}")


def note_draft(d: NoteDraft) -> None:
    against = f"against {esc(d['parent'])}" if d["parent"] else "(no parent run)"
    console.print(f"[bold]{esc(d['run'])}[/] result draft {against}:")
    _plain(f"  {d['draft']}")
    if d["saved"]:
        console.print("saved as the note's result")
    else:
        console.print("(not saved; add --save to write it in the note)")


def note_history(d: NoteHistory) -> None:
    if not d["history"]:
        console.print(f"{esc(d['run'])}: no note yet")
        return
    t = Table(title=f"{esc(d['run'])}: note history", title_justify="left")
    for col in ("version", "when", "hypothesis", "change", "result", "next", "text"):
        t.add_column(col)
    for v in d["history"]:
        t.add_row(
            str(v["version"]),
            when(v["at"]),
            *(esc(v[f]) for f in ("hypothesis", "change", "result", "next", "text")),
        )
    console.print(t)


def notes_search(d: NoteSearch) -> None:
    if not d["hits"]:
        console.print(f"no note matches {esc(d['query'])}")
        return
    t = Table(title=f"notes matching {esc(d['query'])}", title_justify="left")
    for col in ("run", "hypothesis", "change", "result", "next"):
        t.add_column(col, no_wrap=col == "run")
    for h in d["hits"]:
        t.add_row(
            esc(f"{h['project']}/{h['run']}"),
            *(esc(h[f]) for f in ("hypothesis", "change", "result", "next")),
        )
    console.print(t)


def lint_report(d: LintReport) -> None:
    if d["problems"]:
        t = Table(title=f"lint: {len(d['problems'])} problem(s)", title_justify="left")
        for col in ("project", "run", "kind", "detail"):
            t.add_column(col, no_wrap=col in ("run", "kind"))
        for p in d["problems"]:
            t.add_row(esc(p["project"]), esc(p["run"] or "-"), p["kind"], esc(p["detail"]))
        console.print(t)
    else:
        console.print("[green]lint: no problems[/]")
    if d["notices"]:
        console.print(
            "legacy-named (imported with their old names): " + ", ".join(esc(n["run"]) for n in d["notices"])
        )


def noise_estimate(d: NoiseReport) -> None:
    console.print(f"[bold]{esc(d['project'])}[/]: noise of {esc(d['metric'])}")
    _plain(d["message"])
    if d["enough"]:
        verb = "set" if d["applied"] else "suggested (add --apply to set it)"
        console.print(
            f"noise threshold {metric(d['suggested_noise'])} {verb}; the protocol had "
            f"{metric(d['current_noise'])}"
        )
    else:
        console.print(f"keeping the protocol's noise threshold {metric(d['current_noise'])}")


def projects_list(d: ProjectsOverview) -> None:
    if not d["projects"]:
        console.print(
            f"the book at {esc(d['book'])} has no projects yet: make one with `trialbook project "
            "create NAME` (or `trialbook project set NAME --latency-budget MS --device NAME`), or "
            "record a run, which makes its project"
        )
        return
    t = Table(title=f"projects in {esc(d['book'])}", title_justify="left")
    for col in ("project", "metric", "runs", "running", "note debt", "decisions", "shipped"):
        t.add_column(col, justify="right" if col in ("runs", "running", "note debt", "decisions") else "left")
    for p in d["projects"]:
        t.add_row(
            esc(p["name"]),
            esc(p["metric"]),
            str(p["runs"]),
            str(p["running"]),
            str(p["note_debt"]),
            str(p["decisions"]),
            esc(p["shipped"] or "-"),
        )
    console.print(t)
