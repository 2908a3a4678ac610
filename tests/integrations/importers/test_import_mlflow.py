"""``trialbook import mlflow``: file stores in the old and new layouts, and SQLite."""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from support.mlflow_files import MlflowDb, write_experiment, write_run
from support.runs import hist
from trialbook.api import Book
from trialbook.cli.main import cli
from trialbook.core.entities import RunRecord
from trialbook.integrations.importers.mlflow_store import import_mlflow

MAP = "metrics/mAP50-95(B)"
T0 = 1_700_000_000_000


# an mlruns/ folder, its experiment folder, and the ids of the runs written in it
FileStore = tuple[Path, Path, dict[str, str]]
# an MLflow SQLite database and the ids of the runs written in it
Database = tuple[Path, dict[str, str]]


def invoke(*args: object) -> Result:
    return CliRunner().invoke(cli, ["import", "mlflow", *map(str, args)])


def by_name(book: Book, project: str) -> dict[str, RunRecord]:
    return {r.name: r for r in book.store.list_runs(project)}


@pytest.fixture
def new_store(tmp_path: Path) -> FileStore:
    """An ``mlruns/`` as MLflow 2.x / 3.x writes it, with the folders that are not runs."""
    root = tmp_path / "mlruns"
    write_experiment(root, 0, "Default")
    (root / ".trash").mkdir()
    write_experiment(root / ".trash", "999", "old stuff", lifecycle_stage="deleted")
    (root / "models" / "pallet-detector").mkdir(parents=True)  # model registry
    (root / "models" / "pallet-detector" / "meta.yaml").write_text("name: pallet-detector\n")
    exp = write_experiment(root, "412725310296123456", "pallets")
    (exp / "tags").mkdir()
    (exp / "tags" / "mlflow.note.content").write_text("pallet detector experiments")
    (exp / "traces" / "tr-1").mkdir(parents=True)
    (exp / "datasets" / "d1").mkdir(parents=True)
    (exp / "models" / "m-0a1b2c").mkdir(parents=True)  # MLflow 3 logged model
    (exp / "models" / "m-0a1b2c" / "meta.yaml").write_text(
        yaml.safe_dump(
            {
                "model_id": "m-0a1b2c",
                "experiment_id": "412725310296123456",
                "name": "model",
                "source_run_id": "x",
                "status": "READY",
                "creation_timestamp": T0,
            }
        )
    )
    ids: dict[str, str] = {}
    ids["base"] = write_run(
        exp,
        name="v1_base",
        params={"lr0": "0.01", "imgsz": "640", "model": "yolo11n.pt", "amp": "True", "cache": "None"},
        metrics={
            # Ultralytics' MLflow callback drops the parentheses and counts steps from 0
            "metrics/mAP50-95B": [(T0 + 1000 * s, 0.1 * (s + 1), s) for s in range(5)],
            # two values at step 2: the later timestamp wins, whatever the line order
            "train/box_loss": [(T0 + 10, 1.5, 0), (T0 + 30, 1.1, 2), (T0 + 20, 1.3, 1), (T0 + 25, 1.2, 2)],
        },
        tags={"mlflow.source.git.commit": "a" * 40, "mlflow.note.content": "baseline run"},
    ).name
    ids["failed"] = write_run(exp, name="train", status="FAILED", metrics={"loss": [(T0, 1.0, 0)]}).name
    ids["killed"] = write_run(
        exp, name="train", status="KILLED", start=T0 + 5000, metrics={"loss": [(T0, 2.0, 0)]}
    ).name
    ids["running"] = write_run(
        exp,
        name="v2_longer",
        status="RUNNING",
        end=None,
        metrics={"loss": [(T0 + 7000, 0.5, 0), (T0 + 9000, 0.4, 1)]},
    ).name
    ids["deleted"] = write_run(exp, name="v3_oops", lifecycle_stage="deleted").name
    ids["child"] = write_run(exp, name="v1_base_fold1", tags={"mlflow.parentRunId": ids["base"]}).name
    return root, exp, ids


def test_new_layout_file_store(sqlite_book: Book, new_store: FileStore) -> None:
    root, _, ids = new_store
    report = import_mlflow(sqlite_book, root)
    assert report.ok, report.failed
    runs = by_name(sqlite_book, "pallets")
    assert set(runs) == {"v1_base", "train", f"train_{_suffix(ids['killed'])}", "v2_longer", "v1_base_fold1"}
    base = runs["v1_base"]
    assert base.legacy_name is False and runs["train"].legacy_name is True
    assert base.config == {"lr0": 0.01, "imgsz": 640, "model": "yolo11n.pt", "amp": True, "cache": None}
    assert hist(sqlite_book, base, MAP) == {s: pytest.approx(0.1 * (s + 1)) for s in range(5)}
    assert hist(sqlite_book, base, "train/box_loss") == {0: 1.5, 1: 1.3, 2: 1.1}
    assert base.tags["mlflow.run_id"] == ids["base"] and base.tags["mlflow.status"] == "FINISHED"
    assert base.tags["mlflow.user"] == "alice" and base.env["git"]["commit"] == "a" * 40
    assert base.created_at == T0 / 1000 and base.ended_at == (T0 + 360_000) / 1000
    assert sqlite_book.store.get_notes([base.id])[base.id].text == "baseline run"
    assert runs["v1_base_fold1"].parent_id == base.id
    assert sqlite_book.store.list_projects()[0].name == "pallets"  # Default had no runs
    skipped = {s.path: s.reason for s in report.skipped}
    assert any("deleted" in reason for reason in skipped.values())


def _suffix(run_id: str) -> str:
    import hashlib

    return hashlib.sha1(f"mlflow:{run_id}".encode()).hexdigest()[:6]


@pytest.mark.parametrize(
    ("mlflow_status", "status"),
    [
        ("FINISHED", "finished"),
        ("FAILED", "failed"),
        ("KILLED", "failed"),
        ("RUNNING", "crashed"),
        ("SCHEDULED", "crashed"),
    ],
)
def test_status_is_kept(sqlite_book: Book, tmp_path: Path, mlflow_status: str, status: str) -> None:
    exp = write_experiment(tmp_path / "mlruns", "1", "exp")
    run_id = write_run(
        exp, name="v1_x", status=mlflow_status, end=None, metrics={"loss": [(T0 + 4000, 1.0, 0)]}
    ).name
    assert import_mlflow(sqlite_book, tmp_path / "mlruns").ok
    run = sqlite_book.store.list_runs("exp")[0]
    assert run.status == status and run.tags["mlflow.status"] == mlflow_status
    assert run.tags["mlflow.run_id"] == run_id
    assert run.ended_at == (T0 + 4000) / 1000  # last heard of


def test_old_layout_file_store(sqlite_book: Book, tmp_path: Path) -> None:
    root = tmp_path / "mlruns"
    exp = write_experiment(root, 1, "pallets", old=True)
    run_id = write_run(
        exp,
        name="exp12",
        old=True,
        metrics={"acc": [(T0, 0.5, 0), (T0 + 5, 0.6, 0)]},
        params={"epochs": "10"},
    ).name
    meta = yaml.safe_load((exp / run_id / "meta.yaml").read_text())
    assert "run_id" not in meta and meta["experiment_id"] == 1
    report = import_mlflow(sqlite_book, root)
    assert report.ok, report.failed
    run = sqlite_book.store.get_run("pallets", "exp12")
    assert run.legacy_name is True and run.config == {"epochs": 10}
    assert hist(sqlite_book, run, "acc") == {0: 0.6}  # no step: step 0, the last by timestamp


def test_name_falls_back_to_run_name_then_id(sqlite_book: Book, tmp_path: Path) -> None:
    exp = write_experiment(tmp_path / "mlruns", "1", "exp")
    nameless = write_run(exp, name=None).name
    import_mlflow(sqlite_book, tmp_path / "mlruns")
    assert sqlite_book.store.get_run("exp", nameless).legacy_name is True


def test_an_experiment_folder_alone_can_be_imported(sqlite_book: Book, new_store: FileStore) -> None:
    _, exp, _ = new_store
    assert import_mlflow(sqlite_book, exp).ok
    assert {r.project for r in sqlite_book.store.list_runs()} == {"pallets"}


def test_a_folder_holding_mlruns_is_accepted(sqlite_book: Book, new_store: FileStore, tmp_path: Path) -> None:
    assert import_mlflow(sqlite_book, tmp_path).ok
    assert len(sqlite_book.store.list_runs("pallets")) == 5


def test_bad_metric_line_reported_with_path_and_line(sqlite_book: Book, tmp_path: Path) -> None:
    root = tmp_path / "mlruns"
    exp = write_experiment(root, "7", "exp")
    bad = write_run(
        exp, name="v1_bad", raw_metric_lines={"val/loss": f"{T0} 0.5 0\n{T0 + 1} oops 1\n{T0 + 2}\n"}
    )
    write_run(exp, name="v2_good", metrics={"val/loss": [(T0, 0.4, 0)]})
    result = invoke(root, "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert [r["name"] for r in data["imported"]] == ["v2_good"]
    lines = {(f["path"], f["line"]) for f in data["failed"]}
    metric_file = str(bad / "metrics" / "val" / "loss")
    assert lines == {(metric_file, 2), (metric_file, 3)}
    assert f"{metric_file}:2:" in result.stderr


def test_broken_meta_yaml_fails_that_run_only(sqlite_book: Book, tmp_path: Path) -> None:
    exp = write_experiment(tmp_path / "mlruns", "7", "exp")
    bad = write_run(exp, name="v1_bad")
    (bad / "meta.yaml").write_text("run_id: [unclosed\n")
    write_run(exp, name="v2_good")
    report = import_mlflow(sqlite_book, tmp_path / "mlruns")
    assert not report.ok and report.failed[0].path == str(bad / "meta.yaml")
    assert [r.name for r in sqlite_book.store.list_runs("exp")] == ["v2_good"]


def test_infinite_metric_values_become_nan(sqlite_book: Book, tmp_path: Path) -> None:
    exp = write_experiment(tmp_path / "mlruns", "7", "exp")
    write_run(exp, name="v1_x", raw_metric_lines={"loss": f"{T0} inf 0\n{T0} 0.5 1\n"})
    report = import_mlflow(sqlite_book, tmp_path / "mlruns")
    assert report.ok and report.warnings
    run = sqlite_book.store.list_runs("exp")[0]
    assert math.isnan(hist(sqlite_book, run, "loss")[0]) and run.tags["import.infinite_as_nan"] == "1"


def test_file_store_import_is_idempotent(sqlite_book: Book, new_store: FileStore) -> None:
    root, _, _ = new_store
    first = invoke(root, "--json")
    assert first.exit_code == 0, first.output
    before = sqlite_book.store.list_runs()
    second = invoke(root, "--json")
    assert second.exit_code == 0, second.output
    data = json.loads(second.stdout)
    assert data["imported"] == []
    assert sum("already imported" in s["reason"] for s in data["skipped"]) == 5
    assert sqlite_book.store.list_runs() == before


def test_not_an_mlflow_folder(sqlite_book: Book, tmp_path: Path) -> None:
    (tmp_path / "nothing").mkdir()
    result = invoke(tmp_path / "nothing")
    assert result.exit_code == 1 and "not an MLflow file store" in result.output
    (tmp_path / "x.db").write_text("hello")
    result = invoke(tmp_path / "x.db")
    assert result.exit_code == 1 and "neither an MLflow SQLite database" in result.output


# --------------------------------------------------------------------------- sqlite
@pytest.fixture
def mlflow_db(tmp_path: Path) -> Database:
    db = MlflowDb(tmp_path / "mlflow.db")
    exp = db.experiment(1, "pallets")
    gone = db.experiment(2, "abandoned", lifecycle_stage="deleted")
    ids = {
        "base": db.run(
            exp,
            name="v1_base",
            params={"lr0": "0.01", "optimizer": "SGD"},
            metrics={
                MAP: [(T0, 0.2, 1), (T0 + 10, 0.3, 2), (T0 + 30, 0.35, 3), (T0 + 20, 0.33, 3)],
                "val/box_loss": [(T0, float("nan"), 1), (T0 + 10, 1.2, 2)],
            },
            tags={"mlflow.source.git.commit": "b" * 40},
        ),
        "train": db.run(exp, name="train", status="KILLED", start=T0 + 1),
        "deleted": db.run(exp, name="v9_deleted", lifecycle_stage="deleted"),
        "gone": db.run(gone, name="v1_gone"),
    }
    db.close()
    return db.path, ids


def test_sqlite_database(sqlite_book: Book, mlflow_db: Database) -> None:
    path, _ = mlflow_db
    result = invoke(path, "--json")
    assert result.exit_code == 0, result.output
    runs = by_name(sqlite_book, "pallets")
    assert set(runs) == {"v1_base", "train"}
    base = runs["v1_base"]
    assert hist(sqlite_book, base, MAP) == {1: 0.2, 2: 0.3, 3: 0.35}
    loss = hist(sqlite_book, base, "val/box_loss")
    assert math.isnan(loss[1]) and loss[2] == 1.2
    assert base.config == {"lr0": 0.01, "optimizer": "SGD"}
    assert base.env["git"]["commit"] == "b" * 40 and base.status == "finished"
    assert runs["train"].status == "failed" and runs["train"].legacy_name is True
    data = json.loads(result.stdout)
    assert len(data["skipped"]) == 2 and all("deleted" in s["reason"] for s in data["skipped"])
    assert "abandoned" not in {p.name for p in sqlite_book.store.list_projects()}


def test_sqlite_is_opened_read_only_and_left_unchanged(sqlite_book: Book, mlflow_db: Database) -> None:
    path, _ = mlflow_db
    before = path.read_bytes()
    assert import_mlflow(sqlite_book, f"sqlite:///{path}").ok
    assert path.read_bytes() == before


def test_sqlite_twice_and_the_same_runs_from_a_file_store_change_nothing(
    sqlite_book: Book, mlflow_db: Database, tmp_path: Path
) -> None:
    path, ids = mlflow_db
    assert import_mlflow(sqlite_book, path).ok
    before = sqlite_book.store.list_runs()
    again = import_mlflow(sqlite_book, path)
    assert again.imported == [] and sqlite_book.store.list_runs() == before
    exp = write_experiment(tmp_path / "copy" / "mlruns", "1", "pallets")
    write_run(exp, name="v1_base", run_id=ids["base"])
    from_files = import_mlflow(sqlite_book, tmp_path / "copy")
    assert from_files.imported == [] and "already imported" in from_files.skipped[0].reason


def test_folder_with_only_mlflow_db_uses_it(sqlite_book: Book, mlflow_db: Database, tmp_path: Path) -> None:
    assert import_mlflow(sqlite_book, tmp_path).ok
    assert len(sqlite_book.store.list_runs("pallets")) == 2


def test_not_an_mlflow_database(sqlite_book: Book, tmp_path: Path) -> None:
    import sqlite3

    conn = sqlite3.connect(tmp_path / "other.db")
    conn.execute("CREATE TABLE runs (id TEXT)")
    conn.commit()
    conn.close()
    result = invoke(tmp_path / "other.db")
    assert result.exit_code == 1 and "not an MLflow database" in result.output


def test_duplicate_names_in_one_experiment_are_suffixed(sqlite_book: Book, tmp_path: Path) -> None:
    db = MlflowDb(tmp_path / "mlflow.db")
    exp = db.experiment(1, "exp")
    first = db.run(exp, name="v1_same", start=T0)
    second = db.run(exp, name="v1_same", start=T0 + 1, run_id=uuid.uuid4().hex)
    db.close()
    report = import_mlflow(sqlite_book, tmp_path / "mlflow.db")
    assert report.ok
    names = {r.tags["mlflow.run_id"]: r.name for r in sqlite_book.store.list_runs("exp")}
    assert names[first] == "v1_same" and names[second] == f"v1_same_{_suffix(second)}"
    assert any("imported as" in w.message for w in report.warnings)
