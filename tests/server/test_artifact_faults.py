"""The object store down during ``log_artifact`` (the team-server issue): the upload is
retried in the background, the artifact ends up stored and recorded once, and no
half-written object is ever visible.

A real ``trialbook server`` (the CLI, in a subprocess, one worker; its admin and token
made first with ``trialbook admin``, ``support.accounts``) over an SQLite book,
with its artifacts in a real S3 store (SeaweedFS), reached through ``StoreLink``: the
tests' own TCP link between the server and the store, which can cut the connection in
the middle of an upload's body and then be down (every connection to the store reset at
once, as a load balancer with no store behind it). The client is a remote book
(``Book.open(url)``) in this process; nothing of trialbook is mocked.

Why a link and not ``Seaweed.pause()``: a frozen store accepts connections and never
answers, so the server's S3 client only waits out its read timeout (60 s) and sees no
failure to retry within a test's time; a connection that is cut, then reset, is one it
sees at once.

What a remote book does (``RunHandle.log_artifact``, ``outbox``): ``log_artifact`` never
touches the network. It copies the file beside the outbox (``<outbox>.blobs/<digest>``)
and records the reference there, and returns at once, warning nothing. The uploader
thread (``trialbook-upload``) uploads the kept bytes through the server, then sends the
reference, then deletes the copy. The retries are three layers': botocore's in the server
(``s3.MAX_ATTEMPTS`` attempts a request, each a new connection, which the link counts as
``refused`` while it is down), ``RemoteBlobs``' in the client (``remote.ATTEMPTS``
requests, after a 5xx from the server), and the uploader's rounds (backoff from 0.5 s; an
``UploadWarning`` "are failing" once, and "work again" once it recovers).

* A short outage (``outage``): the upload is cut after 1 MiB, and the store stays down
  until the uploader's first round has failed (every attempt of both inner layers), then
  comes back; ``run.finish()`` gets the artifact stored, whole and once, and recorded
  once, and the kept copy is gone. A watcher reading the bucket directly all along never
  sees a partial object.
* The store down past every retry, from before ``log_artifact`` or from the middle of its
  upload: nothing is in the store (not even an open multipart upload) or on the run, and
  the bytes and the reference stay in the outbox, through the uploader's failed rounds,
  ``run.finish()`` (which returns, telling what is left) and, with the store down from
  before, a ``book.upload_outbox()`` (``trialbook sync``: it raises ``StorageError``, and
  the uploader must not say uploads work again meanwhile); once the store is back,
  ``book.upload_outbox()`` stores the artifact whole and once, records it once and removes
  the kept copy.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import socket
import struct
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from blake3 import blake3

from support.accounts import admin_token, auth
from support.env import without_trialbook
from support.extras import venv_command
from support.seaweed import BUCKET, Seaweed, free_ports, seaweed, stop_process
from trialbook.api import Book, TrackingWarning
from trialbook.artifacts.remote import ATTEMPTS
from trialbook.artifacts.s3 import MAX_ATTEMPTS
from trialbook.core.entities import Artifact
from trialbook.errors import StorageError
from trialbook.outbox import Outbox, UploadWarning

MiB = 1 << 20
# Sent in one PutObject: the server's S3BlobStore uploads in parts only above
# s3.MULTIPART_SIZE (1 GiB), too big for a test.
ARTIFACT_SIZE = 6 * MiB
CUT_AFTER = 1 * MiB  # bytes towards the store after which the upload's connection is cut
START_TIMEOUT_S = 30.0
WAIT_S = 30.0  # the most a step waits for the link (or the uploader) to do what it expects
POLL_S = 0.05
# what the first failed upload round costs the store while it is down: every client
# request (ATTEMPTS) gets all the server's attempts (MAX_ATTEMPTS), less the one cut
# mid-upload. Only the first: botocore's retry quota (500, 14 a retry, refilled only by
# successes) is spent in the third round of a server's S3 client, which then tries once.
ROUND_REFUSED = ATTEMPTS * MAX_ATTEMPTS - 1
FINISH_BOUND_S = 60.0  # finish() with the store down returns, well within this
# the upload grace of a run's end with the store down past every retry: shorter than the
# default (10 s), which a test would only wait out
FINISH_GRACE_S = 2.0


# ------------------------------------------------------------------ the link to the store
def _reset(sock: socket.socket) -> None:
    """Close ``sock`` with a reset (SO_LINGER 0), as a network that drops it."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


def _abort(sock: socket.socket) -> None:
    """Make ``sock`` end in a reset and wake the pumps blocked on it (they close it)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _Pair:
    """One connection of the server and its connection to the store, pumped by two threads
    (blocking sockets, polled with ``select`` so that ``close`` is seen)."""

    def __init__(self, link: StoreLink, server: socket.socket, store: socket.socket) -> None:
        self.link, self.server, self.store = link, server, store
        self.sent = 0  # bytes forwarded towards the store
        self.cut = False  # this is the connection cut mid-upload
        self.closed = threading.Event()
        self._lock = threading.Lock()
        self._pumps = 2

    def start(self) -> None:
        for upward in (True, False):
            threading.Thread(target=self._pump, args=(upward,), daemon=True, name="store-link-pump").start()

    def _pump(self, upward: bool) -> None:
        src, dst = (self.server, self.store) if upward else (self.store, self.server)
        try:
            while not self.closed.is_set():
                if not select.select([src], [], [], POLL_S)[0]:
                    continue
                data = src.recv(65536)
                if not data:
                    break
                if upward:
                    data, self.cut = self.link._forward(self, data)
                dst.sendall(data)
                if self.cut:
                    # the store reads a body that ends early; the server's side is reset
                    self.store.shutdown(socket.SHUT_WR)
                    self.link.down()
                    self.link.cut.set()
                    break
        except OSError:
            pass
        finally:
            self.close()
            with self._lock:
                self._pumps -= 1
                last = self._pumps == 0
            if last:
                _reset(self.server)
                if self.cut:
                    with contextlib.suppress(OSError):
                        self.store.close()
                else:
                    _reset(self.store)

    def close(self) -> None:
        with self._lock:
            if self.closed.is_set():
                return
            self.closed.set()
        _abort(self.server)
        if not self.cut:
            _abort(self.store)
        self.link._forget(self)


class StoreLink:
    """``127.0.0.1:port`` forwarded to the S3 port of the store (``upstream``), in threads.

    ``down()``: the store is unreachable: the open connections are reset, and each new
    one is reset as soon as it is accepted (counted in ``refused``: botocore makes a new
    connection for each attempt). ``up()``: forwarded again. ``cut_after(n)``: the next
    connection to send more than ``n`` bytes towards the store (an upload: the requests
    without a body are far smaller) has only ``n`` of them forwarded, the store's side is
    then shut (it reads a body that ends early), the server's side is reset, the link goes
    down and ``cut`` is set."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.refused = 0
        self.cut = threading.Event()
        self._lock = threading.Lock()
        self._down = False
        self._cut_after: int | None = None
        self._pairs: set[_Pair] = set()
        self._closed = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True, name="store-link")
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def is_down(self) -> bool:
        with self._lock:
            return self._down

    def down(self) -> None:
        with self._lock:
            self._down = True
            pairs = list(self._pairs)
        for pair in pairs:
            pair.close()

    def up(self) -> None:
        with self._lock:
            self._down = False

    def cut_after(self, n: int) -> None:
        with self._lock:
            self._cut_after = n

    def wait_refused(self, count: int, timeout: float = WAIT_S) -> bool:
        """Whether ``refused`` reached ``count`` within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while self.refused < count:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self) -> None:
        self._closed.set()
        self.down()
        self._thread.join(5)
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            if not select.select([self._listener], [], [], POLL_S)[0]:
                continue
            try:
                server, _ = self._listener.accept()
            except OSError:
                continue
            server.setblocking(True)
            with self._lock:
                if self._down:
                    self.refused += 1
                    _reset(server)
                    continue
            try:
                store = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
            except OSError:
                _reset(server)
                continue
            store.setblocking(True)
            pair = _Pair(self, server, store)
            with self._lock:
                if self._down:
                    self.refused += 1
                    _reset(server)
                    _reset(store)
                    continue
                self._pairs.add(pair)
            pair.start()

    def _forward(self, pair: _Pair, data: bytes) -> tuple[bytes, bool]:
        """What of ``data`` goes on to the store, and whether the connection is cut after it."""
        with self._lock:
            limit = self._cut_after
            if limit is None or pair.sent + len(data) <= limit:
                pair.sent += len(data)
                return data, False
            self._cut_after = None
            return data[: limit - pair.sent], True

    def _forget(self, pair: _Pair) -> None:
        with self._lock:
            self._pairs.discard(pair)


# ------------------------------------------------------------------ the server and a client
@dataclass
class TeamServer:
    url: str
    artifacts: str  # s3://BUCKET/PREFIX
    link: StoreLink
    process: subprocess.Popen[bytes]
    log: Path
    token: str  # its admin's, which the clients send

    @property
    def prefix(self) -> str:
        return self.artifacts.removeprefix(f"s3://{BUCKET}/")

    def key_of(self, digest: str) -> str:
        return f"{self.prefix}/{digest[:2]}/{digest[2:]}"

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@contextlib.contextmanager
def team_server(weed: Seaweed, home: Path) -> Iterator[TeamServer]:
    """``trialbook server`` (one worker) over a new SQLite book with an admin and their
    token, its artifacts under a new prefix of the store, reached through a new
    ``StoreLink``."""
    home.mkdir(parents=True, exist_ok=True)
    Book.open(str(home / "book"), create=True).close()
    token = admin_token(str(home / "book"))
    link = StoreLink(int(weed.endpoint.rsplit(":", 1)[1]))
    env = without_trialbook(aws=True)
    env.update(weed.env())
    env.update(
        AWS_ENDPOINT_URL=link.endpoint,
        XDG_CACHE_HOME=str(home / "cache"),
        TRIALBOOK_SPOOL=str(home / "spool"),
    )
    artifacts = weed.new_prefix()
    (port,) = free_ports(1)
    args = [venv_command("trialbook"), "server", "--db", str(home / "book"), "--artifacts", artifacts]
    args += ["--port", str(port), "--workers", "1"]
    log = home / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    server = TeamServer(f"http://127.0.0.1:{port}", artifacts, link, process, log, token)
    try:
        _wait_answering(server)
        yield server
    finally:
        if process.poll() is not None:  # it died under the test: its last words, for the report
            print(f"\ntrialbook server exited {process.returncode} early:\n{server.log_tail()}")
        stop_process(process)
        link.close()


def _wait_answering(server: TeamServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"trialbook server exited {server.process.returncode}: {server.log_tail()}")
        try:
            got = httpx.get(server.url + "/api/v1/projects", headers=auth(server.token), timeout=2)
            if got.status_code < 500:  # any answer: a worker is up
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"trialbook server did not answer at {server.url} in {START_TIMEOUT_S:g} s")


@contextlib.contextmanager
def remote_book(url: str, home: Path, *, token: str, grace_s: float | None = None) -> Iterator[Book]:
    """The server's book as a client opens it, with ``token``, its outbox and cache in
    ``home``; a run's end waits ``grace_s`` for its uploads (``TRIALBOOK_UPLOAD_GRACE``;
    None: the default, 10 s)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRIALBOOK_OUTBOX", str(home / "outbox.db"))
        mp.setenv("XDG_CACHE_HOME", str(home / "cache"))
        mp.setenv("TRIALBOOK_USER", "tester")
        for name in ("TRIALBOOK_URI", "TRIALBOOK_OFFLINE", "TRIALBOOK_UPLOAD_GRACE"):
            mp.delenv(name, raising=False)
        mp.setenv("TRIALBOOK_TOKEN", token)
        if grace_s is not None:
            mp.setenv("TRIALBOOK_UPLOAD_GRACE", str(grace_s))
        book = Book.open(url)
        try:
            yield book
        finally:
            book.close()


def artifact_file(folder: Path) -> tuple[Path, bytes, str]:
    folder.mkdir(parents=True, exist_ok=True)
    data = os.urandom(ARTIFACT_SIZE)
    path = folder / "best.pt"
    path.write_bytes(data)
    return path, data, blake3(data).hexdigest()


def stored(client: Any, server: TeamServer) -> dict[str, bytes]:
    """Every object under the server's prefix, with its bytes."""
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=server.prefix + "/").get("Contents", [])
    return {o["Key"]: client.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listed}


def open_multipart_uploads(client: Any, server: TeamServer) -> list[Any]:
    got = client.list_multipart_uploads(Bucket=BUCKET, Prefix=server.prefix + "/")
    return list(got.get("Uploads", []))


# ------------------------------------------------------------------ watching the bucket
@dataclass
class Look:
    """One look at the bucket: the keys under the prefix, and the artifact's object."""

    during_outage: bool  # the link was down before and after the look
    keys: list[str]
    whole: bool | None  # None: the artifact's key is not there; else whether it is whole


class Watcher(threading.Thread):
    """Looks at the bucket directly (not through the link) again and again until ``stop``:
    lists the prefix and reads the artifact's key whole."""

    def __init__(self, weed: Seaweed, server: TeamServer, key: str, data: bytes) -> None:
        super().__init__(daemon=True, name="bucket-watcher")
        self.weed, self.server, self.key = weed, server, key
        self.digest, self.size = blake3(data).hexdigest(), len(data)
        self.looks: list[Look] = []
        self.errors: list[str] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        from botocore.exceptions import ClientError

        client = self.weed.client()
        while True:
            last = self._stop_event.is_set()  # the last look is after the upload
            try:
                self.looks.append(self.look(client))
            except ClientError as exc:
                self.errors.append(repr(exc))
            if last:
                return
            self._stop_event.wait(0.02)

    def look(self, client: Any) -> Look:
        from botocore.exceptions import ClientError

        down = self.server.link.is_down
        listed = client.list_objects_v2(Bucket=BUCKET, Prefix=self.server.prefix + "/")
        keys = sorted(o["Key"] for o in listed.get("Contents", []))
        whole: bool | None
        try:
            body = client.get_object(Bucket=BUCKET, Key=self.key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
                raise
            whole = None
        else:
            whole = len(body) == self.size and blake3(body).hexdigest() == self.digest
        return Look(down and self.server.link.is_down, keys, whole)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(WAIT_S)


# ------------------------------------------------------------------ what trialbook told
@dataclass(frozen=True)
class Told:
    """One warning, with the thread that emitted it."""

    thread: str
    category: type[Warning]
    message: str


class Warnings:
    """Every warning emitted in this process while ``recording`` (from any thread, each one
    shown: ``always``), with its thread; ``failing``/``recovered`` are set when the
    uploader says its uploads are failing / work again."""

    def __init__(self) -> None:
        self.told: list[Told] = []
        self.failing = threading.Event()
        self.recovered = threading.Event()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def recording(self) -> Iterator[Warnings]:
        with warnings.catch_warnings(), pytest.MonkeyPatch.context() as mp:
            warnings.simplefilter("always")
            mp.setattr(warnings, "showwarning", self._show)
            yield self

    def _show(self, message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        text = str(message)
        with self._lock:
            self.told.append(Told(threading.current_thread().name, category, text))
        if issubclass(category, UploadWarning):
            if "are failing" in text:
                self.failing.set()
            elif "work again" in text:
                self.recovered.set()

    def count(self) -> int:
        with self._lock:
            return len(self.told)

    def here(self, since: int = 0) -> list[str]:
        """What this (the test's) thread was told, from the ``since``-th warning on."""
        me = threading.current_thread().name
        with self._lock:
            return [t.message for t in self.told[since:] if t.thread == me]

    def of(self, category: type[Warning]) -> list[Told]:
        with self._lock:
            return [t for t in self.told if issubclass(t.category, category)]


# ------------------------------------------------------------------ what is where
def outbox_of(book: Book) -> Outbox:
    assert book.outbox is not None, f"{book.uri} is a remote book: it has an outbox"
    return book.outbox


def kept_copy(book: Book, digest: str) -> Path:
    """Where a remote book keeps an artifact's bytes until they are uploaded."""
    path = outbox_of(book).path
    return path.with_name(f"{path.name}.blobs") / digest


def kept_copies(book: Book) -> list[Path]:
    """Every file in the outbox's folder of artifact bytes (temporary ones included)."""
    return sorted(kept_copy(book, "x").parent.glob("*"))


@dataclass
class State:
    """Where an artifact stands: in the store (every object under the server's prefix, and
    the open multipart uploads), on the run, and in the outbox."""

    objects: dict[str, bytes]
    multipart: list[Any]
    artifacts: list[Artifact]
    kept: list[Path]
    pending: int

    @classmethod
    def of(cls, weed: Seaweed, server: TeamServer, book: Book, run_id: str) -> State:
        client = weed.client()
        return cls(
            stored(client, server),
            open_multipart_uploads(client, server),
            book.store.list_artifacts(run_id),
            kept_copies(book),
            outbox_of(book).pending(book.uri),
        )


def assert_only_kept(state: State, kept: Path) -> None:
    """Nothing in the store, not even a part of an object; nothing on the run; the bytes
    kept beside the outbox, and the artifact waiting there."""
    assert state.objects == {}
    assert state.multipart == []
    assert state.artifacts == []
    assert state.kept == [kept]
    assert state.pending > 0


def assert_stored_once(state: State, server: TeamServer, data: bytes, digest: str) -> None:
    """Exactly one object, at its content key, whole; recorded on the run once; served
    back by the server as it was; nothing left in the outbox."""
    key = server.key_of(digest)
    assert list(state.objects) == [key]
    assert blake3(state.objects[key]).hexdigest() == digest
    assert state.objects[key] == data
    assert state.multipart == []
    (artifact,) = state.artifacts
    assert (artifact.name, artifact.digest, artifact.size) == ("best.pt", digest, ARTIFACT_SIZE)
    got = httpx.get(f"{server.url}/api/v1/blobs/{digest}", headers=auth(server.token), timeout=60)
    assert got.status_code == 200 and got.content == data
    assert state.kept == []  # the kept copy is removed once the server has the bytes
    assert state.pending == 0


# ------------------------------------------------------------------ a short outage
@dataclass
class Outage:
    server: TeamServer
    data: bytes
    digest: str
    kept: Path
    took_s: float  # log_artifact
    told_by_log: list[str]  # the warnings log_artifact emitted
    at_return: State  # right after log_artifact returned
    failed_at_return: bool  # the uploader's first round had failed when log_artifact returned
    refused: int  # connections refused when the uploader said its uploads fail
    outage_s: float
    finish_s: float
    status: str  # the run's, on the server, after finish()
    uploads: list[Told]  # the UploadWarnings
    tracking: list[Told]  # the TrackingWarnings
    after: State  # after finish()
    watcher: Watcher


@pytest.fixture(scope="module")
def weed() -> Seaweed:
    return seaweed()


@pytest.fixture(scope="module")
def outage(weed: Seaweed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outage]:
    """``log_artifact`` of a 6 MiB file whose upload to the store is cut after 1 MiB; the
    store then stays down until the uploader's round has failed, then comes back, and the
    run finishes; the bucket is watched throughout."""
    home = tmp_path_factory.mktemp("outage")
    src, data, digest = artifact_file(home / "work")
    record = Warnings()
    with (
        team_server(weed, home / "server") as server,
        remote_book(server.url, home / "client", token=server.token) as book,
    ):
        link = server.link
        with record.recording():
            run = book.start("faults", "v1_artifact_fault", allow_unpinned=True)
            watcher = Watcher(weed, server, server.key_of(digest), data)
            watcher.start()
            try:
                link.cut_after(CUT_AFTER)
                before = record.count()
                started = time.monotonic()
                run.log_artifact(src)
                took = time.monotonic() - started
                told_by_log = record.here(before)
                failed_at_return = record.failing.is_set()
                at_return = State.of(weed, server, book, run.id)
                # the uploader's first round: cut, then every retry refused, then it says so
                assert link.cut.wait(WAIT_S), f"the upload was never cut\n{server.log_tail()}"
                down_at = time.monotonic()
                assert record.failing.wait(WAIT_S), f"no 'are failing' warning\n{server.log_tail()}"
                refused = link.refused
                link.up()
                outage_s = time.monotonic() - down_at
                started = time.monotonic()
                run.finish()
                finish_s = time.monotonic() - started
                # the round that worked says so once it is done, perhaps just after finish()
                record.recovered.wait(WAIT_S)
            finally:
                link.up()
                watcher.stop()
        after = State.of(weed, server, book, run.id)
        status = book.store.get_run_by_id(run.id).status
        print(
            f"\nlog_artifact {took:.3f} s; the store down {outage_s:.2f} s ({refused} connections "
            f"refused); finish() {finish_s:.2f} s"
        )
        yield Outage(
            server,
            data,
            digest,
            kept_copy(book, digest),
            took,
            told_by_log,
            at_return,
            failed_at_return,
            refused,
            outage_s,
            finish_s,
            status,
            record.of(UploadWarning),
            record.of(TrackingWarning),
            after,
            watcher,
        )


# ------------------------------------------------------------------ the tests
def test_log_artifact_returns_at_once_and_the_upload_is_retried_through_a_short_outage(
    outage: Outage,
) -> None:
    # log_artifact only kept the bytes and the reference: it warned of nothing, and
    # returned before the upload could have failed (its round takes seconds of retries)
    assert outage.told_by_log == []
    assert not outage.failed_at_return
    assert outage.at_return.kept == [outage.kept]
    assert outage.at_return.pending > 0
    assert outage.at_return.objects == {} and outage.at_return.artifacts == []
    # retried: by botocore in the server (MAX_ATTEMPTS connections a request, the cut one
    # first) and by RemoteBlobs in the client (ATTEMPTS requests), all refused; then by
    # the uploader's next round, once the store was back
    assert outage.refused >= ROUND_REFUSED, outage.server.log_tail()
    assert [(t.thread, t.message.split(" (")[0]) for t in outage.uploads] == [
        ("trialbook-upload", f"trialbook: uploads to {outage.server.url} are failing"),
        ("trialbook-upload", f"trialbook: uploads to {outage.server.url} work again"),
    ]
    # the server's reason is in the warning (the last request failed was a PUT: its body)
    assert outage.server.artifacts in outage.uploads[0].message
    # finish() got everything through, within its grace: nothing is left to tell of
    assert outage.tracking == []
    assert outage.status == "finished"
    assert_stored_once(outage.after, outage.server, outage.data, outage.digest)


def test_no_half_written_object_is_ever_visible(outage: Outage) -> None:
    watcher, key = outage.watcher, outage.server.key_of(outage.digest)
    assert watcher.errors == []
    during = [look for look in watcher.looks if look.during_outage]
    assert len(during) >= 3, f"only {len(during)} looks while the store was down"
    # a partial body reached the store before the cut: none of it ever shows
    assert all(look.whole is None for look in during)
    assert all(look.keys == [] for look in during)
    # whenever the key is there, it is whole; nothing else is ever under the prefix
    assert {look.whole for look in watcher.looks} <= {None, True}
    assert {k for look in watcher.looks for k in look.keys} <= {key}
    assert watcher.looks[-1].whole is True and watcher.looks[-1].keys == [key]


@pytest.mark.parametrize("when", ["before", "mid-upload"])
def test_store_down_past_all_retries_keeps_the_artifact_until_it_is_back(
    when: str, weed: Seaweed, tmp_path: Path
) -> None:
    src, data, digest = artifact_file(tmp_path / "work")
    record = Warnings()
    with (
        team_server(weed, tmp_path / "server") as server,
        remote_book(server.url, tmp_path / "client", token=server.token, grace_s=FINISH_GRACE_S) as book,
        record.recording(),
    ):
        link = server.link
        run = book.start("faults", "v1_store_down", allow_unpinned=True)
        kept = kept_copy(book, digest)
        if when == "before":
            link.down()
        else:
            link.cut_after(CUT_AFTER)

        before = record.count()
        started = time.monotonic()
        run.log_artifact(src)  # raises nothing, warns nothing
        took = time.monotonic() - started
        assert record.here(before) == []
        assert_only_kept(State.of(weed, server, book, run.id), kept)

        sync = ""
        if when == "before":  # once is enough: a failed round costs the test seconds
            # `trialbook sync` while the store is down and the uploader is trying (holding
            # the book's upload lock, which the sync waits for): its own round fails too; it
            # says so, and keeps it all
            assert link.wait_refused(1), "the uploader never tried the store"
            started = time.monotonic()
            with pytest.raises(StorageError, match=re.escape(server.url)):
                book.upload_outbox()
            sync = f", upload_outbox() failing {time.monotonic() - started:.2f} s"
            assert_only_kept(State.of(weed, server, book, run.id), kept)

        # finish() returns (here at the end of its grace), telling what is left, which
        # stays in the outbox
        before = record.count()
        started = time.monotonic()
        run.finish()
        finish_s = time.monotonic() - started
        assert finish_s < FINISH_BOUND_S
        left = [m for m in record.here(before) if "not uploaded yet" in m]
        assert len(left) == 1, record.here(before)
        assert f"run {run.name!r}" in left[0]

        # the uploader's round fails, after every retry of the two layers below it
        assert record.failing.wait(WAIT_S), f"no 'are failing' warning\n{server.log_tail()}"
        assert link.cut.is_set() == (when == "mid-upload")
        assert link.refused >= ROUND_REFUSED, server.log_tail()
        # the server's reason reaches the client: a PUT's in its body, a HEAD's (no body) in
        # the error header
        failing = next(t.message for t in record.of(UploadWarning) if "are failing" in t.message)
        assert server.artifacts in failing, failing
        assert_only_kept(State.of(weed, server, book, run.id), kept)
        assert book.store.get_run_by_id(run.id).status == "running"  # its ending waits too
        told_while_down = [t.message.split(" (")[0] for t in record.of(UploadWarning)]
        refused = link.refused

        # the store is back: `trialbook sync` stores and records it, once
        link.up()
        done = book.upload_outbox()
        assert (done.left, done.refused) == (0, [])
        assert_stored_once(State.of(weed, server, book, run.id), server, data, digest)
        assert book.store.get_run_by_id(run.id).status == "finished"
        print(
            f"\nthe store down {when}: log_artifact {took:.3f} s{sync}, finish() {finish_s:.2f} s "
            f"({refused} connections refused)"
        )
        # while the store was down the uploader said once that uploads fail, and never that
        # they work again: not even when a round of it was skipped, sending nothing, as the
        # sync held the book's upload lock
        assert told_while_down == [f"trialbook: uploads to {server.url} are failing"]
