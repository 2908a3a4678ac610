"""Full-text search of notes and a record of comparisons.

* ``comparisons``: one row per ``trialbook compare`` (project, metric, whether it was
  exploratory, the runs), so that a later change of the protocol metric is known to come
  after runs were compared.
* Notes search, in the database's own full-text engine:

  - SQLite: an FTS5 table ``notes_fts`` (porter stemming over unicode61 tokens) holding
    the note fields and the run id, kept in sync with ``notes`` by three triggers. It keeps
    its own copy of the text rather than pointing at ``notes`` by rowid (external
    content): ``notes`` has a text primary key, and VACUUM may renumber the rowids of
    such a table, which would silently detach an external-content index.
  - PostgreSQL: a GIN index ``ix_notes_fts`` on the ``english`` tsvector of the note
    fields; ``store/sql/notes.py`` queries with the same expression.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.String(32)
FIELDS = ("hypothesis", "change", "result", "next", "text")
# must stay identical to store/sql/notes.py's PG_VECTOR for the index to be used
PG_VECTOR = (
    "to_tsvector('english'::regconfig, hypothesis || ' ' || \"change\" || ' ' || "
    "result || ' ' || \"next\" || ' ' || \"text\")"
)


def _sqlite_upgrade() -> None:
    cols = ", ".join(FIELDS)
    new = ", ".join(f"new.{f}" for f in FIELDS)
    op.execute(
        f"CREATE VIRTUAL TABLE notes_fts USING fts5(run_id UNINDEXED, {cols}, tokenize = 'porter unicode61')"
    )
    op.execute(
        f"CREATE TRIGGER notes_fts_ai AFTER INSERT ON notes BEGIN "
        f"INSERT INTO notes_fts (run_id, {cols}) VALUES (new.run_id, {new}); END"
    )
    op.execute(
        "CREATE TRIGGER notes_fts_ad AFTER DELETE ON notes BEGIN "
        "DELETE FROM notes_fts WHERE run_id = old.run_id; END"
    )
    op.execute(
        f"CREATE TRIGGER notes_fts_au AFTER UPDATE ON notes BEGIN "
        f"DELETE FROM notes_fts WHERE run_id = old.run_id; "
        f"INSERT INTO notes_fts (run_id, {cols}) VALUES (new.run_id, {new}); END"
    )
    op.execute(f"INSERT INTO notes_fts (run_id, {cols}) SELECT run_id, {cols} FROM notes")


def upgrade() -> None:
    op.create_table(
        "comparisons",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project_id", ID, sa.ForeignKey("projects.id"), nullable=False, index=True),
        sa.Column("metric", sa.String(250), nullable=False),
        sa.Column("exploratory", sa.Boolean, nullable=False),
        sa.Column("run_ids", sa.JSON, nullable=False),
        sa.Column("who", sa.String(200), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _sqlite_upgrade()
    elif dialect == "postgresql":
        op.execute(f"CREATE INDEX ix_notes_fts ON notes USING gin ({PG_VECTOR})")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for trigger in ("notes_fts_ai", "notes_fts_ad", "notes_fts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS notes_fts")
    elif dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_notes_fts")
    op.drop_table("comparisons")
