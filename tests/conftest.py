"""The fixtures of every folder; builders and helpers are in the ``support`` package.

tests/ is laid out like src/trialbook/ (tests/cli/ tests the command line, tests/store/
the stores, ...); a fixture only one folder uses is in that folder's conftest.py.

The standard fixtures: one name for one thing, in every folder.

- ``pg_database``: the URI of this session's PostgreSQL database, dropped at the end.
  PostgreSQL comes from ``TRIALBOOK_TEST_PG_URI`` (the Makefile sets the local server).
  Without it the PostgreSQL half is skipped, unless ``TRIALBOOK_REQUIRE_PG=1`` (CI), which
  turns "no PostgreSQL" into a failure.
- ``book_uri``: the URI of an empty book, on each home: a SQLite folder in ``tmp_path``
  and the PostgreSQL database (emptied first; artifacts then go to ``tmp_path``).
- ``book``: an open ``trialbook.api.Book`` at ``book_uri`` (so on each home).
- ``store``: the ``Store`` of an empty book on each home (tests/store/conftest.py has
  the contract suite's own, on the same homes).
- ``sqlite_book``: an open embedded book, ``tmp_path/.trialbook``, with the current folder
  ``tmp_path`` as a user has it (tests/integrations/importers keeps it in ``tmp_path/book``).
- ``tb``: the ``trialbook`` command on ``sqlite_book`` (``support.cli.make_cli``):
  ``tb("decide", "v2_x", "--baseline", "v1_x")`` checks the exit code (``code=0``, or the
  one given, or none with ``code=None``) and returns click's ``Result``.
- ``data_yaml``: a small drawn YOLO dataset (the demo's classes) in ``tmp_path/data``; its
  data.yaml.
- ``demo_book``: the book ``trialbook demo`` makes (project pallets, 3 runs, 2 dataset
  versions), one per test module.

By convention a module's ``filled`` fixture is its book (or store) with its runs in it.
Every book fixture runs with ``TRIALBOOK_USER=tester`` and without ``TRIALBOOK_URI``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.register_assert_rewrite("support")

from support.cli import CLI, make_cli  # noqa: E402  (after the assert rewrite hook)
from trialbook.api import Book  # noqa: E402
from trialbook.store import Store  # noqa: E402

PG_URI = os.environ.get("TRIALBOOK_TEST_PG_URI", "")
REQUIRE_PG = os.environ.get("TRIALBOOK_REQUIRE_PG") == "1"
HOMES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _pg_admin_url() -> str:
    return "postgresql+psycopg://" + PG_URI.split("://", 1)[1]


@pytest.fixture(scope="session", autouse=True)
def _spool_in_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Points a test's run could not write go to a spool folder of this session, never
    to the user's ``~/.trialbook-spool`` (subprocesses inherit it). Tests of the spool
    set their own with ``monkeypatch``."""
    folder = tmp_path_factory.mktemp("spool")
    previous = os.environ.get("TRIALBOOK_SPOOL")
    os.environ["TRIALBOOK_SPOOL"] = str(folder)
    yield
    if previous is None:
        os.environ.pop("TRIALBOOK_SPOOL", None)
    else:
        os.environ["TRIALBOOK_SPOOL"] = previous


@pytest.fixture(scope="session", autouse=True)
def _no_system_series() -> Iterator[None]:
    """No ``system/`` series unless a test turns them on (``TRIALBOOK_SYSTEM_METRICS=1``:
    tests/api/test_system_metrics.py, the real trainings): how many points they add
    depends on timing, and many tests count points and keys exactly."""
    previous = os.environ.get("TRIALBOOK_SYSTEM_METRICS")
    os.environ["TRIALBOOK_SYSTEM_METRICS"] = "0"
    yield
    if previous is None:
        os.environ.pop("TRIALBOOK_SYSTEM_METRICS", None)
    else:
        os.environ["TRIALBOOK_SYSTEM_METRICS"] = previous


def _create_database(prefix: str) -> tuple[Any, str]:
    """A new database named ``PREFIX_<random>`` on the test server: (its admin engine, its name)."""
    import sqlalchemy as sa

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(_pg_admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    return admin, name


def _drop_database(admin: Any, name: str) -> None:
    with admin.connect() as conn:
        conn.exec_driver_sql(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        )
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
    admin.dispose()


def _database_uri(name: str) -> str:
    return f"{PG_URI.rsplit('/', 1)[0]}/{name}"


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session; dropped at the end."""
    if not PG_URI:
        if REQUIRE_PG:
            pytest.fail("TRIALBOOK_REQUIRE_PG=1 but TRIALBOOK_TEST_PG_URI is not set")
        pytest.skip("no PostgreSQL: set TRIALBOOK_TEST_PG_URI")
    try:
        admin, name = _create_database("trialbook_test")
    except Exception as exc:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL at {PG_URI} is required (TRIALBOOK_REQUIRE_PG=1): {exc}")
        pytest.skip(f"PostgreSQL at {PG_URI} not reachable: {exc}")
    yield _database_uri(name)
    _drop_database(admin, name)


@pytest.fixture
def fresh_pg_database(pg_database: str) -> Iterator[str]:
    """An empty PostgreSQL database of this test's own (no schema), on the server of
    ``pg_database`` (so skipped or failed as it is); dropped after the test."""
    admin, name = _create_database("trialbook_fresh")
    yield _database_uri(name)
    _drop_database(admin, name)


def _truncate_pg(uri: str) -> None:
    import sqlalchemy as sa

    from trialbook.store.sql.schema import metadata

    engine = sa.create_engine("postgresql+psycopg://" + uri.split("://", 1)[1])
    with engine.begin() as conn:
        names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
        conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    engine.dispose()


def _tester(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIALBOOK_USER", "tester")
    monkeypatch.delenv("TRIALBOOK_URI", raising=False)


@pytest.fixture(params=HOMES)
def book_uri(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The URI of an empty book, on SQLite and on PostgreSQL."""
    _tester(monkeypatch)
    if request.param == "sqlite":
        return str(tmp_path / ".trialbook")
    uri = str(request.getfixturevalue("pg_database"))
    from trialbook.store import open_store

    open_store(uri).close()  # create the schema once
    _truncate_pg(uri)
    monkeypatch.setenv("TRIALBOOK_ARTIFACTS", str(tmp_path / "artifacts"))
    return uri


@pytest.fixture
def store(book_uri: str) -> Iterator[Store]:
    """The store of an empty book, on each home."""
    from trialbook.store import open_store

    opened = open_store(book_uri)
    yield opened
    opened.close()


@pytest.fixture
def book(book_uri: str) -> Iterator[Book]:
    """An empty book, on each home."""
    opened = Book.open(book_uri, create=True)
    yield opened
    opened.close()


@pytest.fixture
def sqlite_book(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Book]:
    """An embedded book in tmp_path, with the cwd there (as a user would have it)."""
    import trialbook

    _tester(monkeypatch)
    monkeypatch.chdir(tmp_path)
    opened = trialbook.init(tmp_path)
    yield opened
    opened.close()


@pytest.fixture
def tb(sqlite_book: Book) -> CLI:
    """``tb("decide", "v2_x", "--baseline", "v1_x")`` on ``sqlite_book``; checks the exit code."""
    return make_cli(sqlite_book.uri)


@pytest.fixture
def data_yaml(tmp_path: Path) -> Path:
    """A small YOLO dataset in tmp_path/data (6 train, 3 val, 3 test images); its data.yaml."""
    from trialbook.demo.story import write_dataset

    return write_dataset(tmp_path / "data", {"train": 6, "val": 3, "test": 3}, seed=1)


@pytest.fixture(scope="module")
def demo_book(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Book]:
    """The demo book (project pallets, 3 runs, 2 dataset versions), one per test module."""
    from trialbook.demo.story import build_demo

    opened = build_demo(tmp_path_factory.mktemp("demo"), echo=lambda _m: None)
    yield opened
    opened.close()
