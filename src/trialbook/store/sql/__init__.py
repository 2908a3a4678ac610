"""The SQL store: SQLite and PostgreSQL on SQLAlchemy Core, migrated with Alembic."""
