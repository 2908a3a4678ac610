"""The evidence a decision was made on, so that deciding again on it spends nothing.

* ``decisions.evidence``: the digest of everything the gates read
  (``core.gates.evidence_digest``: the protocol, both runs, their values, per-class AP,
  test evaluations, latency, split digests); NULL for decisions stored before. Indexed:
  ``decide`` looks the evidence up before it stores a new decision.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("evidence", sa.String(64), nullable=True))
    op.create_index("ix_decisions_evidence", "decisions", ["evidence"])


def downgrade() -> None:
    op.drop_index("ix_decisions_evidence", table_name="decisions")
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("evidence")
