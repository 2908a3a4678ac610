"""``trialbook import tensorboard``: event files written by TensorBoard's own writers, read
back by its own reader.

Without the ``tensorboard`` package these tests skip, unless ``TRIALBOOK_REQUIRE_EXTRAS=1``
(CI), which turns the missing extra into a failure. The missing-extra error itself is tested
either way.
"""

from __future__ import annotations

import builtins
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from support.extras import require_tensorboard
from support.runs import hist
from trialbook.api import Book
from trialbook.cli.main import cli
from trialbook.integrations.importers.common import MissingDependency
from trialbook.integrations.importers.tensorboard_events import import_tensorboard

MAP = "metrics/mAP50-95(B)"


@pytest.fixture
def tensorboard() -> None:
    """Skips the test without the tensorboard extra (a failure in CI)."""
    require_tensorboard()


def invoke(*args: object) -> Result:
    return CliRunner().invoke(cli, ["import", "tensorboard", *map(str, args)])


def write_tensor_scalars(folder: Path, series: dict[str, list[tuple[int, float]]]) -> None:
    """Scalars as TF2 / ``tensorboard.summary`` write them (scalar tensors)."""
    from tensorboard.summary import Writer

    writer = Writer(str(folder))
    for tag, points in series.items():
        for step, value in points:
            writer.add_scalar(tag, value, step=step)
    writer.close()


def write_legacy_scalars(folder: Path, points: list[tuple[float, int, str, float]], suffix: str = "") -> Path:
    """Scalars as TF1 and ``torch.utils.tensorboard`` write them (``simple_value``), with
    explicit wall times: ``(wall_time, step, tag, value)``. Returns the file."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(folder), filename_suffix=suffix)
    for wall_time, step, tag, value in points:
        writer.add_event(
            event_pb2.Event(
                wall_time=wall_time,
                step=step,
                summary=summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)]),
            )
        )
    # an image summary, which is not a scalar and is left out
    writer.add_event(
        event_pb2.Event(
            wall_time=points[-1][0],
            step=0,
            summary=summary_pb2.Summary(
                value=[
                    summary_pb2.Summary.Value(
                        tag="val_batch0_pred",
                        image=summary_pb2.Summary.Image(
                            height=1, width=1, colorspace=3, encoded_image_string=b"\x89PNG"
                        ),
                    )
                ]
            ),
        )
    )
    writer.close()
    logdir = str(writer.get_logdir())
    return Path(logdir) / max(os.listdir(logdir))


@pytest.fixture
def logs(tensorboard: None, tmp_path: Path) -> Path:
    """Two runs under tmp_path/logs: run_a (scalar tensors) and nested/version_0 (legacy scalars)."""
    root = tmp_path / "logs"
    write_tensor_scalars(
        root / "run_a",
        {MAP: [(s, 0.1 * s) for s in range(1, 6)], "train/box_loss": [(s, 2.0 / s) for s in range(1, 6)]},
    )
    write_legacy_scalars(
        root / "nested" / "version_0", [(1_700_000_000.0 + s, s, "loss", 1.0 / (s + 1)) for s in range(4)]
    )
    return root


def test_import_tensor_and_legacy_scalars(sqlite_book: Book, logs: Path) -> None:
    result = invoke(logs, "--project", "lightning", "--json")
    assert result.exit_code == 0, result.output
    runs = {r.name: r for r in sqlite_book.store.list_runs("lightning")}
    assert set(runs) == {"run_a", "nested_version_0"}
    a = runs["run_a"]
    assert hist(sqlite_book, a, MAP) == {s: pytest.approx(0.1 * s) for s in range(1, 6)}
    assert set(sqlite_book.store.get_all_history(a.id)) == {MAP, "train/box_loss"}
    b = runs["nested_version_0"]
    assert set(sqlite_book.store.get_all_history(b.id)) == {"loss"}  # the image is not a scalar
    assert hist(sqlite_book, b, "loss") == {s: pytest.approx(1.0 / (s + 1)) for s in range(4)}
    assert b.created_at == pytest.approx(1_700_000_000.0)
    assert b.ended_at == pytest.approx(1_700_000_003.0)
    assert b.status == "finished" and b.legacy_name is True
    assert b.tags["import.tool"] == "tensorboard"
    data = json.loads(result.stdout)
    assert sorted(r["epochs"] for r in data["imported"]) == [4, 5]


def test_default_project_and_a_single_run_folder(sqlite_book: Book, logs: Path) -> None:
    report = import_tensorboard(sqlite_book, logs / "run_a")
    assert report.ok
    assert [(r.project, r.name) for r in sqlite_book.store.list_runs()] == [("tensorboard", "run_a")]


def test_importing_twice_changes_nothing(sqlite_book: Book, logs: Path) -> None:
    assert invoke(logs).exit_code == 0
    before = sqlite_book.store.list_runs()
    again = invoke(logs, "--json")
    assert again.exit_code == 0, again.output
    data = json.loads(again.stdout)
    assert data["imported"] == [] and len(data["skipped"]) == 2
    assert sqlite_book.store.list_runs() == before


def test_a_restarted_training_is_one_run_and_the_later_value_wins(
    sqlite_book: Book, tensorboard: None, tmp_path: Path
) -> None:
    folder = tmp_path / "logs" / "train"
    write_legacy_scalars(folder, [(1000.0 + s, s, "loss", 1.0) for s in range(5)], suffix=".a")
    write_legacy_scalars(folder, [(2000.0 + s, s, "loss", 2.0) for s in range(3, 7)], suffix=".b")
    assert import_tensorboard(sqlite_book, tmp_path / "logs").ok
    run = sqlite_book.store.list_runs()[0]
    assert hist(sqlite_book, run, "loss") == {0: 1.0, 1: 1.0, 2: 1.0, 3: 2.0, 4: 2.0, 5: 2.0, 6: 2.0}


def test_infinite_values_become_nan(sqlite_book: Book, tensorboard: None, tmp_path: Path) -> None:
    write_legacy_scalars(tmp_path / "logs" / "r", [(1.0, 0, "loss", math.inf), (2.0, 1, "loss", 1.0)])
    report = import_tensorboard(sqlite_book, tmp_path / "logs")
    assert report.ok and report.warnings
    run = sqlite_book.store.list_runs()[0]
    assert math.isnan(hist(sqlite_book, run, "loss")[0]) and run.tags["import.infinite_as_nan"] == "1"


def test_a_damaged_file_fails_its_folder_and_the_rest_imports(sqlite_book: Book, logs: Path) -> None:
    damaged = write_legacy_scalars(logs / "broken", [(1.0 + s, s, "loss", 0.5) for s in range(6)])
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside a record in the middle of the file
    damaged.write_bytes(bytes(data))
    result = invoke(logs, "--json")
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert sorted(r["name"] for r in out["imported"]) == ["nested_version_0", "run_a"]
    assert out["failed"][0]["path"] == str(damaged)
    assert "damaged" in out["failed"][0]["message"] and "byte" in out["failed"][0]["message"]
    assert f"error: {damaged}: record" in result.stderr


def test_a_damaged_length_header_is_not_mistaken_for_a_cut_short_file(
    sqlite_book: Book, tensorboard: None, tmp_path: Path
) -> None:
    import struct

    damaged = write_legacy_scalars(tmp_path / "logs" / "r", [(1.0 + s, s, "loss", 0.5) for s in range(4)])
    data = bytearray(damaged.read_bytes())
    (first_length,) = struct.unpack("<Q", bytes(data[:8]))
    second = 16 + first_length
    data[second + 3] ^= 0x40  # the second record now claims to run past the end of the file
    damaged.write_bytes(bytes(data))
    report = import_tensorboard(sqlite_book, tmp_path / "logs")
    assert not report.ok and f"(byte {second})" in report.failed[0].message
    assert sqlite_book.store.list_runs() == []


def test_a_last_record_cut_short_is_a_warning(sqlite_book: Book, tensorboard: None, tmp_path: Path) -> None:
    cut = write_legacy_scalars(tmp_path / "logs" / "r", [(1.0 + s, s, "loss", 0.5) for s in range(4)])
    cut.write_bytes(cut.read_bytes()[:-7])
    report = import_tensorboard(sqlite_book, tmp_path / "logs")
    assert report.ok
    assert any("cut short" in w.message for w in report.warnings)
    run = sqlite_book.store.list_runs()[0]
    assert sorted(hist(sqlite_book, run, "loss")) == [0, 1, 2, 3]  # the image record was the one cut


def test_a_folder_without_event_files_is_an_error(
    sqlite_book: Book, tensorboard: None, tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    result = invoke(tmp_path / "empty")
    assert result.exit_code == 1 and "no TensorBoard event files" in result.output


def test_event_files_without_scalars_are_skipped(
    sqlite_book: Book, tensorboard: None, tmp_path: Path
) -> None:
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    folder = tmp_path / "logs" / "graphs_only"
    writer = EventFileWriter(str(folder))
    writer.close()  # a file with only the file_version event
    report = import_tensorboard(sqlite_book, tmp_path / "logs")
    assert report.ok and report.imported == []
    assert "no scalar" in report.skipped[0].reason


def test_without_tensorboard_the_error_says_how_to_install_it(
    sqlite_book: Book, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "events.out.tfevents.1.host").write_bytes(b"")
    real_import = builtins.__import__

    def no_tensorboard(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "tensorboard" or name.startswith("tensorboard."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with pytest.raises(MissingDependency, match=r"pip install 'trialbook\[tensorboard\]'"):
        import_tensorboard(sqlite_book, tmp_path / "logs")
    result = invoke(tmp_path / "logs")
    assert result.exit_code == 1
    assert "pip install 'trialbook[tensorboard]'" in result.stderr
    assert sqlite_book.store.list_runs() == []


def test_tensorboard_is_not_imported_by_the_cli(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys, trialbook.cli.main, trialbook.cli.imports; "
        "print(any(m.split('.')[0] == 'tensorboard' for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_wall_time_default_writer_is_recent(sqlite_book: Book, logs: Path) -> None:
    assert import_tensorboard(sqlite_book, logs / "run_a").ok
    run = sqlite_book.store.list_runs()[0]
    assert abs(run.created_at - time.time()) < 600
