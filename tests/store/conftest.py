"""The one store fixture of the store's tests: the contract suite (``contract/``), the
SQL twins (``test_sql_twins.py``) and the schema tests all run on every home in
``HOMES``; the contract suite also runs on the remote store, ``HTTP_HOMES``.

``opened`` is the ``OpenedBook`` of an empty book (``store.registry.open_book``) and
``store`` its store. A new home is one more entry in ``HOMES`` (or ``HTTP_HOMES``) and
one more branch in ``_book_uri``: every test then runs on it. PostgreSQL is the session
database of ``tests/conftest.py`` (``pg_database``), emptied before each test.

The remote homes put ``store.remote.RemoteStore`` in front of a SQL book served by the
web app (``server.app.create_app``):

* ``http-sqlite``: a new SQLite book per test, its app called in process through
  ``support.server.InProcess`` (an ``httpx`` transport that runs the ASGI app: no server,
  no sockets);
* ``http-postgres``: the session's PostgreSQL database served for real by uvicorn on a
  free loopback port (``support.server``), one server for the session, opened from its
  ``http://127.0.0.1:PORT`` URI by the registry as a user's would be.

Either way ``book_uri`` is the URI of the SQL book behind the server, which the fixtures
empty directly (``backing``), never through HTTP.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.server import LoopbackServer
from trialbook import settings
from trialbook.api import Book
from trialbook.store import OpenedBook, Store, open_book
from trialbook.store.remote import RemoteStore

HOMES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
HTTP_HOMES = ["http-sqlite", pytest.param("http-postgres", marks=pytest.mark.postgres)]
# the folders whose tests also run on HTTP_HOMES (the others test SQL itself)
HTTP_FOLDERS = ("contract",)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "home" not in metafunc.fixturenames:
        return
    folder = Path(str(metafunc.definition.path)).parent.name
    homes = HOMES + HTTP_HOMES if folder in HTTP_FOLDERS else HOMES
    metafunc.parametrize("home", homes, indirect=True)


def _book_uri(home: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if home in ("sqlite", "http-sqlite"):
        return str(tmp_path / ".trialbook")
    if home in ("postgres", "http-postgres"):
        return str(request.getfixturevalue("pg_database"))
    raise AssertionError(f"unknown home {home!r}")


def _empty(store: Store) -> None:
    """Remove every row a previous test left in a database book (``store``: a SqlStore)."""
    from trialbook.store.sql.schema import metadata

    db = store.db  # type: ignore[attr-defined]
    if db.dialect == "sqlite":
        return  # a new file per test
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with db.write() as conn:
        conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")


@pytest.fixture
def home(request: pytest.FixtureRequest) -> str:
    """The name of the home under test: ``"sqlite"``, ``"postgres"``, ``"http-sqlite"``
    or ``"http-postgres"``."""
    return str(request.param)


@pytest.fixture
def book_uri(
    home: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """The URI of an empty book on ``home`` (for a remote home, the SQL book behind the
    server); a database book keeps its artifacts and its cache in ``tmp_path``
    (``$TRIALBOOK_ARTIFACTS``, ``$XDG_CACHE_HOME``)."""
    monkeypatch.setenv("TRIALBOOK_ARTIFACTS", str(tmp_path / "artifacts"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("TRIALBOOK_USER", "tester")
    monkeypatch.delenv("TRIALBOOK_TOKEN", raising=False)
    return _book_uri(home, request, tmp_path)


@pytest.fixture(scope="session")
def pg_server(pg_database: str) -> Iterator[tuple[LoopbackServer, Book]]:
    """The session's PostgreSQL book served on a free loopback port, and that book."""
    from support import server
    from trialbook.server.app import create_app

    book = Book.open(pg_database, create=True)
    running = server.start(create_app(book))
    yield running, book
    running.stop()
    book.close()


@contextlib.contextmanager
def in_process(book_uri: str) -> Iterator[tuple[RemoteStore, Book]]:
    """A remote store on the app over a new SQL book at ``book_uri``, in process; and
    that book."""
    import httpx

    from support.server import InProcess
    from trialbook.server.app import create_app

    backing = Book.open(book_uri, create=True)
    client = httpx.Client(transport=InProcess(create_app(backing)), base_url="http://127.0.0.1")
    store = RemoteStore("http://127.0.0.1", client=client)
    try:
        yield store, backing
    finally:
        store.close()
        backing.close()


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[RemoteStore, Book]]:
    """A remote store in front of a new SQLite book in ``tmp_path`` (in process), and the
    book behind it, to look at what arrived."""
    monkeypatch.setenv("TRIALBOOK_USER", "tester")
    monkeypatch.delenv("TRIALBOOK_TOKEN", raising=False)
    with in_process(str(tmp_path / "served")) as pair:
        yield pair


@pytest.fixture
def opened(home: str, book_uri: str, request: pytest.FixtureRequest) -> Iterator[OpenedBook]:
    """The opened empty book on each home."""
    if home == "http-sqlite":
        with in_process(book_uri) as (remote, _):
            yield OpenedBook(store=remote, blob_dir=None, cache_dir=settings.user_cache_dir())
        return
    if home == "http-postgres":
        running, backing = request.getfixturevalue("pg_server")
        _empty(backing.store)
        book = open_book(running.url)
    else:
        book = open_book(book_uri)
        _empty(book.store)
    try:
        yield book
    finally:
        book.store.close()


@pytest.fixture
def store(opened: OpenedBook) -> Store:
    """The store of an empty book, on each home."""
    return opened.store
