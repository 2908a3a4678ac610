"""The public Python API: ``init``, ``start``, the live ``Run`` handle and ``Book``.

``Run.log`` never stalls training: it validates, appends to an in-memory queue and
returns. A background writer thread commits the queue in one transaction at least
every ``flush_interval`` seconds (default 0.5 s) and on ``finish``; it also beats the
run's heartbeat, so a run whose process vanished is shown as ``crashed``. A storage
fault inside the writer becomes a warning, never an exception in the training loop;
the points stay queued and are retried.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import dataclasses
import math
import os
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

from trialbook import _capture, settings, spool
from trialbook.core import config as config_rules
from trialbook.core import metrics as metric_rules
from trialbook.core import naming
from trialbook.core.evaluations import check_evaluation
from trialbook.core.notes import check_note_fields
from trialbook.core.refs import parse_dataset_ref
from trialbook.core.runs import HEARTBEAT_INTERVAL_S
from trialbook.core.text import check_name
from trialbook.errors import (
    BookNotFound,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    StorageError,
    TrialbookError,
    Unauthorized,
)
from trialbook.outbox import (
    CHECKED_ONLINE,
    EXTRA_BYTES,
    LOCAL_BYTES,
    Outbox,
    Refused,
    Round,
    Uploader,
    is_remote,
)
from trialbook.store.base import Store
from trialbook.store.registry import BOOK_DIR, open_book, set_remote_blobs

if TYPE_CHECKING:
    from trialbook.core.entities import (
        Artifact,
        DatasetVersion,
        Evaluation,
        Note,
        Project,
        RunEnding,
        RunRecord,
    )
    from trialbook.datasets import Manifest

# ``import trialbook`` stays quick (bench/startup.py): the entities (17 dataclasses to
# build), the artifact store (blake3) and uuid (which reads the platform) are imported
# by the functions that use them.


def _new_id() -> str:
    """A new random id: ``uuid.uuid4().hex``."""
    import uuid

    return uuid.uuid4().hex


def _remote_blobs(uri: str) -> Any:
    """The blob client of a server book (the store layer cannot import the artifacts one)."""
    from trialbook.artifacts.remote import remote_blobs

    return remote_blobs(uri)


set_remote_blobs(_remote_blobs)

__all__ = ["Book", "Run", "RunHandle", "TrackingWarning", "init", "locate", "start"]


class TrackingWarning(UserWarning):
    """A tracking fault that was kept out of the training loop."""


class _DryRun(Exception):
    """Raised inside a store transaction to roll back what it tried (``Book._try_creation``)."""


# --------------------------------------------------------------------------- the book
def locate(uri: str | None = None, *, cwd: Path | None = None) -> str:
    """Where the book is: ``uri``, else ``$TRIALBOOK_URI``, else the nearest ``.trialbook/``
    from ``cwd`` upwards (like git); otherwise ``BookNotFound``."""
    if uri:
        return uri
    env = settings.book_uri()
    if env:
        return env
    here = (cwd or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / BOOK_DIR).is_dir():
            return str(folder / BOOK_DIR)
    raise BookNotFound(
        f"no trialbook book in {here} or any folder above it, and TRIALBOOK_URI is not set: "
        "run `trialbook init` in your project folder (or pass --uri)"
    )


REOPEN = "reopen"  # resume= value that re-opens a finished run


class OutboxUpload(NamedTuple):
    """What ``Book.upload_outbox`` sent (``sent``), the writes the store refused that the
    outbox keeps (``refused``), and how many writes still wait (``left``)."""

    sent: Round
    refused: list[Refused]
    left: int


class SpoolReplay(NamedTuple):
    """What ``Book.replay_spool`` wrote: points of how many runs, and the files of
    refused points kept in the spool (never replayed)."""

    runs: int
    points: int
    rejected: list[str]


UNPINNED_HINT = (
    "name a tagged version (dataset='pallets:v3'; tag one with `trialbook data tag NAME SOURCE "
    "--tag T`), or pass allow_unpinned=True (--allow-unpinned) to record the run as UNPINNED"
)


class Book:
    """One store of runs (an embedded folder, or a database by URI), where its artifact
    files live (``blobs``; None when it keeps none) and its stat cache (``cache_dir``).

    A remote book (``outbox.is_remote``) writes through the outbox (``trialbook.outbox``):
    every write of a run goes to the local outbox file first and a background uploader
    sends it; ``offline`` (or ``TRIALBOOK_OFFLINE=1``) never tries the network. A remote
    book with writes left in the outbox by an earlier process uploads them in the
    background as soon as it is made."""

    def __init__(
        self,
        store: Store,
        blobs: Any = None,
        *,
        cache_dir: Path | None = None,
        offline: bool = False,
        upload_leftovers: bool = True,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.cache_dir = cache_dir if cache_dir is not None else settings.user_cache_dir()
        self.outbox: Outbox | None = Outbox() if is_remote(store) else None
        self.offline = self.outbox is not None and (offline or settings.offline())
        # read (and refused when bad) here, not when a run ends inside a training loop
        self.upload_grace_s = settings.upload_grace_s() if self.outbox is not None else 0.0
        self._uploader: Uploader | None = None
        self._uploader_lock = threading.Lock()
        if self.outbox is not None and not self.offline and upload_leftovers and self.outbox.exists():
            with contextlib.suppress(StorageError):
                if self.outbox.pending(store.uri):
                    self.uploader()  # what an earlier process left: sent in the background

    def uploader(self) -> Uploader | None:
        """The background uploader of this book's outbox (started on first use); None for
        an embedded book or an offline one."""
        if self.outbox is None or self.offline:
            return None
        with self._uploader_lock:
            if self._uploader is None:
                self._uploader = Uploader(self.outbox, self.store, self.store.uri, blobs=self.blobs)
            return self._uploader

    def _record(self, kind: str, run_id: str, item_id: str, payload: Any) -> None:
        """Keep one write of a run in the outbox and wake the uploader."""
        assert self.outbox is not None
        self.outbox.add_item(self.store.uri, run_id, kind, item_id, payload)
        up = self.uploader()
        if up is not None:
            up.wake()

    @classmethod
    def open(
        cls, uri: str | None = None, *, create: bool = False, replay: bool = True, offline: bool = False
    ) -> Book:
        """The book at ``uri`` (see :func:`locate`), through the store registry. Unless
        ``replay`` is false, points of its runs waiting in the spool are written into it
        first (a failure to do so is a warning, and they stay spooled); a remote book
        uploads what waits in the outbox in the background instead (unless ``offline``, or
        ``replay`` is false: ``trialbook sync`` uploads it in the foreground itself)."""
        opened = open_book(locate(uri), create=create)
        blobs = opened.blobs
        if blobs is None and opened.blob_dir is not None:
            from trialbook.artifacts.local import BlobStore

            blobs = BlobStore(opened.blob_dir)
        book = cls(opened.store, blobs, cache_dir=opened.cache_dir, offline=offline, upload_leftovers=replay)
        if book.outbox is not None:
            return book
        if replay and not opened.store.read_only and spool.spooled_runs():
            try:
                book.replay_spool()
            except Exception as exc:
                warnings.warn(
                    f"trialbook: could not write spooled points into {book.uri} ({exc}); they stay in "
                    f"{spool.folder()} for `trialbook sync`",
                    TrackingWarning,
                    stacklevel=2,
                )
        return book

    def replay_spool(self) -> SpoolReplay:
        """Write the spooled points of this book's runs into it (``trialbook sync``):
        each run's file is written in one batch, its ``unwritten`` count goes down, and
        the file is removed. Runs of other books, and runs still being written by this
        process, are left alone. Writing a point twice keeps one value, so a replay that
        is interrupted and run again duplicates nothing."""
        runs = points = 0
        live = {r.id for r in _open_runs}
        for run_id in spool.spooled_runs():
            if run_id in live:
                continue
            try:
                self.store.get_run_by_id(run_id)
            except NotFound:
                continue  # a run of another book
            with spool.taken(run_id) as items:
                if not items:
                    continue
                self.store.log_batch(run_id, _batch(items))
                n = sum(len(values) for _, values in items)
                self.store.count_unwritten(run_id, -n)
            runs, points = runs + 1, points + n
        return SpoolReplay(runs=runs, points=points, rejected=[str(p) for p in spool.rejected_files()])

    def upload_outbox(self, progress: Callable[[int, int], None] | None = None) -> OutboxUpload:
        """Send what waits in the outbox for this book, now, round after round, until
        nothing is left to send (``trialbook sync``); ``progress(sent, left)`` after each
        round. Another process uploading this book at the same time is waited for (its
        rounds and these never send one write twice). A store that cannot be reached
        raises ``StorageError`` after what was sent (it stays in the outbox). Writes the
        server refused as ``Forbidden`` are tried again first (the role may be back)."""
        outbox = self.outbox if self.outbox is not None else Outbox()
        total = Round()
        if not outbox.exists():
            return OutboxUpload(total, [], 0)
        outbox.retry_forbidden(self.uri)  # asked for now: the role may have been given back
        while True:
            done = outbox.upload_round(self.store, self.uri, blobs=self.blobs)
            total.add(done)
            left = outbox.pending(self.uri)
            if progress is not None:
                progress(total.sent, left)
            if done.busy:
                time.sleep(0.1)  # another process is uploading this book: wait for it
            elif done.sent == 0 or not left:
                break
        return OutboxUpload(total, outbox.refused(self.uri), outbox.pending(self.uri))

    @property
    def uri(self) -> str:
        return self.store.uri

    def close(self) -> None:
        """Give the uploader a grace (``upload_grace_s``) for what waits, then close;
        what is left stays in the outbox for the next open or ``trialbook sync``."""
        if self._uploader is not None:
            self._uploader.drain(None, self.upload_grace_s)
            self._uploader.stop()
            self._uploader = None
        if self.outbox is not None:
            self.outbox.close()
        self.store.close()

    def __enter__(self) -> Book:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # lookups ----------------------------------------------------------------------
    def project(self, name: str) -> Project:
        return self.store.get_project(name)

    def run(self, ref: str, project: str | None = None) -> RunRecord:
        """A run by name (``project`` needed only when the name is in several projects),
        by ``project/name``, or by id."""
        if project is None and "/" in ref:
            project, ref = ref.split("/", 1)
        if project is not None:
            try:
                return self.store.get_run(project, ref)
            except NotFound:
                pass
        else:
            found = self.store.find_runs(ref)
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                projects = ", ".join(r.project for r in found)
                raise InvalidInput(
                    f"run name {ref!r} is in several projects ({projects}); name one with "
                    f"--project or write PROJECT/{ref}"
                )
        try:
            run = self.store.get_run_by_id(ref)
        except NotFound:
            where = f" in project {project!r}" if project else ""
            raise NotFound(f"no run named {ref!r}{where}{self._close_names(ref, project)}") from None
        if project is not None and run.project != project:
            raise NotFound(f"no run named {ref!r} in project {project!r}")
        return run

    def _close_names(self, ref: str, project: str | None) -> str:
        """``"; did you mean 'v2_x'?"`` for run names close to ``ref``, or ``""``."""
        import difflib

        try:
            names = sorted({r.name for r in self.store.list_runs(project)})
        except NotFound:  # the project does not exist (yet)
            return ""
        close = difflib.get_close_matches(ref, names, n=3, cutoff=0.6)
        if not close:
            return "; `trialbook runs` lists the runs" if names else "; this book has no runs yet"
        return "; did you mean " + " or ".join(repr(c) for c in close) + "?"

    def attach(self, run: str | RunRecord, project: str | None = None) -> RunHandle:
        """A handle on an existing run, to add evaluations, artifacts or its note."""
        from trialbook.core.entities import RunRecord

        record = run if isinstance(run, RunRecord) else self.run(run, project)
        return RunHandle(self, record)

    # starting runs ------------------------------------------------------------------
    def start(
        self,
        project: str,
        name: str,
        *,
        dataset: str | None = None,
        parent: str | None = None,
        config: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        resume: bool | str = False,
        allow_unpinned: bool = False,
        dataset_source: str | os.PathLike[str] | None = None,
        flush_interval: float = 0.5,
        legacy_name: bool = False,
        env: Mapping[str, Any] | None = None,
        system_metrics: bool | None = None,
    ) -> Run:
        """Start (or with ``resume=True`` continue) a run. See ``trialbook.start``.

        Every check (:meth:`check_start`) runs before anything is written: a refused run
        leaves no project and no run behind. ``env`` adds to what is captured about where
        the run ran (a tracker's facts, e.g. ``config_asked``). ``system_metrics``: record
        the ``system/`` series (``None``: unless ``TRIALBOOK_SYSTEM_METRICS=0``)."""
        plan = self.check_start(
            project,
            name,
            dataset=dataset,
            parent=parent,
            resume=resume,
            allow_unpinned=allow_unpinned,
            dataset_source=dataset_source,
            legacy_name=legacy_name,
        )
        if plan.existing is not None:
            return Run._resume(
                self, plan.existing, flush_interval=flush_interval, system_metrics=system_metrics
            )
        from trialbook.core.entities import RunRecord

        flat = config_rules.flatten(config)
        if self.outbox is None:
            self.store.ensure_project(project)
        pin = plan.pin
        record = RunRecord(
            id=_new_id(),
            project=project,
            name=name,
            status="running",
            created_at=time.time(),
            heartbeat_at=time.time(),
            parent_id=plan.parent_id,
            dataset=pin["dataset"],
            pinned=pin["pinned"],
            split_digests=pin["split_digests"],
            config=flat,
            env={**_capture.environment(), **dict(env or {})},
            tags=dict(tags or {}),
            legacy_name=legacy_name,
        )
        if self.outbox is None:
            record = self.store.create_run(record)
        else:  # created on the server by the uploader (which ensures the project)
            if plan.checked_online:
                self._try_creation(record, ensure=not plan.project_known)
            payload = dataclasses.asdict(record)
            if plan.checked_online:
                payload[CHECKED_ONLINE] = True  # no need to check its name again on upload
            self._record("run", record.id, record.id, payload)
        return Run(self, record, flush_interval=flush_interval, system_metrics=system_metrics)

    def _try_creation(self, record: RunRecord, *, ensure: bool) -> None:
        """A remote book that can be reached: the run's creation (and its project's, when
        ``ensure``) is tried on the server in a store transaction that is rolled back, so
        that what the server would refuse on upload is raised now, before any training:
        above all a role that does not allow it (``Forbidden``: a viewer) or a token it does
        not take (``Unauthorized``), which are answers about the caller, never spooled. A
        server gone meanwhile: the creation waits in the outbox like any write."""
        try:
            with self.store.transaction():
                if ensure:
                    self.store.ensure_project(record.project)
                self.store.create_run(record)
                raise _DryRun
        except _DryRun:
            return
        except StorageError:
            return  # the uploader sends it when the server is back, and says what it refuses
        except (Forbidden, Unauthorized) as exc:
            raise type(exc)(f"cannot start run {record.project}/{record.name} on {self.uri}: {exc}") from None

    def check_start(
        self,
        project: str,
        name: str,
        *,
        dataset: str | None = None,
        parent: str | None = None,
        resume: bool | str = False,
        allow_unpinned: bool = False,
        dataset_source: str | os.PathLike[str] | None = None,
        legacy_name: bool = False,
    ) -> StartPlan:
        """Every check :meth:`start` makes, writing nothing: the names, the run not already
        there (or, with ``resume``, resumable), the parent, the dataset pin. Raises what
        ``start`` would raise; returns what it needs."""
        if resume not in (False, True, REOPEN):
            raise InvalidInput(
                f"resume={resume!r}: use True (continue a crashed or failed run) or {REOPEN!r}"
            )
        if self.outbox is not None:
            args = (project, name, dataset, parent, resume, allow_unpinned, legacy_name)
            if self.offline:
                return self._check_start_offline(*args)
            try:
                return self._check_start(
                    project, name, dataset, parent, resume, allow_unpinned, dataset_source, legacy_name
                )._replace(checked_online=True)
            except StorageError as exc:
                warnings.warn(
                    f"trialbook: {self.uri} cannot be reached ({exc}); the run is checked against what "
                    "this machine knows, recorded in the outbox, and re-checked by the server on upload",
                    TrackingWarning,
                    stacklevel=3,
                )
                return self._check_start_offline(*args)
        return self._check_start(
            project, name, dataset, parent, resume, allow_unpinned, dataset_source, legacy_name
        )

    def _check_start(
        self,
        project: str,
        name: str,
        dataset: str | None,
        parent: str | None,
        resume: bool | str,
        allow_unpinned: bool,
        dataset_source: str | os.PathLike[str] | None,
        legacy_name: bool,
    ) -> StartPlan:
        from trialbook.core.entities import Protocol

        check_name("project name", project)
        check_name("run name", name)
        known = True
        try:
            protocol = self.store.get_project(project).protocol
        except NotFound:
            protocol = Protocol()  # the project is created with the run, on the default protocol
            known = False
        if not legacy_name:
            naming.check_name(name, protocol.naming_pattern)
        existing = self._existing_run(project, name, resume)
        if existing is not None:
            return StartPlan(existing=existing, parent_id=existing.parent_id, pin={})
        parent_id = self.run(parent, project).id if parent else None
        pin = self._pin(dataset, dataset_source, allow_unpinned)
        return StartPlan(existing=None, parent_id=parent_id, pin=pin, project_known=known)

    def _check_start_offline(
        self,
        project: str,
        name: str,
        dataset: str | None,
        parent: str | None,
        resume: bool | str,
        allow_unpinned: bool,
        legacy_name: bool,
    ) -> StartPlan:
        """The checks of :meth:`check_start` that need no server, against what this
        machine knows: the default naming rule, the runs in the outbox. The server checks
        again on upload (its project's naming rule, names taken there); what it refuses
        stays in the outbox and is reported. A dataset cannot be checked against a tag
        the client cannot read: the run records the version it names, UNPINNED."""
        from trialbook.core.entities import Protocol

        assert self.outbox is not None
        check_name("project name", project)
        check_name("run name", name)
        if not legacy_name:
            naming.check_name(name, Protocol().naming_pattern)
        local = {(r.project, r.name): r for r in self.outbox.local_runs(self.uri)}
        if resume:
            raise InvalidInput(
                f"resume={resume!r} needs the server ({self.uri}), to know where the run stopped: "
                "resume when it can be reached"
            )
        if (project, name) in local:
            raise Conflict(
                f"project {project!r} already has a run named {name!r} (in the outbox, not yet uploaded)"
            )
        parent_id = None
        if parent:
            found = local.get((project, parent))
            if found is None:
                raise InvalidInput(
                    f"parent run {parent!r} is not known on this machine and {self.uri} cannot be reached "
                    "now: start the run without parent, or when the server can be reached"
                )
            parent_id = found.id
        if dataset is None and not allow_unpinned:
            raise InvalidInput(f"this run names no dataset version: {UNPINNED_HINT}")
        if dataset is not None:
            parse_dataset_ref(dataset)
            warnings.warn(
                f"trialbook: offline, the dataset tag {dataset} cannot be checked; the run is recorded "
                "UNPINNED, naming it",
                TrackingWarning,
                stacklevel=4,
            )
        pin: dict[str, Any] = {"dataset": dataset, "pinned": False, "split_digests": {}}
        return StartPlan(existing=None, parent_id=parent_id, pin=pin)

    def _existing_run(self, project: str, name: str, resume: bool | str) -> RunRecord | None:
        """The run to resume (``resume``), or None; ``Conflict`` when ``name`` is taken
        without ``resume``, or finished and not reopened."""
        try:
            existing = self.store.get_run(project, name)
        except NotFound:
            return None
        if not resume:
            raise Conflict(
                f"project {project!r} already has a run named {name!r}: pick a new "
                f"<version>_<what_changed> name, or pass resume=True to continue it"
            )
        if existing.status == "finished" and resume != REOPEN:
            raise Conflict(
                f"run {project}/{name} is finished: resume=True continues a run that crashed, "
                f"failed or was killed. To add epochs to a finished run, pass resume={REOPEN!r} "
                "(it goes back to running), or start a new run with its own name"
            )
        return existing

    # dataset versions ----------------------------------------------------------------
    def dataset_version(self, ref: str) -> DatasetVersion:
        """``NAME:TAG`` or ``NAME:DIGEST_PREFIX`` -> the version; ``NotFound`` says how to
        tag one."""
        name, tag_or_digest = parse_dataset_ref(ref)
        assert tag_or_digest is not None
        try:
            bound = self.store.get_tag(name, tag_or_digest)
        except NotFound:
            try:
                return self.store.get_dataset_version(name, tag_or_digest)
            except NotFound:
                raise NotFound(
                    f"no dataset version {ref}: tag it with "
                    f"`trialbook data tag {name} SOURCE --tag {tag_or_digest}`"
                ) from None
        return self.store.get_dataset_version(name, bound.digest)

    def fingerprint(self, source: str | os.PathLike[str], *, progress: bool | None = None) -> Manifest:
        """The manifest of the files of ``source`` (a folder or a data.yaml), read through
        the book's stat cache."""
        from trialbook.datasets import build_manifest
        from trialbook.datasets.cache import CacheWarning

        path: Path | None = self.cache_dir / "stat.db"
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a cache: the files are read without it
            warnings.warn(
                f"the stat cache folder {self.cache_dir} cannot be made ({exc.strerror or exc}); "
                "the dataset is read without it",
                CacheWarning,
                stacklevel=2,
            )
            path = None
        return build_manifest(source, cache_path=path, progress=progress)

    def manifest(self, version: DatasetVersion) -> Manifest:
        """The stored manifest of ``version``."""
        from trialbook.datasets import Manifest

        if self.blobs is None or version.manifest_digest is None:
            raise NotFound(f"the manifest of {version.name} {version.digest[:12]} is not stored here")
        return Manifest.from_bytes(self.blobs.get_bytes(version.manifest_digest))

    def find_dataset_tag(self, source: str | os.PathLike[str]) -> str | None:
        """``NAME:TAG`` of a tagged version whose content is the files of ``source`` (the
        newest tag if several), or None."""
        digest = self.fingerprint(source).digest
        tags = [t for t in self.store.list_tags() if t.digest == digest]
        if not tags:
            return None
        newest = max(tags, key=lambda t: t.created_at)
        return f"{newest.name}:{newest.tag}"

    def _pin(self, dataset: str | None, source: Any, allow_unpinned: bool) -> dict[str, Any]:
        """The dataset fields of a new run (DESIGN.md, 'Pinning').

        The working files are checked against the tag first; a mismatch is refused with a
        short diff and the two ways out, unless ``allow_unpinned`` records the run UNPINNED
        (it still notes which version it claimed and what the files were)."""
        if dataset is None:
            if not allow_unpinned:
                raise InvalidInput(f"this run names no dataset version: {UNPINNED_HINT}")
            return {"dataset": None, "pinned": False, "split_digests": {}}
        version = self.dataset_version(dataset)
        where = source if source is not None else version.source
        if where is None or not Path(where).exists():
            if allow_unpinned:
                return {"dataset": dataset, "pinned": False, "split_digests": {}}
            raise InvalidInput(
                f"the dataset files of {dataset} are not at {where}: pass dataset_source= (--data) "
                f"with their location, or {UNPINNED_HINT}"
            )
        working = self.fingerprint(where)
        if working.digest == version.digest:
            return {"dataset": dataset, "pinned": True, "split_digests": pinned_digests(version)}
        if allow_unpinned:
            return {
                "dataset": dataset,
                "pinned": False,
                "split_digests": {"working": working.digest, **working.split_digests},
            }
        from trialbook.datasets import diff_manifests

        d = diff_manifests(self.manifest(version), working)
        raise InvalidInput(
            f"the files at {where} no longer match {dataset} (version {version.digest[:12]}; the "
            f"working files are {working.short}):\n{d.short_text()}\nEither tag them as a new "
            f"version (`trialbook data tag {version.name} {where} --tag NEW`) and start the run on "
            f"it, or pass allow_unpinned=True (--allow-unpinned) to record the run as UNPINNED"
        )


class StartPlan(NamedTuple):
    """What :meth:`Book.check_start` found: the run to resume (or None for a new one), the
    parent's id, and the dataset fields of a new run."""

    existing: RunRecord | None
    parent_id: str | None
    pin: dict[str, Any]
    checked_online: bool = False  # a remote book: checked against the server's project
    project_known: bool = False  # the project is in the book already


def _artifact(run_id: str, name: str, digest: str, size: int, evaluation_id: str | None = None) -> Artifact:
    from trialbook.core.entities import Artifact

    return Artifact(
        id=_new_id(),
        run_id=run_id,
        name=name,
        digest=digest,
        size=size,
        created_at=time.time(),
        evaluation_id=evaluation_id,
    )


def pinned_digests(version: DatasetVersion) -> dict[str, str]:
    """The split digests a run pinned to ``version`` records: the version's own digest as
    ``dataset`` and each split's."""
    splits = {
        s: info["digest"]
        for s, info in version.splits.items()
        if isinstance(info, dict) and info.get("digest")
    }
    return {"dataset": version.digest, **splits}


# --------------------------------------------------------------------------- live runs
_open_runs: weakref.WeakSet[Run] = weakref.WeakSet()


class RunHandle:
    """A recorded run: add evaluations, artifacts and its note. ``Book.attach`` returns one
    for a run that already exists (its status does not change); ``Run`` is the live kind."""

    def __init__(self, book: Book, record: RunRecord) -> None:
        self.book = book
        self.record = record

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def project(self) -> str:
        return self.record.project

    def __repr__(self) -> str:
        return f"<trialbook.{type(self).__name__} {self.project}/{self.name} ({self.id[:8]})>"

    def log_eval(
        self,
        split: str,
        metrics: Mapping[str, Any] | None = None,
        *,
        per_class_ap: Mapping[str, Any] | None = None,
        confusion_matrix: Sequence[Sequence[float]] | None = None,
        class_names: Sequence[str] | None = None,
        latency_ms: float | None = None,
        device: str | None = None,
    ) -> Evaluation:
        """Record an evaluation of this run's weights on one split of its dataset version.

        Test-split evaluations are sealed: no list, compare, export or API shows their
        numbers; only a decision reveals them.
        """
        from trialbook.core.entities import SPLITS, Evaluation

        if split not in SPLITS:
            raise InvalidInput(f"log_eval: unknown split {split!r}; use one of {', '.join(SPLITS)}")
        checked = check_evaluation(metrics, per_class_ap, confusion_matrix, class_names, latency_ms, device)
        evaluation = Evaluation(
            id=_new_id(),
            run_id=self.id,
            split=split,
            sealed=split == "test",
            created_at=time.time(),
            metrics=checked.metrics,
            per_class_ap=checked.per_class_ap,
            confusion_matrix=checked.confusion_matrix,
            class_names=checked.class_names or None,
            latency_ms=checked.latency_ms,
            device=checked.device,
            split_digest=self.record.split_digests.get(split),
        )
        return self._add_evaluation(evaluation)

    def _add_evaluation(self, evaluation: Evaluation) -> Evaluation:
        if self.book.outbox is None:
            return self.book.store.add_evaluation(evaluation)
        self.book._record("evaluation", self.id, evaluation.id, evaluation)
        return evaluation

    def log_latency(
        self,
        device: str,
        timings_ms: Sequence[float],
        *,
        imgsz: int | None = None,
        fmt: str = "torch",
        warmup: int = 0,
    ) -> Evaluation:
        """Record a latency measurement of this run's weights on ``device`` (the name of the
        target machine, as the protocol names it): one prediction per timing, batch 1.

        It is kept as an evaluation of kind ``"latency"`` (no split, never sealed) with
        ``latency/p50_ms``, ``latency/p95_ms``, ``latency/mean_ms``, ``latency/iters`` and
        the settings; its ``latency_ms`` is the median (p50), which the latency gate uses."""
        from trialbook.core.entities import LATENCY, Evaluation

        device = (device or "").strip()
        if not device:
            raise InvalidInput("log_latency: name the device the latency was measured on (e.g. jetson-orin)")
        samples = [float(t) for t in timings_ms]
        if not samples or any(not math.isfinite(t) or t < 0 for t in samples):
            raise InvalidInput("log_latency: timings_ms must be one or more finite numbers >= 0")
        p50, p95 = metric_rules.percentile(samples, 50), metric_rules.percentile(samples, 95)
        metrics: dict[str, Any] = {
            "latency/p50_ms": p50,
            "latency/p95_ms": p95,
            "latency/mean_ms": sum(samples) / len(samples),
            "latency/iters": float(len(samples)),
            "latency/warmup": float(warmup),
        }
        if imgsz is not None:
            metrics["latency/imgsz"] = float(imgsz)
        checked = check_evaluation(metrics, None, None, None, p50, device)
        evaluation = Evaluation(
            id=_new_id(),
            run_id=self.id,
            split=LATENCY,
            sealed=False,
            created_at=time.time(),
            metrics={**checked.metrics, f"latency/format_{fmt}": 1.0},
            per_class_ap={},
            confusion_matrix=None,
            class_names=None,
            latency_ms=checked.latency_ms,
            device=checked.device,
            split_digest=None,
        )
        return self._add_evaluation(evaluation)

    def log_artifact(
        self,
        path: str | os.PathLike[str],
        name: str | None = None,
        *,
        evaluation: Evaluation | str | None = None,
        blobs: Sequence[str | os.PathLike[str]] = (),
    ) -> Artifact:
        """Store a file (weights, plots) once by content hash and attach it to the run.

        ``evaluation``: the evaluation (or its id) the file belongs to, its plots or its
        predictions; the file of a sealed (test) evaluation is sealed with it. ``blobs``:
        files the artifact refers to by digest (a predictions file's thumbnails), stored
        before it. With a remote book the bytes are copied beside the outbox and uploaded
        in the background, before the reference (offline: by ``trialbook sync`` later)."""
        if self.book.blobs is None:
            raise InvalidInput(
                f"{self.book.uri} keeps no artifact files: set TRIALBOOK_ARTIFACTS to a folder"
            )
        label = check_name("artifact name", name if name is not None else Path(path).name)
        if label in (".", "..") or "\\" in label:
            raise InvalidInput(f"artifact name {label!r} must be a plain file name (no '..', '/' or '\\')")
        evaluation_id = evaluation if isinstance(evaluation, str) or evaluation is None else evaluation.id
        if evaluation_id is not None:
            check_name("evaluation id", evaluation_id)
        if self.book.outbox is None:
            for extra in blobs:
                self.book.blobs.put_file(extra)
            digest, size = self.book.blobs.put_file(path)
            return self.book.store.add_artifact(_artifact(self.id, label, digest, size, evaluation_id))
        # A remote book: the bytes are copied beside the outbox (quick, and safe from a
        # file the training rewrites, like last.pt) and the uploader sends them before the
        # reference, so log_artifact never waits for the network, the server or its store.
        outbox = self.book.outbox
        extras = [[d, str(k)] for d, _, k in (outbox.keep_bytes(Path(b), sync=False) for b in blobs)]
        digest, size, kept = outbox.keep_bytes(Path(path))
        artifact = _artifact(self.id, label, digest, size, evaluation_id)
        payload = dataclasses.asdict(artifact)
        payload[LOCAL_BYTES] = str(kept)
        if extras:
            payload[EXTRA_BYTES] = extras
        self.book._record("artifact", self.id, payload["id"], payload)
        return artifact

    def note(
        self,
        hypothesis: str | None = None,
        change: str | None = None,
        result: str | None = None,
        next: str | None = None,
        text: str | None = None,
    ) -> Note:
        """Write (part of) the run's one-paragraph note; earlier versions are kept."""
        from trialbook.core.entities import Note

        fields = check_note_fields(
            {"hypothesis": hypothesis, "change": change, "result": result, "next": next, "text": text}
        )
        if self.book.outbox is None:
            return self.book.store.set_note(self.id, fields, who=settings.who())
        # a remote book: the server numbers the version on upload (0 until then)
        payload = {"run_id": self.id, "fields": dict(fields), "who": settings.who()}
        self.book._record("note", self.id, _new_id(), payload)
        return Note(run_id=self.id, updated_at=time.time(), **{k: str(v) for k, v in fields.items()})  # type: ignore[arg-type]


class Run(RunHandle):
    """A run being recorded. Use as a context manager, or call ``finish()``."""

    def __init__(
        self,
        book: Book,
        record: RunRecord,
        *,
        flush_interval: float = 0.5,
        last_epoch: int | None = None,
        system_metrics: bool | None = None,
    ) -> None:
        super().__init__(book, record)
        self.last_epoch = last_epoch
        self._queue: collections.deque[tuple[int, dict[str, float]]] = collections.deque()
        self._flush_interval = flush_interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._flush_lock = threading.RLock()  # re-entered by a SIGTERM that lands mid-flush
        self._finished = False
        self._warned: set[str] = set()
        self._last_beat = 0.0
        # system/ series (trialbook.system): log() notes where each epoch ended, the writer samples
        self._epoch_ends: collections.deque[tuple[int, float]] = collections.deque()
        system = settings.system_metrics() if system_metrics is None else system_metrics
        self._marked = -1 if system else metric_rules.MAX_EPOCH  # off: never marks
        self._started = time.perf_counter()
        _install_exit_hooks()
        self._writer = threading.Thread(target=self._write_loop, name=f"trialbook-{record.name}", daemon=True)
        self._writer.start()
        _open_runs.add(self)

    @classmethod
    def _resume(
        cls, book: Book, record: RunRecord, *, flush_interval: float, system_metrics: bool | None = None
    ) -> Run:
        now = time.time()
        book.store.set_run_status(record.id, "running", ended_at=None, heartbeat_at=now)
        summaries = book.store.get_summaries([record.id])[record.id]
        last = max((s.final_epoch for s in summaries.values() if s.final_epoch is not None), default=None)
        if book.outbox is not None:  # idle heartbeats for a resumed remote run too
            book.outbox.track(book.uri, record.id)
        return cls(
            book,
            book.store.get_run_by_id(record.id),
            flush_interval=flush_interval,
            last_epoch=last,
            system_metrics=system_metrics,
        )

    # logging --------------------------------------------------------------------------
    def log(self, metrics: Mapping[str, Any], *, epoch: int) -> None:
        """Queue one epoch's scalars. Returns at once; a background thread writes them.

        Raises ``InvalidInput`` naming the key and epoch for anything no backend can
        store: a non-numeric, infinite or float-overflowing value, an epoch outside
        ``[0, 2**31 - 1]``, a key over 250 characters or holding a NUL or a character
        UTF-8 cannot encode. NaN is stored and flagged. Logging one (key, epoch) twice
        keeps the last value.
        """
        if self._finished:
            raise TrialbookError(f"run {self.name!r} is finished; start or resume it to log more")
        epoch = metric_rules.check_epoch(epoch)
        clean = metric_rules.check_metrics(metrics, epoch=epoch)
        if clean:
            self._queue.append((epoch, clean))
            if len(self._queue) >= 10_000:
                self._wake.set()
        if self.last_epoch is None or epoch > self.last_epoch:
            self.last_epoch = epoch
        if epoch > self._marked:  # the first log of a new epoch: that epoch ended (system.py)
            self._marked = epoch
            self._epoch_ends.append((epoch, time.perf_counter()))

    # writing ---------------------------------------------------------------------------
    def _warn_once(self, what: str, message: str) -> None:
        if what not in self._warned:
            self._warned.add(what)
            warnings.warn(f"trialbook: {message}", TrackingWarning, stacklevel=3)

    def flush(self) -> None:
        """Write every queued point now (the writer thread also does this on its own).

        When the store refuses the batch, its epochs are written one by one: the ones it
        refuses are set aside (kept in the spool's rejected file, counted on the run,
        with a warning) and the rest are written, so one bad point never holds up the
        others. When the store cannot be reached, everything stays queued and the error
        is raised (the writer thread retries)."""
        self._flush()

    def _flush(self, ending: RunEnding | None = None) -> bool:
        """``flush``; with ``ending`` (a local book) the run's end is written in the
        transaction of its last points. Returns whether it was (not when the store
        refused the batch and its epochs went one by one: the caller sets it then)."""
        with self._flush_lock:
            if self.book.outbox is not None:
                self._flush_to_outbox(self.book.outbox)
                return False
            taken = _drain(self._queue)
            now = time.time()
            if not taken and ending is None and now - self._last_beat < HEARTBEAT_INTERVAL_S:
                return False
            try:
                self.book.store.log_batch(self.id, _batch(taken), heartbeat_at=now, ending=ending)
            except (InvalidInput, Conflict, NotFound):
                self._write_one_by_one(taken, now)
                return False
            except Exception as exc:
                self._queue.extendleft(reversed(taken))
                message = f"writing metrics of run {self.name!r} failed ({exc}); the points stay queued"
                self._warn_once("store", message + " and are retried")
                raise
            self._last_beat = now
            return ending is not None

    def _flush_to_outbox(self, outbox: Outbox) -> None:
        """A remote book: the queued points go to the outbox in one transaction (the
        uploader sends them); a fault of the outbox file keeps them queued."""
        taken = _drain(self._queue)
        if not taken:
            return
        try:
            outbox.add_points(self.book.uri, self.id, taken)
        except Exception as exc:
            self._queue.extendleft(reversed(taken))
            self._warn_once(
                "outbox", f"writing points of run {self.name!r} to the outbox failed ({exc}); retried"
            )
            raise
        up = self.book.uploader()
        if up is not None:
            up.wake()

    def _write_one_by_one(self, taken: list[tuple[int, dict[str, float]]], now: float) -> None:
        refused: list[tuple[int, dict[str, float]]] = []
        reasons: list[str] = []
        for i, item in enumerate(taken):
            try:
                self.book.store.log_batch(self.id, _batch([item]), heartbeat_at=now)
            except (InvalidInput, Conflict, NotFound) as exc:
                refused.append(item)
                reasons.append(str(exc))
            except Exception:
                self._queue.extendleft(reversed(taken[i:]))
                raise
        if refused:
            self._set_aside(refused, reasons[0])

    def _set_aside(self, refused: list[tuple[int, dict[str, float]]], reason: str) -> None:
        """Points the store refused: kept in the rejected spool file, counted on the run."""
        points = sum(len(v) for _, v in refused)
        try:
            spool.append(self.id, refused, reason=reason, rejected=True)
            where = f"kept in {spool.path_of(self.id, rejected=True)}"
        except OSError as exc:
            where = f"and could not be kept ({exc.strerror or exc}): they are lost"
        with contextlib.suppress(Exception):
            self.book.store.count_unwritten(self.id, points)
        warnings.warn(
            f"trialbook: the store refused {points} points of run {self.name!r} ({reason}); the other points "
            f"were written; the refused ones are {where}",
            TrackingWarning,
            stacklevel=3,
        )

    def _write_loop(self) -> None:
        sampler = self._system_sampler()
        while not self._stop.is_set():
            self._wake.wait(self._flush_interval)
            self._wake.clear()
            if self._stop.is_set():  # finish writes what is queued, with the run's end
                break
            self._sample_system(sampler)
            with contextlib.suppress(Exception):
                self.flush()
        self._sample_system(sampler)  # the epochs logged just before finish (it flushes them)

    def _system_sampler(self) -> Any:
        """The run's ``system.Sampler``, made here in the writer thread (it imports psutil
        and NVML); None when ``TRIALBOOK_SYSTEM_METRICS`` is off."""
        if self._marked == metric_rules.MAX_EPOCH:
            return None
        from trialbook import system

        try:
            return system.Sampler(
                self._started, lambda why: self._warn_once(why, f"run {self.name!r}: {why}")
            )
        except Exception:  # only a warning made an error (-W error): no system/ series
            self._marked = metric_rules.MAX_EPOCH
            return None

    def _sample_system(self, sampler: Any) -> None:
        """Queue the ``system/`` points of the epochs that ended (the sampler never raises
        but through a warning made an error)."""
        if sampler is not None:
            with contextlib.suppress(Exception):
                self._queue.extend(sampler.tick(self._epoch_ends))

    def finish(self, status: str = "finished", *, reason: str | None = None) -> None:
        """Write what is queued and mark the run ``finished`` (or ``failed``, with
        ``reason`` saying why). Points that cannot be written now go to the spool,
        written to the book later (``trialbook sync``, or the next open)."""
        with self._flush_lock:
            if self._finished:
                return
            self._finished = True
        self._stop.set()
        self._wake.set()
        if self._writer is not threading.current_thread():
            self._writer.join()
        if self.book.outbox is not None:
            try:
                self.flush()
            except Exception as exc:
                self._spool_queue(exc)
            self._finish_remote(status, reason)
            return
        # the last points and the run's end in one transaction (one commit, not two)
        from trialbook.core.entities import RunEnding

        try:
            ended = self._flush(RunEnding(status, ended_at=time.time(), reason=reason))
        except Exception as exc:
            self._spool_queue(exc)
            ended = False
        try:
            if not ended:
                self.book.store.set_run_status(
                    self.id, status, ended_at=time.time(), heartbeat_at=time.time(), end_reason=reason
                )
        except Exception as exc:
            warnings.warn(
                f"trialbook: could not mark run {self.name!r} {status}: {exc}", TrackingWarning, stacklevel=2
            )
        _open_runs.discard(self)

    def _finish_remote(self, status: str, reason: str | None) -> None:
        """A remote book: the ending goes to the outbox, and the uploader gets
        ``settings.upload_grace_s()`` to send what waits of the run (less when the server
        cannot be reached); the rest stays in the outbox."""
        now = time.time()
        ending = {
            "run_id": self.id,
            "status": status,
            "ended_at": now,
            "heartbeat_at": now,
            "end_reason": reason,
        }
        try:
            self.book._record("status", self.id, _new_id(), ending)
        except Exception as exc:
            warnings.warn(
                f"trialbook: could not keep the ending of run {self.name!r} ({status}): {exc}",
                TrackingWarning,
                stacklevel=3,
            )
        _open_runs.discard(self)
        up = self.book.uploader()
        if up is None:
            return
        left = up.drain(self.id, self.book.upload_grace_s)
        if left:
            warnings.warn(
                f"trialbook: {left} writes of run {self.name!r} are not uploaded yet; they stay in the "
                f"outbox {settings.outbox_path()} and are sent by the next run against {self.book.uri} or "
                "by `trialbook sync`",
                TrackingWarning,
                stacklevel=3,
            )

    def _spool_queue(self, exc: BaseException) -> None:
        """Last resort on finish: the queued points go to the spool, replayed later."""
        items = _drain(self._queue)
        try:
            points = spool.append(self.id, items)
        except OSError as err:
            points = sum(len(v) for _, v in items)
            message = f"and could not be spooled either ({err.strerror or err}): {points} points are lost"
        else:
            message = (
                f"{points} points were saved to {spool.path_of(self.id)}; `trialbook sync` (or the next "
                "open of the book) writes them"
            )
        with contextlib.suppress(Exception):
            self.book.store.count_unwritten(self.id, points)
        warnings.warn(
            f"trialbook: could not write the last points of run {self.name!r} ({exc}), {message}",
            TrackingWarning,
            stacklevel=3,
        )

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None or (isinstance(exc, SystemExit) and exc.code in (None, 0)):
            self.finish("finished")
        else:
            self.finish("failed", reason=ending_of(exc))


def _drain(queue: collections.deque[tuple[int, dict[str, float]]]) -> list[tuple[int, dict[str, float]]]:
    """Take what is in ``queue`` now, leaving what the training thread appends meanwhile
    (``list`` then ``clear`` would drop a point appended between the two)."""
    return [queue.popleft() for _ in range(len(queue))]


def _batch(items: Sequence[tuple[int, Mapping[str, float]]]) -> dict[str, dict[int, float]]:
    """Queued ``(epoch, {key: value})`` items as the store's ``{key: {epoch: value}}``
    (a later log of the same epoch wins)."""
    batch: dict[str, dict[int, float]] = {}
    for epoch, values in items:
        for k, v in values.items():
            series = batch.get(k)
            if series is None:
                series = batch[k] = {}
            series[epoch] = v
    return batch


def ending_of(exc: BaseException) -> str:
    """Why a run ended with ``exc``, in a few words."""
    if isinstance(exc, SystemExit):
        return f"exit code {exc.code}"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl+C)"
    return f"{type(exc).__name__}: {exc}"[:500]


# --------------------------------------------------------------------------- process exit
_exit_code: list[object] = []  # what the script passed to sys.exit, once it did
_hooks_installed = False


def _install_exit_hooks() -> None:
    """Once per process, when the first run starts: remember the code a script gives to
    ``sys.exit`` (so a run left open by ``sys.exit(3)`` ends ``failed``), and on SIGTERM
    (SLURM, Kubernetes, docker stop) write and mark every open run before the signal's
    own action (the previous handler, or the default: the process ends)."""
    global _hooks_installed
    if _hooks_installed:
        return
    import signal  # here, not with ``import trialbook``

    _hooks_installed = True
    real_exit = sys.exit

    def exit_hook(code: object = None) -> NoReturn:
        _exit_code[:] = [code]
        real_exit(code)  # type: ignore[arg-type]

    sys.exit = exit_hook
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set from the main thread
    previous = signal.getsignal(signal.SIGTERM)
    if previous is signal.SIG_IGN:
        return

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        for run in list(_open_runs):
            run.finish("failed", reason="killed by SIGTERM")
        if callable(previous):
            previous(signum, frame)
            return
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_sigterm)


@atexit.register
def _finish_open_runs() -> None:
    """A script that never finished its run: finish it on interpreter exit, ``failed``
    if the interpreter is exiting on an uncaught exception or a non-zero ``sys.exit``."""
    uncaught = getattr(sys, "last_value", None)
    code = _exit_code[0] if _exit_code else None
    for run in list(_open_runs):
        if uncaught is not None:
            run.finish("failed", reason=ending_of(uncaught))
        elif code not in (None, 0):
            run.finish("failed", reason=f"exit code {code}")
        else:
            run.finish("finished")


# --------------------------------------------------------------------------- module API
def init(path: str | os.PathLike[str] = ".") -> Book:
    """Create ``<path>/.trialbook/`` (idempotent) and return the book."""
    folder = Path(path) / BOOK_DIR
    folder.mkdir(parents=True, exist_ok=True)
    return Book.open(str(folder), create=True)


def start(
    project: str,
    name: str,
    *,
    dataset: str | None = None,
    parent: str | None = None,
    config: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    resume: bool | str = False,
    allow_unpinned: bool = False,
    dataset_source: str | os.PathLike[str] | None = None,
    uri: str | None = None,
    flush_interval: float = 0.5,
    offline: bool = False,
    system_metrics: bool | None = None,
) -> Run:
    """Start a run in the book found from the current folder (or ``uri``).

    With a remote book, ``offline=True`` (or ``TRIALBOOK_OFFLINE=1``) keeps the run's
    writes in the local outbox only (``trialbook sync`` uploads them later).
    ``system_metrics=False`` (or ``TRIALBOOK_SYSTEM_METRICS=0``) records no ``system/``
    series (CPU, memory, GPU, epoch time).

    ``name`` must follow the project's naming rule (``<version>_<what_changed>``).
    ``dataset="pallets:v3"`` pins the run to a tagged version: the working files are
    checked against it first, and a mismatch is refused unless ``allow_unpinned=True``,
    which records the run as UNPINNED. ``resume=True`` continues a run of that name that
    crashed, failed or was killed (re-logged epochs overwrite, so no point is
    duplicated); ``run.last_epoch`` says where it stopped. A finished run is refused
    unless ``resume="reopen"``.
    """
    book = Book.open(uri, offline=offline)
    return book.start(
        project,
        name,
        dataset=dataset,
        parent=parent,
        config=config,
        tags=tags,
        resume=resume,
        allow_unpinned=allow_unpinned,
        dataset_source=dataset_source,
        flush_interval=flush_interval,
        system_metrics=system_metrics,
    )
