"""``SqlStore``: the Store protocol on SQLite or PostgreSQL, one mixin per aggregate."""

from __future__ import annotations

from pathlib import Path

from trialbook.store.sql.datasets import DatasetsMixin
from trialbook.store.sql.engine import Database
from trialbook.store.sql.metrics import MetricsMixin
from trialbook.store.sql.pages import PagesMixin
from trialbook.store.sql.projects import ProjectsMixin
from trialbook.store.sql.records import RecordsMixin
from trialbook.store.sql.runs import RunsMixin
from trialbook.store.sql.search import DisciplineMixin


class SqlStore(
    ProjectsMixin, RunsMixin, MetricsMixin, RecordsMixin, DatasetsMixin, DisciplineMixin, PagesMixin
):
    """A book in a SQL database. ``blob_dir`` is where embedded books keep artifact bytes."""

    def __init__(self, url: str, *, display_uri: str | None = None, blob_dir: Path | None = None) -> None:
        self.db = Database(url)
        self.uri = display_uri or url
        self.blob_dir = blob_dir

    @property
    def dialect(self) -> str:
        return self.db.dialect

    def close(self) -> None:
        self.db.dispose()

    def __repr__(self) -> str:
        return f"SqlStore({self.uri!r})"
