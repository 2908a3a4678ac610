"""``SqlStore``: the Store interface on SQLite or PostgreSQL, one mixin per aggregate."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING

from trialbook.store.sql.datasets import DatasetsMixin
from trialbook.store.sql.decisions import DecisionsMixin
from trialbook.store.sql.engine import Database
from trialbook.store.sql.metrics import MetricsMixin
from trialbook.store.sql.notes import NotesMixin
from trialbook.store.sql.projects import ProjectsMixin
from trialbook.store.sql.queries import QueriesMixin
from trialbook.store.sql.records import RecordsMixin
from trialbook.store.sql.runs import RunsMixin

if TYPE_CHECKING:
    from trialbook.store.sql.accounts import SqlAccounts


class SqlStore(
    ProjectsMixin,
    RunsMixin,
    MetricsMixin,
    RecordsMixin,
    NotesMixin,
    DecisionsMixin,
    DatasetsMixin,
    QueriesMixin,
):
    """A book in a SQL database (``url``: a SQLAlchemy URL). Where its artifact bytes and
    caches live is not the store's business: ``store.registry.open_book`` says."""

    def __init__(self, url: str, *, display_uri: str | None = None) -> None:
        self.db = Database(url)
        self.uri = display_uri or url

    @property
    def dialect(self) -> str:
        return self.db.dialect

    @property
    def read_only(self) -> bool:
        """Whether this process can only read the book (a SQLite book in a read-only
        folder or file): every write then raises ``StorageError``."""
        return self.db.read_only

    @functools.cached_property
    def accounts(self) -> SqlAccounts:
        """The accounts of a team server in this database (``store.accounts.AccountStore``),
        on the same ``Database``: called inside ``transaction()`` they join it."""
        from trialbook.store.sql.accounts import SqlAccounts

        return SqlAccounts(self.db)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self.db.write():
            yield

    def close(self) -> None:
        self.db.dispose()

    def __repr__(self) -> str:
        return f"SqlStore({self.uri!r})"
