"""Entities: frozen dataclasses that stores return. They are never database rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# "The note has text" (``NOTE_BLANKS``, ``has_text``) is kept in ``core.text``, where the
# modules imported with trialbook read it without building these dataclasses.
from trialbook.core.text import NOTE_BLANKS as NOTE_BLANKS
from trialbook.core.text import NOTE_TEXT_FIELDS as NOTE_TEXT_FIELDS
from trialbook.core.text import has_text as has_text

RUN_STATUSES = ("running", "finished", "failed", "crashed")
SPLITS = ("train", "val", "test")
# The kind of an evaluation that is a latency measurement (``Run.log_latency``), not a split.
LATENCY = "latency"


@dataclass(frozen=True)
class Protocol:
    """How runs of a project are compared and decided on (DESIGN.md, 'protocol')."""

    metric: str = "metrics/mAP50-95(B)"
    direction: str = "max"
    noise: float = 0.005
    class_floor: float = 0.90
    latency_budget_ms: float | None = None
    device: str | None = None
    naming_pattern: str = r"^v\d+[a-z]?_[a-z0-9][a-z0-9_.\-]*$"
    test_budget: int = 5
    convergence_target: float | None = None
    # the precision at which the recall-at-precision metric is taken (metrics/R@P0.95(B))
    precision_level: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "direction": self.direction,
            "noise": self.noise,
            "class_floor": self.class_floor,
            "latency_budget_ms": self.latency_budget_ms,
            "device": self.device,
            "naming_pattern": self.naming_pattern,
            "test_budget": self.test_budget,
            "convergence_target": self.convergence_target,
            "precision_level": self.precision_level,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Protocol:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass(frozen=True)
class ProtocolChange:
    """One audited change of one protocol field."""

    project: str
    field: str
    old: Any
    new: Any
    reason: str | None
    who: str
    at: float


@dataclass(frozen=True)
class Project:
    id: str
    name: str
    protocol: Protocol
    created_at: float
    shipped_run_id: str | None = None


@dataclass(frozen=True)
class RunEnding:
    """How a run ended, written with its last points (``MetricStore.log_batch``'s
    ``ending``): ``status`` one of ``RUN_STATUSES``, ``reason`` as ``RunRecord.end_reason``."""

    status: str
    ended_at: float
    reason: str | None = None


@dataclass(frozen=True)
class RunRecord:
    """A training run. ``status`` is as stored; see ``core.runs.effective_status``."""

    id: str
    project: str
    name: str
    status: str
    created_at: float
    heartbeat_at: float | None = None
    ended_at: float | None = None
    parent_id: str | None = None
    dataset: str | None = None  # "name:tag" the run was pinned to, if any
    pinned: bool = False
    split_digests: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    legacy_name: bool = False
    end_reason: str | None = None  # why a run that did not finish normally ended
    unwritten: int = 0  # points known not to be in the book (refused, or in a spool file)


@dataclass(frozen=True)
class RunRow:
    """One line of a runs table: the run's identity and status, and the summary of one
    metric series (``best`` ... ``count``; None when the run never logged that key)."""

    id: str
    name: str
    status: str
    created_at: float
    heartbeat_at: float | None
    parent_id: str | None
    parent_name: str | None
    dataset: str | None
    pinned: bool
    legacy_name: bool
    best: float | None
    best_epoch: int | None
    final: float | None
    final_epoch: int | None
    count: int
    has_note: bool
    unwritten: int = 0
    end_reason: str | None = None

    @property
    def as_record(self) -> RunRecord:
        """The row's run as a ``RunRecord`` (for status rules and output): everything a
        runs table reads; its ``project`` is blank and config, env and tags are empty."""
        return RunRecord(
            id=self.id,
            project="",
            name=self.name,
            status=self.status,
            created_at=self.created_at,
            heartbeat_at=self.heartbeat_at,
            parent_id=self.parent_id,
            dataset=self.dataset,
            pinned=self.pinned,
            legacy_name=self.legacy_name,
            end_reason=self.end_reason,
            unwritten=self.unwritten,
        )


@dataclass(frozen=True)
class MetricPoint:
    key: str
    epoch: int
    value: float  # NaN is kept as float('nan')


@dataclass(frozen=True)
class SeriesSummary:
    """Summary of one metric series of one run, kept up to date on every write."""

    run_id: str
    key: str
    direction: str  # "max", "min" or "none"
    count: int
    nan_count: int
    best: float | None
    best_epoch: int | None
    final: float | None
    final_epoch: int | None
    first_epoch: int | None


@dataclass(frozen=True)
class Evaluation:
    """One evaluation of a run's weights on one split. Test evaluations are sealed."""

    id: str
    run_id: str
    split: str
    sealed: bool
    created_at: float
    metrics: dict[str, float] = field(default_factory=dict)
    per_class_ap: dict[str, float] = field(default_factory=dict)
    confusion_matrix: list[list[float]] | None = None
    class_names: list[str] | None = None
    latency_ms: float | None = None
    device: str | None = None
    split_digest: str | None = None


@dataclass(frozen=True)
class Artifact:
    """A file of a run, stored once by content hash. ``evaluation_id``: the evaluation it
    belongs to (its plots, its per-image predictions), sealed with a sealed one."""

    id: str
    run_id: str
    name: str
    digest: str
    size: int
    created_at: float
    evaluation_id: str | None = None


@dataclass(frozen=True)
class Note:
    """A run's note: hypothesis, change, result, next and free text (see ``core.notes``)."""

    run_id: str
    hypothesis: str = ""
    change: str = ""
    result: str = ""
    next: str = ""
    text: str = ""
    version: int = 0
    updated_at: float | None = None

    @property
    def has_text(self) -> bool:
        """Some field holds a character other than ``NOTE_BLANKS``."""
        return any(has_text(getattr(self, name)) for name in NOTE_TEXT_FIELDS)

    @property
    def is_empty(self) -> bool:
        """Nothing written: every field is empty or only ``NOTE_BLANKS``."""
        return not self.has_text


@dataclass(frozen=True)
class Decision:
    id: str
    project: str
    candidate_id: str
    baseline_id: str
    verdict: str
    gates: list[dict[str, Any]]
    protocol: dict[str, Any]
    test_split_digest: str | None
    revealed: bool
    who: str
    at: float
    # the digest of what the gates read (core.gates.evidence_digest); None when stored
    # before migration 0005. Not part of a decision's equality: it is how it is found.
    evidence: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class DatasetVersion:
    """A content-addressed dataset version (its digest is its identity)."""

    digest: str
    name: str
    created_at: float
    class_names: list[str] = field(default_factory=list)
    splits: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str | None = None
    manifest_digest: str | None = None


@dataclass(frozen=True)
class DatasetTag:
    name: str
    tag: str
    digest: str
    created_at: float


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
    """One page of a project's runs (``QueryStore.runs_page``): ``total`` runs match the
    filters; ``summaries`` holds the ranking key's summary by run id (absent: no value)."""

    total: int
    runs: list[RunRecord]
    summaries: dict[str, SeriesSummary]


@dataclass(frozen=True)
class ProjectCounts:
    """Counts of one project (``QueryStore.project_counts``): its runs, those running
    (effective status, ``core.runs.effective_status``) and the finished runs in note debt
    (``core.notes.note_debt``)."""

    project: str
    runs: int
    running: int
    note_debt: int


# Roles on a project, weakest first (core.access): each allows what the ones before do.
ROLES = ("viewer", "editor", "admin")


@dataclass(frozen=True)
class User:
    """An account on a team server's database. ``admin``: a server admin (manages users
    and tokens, admin of every project). ``has_password``: a UI password is set."""

    name: str
    admin: bool
    created_at: float
    has_password: bool = False


@dataclass(frozen=True)
class ApiToken:
    """A token of a user, as listed: never the token itself (only its hash is stored)."""

    id: str
    user: str
    label: str | None
    created_at: float
    expires_at: float | None
    last_used_at: float | None
    revoked_at: float | None


@dataclass(frozen=True)
class Grant:
    """``user`` holds ``role`` (one of ``ROLES``) on ``project``."""

    user: str
    project: str
    role: str
    who: str
    at: float


@dataclass(frozen=True)
class AuditEvent:
    """One thing somebody did that the audit lists: a decision, a protocol change, a ship,
    a grant or its revocation, a user added, a password set, a token created or revoked.
    ``project`` is None for what belongs to no project (users, tokens)."""

    at: float
    who: str
    action: str
    project: str | None
    subject: str
    detail: str
