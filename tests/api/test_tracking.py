"""The Python tracking API on a real book."""

from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import trialbook as tb
from trialbook.api import Book, Run
from trialbook.core.runs import effective_status
from trialbook.errors import BookNotFound, Conflict, InvalidInput
from trialbook.store.sql.store import SqlStore

MAP = "metrics/mAP50-95(B)"


def start(book: Book, name: str = "v1_base", **kw: Any) -> Run:
    kw.setdefault("allow_unpinned", True)
    return book.start("pallets", name, **kw)


def test_log_finish_and_read_back(book: Book) -> None:
    with start(book, config={"model": {"name": "yolo11n", "imgsz": 640}, "lr0": 0.01}) as run:
        for e in range(5):
            run.log({MAP: 0.1 * e, "train/box_loss": 2 - 0.1 * e}, epoch=e)
    rec = book.run("v1_base")
    assert rec.status == "finished" and rec.ended_at is not None
    assert rec.config == {"model.name": "yolo11n", "model.imgsz": 640, "lr0": 0.01}
    s = book.store.get_summaries([rec.id])[rec.id]
    assert s[MAP].count == 5 and s[MAP].best_epoch == 4
    assert s["train/box_loss"].best == pytest.approx(1.6)


def test_exception_marks_failed_and_keeps_points(book: Book) -> None:
    with pytest.raises(RuntimeError), start(book) as run:
        run.log({MAP: 0.2}, epoch=0)
        raise RuntimeError("CUDA out of memory")
    rec = book.run("v1_base")
    assert rec.status == "failed"
    assert book.store.get_history([rec.id], MAP)[rec.id] == [(0, 0.2)]


@pytest.mark.parametrize(
    ("metrics", "epoch", "match"),
    [
        ({MAP: "high"}, 3, r"'metrics/mAP50-95\(B\)' at epoch 3: value 'high' \(str\) is not a number"),
        ({MAP: float("inf")}, 7, "at epoch 7: value inf is infinite"),
        ({MAP: True}, 1, "is not a number"),
        ({"k" * 251: 1.0}, 2, "at epoch 2 is 251 characters long; the limit is 250"),
        ({MAP: 0.1}, -1, "epoch -1 is negative"),
        ({MAP: 0.1}, 1.5, "epoch 1.5 must be an integer"),
        ({"": 0.1}, 0, "non-empty string"),
    ],
)
def test_bad_metrics_are_refused_with_key_and_epoch(
    book: Book, metrics: dict[str, Any], epoch: Any, match: str
) -> None:
    with start(book) as run, pytest.raises(InvalidInput, match=match):
        run.log(metrics, epoch=epoch)


def test_nan_is_stored_and_flagged_and_last_value_wins(book: Book) -> None:
    with start(book) as run:
        run.log({MAP: 0.3}, epoch=0)
        run.log({MAP: math.nan}, epoch=1)
        run.log({MAP: 0.1}, epoch=2)
        run.log({MAP: 0.5}, epoch=2)  # same epoch again: the last value is kept
    rec = book.run("v1_base")
    s = book.store.get_summaries([rec.id])[rec.id][MAP]
    assert (s.count, s.nan_count, s.best, s.final) == (3, 1, 0.5, 0.5)
    hist = book.store.get_history([rec.id], MAP)[rec.id]
    assert math.isnan(hist[1][1]) and hist[2] == (2, 0.5)


def test_numpy_like_scalars_are_accepted(book: Book) -> None:
    class Scalar:  # what numpy / torch 0-d values look like to us
        def __init__(self, v: float) -> None:
            self.v = v

        def item(self) -> float:
            return self.v

    with start(book) as run:
        run.log({MAP: Scalar(0.42)}, epoch=0)
    rec = book.run("v1_base")
    assert book.store.get_history([rec.id], MAP)[rec.id] == [(0, 0.42)]


def test_log_eval_validation_and_sealing(book: Book) -> None:
    with start(book) as run:
        with pytest.raises(InvalidInput, match="unknown split 'holdout'"):
            run.log_eval("holdout", {MAP: 0.5})
        with pytest.raises(InvalidInput, match="must be square"):
            run.log_eval("val", {MAP: 0.5}, confusion_matrix=[[1, 2], [3]])
        with pytest.raises(InvalidInput, match="per_class_ap\\[pallet\\]"):
            run.log_eval("val", {MAP: 0.5}, per_class_ap={"pallet": "n/a"})
        run.log_eval(
            "val",
            {MAP: 0.5},
            per_class_ap={"pallet": 0.4},
            latency_ms=4.1,
            device="orin",
            confusion_matrix=[[5, 1], [0, 4]],
            class_names=["pallet"],
        )
        run.log_eval("test", {MAP: 0.4321})
    rec = book.run("v1_base")
    val, test = book.store.list_evaluations([rec.id])
    assert val.metrics == {MAP: 0.5} and val.latency_ms == 4.1
    assert test.sealed and test.metrics == {}


def test_notes_and_artifacts(book: Book, tmp_path: Path) -> None:
    weights = tmp_path / "best.pt"
    weights.write_bytes(b"\x00weights" * 1000)
    with start(book) as run:
        run.log_artifact(weights)
        run.log_artifact(weights, name="copy.pt")  # stored once
        run.note(hypothesis="h", change="c")
        run.note(result="r", next="n")
    rec = book.run("v1_base")
    arts = book.store.list_artifacts(rec.id)
    assert [a.name for a in arts] == ["best.pt", "copy.pt"] and arts[0].digest == arts[1].digest
    assert book.blobs is not None
    assert book.blobs.get_bytes(arts[0].digest) == weights.read_bytes()
    blob_files = [p for p in book.blobs.root.rglob("*") if p.is_file()]
    assert len(blob_files) == 1
    note = book.store.get_notes([rec.id])[rec.id]
    assert (note.hypothesis, note.change, note.result, note.next) == ("h", "c", "r", "n")
    with start(book, "v2_x") as other, pytest.raises(InvalidInput, match="no such file"):
        other.log_artifact(tmp_path / "missing.pt")


def test_names_follow_the_rule(book: Book) -> None:
    for bad in ("run_5", "final", "final_actually_final", "train3", "exp12"):
        with pytest.raises(InvalidInput, match="does not follow the naming rule"):
            start(book, bad)
    with pytest.raises(InvalidInput, match="'v3_what_changed'"):
        start(book, "train3")
    with start(book, "v2b_lr0_0.0005"):
        pass
    with pytest.raises(Conflict, match="resume=True"):
        start(book, "v2b_lr0_0.0005")


def test_a_run_must_name_a_dataset_or_say_unpinned(book: Book) -> None:
    with pytest.raises(InvalidInput, match="allow_unpinned=True"):
        book.start("pallets", "v1_base")
    with start(book) as run:
        pass
    rec = book.run(run.name)
    assert rec.pinned is False and rec.dataset is None


def test_parent_lineage(book: Book) -> None:
    with start(book, "v1_base"):
        pass
    with start(book, "v2_imgsz_1024", parent="v1_base") as run:
        pass
    assert book.run(run.name).parent_id == book.run("v1_base").id


def test_resume_continues_without_duplicates(book: Book) -> None:
    run = start(book, flush_interval=60)
    for e in range(3):
        run.log({MAP: 0.1 * e}, epoch=e)
    run.flush()
    # the process "crashed" here: no finish
    again = start(book, resume=True)
    assert again.id == run.id and again.last_epoch == 2
    for e in range(2, 5):  # the trainer re-runs epoch 2 from its checkpoint
        again.log({MAP: 0.1 * e + 0.01}, epoch=e)
    again.finish()
    run._finished = True  # the first handle died with its process,
    run._stop.set()  # and its writer thread with it (else it beats into later tests' books)
    run._wake.set()
    rec = book.run("v1_base")
    hist = book.store.get_history([rec.id], MAP)[rec.id]
    assert [e for e, _ in hist] == [0, 1, 2, 3, 4]
    assert hist[2][1] == pytest.approx(0.21) and rec.status == "finished"


def test_environment_is_captured_with_git(sqlite_book: Book, tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "train.py").write_text("print('hi')\n")
    subprocess.run(["git", "-C", str(tmp_path), "add", "train.py"], check=True)
    subprocess.run(
        ["git", "-C", str(tmp_path), "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "x"],
        check=True,
    )
    (tmp_path / "train.py").write_text("print('changed')\n")
    with start(sqlite_book) as run:
        pass
    env = sqlite_book.run(run.name).env
    assert env["python"] == ".".join(map(str, sys.version_info[:3]))
    assert len(env["git"]["commit"]) == 40 and env["git"]["dirty"] is True
    assert "trialbook" in env["packages"]


def test_heartbeat_and_crashed_status(book: Book) -> None:
    run = start(book)
    run.flush()
    rec = book.run("v1_base")
    assert effective_status(rec, time.time()) == "running"
    assert rec.heartbeat_at is not None
    assert effective_status(rec, rec.heartbeat_at + 61) == "crashed"
    run.finish()
    assert effective_status(book.run("v1_base"), time.time() + 1000) == "finished"


def test_log_does_not_block_on_the_database(book: Book) -> None:
    """log() only queues: it returns while another writer holds the database."""
    run = start(book, flush_interval=0.05)
    assert isinstance(book.store, SqlStore)  # the write lock is the SQL stores'
    with book.store.db.write():  # hold the write lock as a slow writer would
        t0 = time.perf_counter()
        for e in range(200):
            run.log({MAP: 0.1, "train/box_loss": 1.0}, epoch=e)
        elapsed = time.perf_counter() - t0
        time.sleep(0.2)  # the writer thread waits for the lock meanwhile
    assert elapsed < 0.5
    run.finish()
    assert book.store.get_summaries([run.id])[run.id][MAP].count == 200


def test_locate_walks_up_and_explains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRIALBOOK_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BookNotFound, match="trialbook init"):
        tb.locate()
    tb.init(tmp_path)
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert tb.locate() == str(tmp_path / ".trialbook")
    with tb.start("pallets", "v1_base", allow_unpinned=True) as run:
        run.log({MAP: 0.5}, epoch=0)
    assert Book.open().run("v1_base").status == "finished"
    monkeypatch.setenv("TRIALBOOK_URI", str(tmp_path / "elsewhere"))
    assert tb.locate() == str(tmp_path / "elsewhere")
