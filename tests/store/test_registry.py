"""The store registry: a book is opened by its URI's scheme, and the opener says where
artifact bytes and caches live."""

from __future__ import annotations

from pathlib import Path

import pytest

from trialbook.errors import InvalidInput
from trialbook.store import OpenedBook, Store, open_book, open_store, registry
from trialbook.store.registry import BOOK_DIR, DB_FILE, register, scheme_of, schemes, sql_url


def test_a_folder_book_keeps_blobs_and_cache_beside_its_database(tmp_path: Path) -> None:
    book = open_book(str(tmp_path / "book"))
    try:
        assert isinstance(book.store, Store)
        assert book.store.uri == str(tmp_path / "book")
        assert (book.blob_dir, book.cache_dir) == (tmp_path / "book" / "blobs", tmp_path / "book" / "cache")
        assert (tmp_path / "book" / DB_FILE).exists()
        assert not hasattr(book.store, "blob_dir")  # the opener knows, not the store
    finally:
        book.store.close()
    # a folder holding .trialbook/ means that book
    (tmp_path / "proj" / BOOK_DIR).mkdir(parents=True)
    inner = open_book(str(tmp_path / "proj"))
    try:
        assert inner.blob_dir == tmp_path / "proj" / BOOK_DIR / "blobs"
        assert inner.store.uri == str(tmp_path / "proj" / BOOK_DIR)
    finally:
        inner.store.close()


def test_a_sqlite_uri_book_keeps_blobs_beside_the_file(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/db/my.db"
    book = open_book(uri)
    try:
        assert book.store.uri == uri
        assert (book.blob_dir, book.cache_dir) == (tmp_path / "db" / "blobs", tmp_path / "db" / "cache")
        assert (tmp_path / "db" / "my.db").exists()
    finally:
        book.store.close()
    assert sql_url(uri) == uri
    with pytest.raises(InvalidInput, match="sqlite:///PATH"):
        open_book("sqlite://relative.db")


def test_a_missing_embedded_book_is_made_only_when_asked(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"no book at .*trialbook init"):
        open_book(str(tmp_path / "missing"), create=False)
    with pytest.raises(InvalidInput, match="no book at"):
        open_store(f"sqlite:///{tmp_path}/missing/book.db", create=False)
    assert not (tmp_path / "missing").exists()
    open_store(str(tmp_path / "missing"), create=True).close()
    open_store(str(tmp_path / "missing"), create=False).close()


@pytest.mark.postgres
@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_a_database_book_keeps_blobs_and_cache_where_the_settings_say(
    pg_database: str, scheme: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = scheme + "://" + pg_database.split("://", 1)[1]
    monkeypatch.setenv("TRIALBOOK_ARTIFACTS", str(tmp_path / "art"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    book = open_book(uri)
    try:
        assert book.store.uri == uri
        assert (book.blob_dir, book.cache_dir) == (tmp_path / "art", tmp_path / "xdg" / "trialbook")
    finally:
        book.store.close()
    monkeypatch.delenv("TRIALBOOK_ARTIFACTS")
    book = open_book(uri)
    try:
        assert book.blob_dir is None
    finally:
        book.store.close()


def test_sql_urls() -> None:
    assert sql_url("postgresql://u@h:5432/db") == "postgresql+psycopg://u@h:5432/db"
    assert sql_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert sql_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert sql_url("/no/such/folder") == f"sqlite:////no/such/folder/{DB_FILE}"


@pytest.mark.parametrize("uri", ["http://tb.example.com", "https://tb.example.com/x"])
def test_a_server_has_no_sql_url(uri: str) -> None:
    with pytest.raises(InvalidInput, match=r"is a trialbook server: it has no SQL URL"):
        sql_url(uri)


def test_an_unknown_scheme_says_what_is_known() -> None:
    with pytest.raises(
        InvalidInput, match=r"unknown book URI scheme.*use a folder, sqlite:///PATH or postgresql"
    ):
        open_book("mysql://x/y")
    with pytest.raises(InvalidInput, match="unknown book URI scheme"):
        sql_url("mysql://x/y")


def test_a_new_home_registers_its_scheme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_OPENERS", dict(registry._OPENERS))
    opened: list[tuple[str, bool]] = []

    def opener(uri: str, create: bool) -> OpenedBook:
        opened.append((uri, create))
        return open_book(str(tmp_path / "b"), create=create)

    register("Mem", opener)
    assert scheme_of("MEM://x") == "mem" and scheme_of("/a/b") == "" and "mem" in schemes()
    open_book("mem://x").store.close()
    assert opened == [("mem://x", True)]
    assert schemes()[0] == "" and {"sqlite", "postgresql", "postgres", "http", "https"} <= set(schemes())
