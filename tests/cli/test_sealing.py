"""The reserved test set: no output carries a sealed test number until a decision reveals
it, and then only the decision itself (decide, decisions, the decisions of a report)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from support.cli import CLI, as_json
from support.runs import DEVICE, add_run, set_protocol
from trialbook.api import Book

# distinctive sealed numbers, and how they would print
TEST_CAND, TEST_BASE, TEST_CLASS, TEST_LATENCY = 0.123457, 0.113579, 0.234568, 7.654321
REVEALED = ("0.123457", "0.1235", "0.113579", "0.1136")
NEVER = ("0.234568", "0.2346", "7.654", "7.65 ")


def fill(book: Book, tmp_path: Path) -> None:
    set_protocol(book, latency_budget_ms=8.0, device=DEVICE, noise=0.005)
    common: dict[str, Any] = {"test_per_class": {"pallet": TEST_CLASS}, "test_latency": TEST_LATENCY}
    add_run(
        book,
        "v1_base",
        curve=[0.2, 0.4, 0.5],
        val=0.5,
        per_class={"pallet": 0.4},
        latency=4.0,
        test=TEST_BASE,
        config={"lr0": 0.01, "seed": 0},
        note={"hypothesis": "a stock model is a fair pallet baseline"},
        **common,
    )
    add_run(
        book,
        "v2_cand",
        parent="v1_base",
        curve=[0.3, 0.5, 0.6],
        val=0.6,
        per_class={"pallet": 0.5},
        latency=4.0,
        test=TEST_CAND,
        config={"lr0": 0.001, "seed": 0},
        note={"hypothesis": "lower lr helps pallet AP"},
        **common,
    )
    add_run(
        book,
        "v3_seed",
        parent="v1_base",
        curve=[0.3, 0.45],
        val=0.45,
        config={"lr0": 0.01, "seed": 1},
        digests={},
        pinned=False,
        **common,
    )
    (tmp_path / "args.yaml").write_text("lr0: 0.0005\nseed: 0\n")


def outputs(tb: CLI, tmp_path: Path, *, with_decide: bool = False) -> dict[str, str]:
    """Every command's output, human and JSON (but decide and decisions)."""
    commands = [
        ["runs"],
        ["runs", "--metric", "map50"],
        ["compare", "v1_base", "v2_cand", "v3_seed"],
        ["lint"],
        ["notes", "search", "pallet"],
        ["project", "show", "pallets"],
        ["noise"],
        ["name", "--parent", "v2_cand", "--config", str(tmp_path / "args.yaml")],
    ]
    for run in ("v1_base", "v2_cand", "v3_seed"):
        commands += [["show", run], ["note", run], ["note", run, "--history"], ["note", run, "--draft"]]
    out = {}
    for args in commands:
        out[" ".join(args)] = tb(*args).stdout
        out[" ".join(args) + " --json"] = tb(*args, "--json").stdout
    for fmt in ("md", "html", "csv", "json"):
        out[f"export {fmt}"] = tb("export", "--project", "pallets", "--format", fmt).stdout
        out[f"export runs {fmt}"] = tb("export", "v1_base", "v2_cand", "--format", fmt).stdout
    return out


def leaks(text: str, numbers: Sequence[str]) -> list[str]:
    return [n for n in numbers if n in text]


def test_no_output_leaks_a_sealed_number(tb: CLI, sqlite_book: Book, tmp_path: Path) -> None:
    fill(sqlite_book, tmp_path)
    before = outputs(tb, tmp_path)
    before["decisions"] = tb("decisions").stdout + tb("decisions", "--json").stdout
    before["ship"] = tb("ship", "v2_cand", "--force", "--reason", "pilot", "--json").stdout
    for name, text in before.items():
        assert not leaks(text, REVEALED + NEVER), (name, text)
    assert "sealed" in before["show v2_cand"]

    decided = tb("decide", "v2_cand", "--baseline", "v1_base", "--json")
    revealed = as_json(decided)
    assert revealed["revealed"] is True and revealed["verdict"] == "WIN"
    assert "0.123457" in decided.stdout and "0.113579" in decided.stdout
    assert "0.1235" in tb("decide", "v2_cand", "--baseline", "v1_base").stdout
    listing = tb("decisions").stdout
    assert "0.1235" in listing and "0.1136" in listing
    assert "0.123457" in tb("decisions", "--json").stdout
    for text in (decided.stdout, listing):
        assert not leaks(text, NEVER)

    after = outputs(tb, tmp_path)
    for name, text in after.items():
        if name.startswith("export"):
            continue
        assert not leaks(text, REVEALED + NEVER), (name, text)
    # reports carry the revealed numbers inside their decisions only
    report = json.loads(after["export json"])
    assert leaks(json.dumps(report["decisions"]), REVEALED)
    del report["decisions"]
    assert not leaks(json.dumps(report), REVEALED + NEVER)
    for fmt in ("md", "html"):
        text = after[f"export {fmt}"]
        head, _, tail = text.partition("Decisions")
        assert not leaks(head, REVEALED + NEVER), fmt
        assert leaks(tail, REVEALED) and not leaks(tail, NEVER), fmt
    assert not leaks(after["export csv"], REVEALED + NEVER)
