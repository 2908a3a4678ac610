"""Numbers a book cannot hold: an epoch or step beyond ``core.metrics.MAX_EPOCH`` (or
below 0), a timestamp too large for a float. Each bad point or row is reported with its
path and line (or step), the rest of the run and the other runs are imported, no run is
left ``running``, and importing again changes nothing. A run whose write fails is
written not at all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from support.cli import invoke
from support.extras import require_tensorboard
from support.mlflow_files import MlflowDb, write_experiment, write_run
from support.runs import hist
from support.ultralytics_files import RunFolder
from trialbook.api import Book
from trialbook.core.metrics import MAX_EPOCH
from trialbook.integrations.importers.common import ImportReport, ParsedRun, Writer
from trialbook.integrations.importers.mlflow_store import import_mlflow
from trialbook.integrations.importers.tensorboard_events import import_tensorboard
from trialbook.integrations.importers.ultralytics_runs import import_ultralytics

MAP = "metrics/mAP50-95(B)"
T0 = 1_700_000_000_000
TOO_BIG = MAX_EPOCH + 1


def statuses(book: Book) -> dict[str, str]:
    return {r.name: r.status for r in book.store.list_runs()}


def failed_at(report: ImportReport) -> dict[tuple[str, int | None], str]:
    return {(p.path, p.line): p.message for p in report.failed}


def test_results_csv_rows_out_of_range_are_reported_and_the_rest_is_imported(
    book: Book, run_folder: RunFolder
) -> None:
    big = run_folder("runs/detect/train", cells={(3, "epoch"): str(TOO_BIG)})  # line 4
    huge = run_folder("runs/detect/train2", cells={(2, "epoch"): "1e30"})  # line 3: beyond int64 too
    good = run_folder("runs/detect/train3")
    report = import_ultralytics(book, [big.parent])
    assert sorted(r.name for r in report.imported) == ["train", "train2", "train3"]
    failed = failed_at(report)
    assert set(failed) == {(str(big / "results.csv"), 4), (str(huge / "results.csv"), 3)}
    assert f"epoch {TOO_BIG} is out of range" in failed[(str(big / "results.csv"), 4)]
    assert "the row is left out" in failed[(str(huge / "results.csv"), 3)]
    assert statuses(book) == {"train": "finished", "train2": "finished", "train3": "finished"}
    runs = {r.name: r for r in book.store.list_runs()}
    assert sorted(hist(book, runs["train"], MAP)) == [1, 2, 4, 5]
    assert sorted(hist(book, runs["train2"], MAP)) == [1, 3, 4, 5]
    assert sorted(hist(book, runs["train3"], MAP)) == [1, 2, 3, 4, 5]
    assert len(book.store.list_artifacts(runs["train"].id)) == 2
    assert str(good) in {r.path for r in report.imported}
    # importing again changes nothing, and has nothing left to report
    before = book.store.list_runs()
    again = import_ultralytics(book, [big.parent])
    assert again.ok and again.imported == [] and len(again.skipped) == 3
    assert book.store.list_runs() == before


def test_the_command_reports_the_line_and_exits_1_without_a_traceback(
    book: Book, run_folder: RunFolder
) -> None:
    folder = run_folder(cells={(2, "epoch"): "1e30"})
    result = invoke("import", "ultralytics", str(folder), "--uri", book.uri, catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert f"error: {folder / 'results.csv'}:3: epoch 1e30 is out of range" in result.stderr
    assert "Traceback" not in result.output
    assert "1 imported, 0 skipped, 1 problem(s)" in result.stderr
    again = invoke("import", "ultralytics", str(folder), "--uri", book.uri, "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["imported"] == []


def test_mlflow_file_store_steps_and_timestamps_out_of_range(book: Book, tmp_path: Path) -> None:
    root = tmp_path / "mlruns"
    exp = write_experiment(root, 1, "pallets")
    bad = write_run(
        exp,
        name="v1_base",
        raw_metric_lines={
            MAP: f"{T0} 0.1 0\n{T0 + 1} 0.2 {TOO_BIG}\n{T0 + 2} 0.3 2\n{T0 + 3} 0.4 -1\n",
            # a timestamp no float holds: its points still count, by step
            "train/box_loss": "1" + "0" * 400 + " 1.5 0\n",
        },
    )
    write_run(exp, name="v2_next", metrics={MAP: [(T0, 0.5, 0), (T0 + 1, 0.6, 1)]})
    report = import_mlflow(book, root)
    assert sorted(r.name for r in report.imported) == ["v1_base", "v2_next"]
    failed = failed_at(report)
    path = str(bad / "metrics" / MAP)
    assert set(failed) == {(path, 2), (path, 4)}
    assert f"step {TOO_BIG}" in failed[(path, 2)] and "left out" in failed[(path, 2)]
    assert "step -1" in failed[(path, 4)]
    runs = {r.name: r for r in book.store.list_runs("pallets")}
    assert hist(book, runs["v1_base"], MAP) == {0: 0.1, 2: 0.3}
    assert hist(book, runs["v1_base"], "train/box_loss") == {0: 1.5}
    assert set(statuses(book).values()) == {"finished"}
    again = import_mlflow(book, root)
    assert again.ok and again.imported == [] and len(again.skipped) == 2


def test_mlflow_sqlite_steps_out_of_range(book: Book, tmp_path: Path) -> None:
    db = MlflowDb(tmp_path / "mlflow.db")
    exp = db.experiment(1, "pallets")
    db.run(exp, name="v1_base", metrics={MAP: [(T0, 0.1, 0), (T0 + 1, 0.2, 2**40), (T0 + 2, 0.3, 3)]})
    db.run(exp, name="v2_next", metrics={MAP: [(T0, 0.5, 0)]}, start=T0 + 10)
    db.close()
    report = import_mlflow(book, tmp_path / "mlflow.db")
    assert sorted(r.name for r in report.imported) == ["v1_base", "v2_next"]
    (problem,) = report.failed
    assert f"step {2**40}" in problem.message and "(run " in problem.path
    runs = {r.name: r for r in book.store.list_runs("pallets")}
    assert hist(book, runs["v1_base"], MAP) == {0: 0.1, 3: 0.3}
    assert set(statuses(book).values()) == {"finished"}


def test_tensorboard_steps_out_of_range(book: Book, tmp_path: Path) -> None:
    require_tensorboard()
    from tensorboard.summary import Writer as EventWriter

    for name, steps in (("a", [0, 1, 2**40, 3]), ("b", [0, 1])):
        writer = EventWriter(str(tmp_path / "tb" / name))
        for step in steps:
            writer.add_scalar(MAP, 0.1 * (step % 7), step=step)
        writer.close()
    report = import_tensorboard(book, tmp_path / "tb")
    assert sorted(r.name for r in report.imported) == ["a", "b"]
    (problem,) = report.failed
    assert Path(problem.path).parent == (tmp_path / "tb" / "a").resolve()
    assert f"step {2**40}" in problem.message and "left out" in problem.message
    runs = {r.name: r for r in book.store.list_runs("tensorboard")}
    assert sorted(hist(book, runs["a"], MAP)) == [0, 1, 3]
    assert set(statuses(book).values()) == {"finished"}


def test_the_writer_leaves_out_points_no_importer_caught(book: Book, tmp_path: Path) -> None:
    parsed = ParsedRun(
        tool="test",
        key="k1",
        path=str(tmp_path / "somewhere"),
        project="pallets",
        name="v1_base",
        created_at=1.0,
        ended_at=2.0,
        metrics={MAP: {-3: 0.1, 0: 0.2, TOO_BIG: 0.3, 1: float("inf"), 2: 0.4}},
    )
    report = ImportReport("test")
    Writer(book, report).write(parsed)
    assert [r.name for r in report.imported] == ["v1_base"]
    messages = sorted(p.message for p in report.failed)
    assert len(messages) == 3 and all("left out" in m for m in messages)
    assert all(p.path == str(tmp_path / "somewhere") for p in report.failed)
    run = book.store.get_run("pallets", "v1_base")
    assert hist(book, run, MAP) == {0: 0.2, 2: 0.4} and run.status == "finished"


@pytest.mark.parametrize("failing", ["log_batch", "add_artifact", "set_run_status"])
def test_a_run_whose_write_fails_is_not_written_at_all(
    book: Book, run_folder: RunFolder, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    first = run_folder("runs/detect/train")
    second = run_folder("runs/detect/train2")
    real = getattr(book.store, failing)
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("disk went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(book.store, failing, flaky)
    report = import_ultralytics(book, [first, second])
    assert [p.message for p in report.failed] == ["disk went away"]
    assert [r.name for r in report.imported] == ["train2"]
    assert statuses(book) == {"train2": "finished"}  # nothing of train, no `running` run
    again = import_ultralytics(book, [first, second])
    assert again.ok and [r.name for r in again.imported] == ["train"]
    run = book.store.get_run("detect", "train")
    assert run.status == "finished" and len(book.store.list_artifacts(run.id)) == 2
    assert sorted(hist(book, run, MAP)) == [1, 2, 3, 4, 5]
