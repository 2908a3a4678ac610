"""How a run ended, and whether all its points were written.

* ``runs.end_reason``: why a run that did not finish normally ended ("killed by
  SIGTERM", "exit code 3", "ValueError: ..."); NULL for a normal end;
* ``runs.unwritten``: how many of the run's points are known not to be in the book
  (refused by the store, or waiting in a spool file to be replayed); 0 normally.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("end_reason", sa.Text, nullable=True))
        batch.add_column(sa.Column("unwritten", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("unwritten")
        batch.drop_column("end_reason")
