"""The accounts of a team server (issue 13): users, API tokens, roles on projects, UI
sessions, failed sign-ins and the audit events of accounts.

* ``users``: a name, whether a server admin, the argon2 hash of a UI password (NULL: none).
* ``api_tokens``: a user's tokens by SHA-256 only (``token_hash``, unique: what a request's
  token is looked up by), with their label and when made, to expire, last used, revoked.
* ``grants``: a user's role on a project (one per user and project).
* ``ui_sessions``: a signed-in browser by the SHA-256 of its cookie, with its CSRF token.
* ``signin_failures``: failed sign-ins by subject (``name:...``, ``ip:...``), counted over a
  window to slow down guessing.
* ``account_events``: who added a user, set a password, made or revoked a token, granted
  or revoked a role (``project`` set for grants).

New tables only: nothing stored before changes, on SQLite or PostgreSQL.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ID = sa.String(32)
DIGEST = sa.String(64)
USER = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("name", USER, primary_key=True),
        sa.Column("admin", sa.Boolean, nullable=False),
        sa.Column("password_hash", sa.Text, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", ID, primary_key=True),
        sa.Column("user", USER, sa.ForeignKey("users.name"), nullable=False, index=True),
        sa.Column("label", sa.String(200), nullable=True),
        sa.Column("token_hash", DIGEST, nullable=False, unique=True, index=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=True),
        sa.Column("last_used_at", sa.Float, nullable=True),
        sa.Column("revoked_at", sa.Float, nullable=True),
    )
    op.create_table(
        "grants",
        sa.Column("user", USER, sa.ForeignKey("users.name"), primary_key=True),
        sa.Column("project", sa.String(200), sa.ForeignKey("projects.name"), primary_key=True, index=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("who", sa.String(200), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_table(
        "ui_sessions",
        sa.Column("session_hash", DIGEST, primary_key=True),
        sa.Column("user", USER, sa.ForeignKey("users.name"), nullable=False, index=True),
        sa.Column("csrf", sa.String(200), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "signin_failures",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("subject", sa.String(200), nullable=False, index=True),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_table(
        "account_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("who", sa.String(200), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("project", sa.String(200), nullable=True, index=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("account_events", "signin_failures", "ui_sessions", "grants", "api_tokens", "users"):
        op.drop_table(table)
