"""Notes through the CLI on SQLite and PostgreSQL: writing with history, the drafted
result line, and full-text search."""

from __future__ import annotations

import pytest

from support.cli import CLI, as_json, make_cli
from support.runs import add_run
from trialbook.api import Book


@pytest.fixture
def tb(book: Book, book_uri: str) -> CLI:
    """The CLI on ``book``: the notes commands are tested on every home."""
    return make_cli(book_uri)


@pytest.fixture
def filled(book: Book) -> Book:
    """Two runs of pallets (v2 a child of v1, per-class APs) and one of forklifts."""
    add_run(
        book, "v1_base", curve=[0.4, 0.51], val=0.51, per_class={"pallet": 0.31, "forklift": 0.60, "box": 0.5}
    )
    add_run(
        book,
        "v2_pallets_added",
        parent="v1_base",
        curve=[0.5, 0.59],
        val=0.59,
        per_class={"pallet": 0.58, "forklift": 0.601, "person": 0.4},
    )
    add_run(book, "v1_forks", project="forklifts", curve=[0.3])
    return book


def test_note_write_show_and_history(tb: CLI, filled: Book) -> None:
    out = as_json(
        tb(
            "note",
            "v2_pallets_added",
            "--hypothesis",
            "Pallet AP is limited by data",
            "--change",
            "added 24 pallet images",
            "--json",
        )
    )
    assert out["note"]["hypothesis"] == "Pallet AP is limited by data" and out["note"]["version"] == 1
    tb("note", "v2_pallets_added", "--next", "try night footage")
    shown = as_json(tb("note", "v2_pallets_added", "--json"))["note"]
    assert shown["change"] == "added 24 pallet images" and shown["next"] == "try night footage"
    assert shown["version"] == 2
    history = as_json(tb("note", "v2_pallets_added", "--history", "--json"))["history"]
    assert [(h["version"], h["next"]) for h in history] == [(1, ""), (2, "try night footage")]
    human = tb("note", "v2_pallets_added", "--history").stdout
    assert "note history" in human and "try night footage" in human
    assert "no note yet" in tb("note", "v1_base").stdout
    assert "one at a time" in tb("note", "v1_base", "--draft", "--history", code=1).stderr
    assert "--save goes with --draft" in tb("note", "v1_base", "--save", code=1).stderr


def test_draft_against_the_parent(tb: CLI, filled: Book) -> None:
    out = as_json(tb("note", "v2_pallets_added", "--draft", "--json"))
    assert out["draft"] == "pallet AP 0.31 → 0.58; overall mAP 0.51 → 0.59"
    assert out["parent"] == "v1_base" and out["saved"] is False
    assert as_json(tb("note", "v2_pallets_added", "--json"))["note"] is None
    human = tb("note", "v2_pallets_added", "--draft", "--save").stdout
    assert "pallet AP 0.31 → 0.58" in human and "saved" in human
    note = as_json(tb("note", "v2_pallets_added", "--json"))["note"]
    assert note["result"] == "pallet AP 0.31 → 0.58; overall mAP 0.51 → 0.59"
    root = as_json(tb("note", "v1_base", "--draft", "--json"))
    assert root["draft"] == "overall mAP 0.51 (no parent run to compare)" and root["parent"] is None


def test_notes_search(tb: CLI, filled: Book) -> None:
    tb("note", "v1_base", "--hypothesis", "a stock model is a fair baseline")
    tb(
        "note",
        "v2_pallets_added",
        "--hypothesis",
        "Small pallets are missed at 640 px",
        "--change",
        "labelled more pallet images",
    )
    tb("note", "v1_forks", "--result", "forklift AP up, pallets unchanged")
    hits = as_json(tb("notes", "search", "pallet", "--json"))["hits"]
    assert {(h["project"], h["run"]) for h in hits} == {
        ("pallets", "v2_pallets_added"),
        ("forklifts", "v1_forks"),
    }
    assert (
        as_json(tb("notes", "search", "pallet", "images", "--json"))["hits"][0]["run"] == "v2_pallets_added"
    )
    only = as_json(tb("notes", "search", "pallets", "--project", "forklifts", "--json"))["hits"]
    assert [h["run"] for h in only] == ["v1_forks"]
    human = tb("notes", "search", "baseline").stdout
    assert "pallets/v1_base" in human
    assert "no note matches" in tb("notes", "search", "zebra").stdout
    assert "no words" in tb("notes", "search", "...", code=1).stderr
