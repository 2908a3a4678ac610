"""The one store interface. Batch-first: single-item calls are sugar over batches."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from trialbook.core.entities import (
    Artifact,
    DatasetTag,
    DatasetVersion,
    Decision,
    Evaluation,
    Note,
    Project,
    ProtocolChange,
    RunRecord,
    RunRow,
    SeriesSummary,
)

# (key, epoch, value); a NaN value is stored and counted in SeriesSummary.nan_count.
PointTuple = tuple[str, int, float]


@dataclass(frozen=True)
class Ship:
    """One ``trialbook ship``: the run marked deployed, on a WIN decision or forced."""

    id: int
    project: str
    run_id: str
    decision_id: str | None
    forced: bool
    reason: str | None
    who: str
    at: float


@dataclass(frozen=True)
class RunsPage:
    """One page of a project's runs (``Store.runs_page``): ``total`` runs match the
    filters; ``summaries`` holds the ranking key's summary by run id (absent: no value)."""

    total: int
    runs: list[RunRecord]
    summaries: dict[str, SeriesSummary]


@dataclass(frozen=True)
class ProjectCounts:
    """Counts of one project (``Store.project_counts``)."""

    project: str
    runs: int
    running: int
    note_debt: int


@runtime_checkable
class Store(Protocol):
    """Where a book keeps its records. Implemented by ``SqlStore``.

    Every method raises ``NotFound`` / ``Conflict`` / ``InvalidInput`` from
    ``trialbook.errors``; none leaks a database exception or a row object.
    """

    uri: str

    # projects and protocol -------------------------------------------------
    def ensure_project(self, name: str) -> Project: ...
    def create_project(self, name: str) -> Project: ...
    def get_project(self, name: str) -> Project: ...
    def list_projects(self) -> list[Project]: ...
    def update_protocol(
        self, name: str, changes: Mapping[str, Any], *, reason: str | None, who: str
    ) -> Project: ...
    def protocol_history(self, name: str) -> list[ProtocolChange]: ...

    # runs -------------------------------------------------------------------
    def create_run(self, run: RunRecord) -> RunRecord: ...
    def get_run(self, project: str, name: str) -> RunRecord: ...
    def get_run_by_id(self, run_id: str) -> RunRecord: ...
    def find_runs(self, name: str) -> list[RunRecord]: ...
    def list_runs(self, project: str | None = None) -> list[RunRecord]: ...
    def run_rows(self, project: str, key: str) -> list[RunRow]: ...
    def set_run_status(
        self,
        run_id: str,
        status: str,
        *,
        ended_at: float | None = None,
        heartbeat_at: float | None = None,
    ) -> None: ...

    # metrics ------------------------------------------------------------------
    def log_batch(
        self,
        run_id: str,
        points: Sequence[PointTuple] | Mapping[str, Mapping[int, float]],
        *,
        heartbeat_at: float | None = None,
    ) -> None: ...
    def get_summaries(
        self, run_ids: Iterable[str], keys: Iterable[str] | None = None
    ) -> dict[str, dict[str, SeriesSummary]]: ...
    def get_history(self, run_ids: Iterable[str], key: str) -> dict[str, list[tuple[int, float]]]: ...
    def get_all_history(self, run_id: str) -> dict[str, list[tuple[int, float]]]: ...

    # evaluations, artifacts, notes ---------------------------------------------
    def add_evaluation(self, evaluation: Evaluation) -> Evaluation: ...
    def list_evaluations(self, run_ids: Iterable[str], *, reveal: bool = False) -> list[Evaluation]: ...
    def add_artifact(self, artifact: Artifact) -> Artifact: ...
    def list_artifacts(self, run_id: str) -> list[Artifact]: ...
    def set_note(self, run_id: str, fields: Mapping[str, str], *, who: str) -> Note: ...
    def get_notes(self, run_ids: Iterable[str]) -> dict[str, Note]: ...
    def note_history(self, run_id: str) -> list[Note]: ...

    # decisions -----------------------------------------------------------------
    def add_decision(self, decision: Decision) -> Decision: ...
    def list_decisions(self, project: str | None = None) -> list[Decision]: ...

    # the discipline: notes search, comparisons, ships ---------------------------
    def search_notes(self, text: str, *, project: str | None = None, limit: int = 50) -> list[Note]: ...
    def record_comparison(
        self, project: str, run_ids: Sequence[str], metric: str, *, exploratory: bool, who: str
    ) -> None: ...
    def first_comparison_at(self, project: str) -> float | None: ...
    def ship_run(
        self,
        project: str,
        run_id: str,
        *,
        decision_id: str | None,
        forced: bool,
        reason: str | None,
        who: str,
    ) -> Ship: ...
    def list_ships(self, project: str) -> list[Ship]: ...

    # dataset versions -----------------------------------------------------------
    def add_dataset_version(self, version: DatasetVersion) -> DatasetVersion: ...
    def get_dataset_version(self, name: str, digest: str) -> DatasetVersion: ...
    def list_dataset_versions(self, name: str | None = None) -> list[DatasetVersion]: ...
    def add_tagged_version(self, version: DatasetVersion, tag: str) -> DatasetTag: ...
    def set_tag(self, name: str, tag: str, digest: str) -> DatasetTag: ...
    def get_tag(self, name: str, tag: str) -> DatasetTag: ...
    def list_tags(self, name: str | None = None) -> list[DatasetTag]: ...

    # pages: reads shaped for the web UI and the API (one page, not the whole project) ----
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
    ) -> RunsPage: ...
    def project_counts(self, stale_before: float | None = None) -> dict[str, ProjectCounts]: ...
    def get_runs_by_name(self, project: str, names: Iterable[str]) -> list[RunRecord]: ...
    def run_names(self, run_ids: Iterable[str]) -> dict[str, str]: ...
    def child_runs(self, run_id: str) -> list[RunRecord]: ...
    def project_datasets(self, project: str) -> list[str]: ...
    def series_keys(self, run_ids: Iterable[str]) -> list[str]: ...
    def sparklines(
        self, run_ids: Iterable[str], key: str, points: int = 48
    ) -> dict[str, list[tuple[int, float]]]: ...
    def history_since(
        self,
        run_ids: Iterable[str],
        keys: Iterable[str] | None = None,
        since_epoch: int | None = None,
    ) -> dict[str, dict[str, list[tuple[int, float]]]]: ...

    def close(self) -> None: ...
