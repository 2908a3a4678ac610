"""Points without a foreign key on ``points.series_id``.

The database checked every point's series (a lookup in ``series`` per row): a third of
the time of a run's 4,200-point batch on PostgreSQL, and about half of a bulk insert on
SQLite. Points are only ever written by ``log_batch``, inside the transaction that made
or read their series (and nothing deletes a series), so the check never caught anything
the store does not already guarantee. Nothing else changes; the upgrade copies the
points table on SQLite (its foreign keys cannot be dropped in place).

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_SQLITE_POINTS = (
    "CREATE TABLE {name} (series_id INTEGER NOT NULL{fk}, epoch INTEGER NOT NULL, value FLOAT, "
    "PRIMARY KEY (series_id, epoch)) WITHOUT ROWID"
)


def _sqlite_copy(fk: str) -> None:
    """SQLite cannot drop or add a foreign key in place: copy the table."""
    op.execute(_SQLITE_POINTS.format(name="points_copy", fk=fk))
    op.execute("INSERT INTO points_copy (series_id, epoch, value) SELECT series_id, epoch, value FROM points")
    op.execute("DROP TABLE points")
    op.execute("ALTER TABLE points_copy RENAME TO points")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_copy("")
    else:
        op.drop_constraint("points_series_id_fkey", "points", type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_copy(" REFERENCES series (id)")
    else:
        op.create_foreign_key("points_series_id_fkey", "points", "series", ["series_id"], ["id"])
