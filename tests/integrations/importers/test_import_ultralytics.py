"""``trialbook import ultralytics``: real-looking run folders, every results.csv quirk."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from support.runs import hist
from support.ultralytics_files import (
    CLASSIFY,
    DETECT,
    OBB,
    POSE,
    SEGMENT,
    V10,
    YOLOV5,
    RunFolder,
    args_yaml,
    opt_yaml,
    results_csv,
    value_for,
)
from trialbook.api import Book
from trialbook.cli.main import cli
from trialbook.core.entities import RunRecord
from trialbook.integrations.importers.common import SourceError
from trialbook.integrations.importers.ultralytics_runs import (
    detect_task,
    import_ultralytics,
    normalise_yolov5_key,
    read_results_csv,
)

MAP = "metrics/mAP50-95(B)"


def only_run(book: Book, project: str | None = None) -> RunRecord:
    runs = book.store.list_runs(project)
    assert len(runs) == 1, runs
    return runs[0]


def invoke(*args: object) -> Result:
    return CliRunner().invoke(cli, ["import", "ultralytics", *map(str, args)])


# --------------------------------------------------------------------------- quirks
@pytest.mark.parametrize(
    ("quirk", "kwargs", "epochs"),
    [
        ("yolov8.0 padded, epochs from 0", {"style": "padded", "time_column": False}, range(0, 4)),
        ("plain with time, epochs from 1", {"style": "plain", "time_column": True}, range(1, 5)),
        ("no time column", {"style": "plain", "time_column": False}, range(1, 5)),
        ("CRLF line endings", {"newline": "\r\n"}, range(1, 5)),
        ("padded and CRLF", {"style": "padded", "newline": "\r\n", "time_column": False}, range(0, 4)),
        ("a single epoch", {}, [1]),
    ],
)
def test_results_csv_quirks_import_with_file_epochs(
    sqlite_book: Book, run_folder: RunFolder, quirk: str, kwargs: dict[str, Any], epochs: Sequence[int]
) -> None:
    folder = run_folder(epochs=epochs, **kwargs)
    report = import_ultralytics(sqlite_book, [folder])
    assert report.ok, report.failed
    run = only_run(sqlite_book, "detect")
    series = hist(sqlite_book, run, MAP)
    assert sorted(series) == list(epochs), quirk
    for e in epochs:
        assert series[e] == pytest.approx(value_for(MAP, e), abs=1e-5)
    keys = set(sqlite_book.store.get_all_history(run.id))
    assert set(DETECT) <= keys
    assert "epoch" not in keys and all(k == k.strip() for k in keys)
    assert ("time" in keys) == kwargs.get("time_column", True)
    assert run.status == "finished" and run.config["lr0"] == 0.01


def test_padded_header_and_cells_exactly_as_yolov8_0_writes_them(
    sqlite_book: Book, run_folder: RunFolder
) -> None:
    text = (
        "                  epoch,      train/box_loss,      train/cls_loss,   "
        "metrics/precision(B),    metrics/mAP50-95(B),              lr/pg0\n"
        "                      0,              1.2195,              3.0121,"
        "                0.61032,                0.44321,            0.070018\n"
        "                      1,              1.1814,              2.1357,"
        "                0.66342,                0.45713,            0.040032\n"
    )
    folder = run_folder(csv_text=text)
    assert import_ultralytics(sqlite_book, [folder]).ok
    run = only_run(sqlite_book)
    assert hist(sqlite_book, run, MAP) == {0: 0.44321, 1: 0.45713}
    assert hist(sqlite_book, run, "lr/pg0") == {0: 0.070018, 1: 0.040032}


@pytest.mark.parametrize("cell", ["nan", "NaN", "", "   ", "       nan"])
def test_nan_and_empty_cells_are_stored_as_nan(sqlite_book: Book, run_folder: RunFolder, cell: str) -> None:
    folder = run_folder(epochs=range(1, 4), cells={(2, "val/box_loss"): cell, (2, MAP): cell})
    report = import_ultralytics(sqlite_book, [folder])
    assert report.ok, report.failed
    run = only_run(sqlite_book)
    loss = hist(sqlite_book, run, "val/box_loss")
    assert math.isnan(loss[2]) and loss[1] == value_for("val/box_loss", 1)
    summary = sqlite_book.store.get_summaries([run.id], [MAP])[run.id][MAP]
    assert summary.nan_count == 1 and summary.final_epoch == 3


def test_trailing_comma_is_tolerated(sqlite_book: Book, run_folder: RunFolder) -> None:
    text = "epoch,train/box_loss,metrics/mAP50-95(B),\n1,1.5,0.2,\n2,1.2,0.3,\n"
    assert import_ultralytics(sqlite_book, [run_folder(csv_text=text)]).ok
    assert hist(sqlite_book, only_run(sqlite_book), MAP) == {1: 0.2, 2: 0.3}


def test_resumed_training_rows_keep_the_later_value(sqlite_book: Book, run_folder: RunFolder) -> None:
    text = "epoch,metrics/mAP50-95(B)\n1,0.1\n2,0.2\n2,0.25\n3,0.3\n"
    report = import_ultralytics(sqlite_book, [run_folder(csv_text=text)])
    assert report.ok
    assert hist(sqlite_book, only_run(sqlite_book), MAP) == {1: 0.1, 2: 0.25, 3: 0.3}
    assert any("epoch 2 appears again" in w.message and w.line == 4 for w in report.warnings)


@pytest.mark.parametrize("n_groups", [3, 5, 8])
def test_any_number_of_lr_groups(sqlite_book: Book, run_folder: RunFolder, n_groups: int) -> None:
    keys = [k for k in DETECT if not k.startswith("lr/")] + [f"lr/pg{i}" for i in range(n_groups)]
    assert import_ultralytics(sqlite_book, [run_folder(keys=keys)]).ok
    got = {k for k in sqlite_book.store.get_all_history(only_run(sqlite_book).id) if k.startswith("lr/")}
    assert got == {f"lr/pg{i}" for i in range(n_groups)}


def test_stopped_early_records_planned_epochs(sqlite_book: Book, run_folder: RunFolder) -> None:
    folder = run_folder(epochs=range(1, 8), args=args_yaml(epochs=100, name="train"))
    assert import_ultralytics(sqlite_book, [folder]).ok
    run = only_run(sqlite_book)
    assert run.tags["planned_epochs"] == "100" and run.tags["stopped_early"] == "true"
    assert len(hist(sqlite_book, run, MAP)) == 7


def test_complete_run_is_not_stopped_early(sqlite_book: Book, run_folder: RunFolder) -> None:
    folder = run_folder(epochs=range(1, 4), args=args_yaml(epochs=3))
    assert import_ultralytics(sqlite_book, [folder]).ok
    assert only_run(sqlite_book).tags["stopped_early"] == "false"


def test_infinite_values_become_nan_with_a_warning(sqlite_book: Book, run_folder: RunFolder) -> None:
    folder = run_folder(epochs=range(1, 4), cells={(2, "train/box_loss"): "inf"})
    report = import_ultralytics(sqlite_book, [folder])
    assert report.ok
    run = only_run(sqlite_book)
    assert math.isnan(hist(sqlite_book, run, "train/box_loss")[2])
    assert run.tags["import.infinite_as_nan"] == "1"
    assert any(w.line == 3 and "infinite" in w.message for w in report.warnings)


def test_header_only_file_imports_without_metrics(sqlite_book: Book, run_folder: RunFolder) -> None:
    report = import_ultralytics(sqlite_book, [run_folder(epochs=[])])
    assert report.ok and len(report.imported) == 1
    assert any("no epoch rows" in w.message for w in report.warnings)


# --------------------------------------------------------------------------- tasks, formats
@pytest.mark.parametrize(
    ("keys", "task"),
    [
        (DETECT, "detect"),
        (SEGMENT, "segment"),
        (POSE, "pose"),
        (OBB, "obb"),
        (CLASSIFY, "classify"),
        (V10, "detect"),
    ],
)
def test_task_from_columns_when_there_is_no_args_yaml(
    sqlite_book: Book, run_folder: RunFolder, keys: list[str], task: str
) -> None:
    folder = run_folder(keys=keys, args=None)
    assert detect_task(keys) == task
    report = import_ultralytics(sqlite_book, [folder])
    assert report.ok, report.failed
    run = only_run(sqlite_book, task)
    assert run.tags["task"] == task and run.project == task
    assert set(keys) <= set(sqlite_book.store.get_all_history(run.id))
    assert "planned_epochs" not in run.tags


def test_task_from_args_yaml_wins_over_columns(sqlite_book: Book, run_folder: RunFolder) -> None:
    folder = run_folder(keys=DETECT, args=args_yaml(task="obb"))
    assert import_ultralytics(sqlite_book, [folder]).ok
    assert only_run(sqlite_book).project == "obb"


def test_yolov10_om_oo_losses_are_kept(sqlite_book: Book, run_folder: RunFolder) -> None:
    assert import_ultralytics(sqlite_book, [run_folder(keys=V10)]).ok
    keys = set(sqlite_book.store.get_all_history(only_run(sqlite_book).id))
    assert {"train/box_om", "train/cls_oo", "val/dfl_oo", MAP} <= keys


def test_segment_sem_loss_and_mask_metrics(sqlite_book: Book, run_folder: RunFolder) -> None:
    assert import_ultralytics(sqlite_book, [run_folder(keys=SEGMENT, args=args_yaml(task="segment"))]).ok
    keys = set(sqlite_book.store.get_all_history(only_run(sqlite_book, "segment").id))
    assert {"train/sem_loss", "metrics/mAP50-95(M)", MAP} <= keys


def test_classify_project_compares_on_top1_accuracy(sqlite_book: Book, run_folder: RunFolder) -> None:
    folder = run_folder(keys=CLASSIFY, args=args_yaml(task="classify"))
    assert import_ultralytics(sqlite_book, [folder]).ok
    project = sqlite_book.store.get_project("classify")
    assert project.protocol.metric == "metrics/accuracy_top1"
    change = sqlite_book.store.protocol_history("classify")[0]
    assert change.field == "metric" and "import" in (change.reason or "")


def test_yolov5_folder_with_opt_yaml(sqlite_book: Book, run_folder: RunFolder) -> None:
    folder = run_folder(
        "runs/train/exp",
        keys=YOLOV5,
        style="v5",
        time_column=False,
        epochs=range(0, 3),
        args=None,
        opt=opt_yaml(epochs=3),
    )
    report = import_ultralytics(sqlite_book, [folder])
    assert report.ok, report.failed
    run = only_run(sqlite_book, "detect")
    keys = set(sqlite_book.store.get_all_history(run.id))
    assert {
        MAP,
        "metrics/mAP50(B)",
        "metrics/precision(B)",
        "metrics/recall(B)",
        "lr/pg0",
        "lr/pg1",
        "lr/pg2",
        "train/obj_loss",
    } <= keys
    assert not any(k.startswith(("x/", "metrics/mAP_")) for k in keys)
    assert hist(sqlite_book, run, MAP) == {e: value_for("metrics/mAP_0.5:0.95", e) for e in range(3)}
    assert run.config["hyp.lr0"] == 0.01 and run.config["batch_size"] == 16
    assert run.tags["import.format"] == "yolov5" and run.tags["planned_epochs"] == "3"
    assert run.tags["stopped_early"] == "false"


def test_yolov5_hyp_read_from_hyp_yaml_when_opt_names_a_file(
    sqlite_book: Book, run_folder: RunFolder
) -> None:
    folder = run_folder(
        "runs/train/exp2",
        keys=YOLOV5,
        style="v5",
        time_column=False,
        epochs=range(0, 2),
        args=None,
        opt=opt_yaml(hyp="data/hyps/hyp.scratch-low.yaml"),
    )
    (folder / "hyp.yaml").write_text("lr0: 0.02\nmomentum: 0.9\n")
    assert import_ultralytics(sqlite_book, [folder]).ok
    assert only_run(sqlite_book).config["hyp.lr0"] == 0.02


def test_yolov5_keys_normalise() -> None:
    assert normalise_yolov5_key("metrics/mAP_0.5:0.95") == MAP
    assert normalise_yolov5_key("metrics/mAP_0.5") == "metrics/mAP50(B)"
    assert normalise_yolov5_key("metrics/mAP_0.5:0.95(M)") == "metrics/mAP50-95(M)"
    assert normalise_yolov5_key("x/lr2") == "lr/pg2"
    assert normalise_yolov5_key("train/obj_loss") == "train/obj_loss"


def test_ultralytics_format_is_tagged(sqlite_book: Book, run_folder: RunFolder) -> None:
    assert import_ultralytics(sqlite_book, [run_folder()]).ok
    run = only_run(sqlite_book)
    assert run.tags["import.format"] == "ultralytics" and run.tags["import.tool"] == "ultralytics"


# --------------------------------------------------------------------------- folders, names
def test_a_runs_folder_is_walked(sqlite_book: Book, run_folder: RunFolder, tmp_path: Path) -> None:
    run_folder("runs/detect/train")
    run_folder("runs/detect/train2")
    run_folder("runs/segment/train", keys=SEGMENT, args=args_yaml(task="segment"))
    (tmp_path / "runs/detect/notes").mkdir()
    report = import_ultralytics(sqlite_book, [tmp_path / "runs"])
    assert report.ok and len(report.imported) == 3
    assert sorted(r.name for r in sqlite_book.store.list_runs("detect")) == ["train", "train2"]
    assert [r.name for r in sqlite_book.store.list_runs("segment")] == ["train"]


def test_folder_names_are_kept_as_legacy_names(sqlite_book: Book, run_folder: RunFolder) -> None:
    assert import_ultralytics(sqlite_book, [run_folder("runs/detect/train3")]).ok
    run = only_run(sqlite_book)
    assert run.name == "train3" and run.legacy_name is True


def test_name_gives_a_proper_name(sqlite_book: Book, run_folder: RunFolder) -> None:
    folder = run_folder("runs/detect/train3")
    result = invoke(folder, "--name", "v2_imgsz_1024", "--project", "pallets")
    assert result.exit_code == 0, result.output
    run = only_run(sqlite_book, "pallets")
    assert run.name == "v2_imgsz_1024" and run.legacy_name is False
    assert run.tags["import.original_name"] == "train3"


def test_name_with_several_folders_is_refused(
    sqlite_book: Book, run_folder: RunFolder, tmp_path: Path
) -> None:
    run_folder("runs/detect/train")
    run_folder("runs/detect/train2")
    result = invoke(tmp_path / "runs", "--name", "v1_base")
    assert result.exit_code == 1
    assert "--name names one run" in result.output
    assert sqlite_book.store.list_runs() == []


def test_a_bad_name_is_refused_with_a_suggestion(sqlite_book: Book, run_folder: RunFolder) -> None:
    result = invoke(run_folder("runs/detect/train"), "--name", "final")
    assert result.exit_code == 1
    assert "naming rule" in result.output and sqlite_book.store.list_runs() == []


def test_the_same_folder_name_from_two_roots_gets_a_suffix(sqlite_book: Book, run_folder: RunFolder) -> None:
    a = run_folder("machine_a/runs/detect/train")
    b = run_folder("machine_b/runs/detect/train")
    report = import_ultralytics(sqlite_book, [a, b])
    assert report.ok
    names = sorted(r.name for r in sqlite_book.store.list_runs("detect"))
    assert names[0] == "train" and names[1].startswith("train_") and len(names[1]) == 12
    renamed = [r for r in report.imported if r.renamed_from]
    assert len(renamed) == 1 and renamed[0].renamed_from == "train"


def test_path_without_run_folders_is_a_failure(sqlite_book: Book, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = invoke(tmp_path / "empty")
    assert result.exit_code == 1 and "holds no Ultralytics run folder" in result.output


# --------------------------------------------------------------------------- idempotency
def test_importing_twice_changes_nothing(sqlite_book: Book, run_folder: RunFolder) -> None:
    folder = run_folder()
    first = invoke(folder, "--json")
    assert first.exit_code == 0, first.output
    before = sqlite_book.store.list_runs()
    points = sqlite_book.store.get_all_history(before[0].id)
    second = invoke(folder, "--json")
    assert second.exit_code == 0, second.output
    data = json.loads(second.stdout)
    assert data["imported"] == [] and len(data["skipped"]) == 1
    assert "already imported as detect/train" in data["skipped"][0]["reason"]
    assert sqlite_book.store.list_runs() == before
    assert sqlite_book.store.get_all_history(before[0].id) == points
    assert len(sqlite_book.store.list_artifacts(before[0].id)) == 2
    human = invoke(folder)
    assert human.exit_code == 0 and "already imported" in human.output


def test_an_interrupted_import_is_completed_by_the_next(
    sqlite_book: Book, run_folder: RunFolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = run_folder()
    real = sqlite_book.store.set_run_status
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("disk went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(sqlite_book.store, "set_run_status", flaky)
    first = import_ultralytics(sqlite_book, [folder])
    assert not first.ok and "disk went away" in first.failed[0].message
    assert sqlite_book.store.list_runs() == []  # all or nothing: no half-written `running` run
    second = import_ultralytics(sqlite_book, [folder])
    assert second.ok and len(second.imported) == 1
    run = only_run(sqlite_book)
    assert run.status == "finished"
    assert len(sqlite_book.store.list_artifacts(run.id)) == 2


# --------------------------------------------------------------------------- bad files
def test_bad_files_are_reported_with_path_and_line_and_the_rest_imports(
    sqlite_book: Book, run_folder: RunFolder, tmp_path: Path
) -> None:
    good = run_folder("runs/detect/train")
    short_row = run_folder(
        "runs/detect/train2", csv_text="epoch,train/box_loss,metrics/mAP50-95(B)\n1,1.5,0.2\n2,1.4\n"
    )
    word = run_folder("runs/detect/train3", epochs=range(1, 5), cells={(3, MAP): "oops"})
    result = invoke(tmp_path / "runs", "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert [r["name"] for r in data["imported"]] == ["train"]
    failed = {(f["path"], f["line"]) for f in data["failed"]}
    assert (str(short_row / "results.csv"), 3) in failed
    assert (str(word / "results.csv"), 4) in failed
    assert f"{short_row / 'results.csv'}:3: 2 cells, but the header has 3 columns" in result.stderr
    assert f"{word / 'results.csv'}:4: column 'metrics/mAP50-95(B)': 'oops' is not a number" in result.stderr
    assert [r.name for r in sqlite_book.store.list_runs()] == ["train"]
    assert str(good) == data["imported"][0]["path"]


def test_read_results_csv_lists_every_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    path.write_text("epoch,a\n1,0.5\nx,0.1\n3,abc\n4,0.2,9\n")
    with pytest.raises(SourceError) as caught:
        read_results_csv(path)
    assert [p.line for p in caught.value.problems] == [3, 4, 5]


def test_a_header_without_epoch_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    path.write_text("step,a\n1,0.5\n")
    with pytest.raises(SourceError, match="no 'epoch' column"):
        read_results_csv(path)


def test_broken_args_yaml_fails_the_folder_with_its_line(sqlite_book: Book, run_folder: RunFolder) -> None:
    folder = run_folder(args=None)
    (folder / "args.yaml").write_text("task: detect\nepochs: [1, 2\nimgsz: 640\n")
    report = import_ultralytics(sqlite_book, [folder])
    assert not report.ok and report.failed[0].path == str(folder / "args.yaml")
    assert report.failed[0].line is not None and sqlite_book.store.list_runs() == []


# --------------------------------------------------------------------------- weights, dataset, times
def test_weights_become_artifacts(sqlite_book: Book, run_folder: RunFolder) -> None:
    assert import_ultralytics(sqlite_book, [run_folder()]).ok
    run = only_run(sqlite_book)
    arts = {a.name: a for a in sqlite_book.store.list_artifacts(run.id)}
    assert set(arts) == {"best.pt", "last.pt"}
    assert sqlite_book.blobs is not None
    assert sqlite_book.blobs.get_bytes(arts["best.pt"].digest) == b"best weights train"


def test_no_weights_skips_them(sqlite_book: Book, run_folder: RunFolder) -> None:
    result = invoke(run_folder(), "--no-weights")
    assert result.exit_code == 0, result.output
    assert sqlite_book.store.list_artifacts(only_run(sqlite_book).id) == []


def test_a_book_without_artifact_files_says_how_to_store_weights(
    sqlite_book: Book, run_folder: RunFolder
) -> None:
    sqlite_book.blobs = None  # as a PostgreSQL book without TRIALBOOK_ARTIFACTS
    folder = run_folder()
    report = import_ultralytics(sqlite_book, [folder])
    assert not report.ok and "TRIALBOOK_ARTIFACTS" in report.failed[0].message
    assert "--no-weights" in report.failed[0].message and sqlite_book.store.list_runs() == []
    assert import_ultralytics(sqlite_book, [folder], weights=False).ok


def test_without_dataset_the_run_is_unpinned(sqlite_book: Book, run_folder: RunFolder) -> None:
    assert import_ultralytics(sqlite_book, [run_folder()]).ok
    run = only_run(sqlite_book)
    assert run.pinned is False and run.dataset is None and "pinned_by" not in run.tags


def test_dataset_pins_the_run_to_a_tagged_version(
    sqlite_book: Book, run_folder: RunFolder, tmp_path: Path
) -> None:
    ds = tmp_path / "pallets"
    for split, name in (("train", "a"), ("val", "b")):
        (ds / "images" / split).mkdir(parents=True)
        (ds / "labels" / split).mkdir(parents=True)
        (ds / "images" / split / f"{name}.jpg").write_bytes(b"\xff\xd8" + name.encode())
        (ds / "labels" / split / f"{name}.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    (ds / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/val\nnames:\n  0: pallet\n")
    tagged = CliRunner().invoke(
        cli, ["data", "tag", "pallets", str(ds / "data.yaml"), "--tag", "v1", "--json"]
    )
    assert tagged.exit_code == 0, tagged.output
    version = json.loads(tagged.stdout)
    result = invoke(run_folder(), "--dataset", "pallets:v1", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["imported"][0]["pinned"] is True
    run = only_run(sqlite_book)
    assert run.pinned is True and run.dataset == "pallets:v1"
    assert run.tags["pinned_by"] == "import"
    assert run.split_digests["dataset"] == version["digest"]
    assert run.split_digests["train"] == version["splits"]["train"]["digest"]
    assert run.split_digests["val"] == version["splits"]["val"]["digest"]


def test_an_unknown_dataset_is_refused_before_anything_is_imported(
    sqlite_book: Book, run_folder: RunFolder
) -> None:
    result = invoke(run_folder(), "--dataset", "pallets:v9")
    assert result.exit_code == 1 and "pallets:v9" in result.output
    assert sqlite_book.store.list_runs() == []


def test_times_come_from_the_files(sqlite_book: Book, run_folder: RunFolder) -> None:
    folder = run_folder()
    os.utime(folder / "args.yaml", (1_700_000_000, 1_700_000_000))
    os.utime(folder / "results.csv", (1_700_003_600, 1_700_003_600))
    for w in ("best.pt", "last.pt"):
        os.utime(folder / "weights" / w, (1_700_003_000, 1_700_003_000))
    assert import_ultralytics(sqlite_book, [folder]).ok
    run = only_run(sqlite_book)
    assert run.created_at == 1_700_000_000 and run.ended_at == 1_700_003_600


def test_without_settings_the_start_is_derived_from_the_time_column(
    sqlite_book: Book, run_folder: RunFolder
) -> None:
    folder = run_folder(args=None, epochs=range(1, 5))
    os.utime(folder / "results.csv", (1_700_003_600, 1_700_003_600))
    assert import_ultralytics(sqlite_book, [folder]).ok
    run = only_run(sqlite_book)
    assert run.created_at == pytest.approx(1_700_003_600 - value_for("time", 4))


# --------------------------------------------------------------------------- CLI
def test_cli_human_output_and_json_keys(sqlite_book: Book, run_folder: RunFolder) -> None:
    folder = run_folder("runs/detect/train7")
    result = invoke(folder)
    assert result.exit_code == 0, result.output
    assert "imported detect/train7 (legacy name, UNPINNED): 5 epochs" in result.stdout
    sqlite_book.close()
    other = run_folder("runs/detect/train8")
    data = json.loads(invoke(other, "--json").stdout)
    assert set(data) >= {"tool", "ok", "imported", "skipped", "failed", "warnings"}
    assert set(data["imported"][0]) >= {
        "project",
        "name",
        "run_id",
        "path",
        "epochs",
        "legacy_name",
        "pinned",
        "status",
    }


def test_the_imported_run_shows_like_any_other(sqlite_book: Book, run_folder: RunFolder) -> None:
    assert invoke(run_folder(), "--json").exit_code == 0
    shown = CliRunner().invoke(cli, ["show", "detect/train", "--json"])
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    assert data["summary"][MAP]["best"] == pytest.approx(value_for(MAP, 5))
    assert data["pinned"] is False and data["status"] == "finished"


def test_results_csv_helper_writes_what_yolov8_0_writes() -> None:
    text = results_csv(["train/box_loss"], [0], style="padded", time_column=False)
    assert text.splitlines()[0] == f"{'epoch':>23},{'train/box_loss':>23}"


def test_missing_path_is_a_usage_error(sqlite_book: Book, tmp_path: Path) -> None:
    result = invoke(tmp_path / "nope")
    assert result.exit_code == 2


def test_results_csv_file_path_means_its_folder(sqlite_book: Book, run_folder: RunFolder) -> None:
    folder = run_folder()
    report = import_ultralytics(sqlite_book, [Path(folder) / "results.csv"])
    assert report.ok and report.imported[0].path == str(folder)
