"""Open a store from a URI: a folder, ``sqlite:///path``, ``postgresql://...``."""

from __future__ import annotations

from pathlib import Path

from trialbook.errors import InvalidInput
from trialbook.store.base import Store

BOOK_DIR = ".trialbook"
DB_FILE = "book.db"


def open_store(uri: str, *, create: bool = True) -> Store:
    """Return the store that ``uri`` names.

    * a folder: the embedded book in it (``<folder>/book.db``, blobs beside it); a folder
      that contains ``.trialbook/`` means that book;
    * ``sqlite:///path/to/book.db``;
    * ``postgresql://user@host:port/db`` (needs the ``postgres`` extra).
    """
    from trialbook.store.sql.store import SqlStore

    if uri.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
        url = "postgresql+psycopg://" + uri.split("://", 1)[1]
        return SqlStore(url, display_uri=uri)
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///"):])
        return SqlStore(f"sqlite:///{path}", display_uri=uri, blob_dir=path.parent / "blobs")
    if uri.startswith(("http://", "https://")):
        raise InvalidInput(f"{uri}: the remote (HTTP) store is not available in this version yet")
    if "://" in uri:
        raise InvalidInput(f"unknown book URI scheme in {uri!r}; use a folder, sqlite:///, postgresql://")
    folder = Path(uri)
    if (folder / BOOK_DIR).is_dir():
        folder = folder / BOOK_DIR
    if not folder.exists():
        if not create:
            raise InvalidInput(f"no book at {folder}")
        folder.mkdir(parents=True)
    return SqlStore(f"sqlite:///{folder / DB_FILE}", display_uri=str(folder), blob_dir=folder / "blobs")
