"""The outbox: every write of a run against a remote book, kept in a local SQLite file
until the server has it (DESIGN.md, "Where its users outgrow one machine").

One file for every book of the user (``settings.outbox_path()``), in WAL mode, written
one transaction a batch. It holds, per book (the store's URI):

* ``points``: ``(run, key, epoch) -> value``, last value wins (a NaN is kept as NULL);
  each row carries the version of the batch that wrote it, so an upload deletes only the
  values it sent, never a newer one logged meanwhile;
* ``items``: the other writes, in the order made, each with its client-chosen id: a
  run's creation (``run``, the whole ``RunRecord``), ``evaluation``, ``artifact``,
  ``note`` and ``status`` (a run ending, or going back to running).

An ``Uploader`` thread sends them to the store in rounds (``upload_round``): creations
first, then points a run at a time, then the other items in order; what the store
accepted is deleted. Sending again creates nothing twice: points upsert; a creation,
an evaluation or an artifact whose id the store already holds (``Conflict``, then
checked by reading it back) counts as done; a note is re-sent only when the stored note
does not already hold its fields. A write the store refuses (``InvalidInput``, a
``Conflict`` that is not "already there", ``NotFound``) stays in the outbox marked
refused, with the reason, for ``trialbook sync`` to report; it is never retried on its
own, and the points and items of a run whose creation was refused wait with it.

A team server's ``Forbidden`` (403: the user's role on the project does not allow the
write, say a role taken away mid-run) is a refusal too, the points of a run refused
together (one request, one warning), and kept the same way; ``trialbook sync`` (an
explicit ``Book.upload_outbox``) tries those again, as the role may have been given back.
An ``Unauthorized`` (401: the token is unknown, expired or revoked) refuses every write
alike, so it is not a refusal of one: the round stops there, everything stays waiting,
the uploader says once why and what to do, and tries again only every
``BACKOFF_MAX_S`` (``trialbook sync`` with a valid token sends it all).

The uploader backs off on a fault (0.5 s doubling to 30 s; new points do not cut it
short, a run's end does), and beats the runs this process started and has not ended
(``Outbox.beat``, every ``BEAT_S``) so that a run logging nothing for a while does not
look crashed on the server.

Uploads of one book are serialised across processes by an ``flock`` on a lock file
beside the outbox (a round that finds it taken does nothing), so two ``trialbook sync``
at once, or a sync beside a training process, never send one write twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import math
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from trialbook import settings
from trialbook.core import naming
from trialbook.errors import Conflict, Forbidden, InvalidInput, NotFound, StorageError, Unauthorized

# ``import trialbook`` imports this module: what only a remote book needs (sqlite3, json,
# hashlib, the entities) is imported where it is used, the first time an outbox is.
if TYPE_CHECKING:
    import sqlite3

    from trialbook.core.entities import RunRecord
    from trialbook.store.base import Store

__all__ = [
    "CHECKED_ONLINE",
    "EXTRA_BYTES",
    "LOCAL_BYTES",
    "Outbox",
    "Refused",
    "Round",
    "UploadWarning",
    "Uploader",
    "is_remote",
]

Item = tuple[int, Mapping[str, float]]
REFUSALS = (InvalidInput, Conflict, NotFound, Forbidden)
# the reasons of refusals that an explicit sync tries again (``Outbox.retry_forbidden``)
_RETRIED_BY_SYNC = f"{Forbidden.__name__}: %"
BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 30.0
# in a run's creation: checked against the server's project at start (not again on upload)
CHECKED_ONLINE = "$checked_online"
# in an artifact's reference: the file of its bytes, kept beside the outbox until uploaded
LOCAL_BYTES = "$local_bytes"
# in an artifact's reference: ``[[digest, kept file], ...]`` of the blobs it refers to (a
# predictions file's thumbnails), uploaded before it
EXTRA_BYTES = "$extra_bytes"
BEAT_S = 5.0  # a live run's heartbeat, when it logs nothing (core.runs.HEARTBEAT_INTERVAL_S)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    book TEXT NOT NULL, run_id TEXT NOT NULL, key TEXT NOT NULL, epoch INTEGER NOT NULL,
    value REAL, ver INTEGER NOT NULL, refused TEXT,
    PRIMARY KEY (book, run_id, key, epoch)
);
CREATE TABLE IF NOT EXISTS items (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, book TEXT NOT NULL, run_id TEXT NOT NULL,
    kind TEXT NOT NULL, item_id TEXT NOT NULL, payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, refused TEXT
);
CREATE INDEX IF NOT EXISTS items_book ON items (book, kind);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class UploadWarning(UserWarning):
    """Uploads of the outbox failing, recovering, or refused by the server."""


def is_remote(store: Store) -> bool:
    """Whether ``store`` is a server's (its URI is ``http(s)://``, or it says ``remote``)."""
    if getattr(store, "remote", False):
        return True
    return str(getattr(store, "uri", "")).lower().startswith(("http://", "https://"))


class Refused(NamedTuple):
    """A write the store refused, kept in the outbox: its kind (``points`` for points of
    one run and epoch), run, id (the epoch for points), and the store's reason."""

    kind: str
    run_id: str
    item_id: str
    reason: str


@dataclasses.dataclass
class Round:
    """What one upload round sent (and what it newly found refused)."""

    runs: int = 0
    points: int = 0
    evaluations: int = 0
    notes: int = 0
    artifacts: int = 0
    endings: int = 0
    refused: list[Refused] = dataclasses.field(default_factory=list)
    busy: bool = False  # another process held the book's upload lock

    @property
    def sent(self) -> int:
        return self.runs + self.points + self.evaluations + self.notes + self.artifacts + self.endings

    def add(self, other: Round) -> None:
        for f in ("runs", "points", "evaluations", "notes", "artifacts", "endings"):
            setattr(self, f, getattr(self, f) + getattr(other, f))
        self.refused += other.refused


_COUNTER = {"run": "runs", "evaluation": "evaluations", "note": "notes", "artifact": "artifacts"}


# ------------------------------------------------------------------------ (de)serialising
def _dump(obj: Any) -> str:
    import json

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    return json.dumps(obj, allow_nan=True)


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


def _value(v: float | None) -> float:
    return math.nan if v is None else float(v)


class Outbox:
    """The outbox file at ``path`` (default ``settings.outbox_path()``). Thread-safe: one
    connection, used under a lock; many processes may open the same file."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else settings.outbox_path()
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        # runs created through this object and not ended yet: the uploader beats them
        self.live: set[tuple[str, str]] = set()

    # the file -----------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        import sqlite3

        if self._conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.executescript(_SCHEMA)
            except (OSError, sqlite3.Error) as exc:
                raise StorageError(f"cannot open the outbox {self.path}: {exc}") from None
            self._conn = conn
        return self._conn

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``)."""
        import sqlite3

        with self._lock:
            conn = self._connect()
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StorageError(f"cannot write the outbox {self.path}: {exc}") from None
                raise

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        import sqlite3

        with self._lock:
            try:
                return self._connect().execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StorageError(f"cannot read the outbox {self.path}: {exc}") from None

    def exists(self) -> bool:
        return self._conn is not None or self.path.exists()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # writing ------------------------------------------------------------------------
    def add_points(self, book: str, run_id: str, items: Sequence[Item]) -> int:
        """Keep ``(epoch, {key: value})`` items of a run (one transaction); how many points."""
        rows: list[tuple[Any, ...]] = []
        with self._tx() as conn:
            ver = conn.execute(
                "INSERT INTO meta VALUES ('ver', 1) ON CONFLICT (name) DO UPDATE SET value = value + 1 "
                "RETURNING value"
            ).fetchone()[0]
            for epoch, values in items:
                for k, v in values.items():
                    rows.append((book, run_id, k, epoch, None if math.isnan(v) else v, ver))
            conn.executemany(
                "INSERT INTO points VALUES (?, ?, ?, ?, ?, ?, NULL) ON CONFLICT (book, run_id, key, epoch) "
                "DO UPDATE SET value = excluded.value, ver = excluded.ver, refused = NULL",
                rows,
            )
        return len(rows)

    def add_item(self, book: str, run_id: str, kind: str, item_id: str, payload: Any) -> None:
        """Keep one write of ``kind`` (``run``, ``evaluation``, ``artifact``, ``note``,
        ``status``) with its client-chosen id."""
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO items (book, run_id, kind, item_id, payload) VALUES (?, ?, ?, ?, ?)",
                (book, run_id, kind, item_id, _dump(payload)),
            )
        if kind == "run":
            self.track(book, run_id)
        elif kind == "status" and _field(payload, "status") != "running":
            self.live.discard((book, run_id))

    def track(self, book: str, run_id: str) -> None:
        """Count ``run_id`` live here (beaten by the uploader) until its ending is kept;
        a run created through this object is, from its creation."""
        self.live.add((book, run_id))

    def keep_bytes(self, src: Path, *, sync: bool = True) -> tuple[str, int, Path]:
        """Copy the file ``src`` into the outbox's folder of artifact bytes (content-
        addressed, written whole or not at all), for an artifact that cannot be uploaded
        now; its digest, size and the copy's path. ``sync=False`` skips the fsync (for
        thumbnails: many small files a crash may lose, and the reference still goes)."""
        from blake3 import blake3

        from trialbook.artifacts.local import _check_source

        _check_source(src)  # a missing file or a folder: refused, naming it
        folder = self.path.with_name(f"{self.path.name}.blobs")
        hasher, size = blake3(), 0
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".incoming-{os.getpid()}-{threading.get_ident()}"
            with open(src, "rb") as f, open(tmp, "wb") as out:
                while chunk := f.read(1 << 20):
                    hasher.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                if sync:
                    os.fsync(out.fileno())
            digest = hasher.hexdigest()
            kept = folder / digest
            os.replace(tmp, kept)
        except OSError as exc:
            raise StorageError(f"cannot keep artifact {src} in {folder}: {exc.strerror or exc}") from None
        return digest, size, kept

    def _forget_bytes(self, book: str, kept: Path, digest: str) -> None:
        """Delete a kept file of artifact bytes once no waiting artifact refers to it."""
        rows = self._read(
            "SELECT count(*) FROM items WHERE book = ? AND kind = 'artifact' AND instr(payload, ?) > 0",
            [book, digest],
        )
        if not rows[0][0]:
            with contextlib.suppress(OSError):
                kept.unlink()

    # reading ------------------------------------------------------------------------
    def pending(self, book: str, run_id: str | None = None) -> int:
        """How many writes of ``book`` (of one run) wait to be sent (refused ones not counted)."""
        where, args = "book = ? AND refused IS NULL", [book]
        if run_id is not None:
            where, args = where + " AND run_id = ?", [book, run_id]
        n_points = self._read(f"SELECT count(*) FROM points WHERE {where}", args)[0][0]
        n_items = self._read(f"SELECT count(*) FROM items WHERE {where}", args)[0][0]
        return int(n_points) + int(n_items)

    def books(self) -> list[str]:
        """The books with writes in the outbox."""
        rows = self._read("SELECT DISTINCT book FROM items UNION SELECT DISTINCT book FROM points")
        return sorted(r[0] for r in rows)

    def refused(self, book: str) -> list[Refused]:
        """The writes of ``book`` the store refused, kept (points grouped by run and epoch)."""
        items = self._read(
            "SELECT kind, run_id, item_id, refused FROM items WHERE book = ? AND refused IS NOT NULL "
            "ORDER BY seq",
            [book],
        )
        points = self._read(
            "SELECT run_id, epoch, min(refused), count(*) FROM points WHERE book = ? AND refused IS NOT NULL "
            "GROUP BY run_id, epoch ORDER BY run_id, epoch",
            [book],
        )
        out = [Refused(k, r, i, why) for k, r, i, why in items]
        forbidden: dict[tuple[str, str], list[tuple[int, int]]] = {}  # a run's points, refused together
        for r, e, why, n in points:
            if why.startswith(f"{Forbidden.__name__}:"):
                forbidden.setdefault((r, why), []).append((e, n))
            else:
                out.append(Refused("points", r, str(e), f"{n} points: {why}"))
        for (r, why), epochs in forbidden.items():
            first, last = epochs[0][0], epochs[-1][0]
            span = f"epoch {first}" if first == last else f"epochs {first}-{last}"
            out.append(Refused("points", r, span, f"{sum(n for _, n in epochs)} points: {why}"))
        return out

    def local_runs(self, book: str) -> list[RunRecord]:
        """The runs of ``book`` created here and not yet on the server."""
        import json

        rows = self._read("SELECT payload FROM items WHERE book = ? AND kind = 'run' ORDER BY seq", [book])
        return [_run_record(json.loads(r[0])) for r in rows]

    def retry_forbidden(self, book: str) -> int:
        """Make the writes of ``book`` the server refused as ``Forbidden`` wait again (for
        ``trialbook sync``: the role may have been given back since); how many."""
        with self._tx() as conn:
            n = conn.execute(
                "UPDATE items SET refused = NULL WHERE book = ? AND refused LIKE ?", [book, _RETRIED_BY_SYNC]
            ).rowcount
            n += conn.execute(
                "UPDATE points SET refused = NULL WHERE book = ? AND refused LIKE ?", [book, _RETRIED_BY_SYNC]
            ).rowcount
        return int(n)

    # uploading ----------------------------------------------------------------------
    @contextlib.contextmanager
    def claimed(self, book: str) -> Iterator[bool]:
        """The book's upload lock, across processes: yields whether this caller holds it."""
        import hashlib

        digest = hashlib.blake2b(book.encode(), digest_size=8).hexdigest()
        lock_path = self.path.with_name(f"{self.path.name}.{digest}.lock")
        try:
            f = open(lock_path, "a")  # noqa: SIM115 (held for the block)
        except OSError as exc:
            raise StorageError(f"cannot open the outbox lock {lock_path}: {exc.strerror or exc}") from None
        try:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            f.close()

    def upload_round(self, store: Store, book: str, *, blobs: Any = None, max_points: int = 20_000) -> Round:
        """Send what waits for ``book`` to ``store``, once (see the module docstring).

        Raises ``StorageError`` (or whatever else the store raises that is not a refusal)
        when the store cannot be reached: what was sent before stays deleted, the rest
        stays for the next round. ``blobs`` (the book's artifact store) takes the bytes of
        artifacts kept here (``keep_bytes``) before their references are sent."""
        done = Round()
        with self.claimed(book) as mine:
            if not mine:
                done.busy = True
                return done
            self._send_creations(store, book, done)
            blocked = {
                r[0] for r in self._read("SELECT run_id FROM items WHERE book = ? AND kind = 'run'", [book])
            }
            self._send_points(store, book, blocked, done, max_points)
            self._send_items(store, book, blocked, done, blobs)
        return done

    def beat(self, store: Store, book: str) -> int:
        """Send a heartbeat (``log_batch`` of no points) for each run of ``book`` created
        through this object, not ended, and already on the server; how many. A run the
        store does not know (refused, or gone) is skipped; a fault of the store is raised."""
        runs = sorted(r for b, r in list(self.live) if b == book)
        if not runs:
            return 0
        waiting = {
            r[0] for r in self._read("SELECT run_id FROM items WHERE book = ? AND kind = 'run'", [book])
        }
        sent = 0
        for run_id in runs:
            if run_id in waiting:
                continue
            try:
                store.log_batch(run_id, [], heartbeat_at=time.time())
            except REFUSALS:
                continue
            sent += 1
        return sent

    def _mark_refused(self, table: str, where: str, args: Sequence[Any], reason: str) -> None:
        with self._tx() as conn:
            conn.execute(f"UPDATE {table} SET refused = ? WHERE {where}", [reason[:2000], *args])

    def _item_rows(self, book: str, kinds: str) -> list[Any]:
        return self._read(
            "SELECT seq, run_id, kind, item_id, payload, attempts FROM items "
            f"WHERE book = ? AND refused IS NULL AND kind {kinds} ORDER BY seq",
            [book],
        )

    def _send_creations(self, store: Store, book: str, done: Round) -> None:
        import json

        for seq, _run_id, kind, _item_id, payload, _attempts in self._item_rows(book, "= 'run'"):
            self._send_item(store, seq, kind, json.loads(payload), 0, done)

    def _send_items(self, store: Store, book: str, blocked: set[str], done: Round, blobs: Any) -> None:
        import json

        for seq, run_id, kind, _item_id, payload, attempts in self._item_rows(book, "!= 'run'"):
            if run_id in blocked:
                continue
            self._send_item(store, seq, kind, json.loads(payload), attempts, done, blobs=blobs, book=book)

    def _send_item(
        self,
        store: Store,
        seq: int,
        kind: str,
        data: dict[str, Any],
        attempts: int,
        done: Round,
        *,
        blobs: Any = None,
        book: str = "",
    ) -> None:
        with self._tx() as conn:
            conn.execute("UPDATE items SET attempts = attempts + 1 WHERE seq = ?", [seq])
        kept = Path(data[LOCAL_BYTES]) if kind == "artifact" and data.get(LOCAL_BYTES) else None
        extras = [(str(d), Path(k)) for d, k in data.get(EXTRA_BYTES) or []] if kind == "artifact" else []
        try:
            for digest, extra in extras:
                _upload_extra_bytes(blobs, extra, digest)
            if kept is not None:
                _upload_kept_bytes(blobs, kept, data)
            _SENDERS[kind](store, data, attempts > 0)
        except REFUSALS as exc:
            reason = f"{type(exc).__name__}: {exc}"
            self._mark_refused("items", "seq = ?", [seq], reason)
            done.refused.append(Refused(kind, str(data.get("run_id", data.get("id", ""))), str(seq), reason))
            return
        with self._tx() as conn:
            conn.execute("DELETE FROM items WHERE seq = ?", [seq])
        if kept is not None:
            self._forget_bytes(book, kept, data["digest"])
        for digest, extra in extras:
            self._forget_bytes(book, extra, digest)
        counter = _COUNTER.get(kind, "endings")
        setattr(done, counter, getattr(done, counter) + 1)

    def _send_points(self, store: Store, book: str, blocked: set[str], done: Round, max_points: int) -> None:
        runs = self._read("SELECT DISTINCT run_id FROM points WHERE book = ? AND refused IS NULL", [book])
        for (run_id,) in runs:
            if run_id in blocked:
                continue
            rows = self._read(
                "SELECT key, epoch, value, ver FROM points WHERE book = ? AND run_id = ? AND refused IS NULL "
                "ORDER BY epoch, key LIMIT ?",
                [book, run_id, max_points],
            )
            try:
                store.log_batch(run_id, [(k, e, _value(v)) for k, e, v, _ in rows], heartbeat_at=time.time())
            except Forbidden as exc:  # the run's points, not one of them: refused together
                reason = f"{type(exc).__name__}: {exc}"
                self._mark_refused(
                    "points",
                    "book = ? AND run_id = ? AND refused IS NULL AND ver <= ?",
                    [book, run_id, max(r[3] for r in rows)],
                    reason,
                )
                span = f"epochs {rows[0][1]}-{rows[-1][1]}"
                done.refused.append(Refused("points", run_id, span, reason))
                continue
            except REFUSALS:
                self._points_one_epoch_at_a_time(store, book, run_id, rows, done)
                continue
            self._delete_points(book, run_id, rows, whole=len(rows) < max_points)
            done.points += len(rows)

    def _points_one_epoch_at_a_time(
        self, store: Store, book: str, run_id: str, rows: list[Any], done: Round
    ) -> None:
        by_epoch: dict[int, list[Any]] = {}
        for row in rows:
            by_epoch.setdefault(row[1], []).append(row)
        for epoch, part in by_epoch.items():
            try:
                store.log_batch(run_id, [(k, e, _value(v)) for k, e, v, _ in part])
            except REFUSALS as exc:
                reason = f"{type(exc).__name__}: {exc}"
                self._mark_refused(
                    "points", "book = ? AND run_id = ? AND epoch = ?", [book, run_id, epoch], reason
                )
                done.refused.append(Refused("points", run_id, str(epoch), reason))
                continue
            self._delete_points(book, run_id, part)
            done.points += len(part)

    def _delete_points(self, book: str, run_id: str, rows: list[Any], *, whole: bool = False) -> None:
        """Delete the points ``rows`` of a run, sent, unless a newer value was logged since
        (a higher version). ``whole``: ``rows`` were all of the run's waiting points. Then
        one statement does it: versions are given and committed one transaction at a time,
        so every waiting point of a version up to the highest sent was among them."""
        if whole and rows:
            with self._tx() as conn:
                conn.execute(
                    "DELETE FROM points WHERE book = ? AND run_id = ? AND refused IS NULL AND ver <= ?",
                    [book, run_id, max(r[3] for r in rows)],
                )
            return
        with self._tx() as conn:
            conn.executemany(
                "DELETE FROM points WHERE book = ? AND run_id = ? AND key = ? AND epoch = ? AND ver = ?",
                [(book, run_id, k, e, ver) for k, e, _, ver in rows],
            )


# ------------------------------------------------------------------------ the senders
# ``sender(store, payload, retry)``: send one item; ``retry`` is whether it may have been
# sent before (then "already there" counts as done). Refusals are raised as they come.
def _run_record(data: dict[str, Any]) -> RunRecord:
    from trialbook.core.entities import RunRecord

    return RunRecord(**{k: v for k, v in data.items() if k != CHECKED_ONLINE})


def _send_run(store: Store, data: dict[str, Any], retry: bool) -> None:
    """Create the run on the server. A run checked against the server's project at its
    start is created in one call (the project too only when that fails for want of it);
    one started offline is first checked against the project's naming rule there."""
    record = _run_record(data)
    if not data.get(CHECKED_ONLINE):
        _check_name_on_the_server(store, record)
        store.ensure_project(record.project)
    try:
        try:
            store.create_run(record)
        except NotFound:
            store.ensure_project(record.project)  # the project is made with its first run
            store.create_run(record)
    except Conflict as conflict:
        try:
            stored = store.get_run_by_id(record.id)
        except NotFound:
            raise conflict from None  # the name is taken by another run: refused
        if (stored.project, stored.name) != (record.project, record.name):
            raise


def _check_name_on_the_server(store: Store, record: RunRecord) -> None:
    """A run started offline was checked against the default naming rule only: check it
    again against its project's rule as the server has it (``InvalidInput``: refused,
    kept and reported with its points)."""
    if record.legacy_name:
        return
    try:
        pattern = store.get_project(record.project).protocol.naming_pattern
    except NotFound:
        return  # made with the run, on the default rule the client checked
    naming.check_name(record.name, pattern)


def _send_evaluation(store: Store, data: dict[str, Any], retry: bool) -> None:
    from trialbook.core.entities import Evaluation

    evaluation = Evaluation(**data)
    try:
        store.add_evaluation(evaluation)
    except Conflict:
        if not any(e.id == evaluation.id for e in store.list_evaluations([evaluation.run_id])):
            raise


def _upload_kept_bytes(blobs: Any, kept: Path, data: dict[str, Any]) -> None:
    """Upload the kept bytes of an artifact (a fault of the store is raised and retried;
    bytes that are gone, or that no longer hash to the artifact's digest, are refused)."""
    digest = data["digest"]
    if blobs is None:
        raise InvalidInput(
            f"artifact {data.get('name')!r}: this book has no artifact store to upload {kept} to"
        )
    if not kept.exists():
        if blobs.exists(digest):
            return  # uploaded by an earlier round, which stopped before its reference went
        raise InvalidInput(f"artifact {data.get('name')!r}: its bytes, kept at {kept}, are gone")
    uploaded, _ = blobs.put_file(kept)
    if uploaded != digest:
        raise InvalidInput(
            f"artifact {data.get('name')!r}: the bytes kept at {kept} changed since it was logged"
        )


def _upload_extra_bytes(blobs: Any, kept: Path, digest: str) -> None:
    """Upload a blob an artifact refers to (a thumbnail), unless the server has it. One
    that was lost before it went (kept without fsync, and a crash came) is left out: the
    artifact itself still goes, and its reader shows that one image without a picture."""
    if blobs is None or blobs.exists(digest) or not kept.exists():
        return
    uploaded, _ = blobs.put_file(kept)
    if uploaded != digest:  # damaged by the crash it was not synced for
        warnings.warn(
            f"trialbook: the kept thumbnail {digest[:12]} was damaged before upload; its image "
            "shows without a picture",
            stacklevel=2,
        )


def _send_artifact(store: Store, data: dict[str, Any], retry: bool) -> None:
    from trialbook.core.entities import Artifact

    artifact = Artifact(**{k: v for k, v in data.items() if k not in (LOCAL_BYTES, EXTRA_BYTES)})
    try:
        store.add_artifact(artifact)
    except Conflict:
        if not any(a.id == artifact.id for a in store.list_artifacts(artifact.run_id, reveal=True)):
            raise


def _send_note(store: Store, data: dict[str, Any], retry: bool) -> None:
    fields: dict[str, str] = data["fields"]
    if retry:  # sent before, perhaps stored: not again when the stored note holds it
        current = store.get_notes([data["run_id"]]).get(data["run_id"])
        if current is not None and all(getattr(current, k) == v for k, v in fields.items()):
            return
    store.set_note(data["run_id"], fields, who=data["who"])


def _send_status(store: Store, data: dict[str, Any], retry: bool) -> None:
    store.set_run_status(
        data["run_id"],
        data["status"],
        ended_at=data.get("ended_at"),
        heartbeat_at=data.get("heartbeat_at"),
        end_reason=data.get("end_reason"),
    )


_SENDERS: dict[str, Callable[[Store, dict[str, Any], bool], None]] = {
    "run": _send_run,
    "evaluation": _send_evaluation,
    "artifact": _send_artifact,
    "note": _send_note,
    "status": _send_status,
}


# ------------------------------------------------------------------------ the uploader
class Uploader:
    """A background thread that uploads ``book``'s outbox to ``store`` until stopped:
    rounds while there is something to send, backoff on a store fault (0.5 s doubling
    to 30 s), one warning when uploads start failing and one when they recover, one per
    refused write.

    New writes (``wake``) start a round at once, but not during a backoff: only ``drain``
    (a run ending, the process exiting) cuts a backoff short, so clients logging against
    a server that is down do not call it at every flush. The runs this process created
    and has not ended are beaten (``Outbox.beat``) every ``beat_s`` seconds, so that a run
    that logs nothing for a while does not look crashed on the server."""

    def __init__(
        self,
        outbox: Outbox,
        store: Store,
        book: str,
        *,
        blobs: Any = None,
        idle_s: float = 1.0,
        beat_s: float | None = None,
    ) -> None:
        self.outbox, self.store, self.book, self.blobs = outbox, store, book, blobs
        self._idle_s = idle_s
        self._beat_s = BEAT_S if beat_s is None else beat_s
        self._last_beat = time.monotonic()
        self._wake = threading.Event()
        self._retry = threading.Event()  # cuts a backoff short
        self._stop = threading.Event()
        self._round_done = threading.Condition()
        self.failing: str | None = None  # the last fault, while uploads fail
        self._told: set[tuple[str, str, str]] = set()  # the refusals warned of (kind, run, reason)
        self._begun = 0  # rounds begun
        self._failed_round = 0  # the number of the last round that failed
        self.sent = Round()
        self._thread = threading.Thread(target=self._loop, name="trialbook-upload", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        delay = BACKOFF_START_S
        while not self._stop.is_set():
            self._begun += 1
            try:
                done = self.outbox.upload_round(self.store, self.book, blobs=self.blobs)
            except Exception as exc:  # a fault of the store (or of the outbox): retried
                self._failed(exc)
                if isinstance(exc, Unauthorized):  # this token will not do better soon
                    delay = BACKOFF_MAX_S
                self._retry.wait(delay)
                self._retry.clear()
                self._wake.clear()
                delay = min(delay * 2, BACKOFF_MAX_S)
                continue
            if done.busy:
                # another uploader of this book (a sync) holds the lock: this round proved
                # nothing, neither a recovery nor a fault; the backoff stays as it is
                with self._round_done:
                    self._round_done.notify_all()
                self._wake.wait(self._idle_s)
                self._wake.clear()
                continue
            delay = BACKOFF_START_S
            self._succeeded(done)
            self._maybe_beat()
            if done.sent == 0:
                self._wake.wait(self._idle_s)
                self._wake.clear()

    def _maybe_beat(self) -> None:
        """Beat the live runs when due; best effort (the next round sees a fault)."""
        if time.monotonic() - self._last_beat >= self._beat_s:
            self._last_beat = time.monotonic()
            with contextlib.suppress(Exception):
                self.outbox.beat(self.store, self.book)

    def _failed(self, exc: Exception) -> None:
        if isinstance(exc, Unauthorized):
            if self.failing != str(exc):
                _warn(
                    f"trialbook: uploads to {self.book} are refused: {exc}. Logging goes on into the "
                    f"outbox {self.outbox.path} and nothing is lost: `trialbook sync` uploads it once a "
                    f"valid token is set (tried again here every {BACKOFF_MAX_S:g} s)"
                )
        elif self.failing is None:
            _warn(
                f"trialbook: uploads to {self.book} are failing ({exc}); logging goes on into the outbox "
                f"{self.outbox.path}, and uploads are retried"
            )
        self.failing = str(exc)
        self._failed_round = self._begun
        with self._round_done:
            self._round_done.notify_all()

    def _succeeded(self, done: Round) -> None:
        if self.failing is not None:
            self.failing = None
            _warn(f"trialbook: uploads to {self.book} work again")
        for r in done.refused:
            told = (r.kind, r.run_id, r.reason)
            if told in self._told:  # (a run's points refused again, round after round)
                continue
            self._told.add(told)
            again = (
                ", and sends it again once the role is given back"
                if r.reason.startswith(f"{Forbidden.__name__}:")
                else ""
            )
            _warn(
                f"trialbook: {self.book} refused a write ({r.kind} of run {r.run_id}): {r.reason}; it is "
                f"kept in the outbox (`trialbook sync` lists what was refused{again})"
            )
        self.sent.add(done)
        with self._round_done:
            self._round_done.notify_all()

    def drain(self, run_id: str | None, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for what waits of ``run_id`` (of the book, for
        None) to be sent; what is left (0 when all went). When the store cannot be
        reached, one more round is tried at once and then no more is waited for."""
        deadline = time.monotonic() + timeout
        begun = self._begun  # rounds begun before this wait: their faults do not count
        left = self.outbox.pending(self.book, run_id)
        while left and self._thread.is_alive():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (self.failing is not None and self._failed_round > begun):
                break  # out of time, or a round tried since and the store is still away
            self._wake.set()
            self._retry.set()
            with self._round_done:
                self._round_done.wait(min(remaining, 0.25))
            left = self.outbox.pending(self.book, run_id)
        return left

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        self._retry.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)


def _warn(message: str) -> None:
    warnings.warn(message, UploadWarning, stacklevel=2)
