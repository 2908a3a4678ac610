"""The book's first schema: projects and protocol audit, runs, metric series with
their summaries, evaluations, artifacts, notes with history, decisions, ships and
dataset versions with tags.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.String(32)
DIGEST = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("protocol", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("shipped_run_id", ID, nullable=True),
    )
    op.create_table(
        "protocol_changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project_id", ID, sa.ForeignKey("projects.id"), nullable=False, index=True),
        sa.Column("field", sa.String(64), nullable=False),
        sa.Column("old", sa.JSON, nullable=True),
        sa.Column("new", sa.JSON, nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("who", sa.String(200), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_table(
        "runs",
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
        sa.UniqueConstraint("project_id", "name", name="uq_runs_project_name"),
    )
    op.create_table(
        "series",
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
    )
    op.create_table(
        "points",
        sa.Column("series_id", sa.Integer, sa.ForeignKey("series.id"), primary_key=True),
        sa.Column("epoch", sa.Integer, primary_key=True),
        sa.Column("value", sa.Float, nullable=True),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "evaluations",
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
    op.create_table(
        "artifacts",
        sa.Column("id", ID, primary_key=True),
        sa.Column("run_id", ID, sa.ForeignKey("runs.id"), nullable=False, index=True),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("digest", DIGEST, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    note_fields = ("hypothesis", "change", "result", "next", "text")
    op.create_table(
        "notes",
        sa.Column("run_id", ID, sa.ForeignKey("runs.id"), primary_key=True),
        *[sa.Column(f, sa.Text, nullable=False) for f in note_fields],
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("who", sa.String(200), nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "note_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", ID, sa.ForeignKey("runs.id"), nullable=False, index=True),
        sa.Column("version", sa.Integer, nullable=False),
        *[sa.Column(f, sa.Text, nullable=False) for f in note_fields],
        sa.Column("who", sa.String(200), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_table(
        "decisions",
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
    )
    op.create_table(
        "ships",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project_id", ID, sa.ForeignKey("projects.id"), nullable=False, index=True),
        sa.Column("run_id", ID, nullable=False),
        sa.Column("decision_id", ID, nullable=True),
        sa.Column("forced", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("who", sa.String(200), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_table(
        "dataset_versions",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("digest", DIGEST, primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("class_names", sa.JSON, nullable=False),
        sa.Column("splits", sa.JSON, nullable=False),
        sa.Column("source", sa.Text, nullable=True),
        sa.Column("manifest_digest", DIGEST, nullable=True),
    )
    op.create_table(
        "dataset_tags",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("tag", sa.String(200), primary_key=True),
        sa.Column("digest", DIGEST, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "dataset_tags",
        "dataset_versions",
        "ships",
        "decisions",
        "note_history",
        "notes",
        "artifacts",
        "evaluations",
        "points",
        "series",
        "runs",
        "protocol_changes",
        "projects",
    ):
        op.drop_table(table)
