"""The store interface: where a book keeps its records, split by aggregate.

``Store`` is the whole interface; each part is a ``Protocol`` of its own, so that a
reader (or a new home, such as the HTTP remote store to come) can take one aggregate at
a time:

=================  =====================================================================
``ProjectStore``   projects and their protocol, with the protocol's audit history
``RunStore``       runs: create, look up, set status, lineage
``MetricStore``    metric points, batch-first, and the per-series summary kept on write
``RecordStore``    what is recorded about a run: evaluations, artifacts, notes
``DecisionStore``  decisions, comparisons and ships
``DatasetStore``   content-addressed dataset versions and their immutable tags
``QueryStore``     reads shaped for the UI and the API: one page, one line per run
=================  =====================================================================

The contract, for every home:

* Methods take and return entities from ``trialbook.core.entities`` (frozen
  dataclasses) and plain values; never rows, cursors or database exceptions.
* Errors are ``trialbook.errors.NotFound`` (the project, run, tag... named does not
  exist), ``Conflict`` (the request contradicts what is stored) and ``InvalidInput``
  (an argument is not acceptable); ``StorageError`` when the book cannot be read or
  written (read-only, damaged, unreachable). Every write is atomic: when it raises,
  nothing of it is stored.
* Every get-or-create (``ensure_project``, ``add_dataset_version``, ``set_tag``, a
  run's first point of a key) is safe when processes race: the losers get what the
  winner made (or ``Conflict`` when it contradicts theirs), never a database error.
* Lookups of one thing raise ``NotFound``; lookups of many (``run_ids``, ``names``) leave
  out what does not exist, and methods returning ``{run id: ...}`` hold every run id
  asked for (an empty value for an unknown one), unless the docstring says otherwise.
* "Oldest first" means by creation (or record) time; runs created at the same instant
  by id (``core.runs.run_order``).
* Batch-first: ``log_batch`` takes many points; single-point logging is sugar above it.
* Test-split evaluations are sealed: their numbers come back only with ``reveal=True``.
* The store checks references and uniqueness; the rules of the discipline (names,
  pinning, gates, the protocol's values) are checked above it, in ``services``.

``tests/store/contract/`` runs the same tests on every home.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from trialbook.core.entities import (
        Artifact,
        DatasetTag,
        DatasetVersion,
        Decision,
        Evaluation,
        Note,
        Project,
        ProjectCounts,
        ProtocolChange,
        RunEnding,
        RunRecord,
        RunRow,
        RunsPage,
        SeriesSummary,
        Ship,
    )

__all__ = [
    "DatasetStore",
    "DecisionStore",
    "MetricStore",
    "PointTuple",
    "ProjectStore",
    "QueryStore",
    "RecordStore",
    "RunStore",
    "Store",
]

# (key, epoch, value); a NaN value is stored and counted in SeriesSummary.nan_count.
PointTuple = tuple[str, int, float]


@runtime_checkable
class ProjectStore(Protocol):
    """Projects and their protocol (``core.entities.Protocol``), every change audited."""

    def ensure_project(self, name: str) -> Project:
        """The project named ``name``, created with the default protocol if there is none
        (a creation by another process meanwhile is not an error).

        Raises ``InvalidInput`` for a name that ``create_project`` refuses."""
        ...

    def create_project(self, name: str) -> Project:
        """A new project named ``name`` with the default protocol, as stored.

        Raises ``Conflict`` when the name is taken, ``InvalidInput`` unless the name is
        1 to 200 characters."""
        ...

    def get_project(self, name: str) -> Project:
        """The project named ``name``. Raises ``NotFound``."""
        ...

    def list_projects(self) -> list[Project]:
        """Every project, by name; ``[]`` for an empty book."""
        ...

    def update_protocol(
        self, name: str, changes: Mapping[str, Any], *, reason: str | None, who: str
    ) -> Project:
        """Set protocol fields of project ``name`` (``{field: new value}``; values are
        stored as given, JSON-compatible) and return the project as stored after.

        Each field whose value changes leaves one ``ProtocolChange`` (old, new, reason,
        who, one time for the whole call); a field set to its current value leaves none.
        Raises ``NotFound`` for an unknown project, ``InvalidInput`` naming any field
        that is not a ``Protocol`` field (and then changes nothing)."""
        ...

    def protocol_history(self, name: str) -> list[ProtocolChange]:
        """The protocol changes of project ``name``, in the order they were made;
        ``[]`` if never changed. Raises ``NotFound``."""
        ...


@runtime_checkable
class RunStore(Protocol):
    """Runs: names unique in a project, ids chosen by the client, status as stored
    (the status a reader sees is ``core.runs.effective_status``)."""

    def create_run(self, run: RunRecord) -> RunRecord:
        """Store a new run (its ``id`` is the client's) and return it as stored.

        Raises ``NotFound`` when ``run.project`` does not exist (create it first:
        ``ensure_project``), ``Conflict`` when the project already has a run of that
        name, or a run with that id exists."""
        ...

    def get_run(self, project: str, name: str) -> RunRecord:
        """The run ``name`` of ``project``. Raises ``NotFound`` (no such project or run)."""
        ...

    def get_run_by_id(self, run_id: str) -> RunRecord:
        """The run with id ``run_id``. Raises ``NotFound``."""
        ...

    def find_runs(self, name: str) -> list[RunRecord]:
        """The runs named ``name`` in any project (names are unique only per project), by
        project name; ``[]`` if none."""
        ...

    def list_runs(self, project: str | None = None) -> list[RunRecord]:
        """The runs of ``project`` (of every project for ``None``), oldest first.
        Raises ``NotFound`` for a project that does not exist."""
        ...

    def set_run_status(
        self,
        run_id: str,
        status: str,
        *,
        ended_at: float | None = None,
        heartbeat_at: float | None = None,
        end_reason: str | None = None,
    ) -> None:
        """Set the stored status of a run, its ``ended_at`` and ``end_reason`` (``None``
        clears them, as when a run is resumed or ends normally); ``heartbeat_at`` is set
        only when given.

        Raises ``InvalidInput`` unless ``status`` is one of ``core.entities.RUN_STATUSES``,
        ``NotFound`` for an unknown run."""
        ...

    def count_unwritten(self, run_id: str, delta: int) -> int:
        """Add ``delta`` (negative to take away) to the run's count of points known not
        to be in the book (``RunRecord.unwritten``, never below 0); return the new count.

        Raises ``NotFound`` for an unknown run."""
        ...

    def get_runs_by_name(self, project: str, names: Iterable[str]) -> list[RunRecord]:
        """The runs of ``project`` with these names, in the order given (a repeated name
        once; unknown names are left out, the caller says which). Raises ``NotFound`` for
        an unknown project."""
        ...

    def run_names(self, run_ids: Iterable[str]) -> dict[str, str]:
        """``{run id: name}`` for these ids; unknown ids are left out (not ``""``)."""
        ...

    def child_runs(self, run_id: str) -> list[RunRecord]:
        """The runs whose parent is ``run_id``, oldest first; ``[]`` if none (also for an
        unknown id)."""
        ...


@runtime_checkable
class MetricStore(Protocol):
    """Metric series: per-epoch points and the summary of each series, kept on write.

    A point is ``(key, epoch, value)``; keys, epochs and values are checked before they
    reach the store (``core.metrics.check_metrics``). Logging one (key, epoch) again keeps
    the last value. NaN is stored and comes back as NaN; it never counts as a best or
    final value. The summary of a series (``SeriesSummary``) is ``core.metrics.summarize``
    of its points, whatever the order of the batches (appends, back-fills, rewrites)."""

    def log_batch(
        self,
        run_id: str,
        points: Sequence[PointTuple] | Mapping[str, Mapping[int, float]],
        *,
        heartbeat_at: float | None = None,
        ending: RunEnding | None = None,
    ) -> None:
        """Store points of one run in one transaction: ``(key, epoch, value)`` tuples, or
        the same series-major, ``{key: {epoch: value}}`` (a key with no points adds
        nothing). Inside a batch too, the last value of a (key, epoch) wins. With
        ``heartbeat_at`` the run's heartbeat is set in the same transaction (an empty
        batch then only beats). With ``ending`` the run's status, ``ended_at`` and
        ``end_reason`` are set in the same transaction too, as ``set_run_status`` does
        (its heartbeat is ``heartbeat_at``, else ``ending.ended_at``): a run's last points
        and its end are written together or not at all.

        Raises ``NotFound`` for an unknown run (an empty batch without ``heartbeat_at``
        or ``ending`` stores nothing and checks nothing), ``InvalidInput`` for an
        ``ending`` whose status is not one of ``RUN_STATUSES``."""
        ...

    def get_summaries(
        self, run_ids: Iterable[str], keys: Iterable[str] | None = None
    ) -> dict[str, dict[str, SeriesSummary]]:
        """``{run id: {key: summary}}`` of these runs' series (of ``keys`` only, when
        given). Every id asked for is present; a series with no points is absent."""
        ...

    def get_history(self, run_ids: Iterable[str], key: str) -> dict[str, list[tuple[int, float]]]:
        """``{run id: [(epoch, value), ...]}`` of series ``key``, by epoch. Every id asked
        for is present (``[]`` when it has no such series)."""
        ...

    def get_all_history(self, run_id: str) -> dict[str, list[tuple[int, float]]]:
        """``{key: [(epoch, value), ...]}`` of every series of one run, by epoch; ``{}``
        for a run without points (also for an unknown id)."""
        ...

    def history_since(
        self,
        run_ids: Iterable[str],
        keys: Iterable[str] | None = None,
        since_epoch: int | None = None,
    ) -> dict[str, dict[str, list[tuple[int, float]]]]:
        """``{run id: {key: [(epoch, value), ...]}}`` of the points after ``since_epoch``
        (every point for ``None``) of ``keys`` (every key for ``None``), by epoch. Every id
        asked for is present; a key with no such points is absent."""
        ...


@runtime_checkable
class RecordStore(Protocol):
    """What is recorded about a run besides its metrics: evaluations (test ones sealed),
    artifacts (names and digests; the bytes live in the book's blob folder,
    ``store.registry.OpenedBook.blob_dir``) and the note, every version kept."""

    def add_evaluation(self, evaluation: Evaluation) -> Evaluation:
        """Store an evaluation and return it as given. NaN metric and per-class values are
        stored as ``None`` (JSON has no NaN).

        Raises ``NotFound`` for an unknown run, ``Conflict`` for an id already used."""
        ...

    def list_evaluations(self, run_ids: Iterable[str], *, reveal: bool = False) -> list[Evaluation]:
        """The evaluations of these runs, oldest first. A sealed (test) evaluation comes
        back without its numbers (``metrics`` and ``per_class_ap`` empty,
        ``confusion_matrix`` and ``latency_ms`` ``None``) unless ``reveal`` is true,
        which only a decision passes. Unknown run ids contribute nothing."""
        ...

    def add_artifact(self, artifact: Artifact) -> Artifact:
        """Record an artifact of a run and return it as given (the bytes are stored by the
        caller under ``artifact.digest``).

        Raises ``NotFound`` for an unknown run, ``Conflict`` for an id already used."""
        ...

    def list_artifacts(self, run_id: str, *, reveal: bool = False) -> list[Artifact]:
        """The artifacts of a run, oldest first; ``[]`` if none (also for an unknown id).
        The files of a sealed evaluation (``evaluation_id`` naming a test evaluation) are
        left out unless ``reveal`` is true, like that evaluation's numbers."""
        ...

    def set_note(self, run_id: str, fields: Mapping[str, str], *, who: str) -> Note:
        """Set some fields of a run's note (the others keep their text) and return the
        note as stored: a new version (1 for the first), kept in ``note_history``.

        Raises ``InvalidInput`` for a field that is not hypothesis, change, result, next
        or text, or a value that is not a string; ``NotFound`` for an unknown run."""
        ...

    def get_notes(self, run_ids: Iterable[str]) -> dict[str, Note]:
        """``{run id: note}``, the current version; a run without a note is absent."""
        ...

    def note_history(self, run_id: str) -> list[Note]:
        """Every version of a run's note, oldest first (``updated_at`` is when that
        version was written); ``[]`` if it never had one."""
        ...

    def search_notes(self, text: str, *, project: str | None = None, limit: int = 50) -> list[Note]:
        """The current notes (of ``project``'s runs, when given) holding every word of
        ``text`` in any field, best match first, at most ``limit`` (taken between 1 and
        1000). Words match by their stem (``pallet`` finds ``pallets``); punctuation and
        search operators in ``text`` are plain text, never syntax.

        Raises ``InvalidInput`` when ``text`` has no words, ``NotFound`` for an unknown
        project."""
        ...


@runtime_checkable
class DecisionStore(Protocol):
    """Decisions (immutable once added), the comparisons made on a project, and ships."""

    def add_decision(
        self, decision: Decision, *, reveal_budget: int | None = None, evidence: str | None = None
    ) -> Decision:
        """Store a decision and return it as given. Decisions are never changed.

        Decisions are stored one at a time (one serialised transaction each: on SQLite the
        writer's ``BEGIN IMMEDIATE``, on PostgreSQL a transaction-level advisory lock).
        With ``reveal_budget`` (the deciding project's ``Protocol.test_budget``), a
        decision that reveals the test numbers (``decision.revealed``) is stored only if
        the reveals already stored on its test split, counted in that same transaction
        by the rule of ``core.discipline.reveals_used``, are fewer than the budget; so two
        decisions made at once can never both spend the last reveal. A decision that
        reveals nothing is not counted, nor checked.

        With ``evidence`` (``core.gates.evidence_digest`` of what the gates read), when
        the project already has a decision stored with that evidence (looked up in the
        same transaction, before the budget is checked), nothing is stored and that
        decision is returned (the oldest, if several): the caller tells by its ``id``.
        Without it the decision is stored with no evidence, and never found by one.

        Raises ``NotFound`` for an unknown project, ``Conflict`` for an id already used or
        a budget spent meanwhile (nothing is stored: the caller decides again with the
        fresh count, and the split is then burned)."""
        ...

    def list_decisions(self, project: str | None = None) -> list[Decision]:
        """The decisions of ``project`` (of every project for ``None``), oldest first
        (by ``at``); ``[]`` also for a project that does not exist."""
        ...

    def find_decision(self, project: str, evidence: str) -> Decision | None:
        """The decision of ``project`` stored with ``evidence`` (the oldest, if several);
        ``None`` when there is none. Raises ``NotFound`` for an unknown project."""
        ...

    def record_comparison(
        self, project: str, run_ids: Sequence[str], metric: str, *, exploratory: bool, who: str
    ) -> None:
        """Remember that runs of ``project`` were compared on ``metric`` now (exploratory:
        on another metric than the protocol's). Raises ``NotFound``."""
        ...

    def first_comparison_at(self, project: str) -> float | None:
        """When runs of ``project`` were first compared not exploratorily; ``None`` if
        never. Raises ``NotFound``."""
        ...

    def ship_run(
        self,
        project: str,
        run_id: str,
        *,
        decision_id: str | None,
        forced: bool,
        reason: str | None,
        who: str,
    ) -> Ship:
        """Make ``run_id`` the project's shipped run (``Project.shipped_run_id``) and
        return the new ``Ship``; earlier ships stay in ``list_ships``.

        Raises ``NotFound`` for an unknown project or a run not in it."""
        ...

    def list_ships(self, project: str) -> list[Ship]:
        """Every ship of ``project``, oldest first (the last is the shipped run); ``[]``
        if none. Raises ``NotFound``."""
        ...


@runtime_checkable
class DatasetStore(Protocol):
    """Dataset versions, identified by (name, digest), and tags ``name:tag`` bound to
    one digest for good."""

    def add_dataset_version(self, version: DatasetVersion) -> DatasetVersion:
        """Record a version and return the one stored: recording a (name, digest) again
        is a no-op that returns the first record."""
        ...

    def get_dataset_version(self, name: str, digest: str) -> DatasetVersion:
        """The version of dataset ``name`` whose digest is ``digest`` or starts with it.
        Raises ``NotFound`` when none does, or when the prefix fits several."""
        ...

    def list_dataset_versions(self, name: str | None = None) -> list[DatasetVersion]:
        """The versions of dataset ``name`` (of every dataset for ``None``), by name, then
        oldest first."""
        ...

    def add_tagged_version(self, version: DatasetVersion, tag: str) -> DatasetTag:
        """``add_dataset_version`` and ``set_tag`` in one transaction: when the tag is
        refused (``Conflict``), the version is not recorded either."""
        ...

    def tag_version(self, version: DatasetVersion, tag: str) -> tuple[DatasetTag, bool]:
        """``add_tagged_version``, and whether this call bound the tag: of processes
        tagging one version with one tag at once, one gets ``True`` and the others
        ``(the same tag, False)``; those tagging other content get ``Conflict``."""
        ...

    def set_tag(self, name: str, tag: str, digest: str) -> DatasetTag:
        """Bind ``name:tag`` to ``digest`` and return the tag. Tags never move: binding the
        digest it already has is a no-op; another one raises ``Conflict`` naming the bound
        digest. (The digest is not checked against the recorded versions.)"""
        ...

    def get_tag(self, name: str, tag: str) -> DatasetTag:
        """The tag ``name:tag``. Raises ``NotFound``."""
        ...

    def list_tags(self, name: str | None = None) -> list[DatasetTag]:
        """The tags of dataset ``name`` (of every dataset for ``None``), by name, then
        oldest first."""
        ...


@runtime_checkable
class QueryStore(Protocol):
    """Reads shaped for pages (the web UI and the API): a project of 10,000 runs is read
    one page, or one line per run, at a time; the ranking, the filters, the counts and
    the paging are the store's. Each follows a rule of ``core`` exactly (its SQL twin is
    tested against it in ``tests/store/test_sql_twins.py``)."""

    def run_rows(self, project: str, key: str) -> list[RunRow]:
        """One line per run of ``project``, oldest first, with the summary of series
        ``key`` (``None`` values and ``count`` 0 for a run without it) and whether the
        note has text (``core.notes.has_text``). Raises ``NotFound``."""
        ...

    def runs_page(
        self,
        project: str,
        key: str,
        direction: str,
        *,
        statuses: Sequence[str] = (),
        dataset: str | None = None,
        tag: str | None = None,
        text: str | None = None,
        sort: str = "rank",
        descending: bool | None = None,
        offset: int = 0,
        limit: int = 50,
        stale_before: float | None = None,
    ) -> RunsPage:
        """One page (``offset``, ``limit``) of the runs of ``project`` that pass the
        filters, the total that pass, and the summaries of ``key`` of the page's runs.

        Filters (all must hold): ``statuses``, effective statuses
        (``core.runs.effective_status`` with ``stale_before``, ``now - timeout``; without
        it the stored status); ``dataset``, a ``NAME:TAG`` (``""``: runs with none);
        ``tag``, ``KEY`` (has the tag) or ``KEY=VALUE``; ``text``, a part of the run's
        name, case-insensitive, taken literally.

        ``sort``: ``"rank"`` ranks by the best value of ``key`` under ``direction``
        exactly as ``core.ranking.rank(..., tiebreak=core.runs.run_order)`` (``descending``
        is ignored); ``"best"`` and ``"final"`` sort by that value (``descending``
        defaults to best first / highest first), ``"epochs"`` by point count (most
        first; no points counts 0), ``"name"``, ``"created"``, ``"status"``,
        ``"dataset"`` (ascending by default). Runs without a value come last either way;
        ties oldest first.

        Raises ``InvalidInput`` for another ``sort``, a ``limit`` outside 1..500 or a
        negative ``offset``; ``NotFound`` for an unknown project."""
        ...

    def project_counts(self, stale_before: float | None = None) -> dict[str, ProjectCounts]:
        """``{project name: counts}`` of every project (an empty one too): its runs, those
        whose effective status is running (``stale_before`` as in ``runs_page``) and its
        finished runs in note debt (``core.notes.note_debt``)."""
        ...

    def project_datasets(self, project: str) -> list[str]:
        """The dataset references (``NAME:TAG``) the runs of ``project`` name, sorted,
        each once. Raises ``NotFound``."""
        ...

    def series_keys(self, run_ids: Iterable[str]) -> list[str]:
        """The metric keys any of these runs logged a point of, sorted; ``[]`` for none."""
        ...

    def sparklines(
        self, run_ids: Iterable[str], key: str, points: int = 48
    ) -> dict[str, list[tuple[int, float]]]:
        """``{run id: [(epoch, value), ...]}``: about ``points`` to ``2 * points`` points of
        each run's series ``key``, evenly spaced by epoch, always with its last epoch, by
        epoch (NaN stays NaN). Every id asked for is present."""
        ...


@runtime_checkable
class Store(
    ProjectStore, RunStore, MetricStore, RecordStore, DecisionStore, DatasetStore, QueryStore, Protocol
):
    """One book's records: every aggregate's interface, plus where it is and ``close``.

    Open one with ``trialbook.store.open_store(uri)`` (or ``open_book(uri)``, which also
    says where the book keeps artifact bytes and its caches). Implemented by
    ``store.sql.store.SqlStore`` (SQLite, PostgreSQL)."""

    uri: str
    """The book's URI as given to ``open_store`` (the book's folder for a folder URI)."""

    @property
    def read_only(self) -> bool:
        """Whether this process can only read the book (an embedded book in a folder or
        file it may not write). Reads work as usual; every write raises ``StorageError``
        ("the book at X is read-only"), so a command that only records on the side (a
        compare) should skip that record when this is true."""
        ...

    def transaction(self) -> AbstractContextManager[None]:
        """A block whose writes are all kept or none: inside it every write of the store
        joins one transaction, rolled back when the block raises (an import writes a run,
        its points, artifacts and note this way). Blocks nest."""
        ...

    def close(self) -> None:
        """Release the store's connections. The store is not used after."""
        ...
