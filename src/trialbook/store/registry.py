"""Open a book from its URI: a registry of openers by URI scheme.

=============================================  ==============================================
URI                                            the book
=============================================  ==============================================
a folder (no ``scheme://``)                    embedded SQLite, ``<folder>/book.db``; a folder
                                               that holds ``.trialbook/`` means that book
``sqlite:///path/to/book.db``                  embedded SQLite in that file
``postgresql://user@host:port/db``             PostgreSQL (the ``postgres`` extra); also
                                               ``postgres://`` and ``postgresql+psycopg://``
``http://``, ``https://``                      the remote store (``store.remote.RemoteStore``)
=============================================  ==============================================

An opener returns an ``OpenedBook``: the store, and where the book keeps what is not in
the database. An embedded book keeps artifact bytes in ``<folder>/blobs`` and the stat
cache of dataset fingerprints in ``<folder>/cache``, beside ``book.db``; a database book
keeps artifact bytes where ``$TRIALBOOK_ARTIFACTS`` says (``settings.artifacts_dir()``;
none when unset) and its stat cache in the user's cache (``settings.user_cache_dir()``).

A new home registers itself with ``register(scheme, opener)`` (after mlflow's
``StoreRegistry``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trialbook import settings
from trialbook.errors import InvalidInput, StorageError
from trialbook.store.base import Store

__all__ = [
    "BOOK_DIR",
    "DB_FILE",
    "FOLDER",
    "OpenedBook",
    "Opener",
    "open_book",
    "open_store",
    "register",
    "scheme_of",
    "schemes",
    "sql_url",
]

BOOK_DIR = ".trialbook"
DB_FILE = "book.db"
FOLDER = ""  # the scheme of a URI without one: a folder
POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
REMOTE_SCHEMES = ("http", "https")


@dataclass(frozen=True)
class OpenedBook:
    """An opened book: its store, where artifact bytes live (``None``: nowhere
    configured, so artifacts cannot be stored) and where its caches go. ``blobs`` is a
    blob store object of the opener's own (an object store, a server's), used instead of
    a folder at ``blob_dir``; it has the methods of ``artifacts.local.BlobStore``."""

    store: Store
    blob_dir: Path | None
    cache_dir: Path
    blobs: Any = None


# ``opener(uri, create)``: ``create`` is whether a missing embedded book may be made.
Opener = Callable[[str, bool], OpenedBook]

_OPENERS: dict[str, Opener] = {}


def register(scheme: str, opener: Opener) -> None:
    """Open URIs of ``scheme`` (``"postgresql"`` for ``postgresql://...``; ``FOLDER`` for
    a path) with ``opener``, replacing any opener it had."""
    _OPENERS[scheme.lower()] = opener


def schemes() -> list[str]:
    """The registered schemes, sorted (``FOLDER``, the empty string, first)."""
    return sorted(_OPENERS)


def scheme_of(uri: str) -> str:
    """The scheme of ``uri`` in lower case, ``FOLDER`` for a path."""
    return uri.split("://", 1)[0].lower() if "://" in uri else FOLDER


def open_book(uri: str, *, create: bool = True) -> OpenedBook:
    """Open the book ``uri`` names (see the module docstring). With ``create=False`` a
    missing embedded book is an error instead of being made.

    Only a new (missing or empty) folder, file or database becomes a book: a folder
    holding other files but no ``book.db``, or a database holding other tables, is
    refused with ``InvalidInput`` naming what it holds, and left unchanged.

    Raises ``InvalidInput`` for a scheme no opener is registered for, a missing book or
    one of the above; ``SchemaOutOfDate`` for a database book that needs
    ``trialbook db upgrade`` or was written by a newer trialbook; ``StorageError`` for a
    damaged book (an empty, cut short or unreadable file, a missing schema revision), or
    a read-only folder where a book would have to be made. A SQLite book that cannot be
    written is opened read-only (``store.read_only``)."""
    opener = _OPENERS.get(scheme_of(uri))
    if opener is None:
        raise _unknown_scheme(uri)
    return opener(uri, create)


def open_store(uri: str, *, create: bool = True) -> Store:
    """The store of the book ``uri`` names (``open_book(uri).store``)."""
    return open_book(uri, create=create).store


def sql_url(uri: str) -> str:
    """The SQLAlchemy URL of a book URI (a folder, ``sqlite:///``, ``postgresql://``).

    Raises ``InvalidInput`` for any other URI (the remote store has none)."""
    scheme = scheme_of(uri)
    if scheme in POSTGRES_SCHEMES:
        return "postgresql+psycopg://" + uri.split("://", 1)[1]
    if scheme == "sqlite":
        return f"sqlite:///{_sqlite_path(uri)}"
    if scheme in REMOTE_SCHEMES:
        raise _no_remote(uri)
    if scheme != FOLDER:
        raise _unknown_scheme(uri)
    return f"sqlite:///{_folder(uri) / DB_FILE}"


def _unknown_scheme(uri: str) -> InvalidInput:
    return InvalidInput(f"unknown book URI scheme in {uri!r}; use a folder, sqlite:///PATH or postgresql://")


def _no_remote(uri: str) -> InvalidInput:
    return InvalidInput(f"{uri} is a trialbook server: it has no SQL URL (give the server's --db URI)")


# the openers ----------------------------------------------------------------------------
def _folder(uri: str) -> Path:
    folder = Path(uri)
    if (folder / BOOK_DIR).is_dir():
        folder = folder / BOOK_DIR
    return folder


# what a book folder holds besides book.db (a folder holding only these has lost its
# book.db, or never got one: it is still taken as a book folder)
_BOOK_ENTRIES = frozenset(
    {"blobs", "cache", f"{DB_FILE}-wal", f"{DB_FILE}-shm", f"{DB_FILE}-journal", f"{DB_FILE}.migrate.lock"}
)


def _check_book_folder(folder: Path) -> None:
    """``InvalidInput`` for an existing folder that is no book folder: neither empty nor
    holding ``book.db`` (or ``.trialbook/``), so that an ordinary folder given as the
    book never silently becomes one. Nothing is changed."""
    if folder.exists() and not folder.is_dir():
        raise InvalidInput(
            f"{folder} is a file, not a book folder: give a book folder, or sqlite:///{folder}"
        )
    if not folder.is_dir() or (folder / DB_FILE).exists():
        return
    try:
        others = sorted(e for e in os.listdir(folder) if e not in _BOOK_ENTRIES)
    except OSError as exc:
        raise StorageError(f"cannot read the folder {folder}: {exc.strerror or exc}") from None
    if others:
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        what = "file" if len(others) == 1 else "files"
        raise InvalidInput(
            f"folder {folder} holds {len(others)} {what} ({shown}) but no {DB_FILE}: give a book "
            f"folder, or run `trialbook init {folder}` (which makes the book in {folder / BOOK_DIR})"
        )


def _sqlite_path(uri: str) -> Path:
    prefix = "sqlite:///"
    if uri[: len(prefix)].lower() != prefix or len(uri) == len(prefix):
        raise InvalidInput(f"{uri!r}: an SQLite book URI is sqlite:///PATH/TO/book.db")
    return Path(uri[len(prefix) :])


def _embedded(url: str, path: Path, display: str, create: bool) -> OpenedBook:
    from trialbook.store.sql.store import SqlStore

    if path.is_dir():
        raise InvalidInput(f"{path} is a folder, not a book file: give it as a folder book ({path})")
    if not path.parent.exists():
        if not create:
            raise InvalidInput(f"no book at {path.parent}: run `trialbook init` first")
        try:
            path.parent.mkdir(parents=True)
        except FileExistsError:
            pass  # made by another process meanwhile
        except OSError as exc:
            raise StorageError(f"cannot make the book folder {path.parent}: {exc.strerror or exc}") from None
    return OpenedBook(
        store=SqlStore(url, display_uri=display),
        blob_dir=path.parent / "blobs",
        cache_dir=path.parent / "cache",
    )


def _open_folder(uri: str, create: bool) -> OpenedBook:
    folder = _folder(uri)
    _check_book_folder(folder)
    return _embedded(f"sqlite:///{folder / DB_FILE}", folder / DB_FILE, str(folder), create)


def _open_sqlite(uri: str, create: bool) -> OpenedBook:
    return _embedded(sql_url(uri), _sqlite_path(uri), uri, create)


def _open_postgres(uri: str, create: bool) -> OpenedBook:
    from trialbook.store.sql.store import SqlStore

    return OpenedBook(
        store=SqlStore(sql_url(uri), display_uri=uri),
        blob_dir=settings.artifacts_dir(),
        cache_dir=settings.user_cache_dir(),
    )


# ``factory(uri)``: the blob store of the server at ``uri``; set by ``set_remote_blobs``.
_REMOTE_BLOBS: Callable[[str], Any] | None = None


def set_remote_blobs(factory: Callable[[str], Any] | None) -> None:
    """Give books on a server (``http(s)://``) the blob store ``factory(uri)`` makes (an
    object with the methods of ``artifacts.local.BlobStore``); ``None`` for none. The
    store layer may not import ``trialbook.artifacts`` (they are independent layers), so
    the remote blob client registers itself here from above (``trialbook.api``)."""
    global _REMOTE_BLOBS
    _REMOTE_BLOBS = factory


def remote_blobs(uri: str) -> Any:
    """The blob store of the server at ``uri``, ``None`` while none is registered (the
    book then keeps no artifact bytes: ``OpenedBook.blobs`` and ``blob_dir`` are None)."""
    return None if _REMOTE_BLOBS is None else _REMOTE_BLOBS(uri)


def _remote(uri: str, create: bool) -> OpenedBook:
    """A book on a trialbook server: ``store.remote.RemoteStore``. ``create`` is the
    server's business (its book exists, or the server does not run)."""
    from trialbook.store.remote import RemoteStore

    return OpenedBook(
        store=RemoteStore(uri),
        blob_dir=None,
        cache_dir=settings.user_cache_dir(),
        blobs=remote_blobs(uri),
    )


register(FOLDER, _open_folder)
register("sqlite", _open_sqlite)
for _scheme in POSTGRES_SCHEMES:
    register(_scheme, _open_postgres)
for _scheme in REMOTE_SCHEMES:
    register(_scheme, _remote)
