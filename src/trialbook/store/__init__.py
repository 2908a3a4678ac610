"""Storage: the ``Store`` interface (``base``) and its homes, chosen by URI (``registry``).

* ``sql`` - SQLite (the embedded default, ``.trialbook/book.db``) and PostgreSQL, on
  SQLAlchemy Core with Alembic migrations.

``open_book(uri)`` returns an ``OpenedBook``: the store, the folder of artifact bytes and
the cache folder; ``open_store(uri)`` returns the store alone. Nothing above this package
sees SQL; stores return entities from ``trialbook.core``.
"""

from trialbook.store.base import Store
from trialbook.store.registry import OpenedBook, open_book, open_store

__all__ = ["OpenedBook", "Store", "open_book", "open_store"]
