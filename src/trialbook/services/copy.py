"""Copy a whole book into another (``trialbook sync --from BOOK``): a team starts its
server from what one person has.

Everything goes through the ``Store`` interface and the books' blob stores, so the target
may be any book (a server's, over ``store.remote.RemoteStore``, or an embedded one).
What is copied, in this order: dataset versions (their manifests uploaded as blobs and
verified) and tags; projects with their protocol, its history and the first comparison;
runs (same ids, parents first) with their metric points, evaluations, artifacts (bytes
uploaded through the target's blob store, verified by hash) and every note version;
decisions (same ids) and ships.

Idempotent. Everything a client names by id (runs, evaluations, artifacts, decisions)
is written under that id, so "already there" is a ``Conflict`` taken for what it is;
points are keyed by (run, key, epoch) with the last value winning; dataset versions and
tags are get-or-create. What is only appended (protocol changes, note versions, ships) is
written in one store transaction with something that has an id: a new project's history
with ``create_project``, a new run's note versions with ``create_run``, ships with the
decisions they come with. Of two copies at once, one commits that transaction and the
other's fails with ``Conflict`` as a whole and falls back to comparing what is there,
so nothing is doubled.

What the ``Store`` interface cannot carry (see ``NOT_COPIED``) is said in the result.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from trialbook import settings
from trialbook.api import Book
from trialbook.artifacts.local import hash_file
from trialbook.core import predictions
from trialbook.core.entities import (
    NOTE_TEXT_FIELDS,
    Artifact,
    DatasetVersion,
    Decision,
    Note,
    Project,
    ProtocolChange,
    RunRecord,
    Ship,
)
from trialbook.errors import Conflict, IntegrityError, InvalidInput, NotFound
from trialbook.store.base import Store

__all__ = ["KINDS", "NOT_COPIED", "CopyResult", "Counts", "Progress", "Refusal", "copy_book"]

KINDS = (
    "dataset_versions",
    "manifests",
    "tags",
    "projects",
    "protocol_changes",
    "comparisons",
    "runs",
    "points",
    "evaluations",
    "artifacts",
    "notes",
    "decisions",
    "ships",
)

NOT_COPIED = (
    "when protocol changes, note versions and ships were made, and who wrote each note version: "
    "the store stamps them when the copy writes them (update_protocol, set_note and ship_run take "
    "no time, and Note carries no author)",
    "comparisons other than the first one not exploratory (first_comparison_at is the only read)",
    "each run's count of unwritten points when the run was already on the target",
)

POINTS_PER_CALL = 50_000
Progress = Callable[[int, int, str], None]
"""``progress(done, total, what)`` after each step of the copy."""

_REFUSED = (Conflict, NotFound, InvalidInput, IntegrityError)


@dataclass
class Counts:
    copied: int = 0
    already: int = 0


@dataclass(frozen=True)
class Refusal:
    kind: str
    item: str
    reason: str


@dataclass
class CopyResult:
    """What ``copy_book`` did: per kind (``KINDS``), how many were copied and how many
    were already there; what the target refused, and why; what cannot be copied."""

    source: str
    target: str
    counts: dict[str, Counts] = field(default_factory=lambda: {k: Counts() for k in KINDS})
    refused: list[Refusal] = field(default_factory=list)
    not_copied: tuple[str, ...] = NOT_COPIED
    seconds: float = 0.0

    def copied(self, kind: str, n: int = 1) -> None:
        self.counts[kind].copied += n

    def already(self, kind: str, n: int = 1) -> None:
        self.counts[kind].already += n

    def refuse(self, kind: str, item: str, reason: str | BaseException) -> None:
        self.refused.append(Refusal(kind, item, str(reason)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "counts": {k: dataclasses.asdict(c) for k, c in self.counts.items()},
            "refused": [dataclasses.asdict(r) for r in self.refused],
            "not_copied": list(self.not_copied),
            "seconds": round(self.seconds, 3),
        }


class _Refused(Exception):
    """An item that cannot be copied; its reason."""


def copy_book(source: Book, target: Book, *, progress: Progress | None = None) -> CopyResult:
    """Copy every record of ``source`` into ``target`` (see the module docstring).

    Items the target refuses (a run name taken by another run, a tag bound to other
    content, a blob missing or damaged in the source) are listed in ``refused`` and the
    copy goes on; ``StorageError`` (a book that cannot be read or written) stops it.
    Raises ``InvalidInput`` when both are the same book."""
    if source.uri.rstrip("/") == target.uri.rstrip("/"):
        raise InvalidInput(f"--from {source.uri} is the book it would be copied into")
    started = time.perf_counter()
    result = CopyResult(source=source.uri, target=target.uri)
    src = source.store
    versions, tags = src.list_dataset_versions(), src.list_tags()
    projects, runs = src.list_projects(), _parents_first(src.list_runs())
    total = len(versions) + len(tags) + 2 * len(projects) + len(runs)
    done = 0

    def tick(what: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total, what)

    for version in versions:
        _copy_version(source, target, version, result)
        tick(f"dataset {version.name} {version.digest[:12]}")
    for t in tags:
        _copy_tag(target.store, t.name, t.tag, t.digest, result)
        tick(f"tag {t.name}:{t.tag}")
    for project in projects:
        _copy_project(src, target.store, project, result)
        tick(f"project {project.name}")
    for run in runs:
        _copy_run(source, target, run, result)
        tick(f"run {run.project}/{run.name}")
    for project in projects:
        _copy_decisions(src, target.store, project.name, result)
        tick(f"decisions of {project.name}")
    result.seconds = time.perf_counter() - started
    return result


# blobs and datasets ---------------------------------------------------------------------
def _copy_blob(source: Book, target: Book, digest: str) -> bool:
    """Upload blob ``digest`` of ``source`` into ``target``, verified; whether it was
    sent (``False``: the target had it). Raises ``_Refused``."""
    if source.blobs is None:
        raise _Refused(f"{source.uri} keeps no files (set TRIALBOOK_ARTIFACTS to where they are)")
    if target.blobs is None:
        raise _Refused(f"{target.uri} keeps no files")
    if target.blobs.exists(digest):
        return False
    path = source.blobs.path_of(digest)
    if not path.is_file():
        raise _Refused(f"blob {digest[:12]} is missing from {source.uri}")
    if hash_file(path)[0] != digest:
        raise _Refused(f"blob {path} is damaged: it no longer hashes to {digest[:12]}")
    stored, _ = target.blobs.put_file(path)
    if stored != digest:  # the file changed while it was read
        raise _Refused(f"blob {path} changed while it was uploaded")
    return True


def _thumbs_of(source: Book, artifact: Artifact) -> list[str]:
    """The thumbnails a predictions file refers to (blobs of their own); none for any
    other artifact."""
    if artifact.name != predictions.ARTIFACT_NAME or artifact.evaluation_id is None or source.blobs is None:
        return []
    try:
        return predictions.decode(source.blobs.get_bytes(artifact.digest)).thumbs
    except InvalidInput as exc:
        raise _Refused(f"{artifact.name} of the run is damaged: {exc}") from None


def _copy_version(source: Book, target: Book, version: DatasetVersion, result: CopyResult) -> None:
    item = f"{version.name} {version.digest[:12]}"
    if version.manifest_digest is not None:
        try:
            sent = _copy_blob(source, target, version.manifest_digest)
        except (_Refused, *_REFUSED) as exc:
            result.refuse("manifests", item, exc)
            return  # a version without its manifest could not be checked against: not recorded
        (result.copied if sent else result.already)("manifests")
    try:
        target.store.get_dataset_version(version.name, version.digest)
    except NotFound:
        target.store.add_dataset_version(version)  # get-or-create: a racing copy is no error
        result.copied("dataset_versions")
    else:
        result.already("dataset_versions")


def _copy_tag(dst: Store, name: str, tag: str, digest: str, result: CopyResult) -> None:
    try:
        bound = dst.get_tag(name, tag)
    except NotFound:
        try:
            dst.set_tag(name, tag, digest)
        except Conflict as exc:
            result.refuse("tags", f"{name}:{tag}", exc)
        else:
            result.copied("tags")
        return
    if bound.digest == digest:
        result.already("tags")
    else:
        result.refuse(
            "tags", f"{name}:{tag}", f"bound to {bound.digest[:12]} on the target, {digest[:12]} here"
        )


# projects -------------------------------------------------------------------------------
def _copy_project(src: Store, dst: Store, project: Project, result: CopyResult) -> None:
    name = project.name
    history = src.protocol_history(name)
    first = src.first_comparison_at(name)
    try:
        with dst.transaction():
            dst.create_project(name)
            _replay_protocol(src, dst, project, history, first)
    except Conflict:  # the project is there (made by an earlier copy, or by a run)
        _fill_project(dst, project, first is not None, result)
        return
    except (NotFound, InvalidInput) as exc:
        result.refuse("projects", name, exc)
        return
    result.copied("projects")
    result.copied("protocol_changes", len(history))
    result.copied("comparisons", int(first is not None))


def _replay_protocol(
    src: Store, dst: Store, project: Project, history: Sequence[ProtocolChange], first: float | None
) -> None:
    """The protocol changes of ``project`` in their order, one call per original call,
    and its first comparison where it came among them."""
    calls: dict[tuple[float, str | None, str], dict[str, Any]] = {}
    for change in history:
        calls.setdefault((change.at, change.reason, change.who), {})[change.field] = change.new
    compared = first is None
    for (at, reason, who), changes in sorted(calls.items(), key=lambda kv: kv[0][0]):
        if not compared and first is not None and first <= at:
            _record_first_comparison(dst, project)
            compared = True
        dst.update_protocol(project.name, changes, reason=reason, who=who)
    if not compared:
        _record_first_comparison(dst, project)


def _record_first_comparison(dst: Store, project: Project) -> None:
    dst.record_comparison(project.name, [], project.protocol.metric, exploratory=False, who=settings.who())


def _fill_project(dst: Store, project: Project, compared: bool, result: CopyResult) -> None:
    """A project already on the target: its protocol set to the source's, one audited
    change (when it differs), and a first comparison when the target has none."""
    result.already("projects")
    ours = dataclasses.asdict(project.protocol)
    theirs = dataclasses.asdict(dst.get_project(project.name).protocol)
    changes = {k: v for k, v in ours.items() if theirs.get(k) != v}
    if changes:
        dst.update_protocol(project.name, changes, reason="trialbook sync --from", who=settings.who())
        result.copied("protocol_changes", len(changes))
    if compared and dst.first_comparison_at(project.name) is None:
        _record_first_comparison(dst, project)
        result.copied("comparisons")
    elif compared:
        result.already("comparisons")


# runs -----------------------------------------------------------------------------------
def _parents_first(runs: Sequence[RunRecord]) -> list[RunRecord]:
    """The runs, oldest first, each after its parent."""
    ids = {r.id for r in runs}
    placed: set[str] = set()
    out: list[RunRecord] = []
    left = list(runs)
    while left:
        ready = [r for r in left if r.parent_id is None or r.parent_id in placed or r.parent_id not in ids]
        if not ready:  # a cycle cannot be stored; keep the order
            ready = left
        for r in ready:
            placed.add(r.id)
            out.append(r)
        left = [r for r in left if r.id not in placed]
    return out


@dataclass
class _RunParts:
    history: dict[str, list[tuple[int, float]]]
    evaluations: list[Any]
    artifacts: list[Artifact]
    notes: list[Note]


def _read_run(source: Book, target: Book, run: RunRecord, result: CopyResult) -> _RunParts:
    """A run's records in ``source``; its artifacts' bytes uploaded to ``target`` (an
    artifact whose bytes cannot be copied is refused and left out)."""
    src = source.store
    artifacts = []
    for a in src.list_artifacts(run.id, reveal=True):  # sealed files stay sealed there
        try:
            _copy_blob(source, target, a.digest)
            for thumb in _thumbs_of(source, a):
                _copy_blob(source, target, thumb)
        except (_Refused, *_REFUSED) as exc:
            result.refuse("artifacts", f"{run.project}/{run.name} {a.name}", exc)
            continue
        artifacts.append(a)
    return _RunParts(
        history=src.get_all_history(run.id),
        evaluations=src.list_evaluations([run.id], reveal=True),
        artifacts=artifacts,
        notes=src.note_history(run.id),
    )


def _copy_run(source: Book, target: Book, run: RunRecord, result: CopyResult) -> None:
    parts = _read_run(source, target, run, result)
    dst = target.store
    try:
        with dst.transaction():
            dst.create_run(run)
            for ev in parts.evaluations:
                dst.add_evaluation(ev)
            for a in parts.artifacts:
                dst.add_artifact(a)
            for note in parts.notes:
                dst.set_note(run.id, _note_fields(note), who=settings.who())
            for chunk in _point_chunks(parts.history):
                dst.log_batch(run.id, chunk)
    except _REFUSED as exc:
        _fill_run(dst, run, parts, result, exc)
        return
    result.copied("runs")
    result.copied("evaluations", len(parts.evaluations))
    result.copied("artifacts", len(parts.artifacts))
    result.copied("notes", len(parts.notes))
    result.copied("points", sum(len(p) for p in parts.history.values()))


def _fill_run(dst: Store, run: RunRecord, parts: _RunParts, result: CopyResult, why: Exception) -> None:
    """A run whose all-at-once copy was refused: already there (by id), or refused."""
    try:
        there = dst.get_run_by_id(run.id)
    except NotFound:
        result.refuse("runs", f"{run.project}/{run.name}", why)
        return
    if (there.project, there.name) != (run.project, run.name):
        result.refuse("runs", f"{run.project}/{run.name}", f"its id is {there.project}/{there.name}'s")
        return
    result.already("runs")
    if (there.status, there.ended_at, there.end_reason) != (run.status, run.ended_at, run.end_reason):
        dst.set_run_status(run.id, run.status, ended_at=run.ended_at, end_reason=run.end_reason)
    _fill_by_id("evaluations", dst.add_evaluation, parts.evaluations, run, result)
    _fill_by_id("artifacts", dst.add_artifact, parts.artifacts, run, result)
    _fill_points(dst, run.id, parts.history, result)
    _fill_note(dst, run.id, parts.notes, result)


def _fill_by_id(
    kind: str, add: Callable[[Any], Any], items: Iterable[Any], run: RunRecord, result: CopyResult
) -> None:
    for item in items:
        try:
            add(item)
        except Conflict:
            result.already(kind)
        except (NotFound, InvalidInput) as exc:
            result.refuse(kind, f"{run.project}/{run.name} {item.id}", exc)
        else:
            result.copied(kind)


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def _fill_points(
    dst: Store, run_id: str, history: Mapping[str, list[tuple[int, float]]], result: CopyResult
) -> None:
    there = {k: dict(points) for k, points in dst.get_all_history(run_id).items()}
    missing: dict[str, dict[int, float]] = {}
    for key, points in history.items():
        have = there.get(key, {})
        for epoch, value in points:
            if epoch in have and _same(have[epoch], value):
                result.already("points")
            else:
                missing.setdefault(key, {})[epoch] = value
    for chunk in _point_chunks({k: list(v.items()) for k, v in missing.items()}):
        dst.log_batch(run_id, chunk)
    result.copied("points", sum(len(v) for v in missing.values()))


def _fill_note(dst: Store, run_id: str, notes: Sequence[Note], result: CopyResult) -> None:
    """The source's current note, as one new version, when the target's differs."""
    if not notes:
        return
    current = dst.get_notes([run_id]).get(run_id)
    wanted = _note_fields(notes[-1])
    if current is not None and _note_fields(current) == wanted:
        result.already("notes", len(notes))
        return
    dst.set_note(run_id, wanted, who=settings.who())
    result.copied("notes")


def _note_fields(note: Note) -> dict[str, str]:
    return {f: getattr(note, f) for f in NOTE_TEXT_FIELDS}


def _point_chunks(
    history: Mapping[str, Sequence[tuple[int, float]]],
) -> Iterator[dict[str, dict[int, float]]]:
    chunk: dict[str, dict[int, float]] = {}
    n = 0
    for key, points in history.items():
        for epoch, value in points:
            chunk.setdefault(key, {})[epoch] = value
            n += 1
            if n == POINTS_PER_CALL:
                yield chunk
                chunk, n = {}, 0
    if chunk:
        yield chunk


# decisions and ships --------------------------------------------------------------------
def _ship_key(s: Ship) -> tuple[str, str | None, bool, str | None, str]:
    return (s.run_id, s.decision_id, s.forced, s.reason, s.who)


def _missing_ships(ours: Sequence[Ship], theirs: Sequence[Ship]) -> list[Ship]:
    """Our ships the target does not have, in order (compared by what they say)."""
    have = Counter(_ship_key(s) for s in theirs)
    out = []
    for s in ours:
        key = _ship_key(s)
        if have[key]:
            have[key] -= 1
        else:
            out.append(s)
    return out


def _ship(dst: Store, s: Ship) -> None:
    dst.ship_run(s.project, s.run_id, decision_id=s.decision_id, forced=s.forced, reason=s.reason, who=s.who)


def _copy_decisions(src: Store, dst: Store, project: str, result: CopyResult) -> None:
    decisions = src.list_decisions(project)
    ships = src.list_ships(project)
    try:
        there_ids = {d.id for d in dst.list_decisions(project)}
        missing_ships = _missing_ships(ships, dst.list_ships(project))
    except NotFound:  # the project was refused
        return
    missing = [d for d in decisions if d.id not in there_ids]
    result.already("decisions", len(decisions) - len(missing))
    result.already("ships", len(ships) - len(missing_ships))
    if not missing and not missing_ships:
        return
    try:
        with dst.transaction():  # a racing copy's commit makes this one's fail as a whole
            for d in missing:
                dst.add_decision(d, evidence=d.evidence)
            for s in missing_ships:
                _ship(dst, s)
    except _REFUSED:
        _fill_decisions(dst, project, missing, ships, len(missing_ships), result)
        return
    result.copied("decisions", len(missing))
    result.copied("ships", len(missing_ships))


def _fill_decisions(
    dst: Store,
    project: str,
    missing: Sequence[Decision],
    ships: Sequence[Ship],
    ships_missing: int,
    result: CopyResult,
) -> None:
    """One at a time, after the all-at-once copy was refused."""
    for d in missing:
        try:
            dst.add_decision(d, evidence=d.evidence)
        except Conflict:
            result.already("decisions")
        except (NotFound, InvalidInput) as exc:
            result.refuse("decisions", f"{project} {d.id}", exc)
        else:
            result.copied("decisions")
    left = _missing_ships(ships, dst.list_ships(project))
    result.already("ships", ships_missing - len(left))  # shipped meanwhile by another copy
    for s in left:
        try:
            _ship(dst, s)
        except (NotFound, InvalidInput, Conflict) as exc:
            result.refuse("ships", f"{project} {s.run_id}", exc)
        else:
            result.copied("ships")
