"""Nothing lost silently: a point the store refuses never holds up the others, and the
run says how many of its points are not in the book; points that could not be written
at the end wait in the spool and are written the next time the book is opened, or by
``trialbook sync``, with no duplicates."""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import trialbook as tb
from trialbook import spool
from trialbook.api import Book
from trialbook.cli.main import cli
from trialbook.store import Store, open_book

MAP = "metrics/mAP50-95(B)"
BAD = "custom/refused"


class PickyStore:
    """A store (the ``Store`` protocol, by delegation to a real one) that refuses every
    batch holding the key ``BAD``, or, while ``down``, cannot be reached at all."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.down = False

    def log_batch(
        self, run_id: str, points: Any, *, heartbeat_at: float | None = None, ending: Any = None
    ) -> None:
        if self.down:
            raise ConnectionError("the database server went away")
        if isinstance(points, Mapping) and BAD in points:
            raise tb.InvalidInput(f"this store refuses {BAD}")
        self.inner.log_batch(run_id, points, heartbeat_at=heartbeat_at, ending=ending)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def spool_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "spool"
    monkeypatch.setenv("TRIALBOOK_SPOOL", str(folder))
    yield folder


@pytest.fixture
def picky(tmp_path: Path, spool_dir: Path) -> Iterator[tuple[Book, PickyStore]]:
    uri = str(tmp_path / ".trialbook")
    opened = open_book(uri, create=True)
    store = PickyStore(opened.store)
    book = Book(store)
    yield book, store
    book.close()


def _json(uri: str, *args: str) -> Any:
    result = CliRunner().invoke(cli, [*args, "--uri", uri, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_a_refused_point_is_set_aside_and_the_rest_is_written(picky: tuple[Book, PickyStore]) -> None:
    book, _ = picky
    run = book.start("pallets", "v1_picky", allow_unpinned=True, flush_interval=60)
    for epoch in range(10):
        values = {MAP: epoch / 10, **({BAD: 1.0} if epoch == 5 else {})}
        run.log(values, epoch=epoch)
    with pytest.warns(tb.TrackingWarning, match="refused 2 points of run 'v1_picky'"):
        run.finish()
    history = book.store.get_history([run.id], MAP)[run.id]
    assert [e for e, _ in history] == [0, 1, 2, 3, 4, 6, 7, 8, 9]  # only epoch 5 was set aside
    record = book.run("v1_picky")
    assert record.status == "finished" and record.unwritten == 2
    kept = spool.path_of(run.id, rejected=True).read_text().splitlines()
    assert len(kept) == 1 and json.loads(kept[0])["reason"] == f"this store refuses {BAD}"
    uri = str(Path(book.uri))
    assert _json(uri, "show", "v1_picky")["unwritten"] == 2
    assert _json(uri, "runs")["runs"][0]["unwritten"] == 2
    text = CliRunner().invoke(cli, ["show", "v1_picky", "--uri", uri]).output
    assert "2 points of this run are not in the book" in text


def test_points_spooled_at_the_end_are_written_on_the_next_open(
    picky: tuple[Book, PickyStore], spool_dir: Path
) -> None:
    book, store = picky
    run = book.start("pallets", "v1_offline", allow_unpinned=True, flush_interval=60)
    for epoch in range(20):
        run.log({MAP: epoch / 20, "train/box_loss": 2 - epoch / 20}, epoch=epoch)
    store.down = True
    with pytest.warns(tb.TrackingWarning, match="40 points were saved to"):
        run.finish()
    assert book.store.get_history([run.id], MAP)[run.id] == []
    assert book.run("v1_offline").unwritten == 40
    copy = spool_dir / "copy.jsonl.bak"
    shutil.copy(spool.path_of(run.id), copy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reopened = Book.open(book.uri)  # the real store: the spool is written into it
    assert [e for e, _ in reopened.store.get_history([run.id], MAP)[run.id]] == list(range(20))
    assert reopened.run("v1_offline").unwritten == 0
    assert spool.spooled_runs() == []
    # the same points again (a replay interrupted after writing): no duplicates
    shutil.copy(copy, spool.path_of(run.id))
    done = _json(book.uri, "sync")
    assert (done["runs"], done["points"]) == (1, 40)
    assert len(reopened.store.get_history([run.id], MAP)[run.id]) == 20
    summary = reopened.store.get_summaries([run.id], [MAP])[run.id][MAP]
    assert (summary.count, summary.final_epoch) == (20, 19)
    assert _json(book.uri, "sync")["points"] == 0
    reopened.close()


def test_a_book_leaves_other_books_spooled_points_alone(tmp_path: Path, spool_dir: Path) -> None:
    spool.append("0" * 32, [(1, {MAP: 0.5})])  # a run of some other book
    with Book.open(str(tmp_path / ".trialbook"), create=True) as book:
        assert book.replay_spool().runs == 0
    assert spool.spooled_runs() == ["0" * 32]


def _points(items: Sequence[tuple[int, dict[str, float]]]) -> int:
    return sum(len(v) for _, v in items)


def test_a_torn_last_line_is_left_out(tmp_path: Path, spool_dir: Path) -> None:
    run_id = "f" * 32
    assert _points([(1, {MAP: 0.5})]) == spool.append(run_id, [(1, {MAP: 0.5})])
    with open(spool.path_of(run_id), "a") as f:
        f.write('{"run_id": "' + run_id + '", "epoch": 2, "metr')  # a crash mid-write
    with spool.taken(run_id) as items:
        assert items == [(1, {MAP: 0.5})]
    assert spool.spooled_runs() == []
