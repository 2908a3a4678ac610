"""What a book URI may point at: only something new (a missing file or folder, an empty
folder, an empty database) becomes a book; a trialbook book opens. Anything else is
refused with one line naming what was found, and is left exactly as it was:

- someone else's SQLite file or PostgreSQL database (tables, but no book), an ordinary
  folder holding files but no ``book.db`` (``trialbook init`` still makes a book in it);
- a damaged book (an empty, garbage or cut-short ``book.db``, a missing
  ``alembic_version``) and a book of a newer trialbook: through the command line in a
  subprocess, every command answers one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from support.runs import add_run
from trialbook.api import Book
from trialbook.errors import InvalidInput, SchemaOutOfDate, StorageError
from trialbook.store import open_book, open_store
from trialbook.store.registry import sql_url


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (a folder as ``b"<dir>"``), by relative path."""
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else b"<dir>")
        for p in sorted(folder.rglob("*"))
    }


def foreign_sqlite(path: Path, *, wal: bool = False) -> Path:
    conn = sqlite3.connect(path)
    if wal:
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER)")
    conn.execute("INSERT INTO users (name) VALUES ('ada')")
    conn.commit()
    conn.close()
    return path


# --------------------------------------------------------------------------- someone else's
@pytest.mark.parametrize("wal", [False, True], ids=["rollback-journal", "wal"])
def test_someone_elses_sqlite_file_is_refused_and_left_alone(tmp_path: Path, wal: bool) -> None:
    path = foreign_sqlite(tmp_path / "someone_else.db", wal=wal)
    before = snapshot(tmp_path)
    with pytest.raises(
        InvalidInput, match=r"someone_else.db holds tables orders, users but no trialbook book"
    ):
        open_book(f"sqlite:///{path}")
    assert snapshot(tmp_path) == before


def test_an_ordinary_folder_is_refused_and_init_still_makes_a_book_in_it(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(12):
        (folder / f"{chr(97 + i)}.txt").write_text("x")
    before = snapshot(tmp_path)
    pattern = (
        r"folder .*photos holds 12 files \(a.txt, b.txt, c.txt, ...\) but no book.db: give a book folder"
    )
    with pytest.raises(InvalidInput, match=pattern):
        open_book(str(folder))
    assert snapshot(tmp_path) == before
    import trialbook

    trialbook.init(folder).close()
    assert (folder / ".trialbook" / "book.db").is_file()
    open_store(str(folder)).close()  # the folder holding .trialbook/ means that book


def test_new_places_and_books_open(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for uri in (
        str(tmp_path / "empty"),  # an empty folder
        str(tmp_path / "missing"),  # a missing folder
        f"sqlite:///{tmp_path}/new.db",  # a missing file
        str(tmp_path / "empty"),  # now a folder holding a book
        f"sqlite:///{tmp_path}/new.db",  # now a book file
    ):
        store = open_store(uri)
        try:
            store.ensure_project("pallets")
        finally:
            store.close()
    blank = tmp_path / "blank.db"
    conn = sqlite3.connect(blank)
    conn.execute("PRAGMA user_version = 7")  # an SQLite database without tables is new too
    conn.close()
    open_store(f"sqlite:///{blank}").close()
    touched = tmp_path / "touched.db"
    touched.touch()  # but a 0-byte file may be a book that lost its content: never taken as new
    with pytest.raises(StorageError, match=r"touched.db is an empty file \(0 bytes\)"):
        open_store(f"sqlite:///{touched}")


@pytest.fixture
def fresh_pg(pg_database: str) -> Iterator[str]:
    """The URI of a new PostgreSQL database of its own, dropped after."""
    base = pg_database.rsplit("/", 1)[0]
    name = f"trialbook_foreign_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(sql_url(pg_database), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _pg_tables(uri: str) -> list[str]:
    engine = sa.create_engine(sql_url(uri))
    try:
        with engine.connect() as conn:
            return sorted(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_someone_elses_postgres_database_is_refused_and_left_alone(fresh_pg: str) -> None:
    engine = sa.create_engine(sql_url(fresh_pg))
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE users (id serial PRIMARY KEY, name text)")
        conn.exec_driver_sql("CREATE TABLE orders (id serial PRIMARY KEY, user_id int)")
    engine.dispose()
    with pytest.raises(InvalidInput, match=r"holds tables orders, users but no trialbook book"):
        open_store(fresh_pg)
    assert _pg_tables(fresh_pg) == ["orders", "users"]
    from click.testing import CliRunner

    from trialbook.cli.main import cli

    result = CliRunner().invoke(cli, ["db", "upgrade", "--uri", fresh_pg])
    assert result.exit_code != 0 and "no trialbook book" in result.output
    assert _pg_tables(fresh_pg) == ["orders", "users"]


@pytest.mark.postgres
def test_a_postgres_book_of_a_newer_trialbook_or_without_revision_is_refused(fresh_pg: str) -> None:
    open_store(fresh_pg).close()  # a new database becomes a book
    engine = sa.create_engine(sql_url(fresh_pg))
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0099'")
        with pytest.raises(SchemaOutOfDate, match=r"newer trialbook \(schema 0099.*upgrade trialbook"):
            open_store(fresh_pg)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE alembic_version")
        with pytest.raises(StorageError, match="alembic_version table is missing"):
            open_store(fresh_pg)
        assert "alembic_version" not in _pg_tables(fresh_pg)
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- damaged, newer
def _book(folder: Path) -> Path:
    """A book with two runs in ``folder``, closed (everything in its book.db)."""
    book = Book.open(str(folder), create=True)
    add_run(book, "v1_base", curve=[0.1 * i for i in range(40)], val=0.4, test=0.39)
    add_run(book, "v2_more", parent="v1_base", curve=[0.11 * i for i in range(40)], val=0.45)
    book.close()
    db = folder / "book.db"
    assert not db.with_name("book.db-wal").exists()
    return db


def _cut_short(db: Path) -> None:
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2])


def _garbage(db: Path) -> None:
    db.write_bytes(bytes(range(256)) * 64)


def _emptied(db: Path) -> None:
    db.write_bytes(b"")


def _sql(statement: str) -> Callable[[Path], None]:
    def change(db: Path) -> None:
        conn = sqlite3.connect(db)
        conn.execute(statement)
        conn.commit()
        conn.close()

    return change


DAMAGES: dict[str, tuple[Callable[[Path], None], str]] = {
    "cut short": (_cut_short, r"is damaged \(the file is \d+ bytes, its header says \d+: it was cut short\)"),
    "garbage": (_garbage, r"is not a trialbook book: it is not an SQLite database"),
    "0 bytes": (_emptied, r"book.db is an empty file \(0 bytes\), not a trialbook book"),
    "newer": (
        _sql("UPDATE alembic_version SET version_num = '0099'"),
        r"written by a newer trialbook \(schema 0099; .*\): upgrade trialbook",
    ),
    "no alembic_version": (_sql("DROP TABLE alembic_version"), r"the alembic_version table is missing"),
}

COMMANDS = [
    ("runs",),
    ("show", "v1_base"),
    ("data", "list"),
    ("decide", "v2_more", "--baseline", "v1_base"),
    ("note", "v1_base", "--hypothesis", "h"),
    ("export", "--project", "pallets"),
    ("lint",),
    ("projects",),
    ("db", "upgrade"),
]


def _trialbook(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TRIALBOOK_URI"}
    code = "import sys; from trialbook.cli.main import main; sys.argv[0] = 'trialbook'; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120
    )


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_or_newer_book_is_one_line_from_every_command(tmp_path: Path, damage: str) -> None:
    db = _book(tmp_path / ".trialbook")
    change, message = DAMAGES[damage]
    change(db)
    before = snapshot(tmp_path)
    for args in [*COMMANDS, ("init", str(tmp_path))]:
        result = _trialbook(tmp_path, *args)  # the book found from the current folder
        lines = result.stderr.strip().splitlines()
        assert result.returncode != 0 and len(lines) == 1, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert re.search(message, lines[0]), (args, lines[0])
        assert snapshot(tmp_path) == before, args  # not a byte changed, nothing made beside it
