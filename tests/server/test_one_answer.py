"""One use case, one answer: for the same book the CLI's ``--json`` documents and the JSON
API agree on every key they share, for every run (both call ``trialbook.services``).

The book holds the cases where two copies disagreed before: a whitespace-only note
(``has_note`` false and note debt, everywhere), val split digests (full everywhere), a run
still running, one whose heartbeat stopped (crashed), an unpinned run, a run with no value
of the metric.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from support.cli import cli_json
from support.http import Api
from support.runs import add_run
from trialbook.api import Book
from trialbook.server.app import create_app


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Book]:
    """A run of each case where two copies disagreed before (see the module's docstring)."""
    path = tmp_path_factory.mktemp("one") / ".trialbook"
    book = Book.open(str(path), create=True)
    add_run(book, "v1_base", curve=[0.30, 0.40, 0.45], val=0.46, per_class={"pallet": 0.4, "box": 0.5})
    add_run(book, "v2_blank_note", curve=[0.35, 0.47], val=0.48, parent="v1_base", note={"result": " \n\t "})
    add_run(book, "v3_written", curve=[0.2, 0.5], val=0.52, parent="v2_blank_note", note={"result": "better"})
    add_run(book, "v4_running", curve=[0.1, 0.2], status="running")
    stale = add_run(book, "v5_stale", curve=[0.3], status="running")
    book.store.set_run_status(stale.id, "running", heartbeat_at=time.time() - 3600)
    add_run(book, "v6_unpinned", curve=[0.25, 0.33], pinned=False)
    add_run(book, "v7_no_metric", curve=[])
    yield book
    book.close()


@pytest.fixture
def api(filled: Book) -> Api:
    """The JSON API of ``filled``, in process."""
    return Api(create_app(filled))


def shared(a: dict[str, Any], b: dict[str, Any], where: str) -> list[str]:
    """The keys of ``a`` and ``b`` whose values differ (recursively for dicts)."""
    out = []
    for key in sorted(set(a) & set(b)):
        if isinstance(a[key], dict) and isinstance(b[key], dict):
            out += shared(a[key], b[key], f"{where}.{key}")
        elif a[key] != b[key]:
            out.append(f"{where}.{key}: {a[key]!r} != {b[key]!r}")
    return out


def test_runs_table_agrees_with_the_api_runs_page(filled: Book, api: Api) -> None:
    from_cli = cli_json(filled.uri, "runs", "--project", "pallets")
    from_api = api.json("/api/v1/projects/pallets/runs?limit=500")
    assert [r["name"] for r in from_cli["runs"]] == [r["name"] for r in from_api["runs"]]
    assert len(from_cli["runs"]) == 7
    # the page size is the one thing asked differently (every run / a page of 500)
    assert (from_cli["limit"], from_api["limit"]) == (None, 500)
    top_cli = {k: v for k, v in from_cli.items() if k not in ("runs", "limit")}
    top_api = {k: v for k, v in from_api.items() if k not in ("runs", "limit")}
    assert shared(top_cli, top_api, "runs") == []
    api_rows = {r["name"]: r for r in from_api["runs"]}
    differences = []
    for row in from_cli["runs"]:
        differences += shared(row, api_rows[row["name"]], row["name"])
    assert differences == []
    blank = api_rows["v2_blank_note"]
    assert blank["has_note"] is False and blank["note_debt"] is True
    assert api_rows["v3_written"]["has_note"] is True and api_rows["v3_written"]["note_debt"] is False
    assert api_rows["v5_stale"]["status"] == "crashed" and api_rows["v4_running"]["status"] == "running"
    assert api_rows["v7_no_metric"]["best"] is None and from_cli["runs"][-1]["name"] == "v7_no_metric"


def test_one_run_compare_project_and_decisions_agree(filled: Book, api: Api) -> None:
    for name in ("v1_base", "v2_blank_note", "v5_stale", "v6_unpinned"):
        from_cli = cli_json(filled.uri, "show", name)
        from_api = api.json(f"/api/v1/projects/pallets/runs/{name}")
        assert shared(from_cli, from_api, name) == []
    assert cli_json(filled.uri, "show", "v2_blank_note")["note"] is None
    names = ["v1_base", "v2_blank_note", "v3_written"]
    from_cli = cli_json(filled.uri, "compare", *names, "--project", "pallets")
    from_api = api.json("/api/v1/projects/pallets/compare?" + "&".join(f"runs={n}" for n in names))
    assert shared({k: v for k, v in from_cli.items() if k != "runs"}, from_api, "compare") == []
    api_rows = {r["name"]: r for r in from_api["runs"]}
    for row in from_cli["runs"]:
        assert shared(row, api_rows[row["name"]], row["name"]) == []
        assert row["val_split"] is None or len(row["val_split"]) == 64  # the full digest in both
    assert (
        shared(cli_json(filled.uri, "project", "show", "pallets"), api.json("/api/v1/projects/pallets"), "p")
        == []
    )
    decided = api.post(
        "/api/v1/projects/pallets/decisions", json={"candidate": "v3_written", "baseline": "v1_base"}
    )
    assert decided.status_code == 200, decided.text
    from_cli = cli_json(filled.uri, "decisions", "--project", "pallets")
    from_api = api.json("/api/v1/projects/pallets/decisions")
    assert len(from_cli["decisions"]) == len(from_api["decisions"]) == 1
    assert shared(from_cli, from_api, "decisions") == []
    assert from_cli["decisions"] == from_api["decisions"]


def test_the_demo_book_agrees_too(demo_book: Book, demo_api: Api) -> None:
    rows = {r["name"]: r for r in demo_api.json("/api/v1/projects/pallets/runs")["runs"]}
    for row in cli_json(demo_book.uri, "runs")["runs"]:
        assert shared(row, rows[row["name"]], row["name"]) == []
