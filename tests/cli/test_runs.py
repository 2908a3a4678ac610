"""``trialbook runs`` and ``trialbook show`` on a real book, found from the current folder."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from support.cli import invoke
from trialbook.api import Book

MAP = "metrics/mAP50-95(B)"
# The sealed test numbers (0.777777, 0.666666) as numbers of their own: not the same digits
# inside a timestamp of the JSON (created_at 1796298020.6666105 holds "0.6666").
SEALED_NUMBER = re.compile(r"(?<![\d.])0\.(?:7777|6666)")


@pytest.fixture
def filled(sqlite_book: Book) -> Book:
    """Three runs of pallets, each with a sealed test evaluation; v3_bad_lr has no note."""
    book = sqlite_book
    for name, top, parent in (
        ("v1_base", 0.5, None),
        ("v2_imgsz_1024", 0.6, "v1_base"),
        ("v3_bad_lr", 0.4, "v1_base"),
    ):
        with book.start("pallets", name, parent=parent, allow_unpinned=True, config={"imgsz": 640}) as run:
            for e in range(10):
                run.log({MAP: top * (e + 1) / 10}, epoch=e)
            run.log_eval("test", {MAP: 0.777777}, per_class_ap={"pallet": 0.666666})
            if name != "v3_bad_lr":
                run.note(hypothesis="h", result="r")
    return book


def test_runs_json_is_ranked(filled: Book) -> None:
    result = invoke("runs", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["project"] == "pallets" and data["metric"] == MAP
    assert [r["name"] for r in data["runs"]] == ["v2_imgsz_1024", "v1_base", "v3_bad_lr"]
    first = data["runs"][0]
    for key in (
        "name",
        "status",
        "dataset",
        "pinned",
        "parent",
        "best",
        "final",
        "epoch_of_best",
        "epochs",
        "has_note",
    ):
        assert key in first
    assert first["parent"] == "v1_base" and first["best"] == pytest.approx(0.6)
    assert first["epochs"] == 10 and first["pinned"] is False
    assert data["runs"][2]["has_note"] is False


def test_show_json_hides_sealed_numbers(filled: Book) -> None:
    result = invoke("show", "v1_base", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["summary"][MAP]["epoch_of_best"] == 9
    assert data["evaluations"][0]["sealed"] is True
    assert data["evaluations"][0]["metrics"] is None
    assert not SEALED_NUMBER.search(result.stdout), result.stdout
    human = invoke("show", "v1_base")
    assert "sealed" in human.output and not SEALED_NUMBER.search(human.output), human.output


def test_human_runs_table(filled: Book) -> None:
    result = invoke("runs")
    assert result.exit_code == 0
    assert "v2_imgsz_1024" in result.output and "UNPINNED" in result.output
    assert "note debt" in result.output


def test_errors_name_what_and_where(filled: Book, tmp_path: Path) -> None:
    missing = invoke("show", "v9_nothing")
    assert missing.exit_code == 1 and "no run named 'v9_nothing'" in missing.stderr
    nobook = invoke("runs", "--uri", str(tmp_path / "nowhere"))
    assert nobook.exit_code == 1 and "trialbook init" in nobook.stderr
    proj = invoke("runs", "--project", "nope")
    assert proj.exit_code == 1 and "no project named 'nope'" in proj.stderr


# --------------------------------------------------------------------------- a fresh book
def test_runs_on_a_fresh_book_says_how_to_record_a_first_run(sqlite_book: Book) -> None:
    human = invoke("runs")
    assert human.exit_code == 0, human.output
    assert human.stdout.startswith("no runs yet: this book has no project. To record a first run,")
    assert "trialbook data tag shapes data.yaml --tag v1" in human.stdout
    assert "trialbook yolo train v1_baseline -d shapes:v1" in human.stdout and "tb.start(" in human.stdout
    data = json.loads(invoke("runs", "--json").stdout)
    assert (data["project"], data["runs"], data["total"], data["metric"]) == (None, [], 0, MAP)
    # a project with no run yet (made by `project set`) says so too
    assert invoke("project", "set", "shapes", "--noise", "0.01").exit_code == 0
    empty = invoke("runs")
    assert empty.exit_code == 0 and empty.stdout.startswith("project shapes has no runs yet. To record")
    assert invoke("runs", "-p", "nope").exit_code == 1


# --------------------------------------------------------------------------- shipped
def test_the_shipped_run_is_marked_in_runs_and_show(filled: Book) -> None:
    assert invoke("ship", "v1_base", "--force", "--reason", "pilot").exit_code == 0
    rows = json.loads(invoke("runs", "--json").stdout)["runs"]
    assert {r["name"]: r["shipped"] for r in rows} == {
        "v2_imgsz_1024": False,
        "v1_base": True,
        "v3_bad_lr": False,
    }
    marked = [line for line in invoke("runs").stdout.splitlines() if "(shipped)" in line]
    assert len(marked) == 1 and "v1_base" in marked[0]
    assert json.loads(invoke("show", "v1_base", "--json").stdout)["shipped"] is True
    assert json.loads(invoke("show", "v2_imgsz_1024", "--json").stdout)["shipped"] is False
    assert "(shipped)" in invoke("show", "v1_base").stdout.splitlines()[0]
    assert "(shipped)" not in invoke("show", "v2_imgsz_1024").stdout


# --------------------------------------------------------------------------- show
def ultralytics_like(book: Book, asked: list[str] | None) -> str:
    """A run with 120 config keys, of which ``asked`` were asked for (in ``env``)."""
    import time
    import uuid

    from trialbook.core.entities import RunRecord

    config = {f"key{i:03d}": i for i in range(118)} | {"imgsz": 1024, "epochs": 30}
    env = {"config_asked": asked} if asked is not None else {}
    book.store.ensure_project("pallets")
    record = book.store.create_run(
        RunRecord(
            id=uuid.uuid4().hex,
            project="pallets",
            name="v1_big",
            status="finished",
            created_at=time.time(),
            config=config,
            env=env,
        )
    )
    book.store.log_batch(record.id, {MAP: {0: 0.2, 1: 0.3}})
    book.store.set_note(record.id, {"hypothesis": "bigger images find small pallets"}, who="tester")
    return record.name


def test_show_leads_with_what_matters_and_folds_the_config_at_defaults(sqlite_book: Book) -> None:
    name = ultralytics_like(sqlite_book, ["imgsz", "epochs"])
    text = invoke("show", name).stdout
    order = [text.index(w) for w in ("metrics", "note", "config (the keys asked for)")]
    assert order == sorted(order)
    assert "imgsz" in text and "1024" in text and "key042" not in text
    assert text.rstrip().endswith(f"118 more config keys at their defaults: trialbook show {name} --config")
    for flag in ("--config", "--all"):
        every = invoke("show", name, flag).stdout
        assert "config (every key)" in every and "key042" in every and "more config keys" not in every
    data = json.loads(invoke("show", name, "--json").stdout)
    assert len(data["config"]) == 120  # --json keeps the whole config


def test_show_without_a_list_of_asked_keys_shows_every_key(sqlite_book: Book) -> None:
    name = ultralytics_like(sqlite_book, None)
    text = invoke("show", name).stdout
    assert "key042" in text and "more config keys" not in text


def test_show_lists_the_decisions_on_the_run_without_test_numbers(filled: Book) -> None:
    decided = invoke("decide", "v2_imgsz_1024", "--baseline", "v1_base", "--json")
    assert decided.exit_code == 0, decided.output
    text = invoke("show", "v2_imgsz_1024").stdout
    assert "decisions (with their numbers: trialbook decisions --run v2_imgsz_1024)" in text
    assert "MORE_EXPERIMENTS (failed: per_class, latency) against v1_base" in text
    assert "0.7777" not in text  # the revealed test number stays in `decisions`
    assert "as the baseline of v2_imgsz_1024" in invoke("show", "v1_base").stdout
    assert text.index("note") < text.index("decisions (") < text.index("config")


# --------------------------------------------------------------------------- did you mean
def test_an_unknown_run_name_gets_close_names(filled: Book) -> None:
    typo = invoke("show", "v2_imgsz_1042")
    assert typo.exit_code == 1 and "did you mean 'v2_imgsz_1024'?" in typo.stderr
    decide = invoke("decide", "v2_imgsz_1024", "--baseline", "v1_bse")
    assert decide.exit_code == 1 and "did you mean 'v1_base'?" in decide.stderr
