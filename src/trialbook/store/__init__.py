"""Storage: the ``Store`` protocol and its homes, chosen by URI.

* ``sql`` - SQLite (the embedded default, ``.trialbook/book.db``) and PostgreSQL, on
  SQLAlchemy Core with Alembic migrations.

Nothing above this package sees SQL; stores return entities from ``trialbook.core``.
"""

from trialbook.store.base import Store
from trialbook.store.uri import open_store

__all__ = ["Store", "open_store"]
