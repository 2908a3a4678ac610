"""The outbox of remote books: every write of a run goes to a local SQLite file first and
is uploaded in the background; a store that is away stalls nothing and loses nothing.

The "server" is a real SQLite book behind ``FlakyStore``, a thin wrapper that says it is
remote and, while ``down`` is set, raises ``StorageError`` as a server that cannot be
reached does (with ``lose_replies`` it does the write first: the answer is what is lost)."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from blake3 import blake3

from trialbook.api import Book, TrackingWarning
from trialbook.errors import StorageError
from trialbook.outbox import Outbox, UploadWarning
from trialbook.store.base import Store

MAP = "metrics/mAP50-95(B)"
KEYS = [MAP, "train/box_loss", "lr/pg0"]


class FlakyStore:
    """A real store that says it is remote; ``down`` makes every call fail, and
    ``lose_replies`` makes every write succeed and then fail (the reply lost)."""

    remote = True

    def __init__(self, real: Store) -> None:
        self.real = real
        self.uri = real.uri
        self.down = False
        self.lose_replies = False
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.real, name)
        if not callable(target) or name in ("close", "transaction"):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.down:
                raise StorageError(f"{self.uri}: connection refused")
            result = target(*args, **kwargs)
            if self.lose_replies and not name.startswith(("get_", "list_")):
                raise StorageError(f"{self.uri}: the reply was lost")
            return result

        return call


@pytest.fixture
def outbox_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cache" / "outbox.db"
    monkeypatch.setenv("TRIALBOOK_OUTBOX", str(path))
    monkeypatch.delenv("TRIALBOOK_OFFLINE", raising=False)
    return path


@pytest.fixture
def server(tmp_path: Path, outbox_path: Path) -> Iterator[tuple[Book, FlakyStore]]:
    """(the remote-looking book, its flaky store); the real book is ``store.real``."""
    real = Book.open(str(tmp_path / "server"), create=True)
    flaky = FlakyStore(real.store)
    book = Book(cast(Store, flaky), real.blobs)
    yield book, flaky
    book.close()


def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def log_epochs(run: Any, epochs: range) -> None:
    for epoch in epochs:
        run.log({k: epoch / 1000 + i for i, k in enumerate(KEYS)}, epoch=epoch)


def check_points(real: Store, run_id: str, epochs: int) -> None:
    history = real.get_all_history(run_id)
    assert sorted(history) == sorted(KEYS)
    for i, k in enumerate(KEYS):
        assert history[k] == [(e, e / 1000 + i) for e in range(epochs)]  # each once, none lost


def test_a_remote_run_goes_through_the_outbox(server: tuple[Book, FlakyStore], tmp_path: Path) -> None:
    book, flaky = server
    assert book.outbox is not None and not book.offline
    weights = tmp_path / "best.pt"
    weights.write_bytes(b"w" * 100)
    with book.start("pallets", "v1_remote", allow_unpinned=True, flush_interval=0.05) as run:
        log_epochs(run, range(30))
        run.log({MAP: math.nan}, epoch=30)
        run.log_eval("val", {MAP: 0.5}, per_class_ap={"pallet": 0.5})
        run.note(hypothesis="h", result="r")
        run.log_artifact(weights)
    real = flaky.real
    stored = real.get_run_by_id(run.id)
    assert (stored.name, stored.status) == ("v1_remote", "finished")
    assert len(real.get_all_history(run.id)[MAP]) == 31
    assert math.isnan(real.get_all_history(run.id)[MAP][-1][1])
    assert [e.metrics[MAP] for e in real.list_evaluations([run.id])] == [0.5]
    assert [n.version for n in real.note_history(run.id)] == [1]
    assert [a.name for a in real.list_artifacts(run.id)] == ["best.pt"]
    assert book.outbox.pending(book.uri) == 0


def test_uploads_retry_while_the_store_is_down_and_recover(server: tuple[Book, FlakyStore]) -> None:
    book, flaky = server
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        flaky.down = True
        run = book.start("pallets", "v1_outage", allow_unpinned=True, flush_interval=0.05)
        log_epochs(run, range(0, 100))
        run.log_eval("val", {MAP: 0.4})
        run.note(hypothesis="outage")
        time.sleep(1.0)  # several failed rounds
        assert book.outbox is not None and book.outbox.pending(book.uri) > 0
        log_epochs(run, range(100, 200))
        flaky.down = False
        run.finish()
    messages = [str(w.message) for w in caught if issubclass(w.category, UploadWarning)]
    assert sum("are failing" in m for m in messages) == 1
    assert sum("work again" in m for m in messages) == 1
    assert any("cannot be reached" in str(w.message) for w in caught if w.category is TrackingWarning)
    real = flaky.real
    check_points(real, run.id, 200)
    assert real.get_run_by_id(run.id).status == "finished"
    assert len(real.list_evaluations([run.id])) == 1
    assert len(real.note_history(run.id)) == 1


def test_lost_replies_are_resent_and_nothing_is_doubled(
    server: tuple[Book, FlakyStore], tmp_path: Path
) -> None:
    book, flaky = server
    flaky.lose_replies = True  # every write is stored, and its answer lost: all are sent again
    run = book.start("pallets", "v1_lossy", allow_unpinned=True, flush_interval=0.05)
    log_epochs(run, range(50))
    run.log_eval("val", {MAP: 0.4})
    run.note(hypothesis="once")
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"x")
    run.log_artifact(weights)
    time.sleep(1.2)
    flaky.lose_replies = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run.finish()
    real = flaky.real
    check_points(real, run.id, 50)
    assert len(real.list_runs("pallets")) == 1
    assert len(real.list_evaluations([run.id])) == 1
    assert len(real.list_artifacts(run.id)) == 1
    assert len(real.note_history(run.id)) == 1
    assert book.outbox is not None and book.outbox.pending(book.uri) == 0


def test_offline_logs_to_the_outbox_only_and_the_next_book_uploads(
    server: tuple[Book, FlakyStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, flaky = server
    monkeypatch.setenv("TRIALBOOK_OFFLINE", "1")
    offline = Book(cast(Store, flaky))
    assert offline.offline
    calls = flaky.calls
    with pytest.warns(TrackingWarning, match="cannot be checked"):
        run = offline.start("pallets", "v1_offline", dataset="pallets:v3", flush_interval=0.05)
    log_epochs(run, range(40))
    run.finish()
    assert flaky.calls == calls  # no call to the store at all
    with pytest.raises(Exception, match="already has a run named"):
        offline.start("pallets", "v1_offline", allow_unpinned=True)
    with pytest.raises(Exception, match=r"naming|name"):
        offline.start("pallets", "run_5", allow_unpinned=True)
    offline.close()
    assert flaky.real.list_projects() == []
    monkeypatch.delenv("TRIALBOOK_OFFLINE")
    online = Book(cast(Store, flaky))  # what is left is uploaded in the background
    wait_for(lambda: bool(online.outbox and online.outbox.pending(online.uri) == 0))
    stored = flaky.real.get_run_by_id(run.id)
    assert (stored.status, stored.dataset, stored.pinned) == ("finished", "pallets:v3", False)
    check_points(flaky.real, run.id, 40)
    online.close()


def test_a_refused_run_is_kept_with_its_points_and_reported(server: tuple[Book, FlakyStore]) -> None:
    book, flaky = server
    taken = Book(flaky.real)
    taken.start("pallets", "v1_taken", allow_unpinned=True).finish()  # made on the server meanwhile
    offline = Book(cast(Store, flaky), offline=True)
    run = offline.start("pallets", "v1_taken", allow_unpinned=True, flush_interval=0.05)
    log_epochs(run, range(10))
    run.finish()
    outbox = Outbox()
    done = outbox.upload_round(flaky.real, book.uri)
    assert done.sent == 0
    assert [(r.kind, r.run_id) for r in done.refused] == [("run", run.id)]
    assert "already has a run named" in done.refused[0].reason
    assert outbox.pending(book.uri) == 31  # 30 points and the ending wait behind it, kept
    calls = flaky.calls
    again = outbox.upload_round(cast(Store, flaky), book.uri)  # refused: never retried on its own
    assert again.sent == 0 and again.refused == [] and flaky.calls == calls
    assert [r.run_id for r in outbox.refused(book.uri)] == [run.id]
    outbox.close()


def test_a_run_started_offline_is_checked_against_the_servers_naming_rule(
    server: tuple[Book, FlakyStore],
) -> None:
    """Offline, only the default rule could be checked; the upload checks the project's."""
    book, flaky = server
    flaky.real.ensure_project("strict")
    flaky.real.update_protocol("strict", {"naming_pattern": r"^v\d+_[a-z]+$"}, reason="team rule", who="t")
    offline = Book(cast(Store, flaky), offline=True)
    bad = offline.start("strict", "v1_fine_by_default", allow_unpinned=True, flush_interval=0.05)
    log_epochs(bad, range(5))
    bad.finish()
    good = offline.start("strict", "v1_ok", allow_unpinned=True, flush_interval=0.05)
    log_epochs(good, range(5))
    good.finish()
    outbox = Outbox()
    done = outbox.upload_round(flaky.real, book.uri)
    assert [(r.kind, r.run_id) for r in done.refused] == [("run", bad.id)]
    assert "naming rule" in done.refused[0].reason and r"^v\\d+_[a-z]+$" in done.refused[0].reason
    assert [r.name for r in flaky.real.list_runs("strict")] == ["v1_ok"]
    check_points(flaky.real, good.id, 5)
    assert outbox.pending(book.uri) == 16  # the refused run's 15 points and its ending, kept
    outbox.close()
    offline.close()


def test_log_never_waits_for_a_store_that_is_down(server: tuple[Book, FlakyStore]) -> None:
    book, flaky = server
    flaky.down = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = book.start("pallets", "v1_fast", allow_unpinned=True, flush_interval=0.05)
        times = []
        for epoch in range(2000):
            t = time.perf_counter()
            run.log({k: 1.0 for k in KEYS}, epoch=epoch)
            times.append(time.perf_counter() - t)
        times.sort()
        assert times[len(times) // 2] < 200e-6 and times[int(len(times) * 0.99)] < 5e-3
        t = time.perf_counter()
        run.finish()
        assert time.perf_counter() - t < 5  # a short grace, then the rest stays in the outbox
    assert book.outbox is not None and book.outbox.pending(book.uri) == 2000 * 3 + 2


SCRIPT = """
import sys, time
from trialbook.api import Book
from trialbook.errors import StorageError

class Down:
    remote = True
    def __init__(self, real):
        self.real, self.uri = real, real.uri
    def __getattr__(self, name):
        def fail(*a, **k):
            raise StorageError("connection refused")
        return fail if callable(getattr(self.real, name)) else getattr(self.real, name)

real = Book.open(sys.argv[1])
book = Book(Down(real.store))
run = book.start("pallets", "v1_killed", allow_unpinned=True)
print(run.id, flush=True)
epoch = 0
while True:
    run.log({"metrics/mAP50-95(B)": epoch / 1000, "train/box_loss": 1.0}, epoch=epoch)
    print(epoch, time.time(), flush=True)
    epoch += 1
    time.sleep(0.002)
"""


def test_the_outbox_survives_sigkill(tmp_path: Path, outbox_path: Path) -> None:
    book_dir = tmp_path / "server"
    real = Book.open(str(book_dir), create=True)
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(SCRIPT))
    proc = subprocess.Popen(
        [sys.executable, "-W", "ignore", str(script), str(book_dir)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    logged: list[tuple[int, float]] = []
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        epoch, at = proc.stdout.readline().split()
        logged.append((int(epoch), float(at)))
    os.kill(proc.pid, signal.SIGKILL)
    killed_at = time.time()
    proc.wait(timeout=10)
    must = [e for e, at in logged if at < killed_at - 1.0]
    assert len(must) > 100
    outbox = Outbox(outbox_path)
    while outbox.upload_round(real.store, real.uri).sent:
        pass
    history = real.store.get_all_history(run_id)
    stored = {e for e, _ in history[MAP]}
    assert set(must) <= stored
    assert len(history[MAP]) == len(stored)  # each once
    assert real.store.get_run_by_id(run_id).name == "v1_killed"
    outbox.close()
    real.close()


# --------------------------------------------------------------------------- artifacts
class FlakyBlobs:
    """The server's real blob store behind a switch: ``down`` fails every call as an
    unreachable server does."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.down = False

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.real, name)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                raise StorageError("the artifact store cannot be reached")
            return target(*args, **kwargs)

        return call


def test_an_artifact_logged_offline_is_kept_and_uploaded_with_its_bytes(
    server: tuple[Book, FlakyStore], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_book, flaky = server
    blobs = FlakyBlobs(real_book.blobs)
    weights = tmp_path / "best.pt"
    weights.write_bytes(os.urandom(300_000))
    monkeypatch.setenv("TRIALBOOK_OFFLINE", "1")
    offline = Book(cast(Store, flaky), blobs)
    blobs.down = True  # offline: the artifact store is never asked
    run = offline.start("pallets", "v1_offline_weights", allow_unpinned=True)
    run.log_artifact(weights, name="best.pt")
    run.finish()
    offline.close()
    assert offline.outbox is not None
    kept = list(offline.outbox.path.with_name(offline.outbox.path.name + ".blobs").iterdir())
    assert [k.read_bytes() for k in kept] == [weights.read_bytes()]
    weights.write_bytes(b"changed after logging")  # the kept copy is what is uploaded
    monkeypatch.delenv("TRIALBOOK_OFFLINE")
    blobs.down = False
    online = Book(cast(Store, flaky), blobs, upload_leftovers=False)
    sent = online.upload_outbox()
    assert (sent.left, sent.refused) == (0, [])
    [artifact] = flaky.real.list_artifacts(run.id)
    assert artifact.digest == kept[0].name and artifact.size == 300_000
    assert real_book.blobs is not None
    assert blake3(real_book.blobs.get_bytes(artifact.digest)).hexdigest() == artifact.digest
    assert not kept[0].exists()  # uploaded: the local copy is gone
    online.close()


def test_an_evaluation_file_and_its_blobs_go_up_before_its_reference(
    server: tuple[Book, FlakyStore], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_book, flaky = server
    thumbs = [tmp_path / f"t{i}.jpg" for i in range(3)]
    for i, t in enumerate(thumbs):
        t.write_bytes(os.urandom(2000 + i))
    preds = tmp_path / "predictions.json.gz"
    preds.write_bytes(os.urandom(5000))
    monkeypatch.setenv("TRIALBOOK_OFFLINE", "1")
    offline = Book(cast(Store, flaky), FlakyBlobs(real_book.blobs))
    run = offline.start("pallets", "v1_offline_preds", allow_unpinned=True)
    val = run.log_eval("val", {MAP: 0.5})
    test = run.log_eval("test", {MAP: 0.4})
    shown = run.log_artifact(preds, evaluation=val, blobs=thumbs)
    sealed = run.log_artifact(thumbs[0], "BoxPR_curve.png", evaluation=test.id)
    assert (shown.evaluation_id, sealed.evaluation_id) == (val.id, test.id)
    run.finish()
    offline.close()
    monkeypatch.delenv("TRIALBOOK_OFFLINE")
    online = Book(cast(Store, flaky), FlakyBlobs(real_book.blobs), upload_leftovers=False)
    sent = online.upload_outbox()
    assert (sent.left, sent.refused) == (0, [])
    assert flaky.real.list_artifacts(run.id) == [shown]  # the test file is sealed with its evaluation
    assert flaky.real.list_artifacts(run.id, reveal=True) == [shown, sealed]
    assert real_book.blobs is not None
    for t in [*thumbs, preds]:
        assert real_book.blobs.get_bytes(blake3(t.read_bytes()).hexdigest()) == t.read_bytes()
    assert online.outbox is not None
    kept = online.outbox.path.with_name(online.outbox.path.name + ".blobs")
    assert [k.name for k in kept.iterdir()] == []  # every kept copy is gone once uploaded
    online.close()


def test_an_artifact_store_that_is_down_neither_fails_nor_stalls_log_artifact(
    server: tuple[Book, FlakyStore], tmp_path: Path
) -> None:
    real_book, flaky = server
    blobs = FlakyBlobs(real_book.blobs)
    book = Book(cast(Store, flaky), blobs, upload_leftovers=False)
    weights = tmp_path / "last.pt"
    weights.write_bytes(b"weights" * 1000)
    run = book.start("pallets", "v1_blobs_down", allow_unpinned=True)
    blobs.down = True
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrackingWarning)  # nothing to say: it is kept and sent later
        run.log_artifact(weights)
    assert book.outbox is not None and book.outbox.pending(book.uri) > 0
    weights.write_bytes(b"rewritten by the next epoch")  # the kept copy is what is uploaded
    time.sleep(0.5)  # rounds fail on the bytes while the store is down; the reference waits
    assert flaky.real.list_artifacts(run.id) == []
    blobs.down = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UploadWarning)
        run.finish()
    [artifact] = flaky.real.list_artifacts(run.id)
    assert real_book.blobs is not None and real_book.blobs.get_bytes(artifact.digest) == b"weights" * 1000
    assert book.outbox.pending(book.uri) == 0
    book.close()


def test_a_run_ending_while_the_server_is_away_does_not_wait_out_the_grace(
    server: tuple[Book, FlakyStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    book, flaky = server
    monkeypatch.setenv("TRIALBOOK_UPLOAD_GRACE", "60")
    run = book.start("pallets", "v1_server_away", allow_unpinned=True, flush_interval=0.05)
    flaky.down = True
    log_epochs(run, range(20))
    started = time.monotonic()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run.finish()
    assert time.monotonic() - started < 30  # one more try, not the 60 s grace
    assert any("not uploaded yet" in str(w.message) for w in caught)
    assert book.outbox is not None and book.outbox.pending(book.uri, run.id) > 0
    flaky.down = False
    assert book.upload_outbox().left == 0
    check_points(flaky.real, run.id, 20)
    assert flaky.real.get_run_by_id(run.id).status == "finished"


@pytest.mark.parametrize("value", ["soon", "-1", "inf", "nan"])
def test_a_bad_upload_grace_is_refused_naming_the_variable(
    value: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from trialbook import settings
    from trialbook.errors import InvalidInput

    monkeypatch.setenv("TRIALBOOK_UPLOAD_GRACE", value)
    with pytest.raises(InvalidInput, match=r"\$TRIALBOOK_UPLOAD_GRACE="):
        settings.upload_grace_s()
    real = Book.open(str(tmp_path / "b"), create=True)
    with pytest.raises(InvalidInput, match=r"\$TRIALBOOK_UPLOAD_GRACE="):  # at open, not at a run's end
        Book(cast(Store, FlakyStore(real.store)))
    real.close()


def test_a_missing_artifact_file_is_refused_naming_it(
    server: tuple[Book, FlakyStore], tmp_path: Path
) -> None:
    from trialbook.errors import TrialbookError

    book, _ = server
    with book.start("pallets", "v1_no_weights", allow_unpinned=True) as run:
        with pytest.raises(TrialbookError, match=r"nothing\.pt"):
            run.log_artifact(tmp_path / "nothing.pt")
        with pytest.raises(TrialbookError, match=r"folder|directory"):
            run.log_artifact(tmp_path)
    assert book.outbox is not None and book.outbox.pending(book.uri) == 0


def test_a_round_that_finds_another_uploader_busy_is_no_recovery(server: tuple[Book, FlakyStore]) -> None:
    """A `trialbook sync` holding the book's upload lock while the server is down: the
    background uploader's skipped rounds neither say "work again" nor reset the backoff."""
    book, flaky = server
    run = book.start("pallets", "v1_busy_lock", allow_unpinned=True, flush_interval=0.05)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        flaky.down = True
        log_epochs(run, range(10))
        uploader = book.uploader()
        assert uploader is not None and book.outbox is not None
        wait_for(lambda: uploader.failing is not None)
        with book.outbox.claimed(book.uri) as mine:  # what a sync holds during its rounds
            assert mine
            time.sleep(2.0)
            assert uploader.failing is not None
        flaky.down = False
        run.finish()
    said = [str(w.message) for w in caught if issubclass(w.category, UploadWarning)]
    assert sum("work again" in m for m in said) == 1 and said.index(
        next(m for m in said if "work again" in m)
    ) > said.index(next(m for m in said if "are failing" in m))
    check_points(flaky.real, run.id, 10)
