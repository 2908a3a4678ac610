"""Shared fixtures: real SQLite files and a real PostgreSQL database.

PostgreSQL comes from ``TRIALBOOK_TEST_PG_URI`` (the Makefile sets the local server).
Without it the PostgreSQL half is skipped, unless ``TRIALBOOK_REQUIRE_PG=1`` (CI), which
turns "no PostgreSQL" into a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_URI = os.environ.get("TRIALBOOK_TEST_PG_URI", "")
REQUIRE_PG = os.environ.get("TRIALBOOK_REQUIRE_PG") == "1"


def _pg_admin_url() -> str:
    return "postgresql+psycopg://" + PG_URI.split("://", 1)[1]


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session; dropped at the end."""
    if not PG_URI:
        if REQUIRE_PG:
            pytest.fail("TRIALBOOK_REQUIRE_PG=1 but TRIALBOOK_TEST_PG_URI is not set")
        pytest.skip("no PostgreSQL: set TRIALBOOK_TEST_PG_URI")
    import sqlalchemy as sa

    name = f"trialbook_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = sa.create_engine(_pg_admin_url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL at {PG_URI} is required (TRIALBOOK_REQUIRE_PG=1): {exc}")
        pytest.skip(f"PostgreSQL at {PG_URI} not reachable: {exc}")
    base = PG_URI.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with admin.connect() as conn:
        conn.exec_driver_sql(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        )
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
    admin.dispose()


def _truncate_pg(uri: str) -> None:
    import sqlalchemy as sa

    from trialbook.store.sql.schema import metadata

    engine = sa.create_engine("postgresql+psycopg://" + uri.split("://", 1)[1])
    with engine.begin() as conn:
        names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
        conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def book_uri(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URI of an empty book, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield str(tmp_path / ".trialbook")
        return
    uri = request.getfixturevalue("pg_database")
    from trialbook.store import open_store

    open_store(uri).close()  # create the schema once
    _truncate_pg(uri)
    os.environ["TRIALBOOK_ARTIFACTS"] = str(tmp_path / "artifacts")
    try:
        yield uri
    finally:
        os.environ.pop("TRIALBOOK_ARTIFACTS", None)


@pytest.fixture
def store(book_uri: str) -> Iterator[object]:
    from trialbook.store import open_store

    s = open_store(book_uri)
    yield s
    s.close()


@pytest.fixture
def book(book_uri: str) -> Iterator[object]:
    from trialbook.api import Book

    b = Book.open(book_uri, create=True)
    yield b
    b.close()


@pytest.fixture
def sqlite_book(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """An embedded book in tmp_path, with the cwd there (as a user would have it)."""
    import trialbook as tb

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRIALBOOK_URI", raising=False)
    b = tb.init(tmp_path)
    yield b
    b.close()
