"""The importers read YAML (args.yaml, opt.yaml, hyp.yaml, MLflow's meta.yaml) through
trialbook's one YAML reader: an alias bomb or a duplicate key fails that source at once,
with its path and line, and the other sources are imported."""

from __future__ import annotations

import time
from pathlib import Path

from support.cli import invoke
from support.mlflow_files import write_experiment, write_run
from support.ultralytics_files import RunFolder
from trialbook.api import Book
from trialbook.integrations.importers.mlflow_store import import_mlflow
from trialbook.integrations.importers.ultralytics_runs import import_ultralytics

MAP = "metrics/mAP50-95(B)"


def alias_bomb(key: str, width: int = 9, depth: int = 7) -> str:
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    for level in range(1, depth):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * width)}]")
    lines.append(f"{key}: *a{depth - 1}")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_in_args_yaml_fails_that_folder_at_once(
    sqlite_book: Book, run_folder: RunFolder
) -> None:
    bomb = run_folder("runs/detect/train", args=False)
    (bomb / "args.yaml").write_text("task: detect\nepochs: 5\n" + alias_bomb("augment"))
    good = run_folder("runs/detect/train2")
    started = time.monotonic()
    result = invoke("import", "ultralytics", str(bomb.parent), catch_exceptions=False)
    assert time.monotonic() - started < 10
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"error: {bomb / 'args.yaml'}:10: its aliases expand to" in result.stderr
    assert [r.name for r in sqlite_book.store.list_runs()] == [good.name]


def test_a_duplicate_key_in_args_yaml_names_the_key_and_line(
    sqlite_book: Book, run_folder: RunFolder
) -> None:
    folder = run_folder(args=False)
    (folder / "args.yaml").write_text("task: detect\nepochs: 5\nlr0: 0.01\nepochs: 50\n")
    report = import_ultralytics(sqlite_book, [folder])
    (problem,) = report.failed
    assert (problem.path, problem.line) == (str(folder / "args.yaml"), 4)
    assert "key 'epochs' is given twice" in problem.message
    assert sqlite_book.store.list_runs() == []


def test_an_alias_bomb_in_an_mlflow_meta_yaml_fails_that_run(sqlite_book: Book, tmp_path: Path) -> None:
    root = tmp_path / "mlruns"
    exp = write_experiment(root, 1, "pallets")
    bad = write_run(exp, name="v1_base", metrics={MAP: [(1, 0.1, 0)]})
    meta = (bad / "meta.yaml").read_text()
    (bad / "meta.yaml").write_text(meta + alias_bomb("tags_x"))
    write_run(exp, name="v2_next", metrics={MAP: [(1, 0.2, 0)]})
    report = import_mlflow(sqlite_book, root)
    assert [r.name for r in report.imported] == ["v2_next"]
    (problem,) = report.failed
    assert problem.path == str(bad / "meta.yaml") and problem.line is not None
    assert "aliases expand to" in problem.message
