"""Table definitions used by queries. Migrations under ``migrations/`` create them;
``tests/store/test_schema.py`` proves the two agree on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from trialbook.core.entities import NOTE_BLANKS

SCHEMA_HEAD = "0008"

metadata = sa.MetaData()

ID = sa.String(32)
DIGEST = sa.String(64)

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("protocol", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("shipped_run_id", ID, nullable=True),
)

protocol_changes = sa.Table(
    "protocol_changes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project_id", ID, sa.ForeignKey("projects.id"), nullable=False, index=True),
    sa.Column("field", sa.String(64), nullable=False),
    sa.Column("old", sa.JSON, nullable=True),
    sa.Column("new", sa.JSON, nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("who", sa.String(200), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("project_id", ID, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("name", sa.String(250), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("heartbeat_at", sa.Float, nullable=True),
    sa.Column("ended_at", sa.Float, nullable=True),
    sa.Column("parent_id", ID, nullable=True),
    sa.Column("dataset", sa.String(250), nullable=True),
    sa.Column("dataset_digest", DIGEST, nullable=True),
    sa.Column("pinned", sa.Boolean, nullable=False),
    sa.Column("split_digests", sa.JSON, nullable=False),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("env", sa.JSON, nullable=False),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("legacy_name", sa.Boolean, nullable=False),
    sa.Column("end_reason", sa.Text, nullable=True),
    sa.Column("unwritten", sa.Integer, nullable=False, server_default="0"),
    sa.UniqueConstraint("project_id", "name", name="uq_runs_project_name"),
    sa.Index("ix_runs_project_dataset", "project_id", "dataset"),  # migration 0003
)

series = sa.Table(
    "series",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", ID, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("key", sa.String(250), nullable=False),
    sa.Column("direction", sa.String(8), nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("nan_count", sa.Integer, nullable=False),
    sa.Column("best", sa.Float, nullable=True),
    sa.Column("best_epoch", sa.Integer, nullable=True),
    sa.Column("final", sa.Float, nullable=True),
    sa.Column("final_epoch", sa.Integer, nullable=True),
    sa.Column("first_epoch", sa.Integer, nullable=True),
    sa.Column("last_epoch", sa.Integer, nullable=True),
    sa.UniqueConstraint("run_id", "key", name="uq_series_run_key"),
    sa.Index("ix_series_key_best", "key", "best"),  # migration 0003: ranked pages
)

# value NULL means NaN (SQLite cannot store NaN; one convention on both dialects). No
# foreign key on series_id (migration 0006): only log_batch writes points, in the
# transaction that made or read their series.
points = sa.Table(
    "points",
    metadata,
    sa.Column("series_id", sa.Integer, primary_key=True),
    sa.Column("epoch", sa.Integer, primary_key=True),
    sa.Column("value", sa.Float, nullable=True),
    sqlite_with_rowid=False,
)

evaluations = sa.Table(
    "evaluations",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("run_id", ID, sa.ForeignKey("runs.id"), nullable=False, index=True),
    sa.Column("split", sa.String(16), nullable=False),
    sa.Column("sealed", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Column("per_class_ap", sa.JSON, nullable=False),
    sa.Column("confusion_matrix", sa.JSON, nullable=True),
    sa.Column("class_names", sa.JSON, nullable=True),
    sa.Column("latency_ms", sa.Float, nullable=True),
    sa.Column("device", sa.String(200), nullable=True),
    sa.Column("split_digest", DIGEST, nullable=True),
)

artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("run_id", ID, sa.ForeignKey("runs.id"), nullable=False, index=True),
    sa.Column("name", sa.String(500), nullable=False),
    sa.Column("digest", DIGEST, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("evaluation_id", ID, nullable=True, index=True),
)

notes = sa.Table(
    "notes",
    metadata,
    sa.Column("run_id", ID, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("hypothesis", sa.Text, nullable=False),
    sa.Column("change", sa.Text, nullable=False),
    sa.Column("result", sa.Text, nullable=False),
    sa.Column("next", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("who", sa.String(200), nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

note_history = sa.Table(
    "note_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", ID, sa.ForeignKey("runs.id"), nullable=False, index=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("hypothesis", sa.Text, nullable=False),
    sa.Column("change", sa.Text, nullable=False),
    sa.Column("result", sa.Text, nullable=False),
    sa.Column("next", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("who", sa.String(200), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
)

decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("project_id", ID, sa.ForeignKey("projects.id"), nullable=False, index=True),
    sa.Column("candidate_id", ID, nullable=False),
    sa.Column("baseline_id", ID, nullable=False),
    sa.Column("verdict", sa.String(32), nullable=False),
    sa.Column("gates", sa.JSON, nullable=False),
    sa.Column("protocol", sa.JSON, nullable=False),
    sa.Column("test_split_digest", DIGEST, nullable=True),
    sa.Column("revealed", sa.Boolean, nullable=False),
    sa.Column("who", sa.String(200), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    # the digest of what the gates read (core.gates.evidence_digest; migration 0005)
    sa.Column("evidence", DIGEST, nullable=True, index=True),
)

ships = sa.Table(
    "ships",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project_id", ID, sa.ForeignKey("projects.id"), nullable=False, index=True),
    sa.Column("run_id", ID, nullable=False),
    sa.Column("decision_id", ID, nullable=True),
    sa.Column("forced", sa.Boolean, nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("who", sa.String(200), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
)

# every compare on a project, so that a later change of the comparison metric is known
# to come after runs were compared (migration 0002)
comparisons = sa.Table(
    "comparisons",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project_id", ID, sa.ForeignKey("projects.id"), nullable=False, index=True),
    sa.Column("metric", sa.String(250), nullable=False),
    sa.Column("exploratory", sa.Boolean, nullable=False),
    sa.Column("run_ids", sa.JSON, nullable=False),
    sa.Column("who", sa.String(200), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
)

# Full-text search of notes (migration 0002) is not in this metadata: on SQLite the FTS5
# table ``notes_fts`` (with its shadow tables and triggers), on PostgreSQL the GIN index
# ``ix_notes_fts`` on an expression. Schema comparisons leave out these names.
SEARCH_OBJECTS = ("notes_fts", "ix_notes_fts")

dataset_versions = sa.Table(
    "dataset_versions",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("digest", DIGEST, primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("class_names", sa.JSON, nullable=False),
    sa.Column("splits", sa.JSON, nullable=False),
    sa.Column("source", sa.Text, nullable=True),
    sa.Column("manifest_digest", DIGEST, nullable=True),
)

dataset_tags = sa.Table(
    "dataset_tags",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("tag", sa.String(200), primary_key=True),
    sa.Column("digest", DIGEST, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

# Accounts of a team server (migration 0007; ``store.sql.accounts``): users, their API
# tokens (by SHA-256 only), roles on projects, UI sessions (by the SHA-256 of the cookie),
# failed sign-ins and the audit events of accounts. No foreign key on a user from
# ``account_events``: the audit keeps what was done, whoever it was.
USER = sa.String(64)

users = sa.Table(
    "users",
    metadata,
    sa.Column("name", USER, primary_key=True),
    sa.Column("admin", sa.Boolean, nullable=False),
    sa.Column("password_hash", sa.Text, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("user", USER, sa.ForeignKey("users.name"), nullable=False, index=True),
    sa.Column("label", sa.String(200), nullable=True),
    sa.Column("token_hash", DIGEST, nullable=False, unique=True, index=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=True),
    sa.Column("last_used_at", sa.Float, nullable=True),
    sa.Column("revoked_at", sa.Float, nullable=True),
)

grants = sa.Table(
    "grants",
    metadata,
    sa.Column("user", USER, sa.ForeignKey("users.name"), primary_key=True),
    sa.Column("project", sa.String(200), sa.ForeignKey("projects.name"), primary_key=True, index=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("who", sa.String(200), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
)

ui_sessions = sa.Table(
    "ui_sessions",
    metadata,
    sa.Column("session_hash", DIGEST, primary_key=True),
    sa.Column("user", USER, sa.ForeignKey("users.name"), nullable=False, index=True),
    sa.Column("csrf", sa.String(200), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

signin_failures = sa.Table(
    "signin_failures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("subject", sa.String(200), nullable=False, index=True),
    sa.Column("at", sa.Float, nullable=False),
)

account_events = sa.Table(
    "account_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("who", sa.String(200), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("project", sa.String(200), nullable=True, index=True),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
)


class _trim_blanks(FunctionElement[str]):
    """``X`` without the characters of ``Y`` at either end: ``trim(X, Y)`` (SQLite and the
    default), ``btrim(X, Y)`` on PostgreSQL (whose ``trim`` spells its characters
    argument the SQL-standard way, ``trim(BOTH Y FROM X)``)."""

    type = sa.Text()
    name = "trim_blanks"
    inherit_cache = True


@compiles(_trim_blanks)
def _trim_blanks_default(element: Any, compiler: Any, **kw: Any) -> str:
    return f"trim({compiler.process(element.clauses, **kw)})"


@compiles(_trim_blanks, "postgresql")
def _trim_blanks_postgresql(element: Any, compiler: Any, **kw: Any) -> str:
    return f"btrim({compiler.process(element.clauses, **kw)})"


def note_written() -> sa.ColumnElement[bool]:
    """The SQL twin of ``core.notes.has_text`` on the ``notes`` table: some field holds a
    character that is not one of ``core.entities.NOTE_BLANKS``. Queries over thousands
    of runs count note debt with it instead of loading notes; ``tests/store/
    test_sql_twins.py`` holds it equal to the Python rule on both dialects."""
    fields = notes.c.hypothesis + notes.c.change + notes.c.result + notes.c.next + notes.c.text
    return _trim_blanks(fields, sa.literal(NOTE_BLANKS, sa.Text())) != ""
