"""The CLI on real books, through click's CliRunner."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

import trialbook as tb
from trialbook.cli.main import cli

MAP = "metrics/mAP50-95(B)"


@pytest.fixture
def filled(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRIALBOOK_URI", raising=False)
    book = tb.init(tmp_path)
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
    return tmp_path


def test_runs_json_is_ranked(filled):
    result = CliRunner().invoke(cli, ["runs", "--json"])
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


def test_show_json_hides_sealed_numbers(filled):
    result = CliRunner().invoke(cli, ["show", "v1_base", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["summary"][MAP]["epoch_of_best"] == 9
    assert data["evaluations"][0]["sealed"] is True
    assert data["evaluations"][0]["metrics"] is None
    assert "0.7777" not in result.stdout and "0.6666" not in result.stdout
    human = CliRunner().invoke(cli, ["show", "v1_base"])
    assert "sealed" in human.output and "0.7777" not in human.output


def test_human_runs_table(filled):
    result = CliRunner().invoke(cli, ["runs"])
    assert result.exit_code == 0
    assert "v2_imgsz_1024" in result.output and "UNPINNED" in result.output
    assert "note debt" in result.output


def test_errors_name_what_and_where(filled, tmp_path):
    runner = CliRunner()
    missing = runner.invoke(cli, ["show", "v9_nothing"])
    assert missing.exit_code == 1 and "no run named 'v9_nothing'" in missing.stderr
    nobook = runner.invoke(cli, ["runs", "--uri", str(tmp_path / "nowhere")])
    assert nobook.exit_code == 1 and "trialbook init" in nobook.stderr
    proj = runner.invoke(cli, ["runs", "--project", "nope"])
    assert proj.exit_code == 1 and "no project named 'nope'" in proj.stderr


def test_init_is_idempotent(tmp_path):
    runner = CliRunner()
    for _ in range(2):
        result = runner.invoke(cli, ["init", str(tmp_path)])
        assert result.exit_code == 0 and "book ready" in result.output
    assert (tmp_path / ".trialbook" / "book.db").exists()


def test_help_is_instant_and_light():
    code = (
        "import sys\nfrom trialbook.cli.main import main\nsys.argv=['trialbook','--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print([m for m in ('sqlalchemy', 'torch', 'ultralytics', 'fastapi', 'pandas', "
        "'rich') if m in sys.modules], file=sys.stderr)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Commands:" in out.stdout
    assert out.stderr.strip() == "[]"
