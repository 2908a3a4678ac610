"""Files of an evaluation (issue 14): its plots and its per-image predictions.

* ``artifacts.evaluation_id``: the evaluation an artifact belongs to; NULL for a run's own
  files (weights, results.csv, training plots) and for every artifact stored before.
  Indexed. An artifact of a sealed (test) evaluation is listed only when revealed.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("artifacts") as batch:
        batch.add_column(sa.Column("evaluation_id", sa.String(32), nullable=True))
    op.create_index("ix_artifacts_evaluation_id", "artifacts", ["evaluation_id"])


def downgrade() -> None:
    op.drop_index("ix_artifacts_evaluation_id", table_name="artifacts")
    with op.batch_alter_table("artifacts") as batch:
        batch.drop_column("evaluation_id")
