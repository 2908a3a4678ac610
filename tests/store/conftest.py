"""The one store fixture of the store's tests: the contract suite (``contract/``), the
SQL twins (``test_sql_twins.py``) and the schema tests all run on every home in
``HOMES``.

``opened`` is the ``OpenedBook`` of an empty book (``store.registry.open_book``) and
``store`` its store. A new home (the HTTP store in front of SQLite, say) is one more
entry in ``HOMES`` and one more branch in ``_book_uri``: every test then runs on it.
PostgreSQL is the session database of ``tests/conftest.py`` (``pg_database``), emptied
before each test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from trialbook.store import OpenedBook, Store, open_book

HOMES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _book_uri(home: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if home == "sqlite":
        return str(tmp_path / ".trialbook")
    if home == "postgres":
        return str(request.getfixturevalue("pg_database"))
    raise AssertionError(f"unknown home {home!r}")


def _empty(opened: OpenedBook) -> None:
    """Remove every row a previous test left in a database book."""
    from trialbook.store.sql.schema import metadata

    db = opened.store.db  # type: ignore[attr-defined]
    if db.dialect == "sqlite":
        return  # a new file per test
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with db.write() as conn:
        conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")


@pytest.fixture(params=HOMES)
def home(request: pytest.FixtureRequest) -> str:
    """The name of the home under test: ``"sqlite"`` or ``"postgres"``."""
    return str(request.param)


@pytest.fixture
def book_uri(
    home: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """The URI of an empty book on ``home``; a database book keeps its artifacts and its
    cache in ``tmp_path`` (``$TRIALBOOK_ARTIFACTS``, ``$XDG_CACHE_HOME``)."""
    monkeypatch.setenv("TRIALBOOK_ARTIFACTS", str(tmp_path / "artifacts"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("TRIALBOOK_USER", "tester")
    return _book_uri(home, request, tmp_path)


@pytest.fixture
def opened(book_uri: str) -> Iterator[OpenedBook]:
    """The opened empty book on each home."""
    book = open_book(book_uri)
    try:
        _empty(book)
        yield book
    finally:
        book.store.close()


@pytest.fixture
def store(opened: OpenedBook) -> Store:
    """The store of an empty book, on each home."""
    return opened.store
