"""Indexes for the web UI's paged runs table over large projects.

* ``ix_series_key_best`` on ``series (key, best)``: the first page of a project ranked by
  its protocol metric reads the best series of that key in order and stops after one
  page, instead of sorting every run of the project;
* ``ix_runs_project_dataset`` on ``runs (project_id, dataset)``: the dataset versions a
  project's runs name (the filter's choices) come from the index alone.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_series_key_best", "series", ["key", "best"])
    op.create_index("ix_runs_project_dataset", "runs", ["project_id", "dataset"])


def downgrade() -> None:
    op.drop_index("ix_runs_project_dataset", table_name="runs")
    op.drop_index("ix_series_key_best", table_name="series")
