"""Open a store from a URI: a folder, ``sqlite:///path``, ``postgresql://...``."""

from __future__ import annotations

from pathlib import Path

from trialbook.errors import InvalidInput
from trialbook.store.base import Store

BOOK_DIR = ".trialbook"
DB_FILE = "book.db"


def _folder(uri: str) -> Path:
    folder = Path(uri)
    if (folder / BOOK_DIR).is_dir():
        folder = folder / BOOK_DIR
    return folder


def sql_url(uri: str) -> str:
    """The SQLAlchemy URL of a book URI (see ``open_store``)."""
    if uri.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
        return "postgresql+psycopg://" + uri.split("://", 1)[1]
    if uri.startswith("sqlite:///"):
        return uri
    if uri.startswith(("http://", "https://")):
        raise InvalidInput(f"{uri}: the remote (HTTP) store is not available in this version yet")
    if "://" in uri:
        raise InvalidInput(
            f"unknown book URI scheme in {uri!r}; use a folder, sqlite:///PATH or postgresql://"
        )
    return f"sqlite:///{_folder(uri) / DB_FILE}"


def open_store(uri: str, *, create: bool = True) -> Store:
    """Return the store that ``uri`` names.

    * a folder: the embedded book in it (``<folder>/book.db``, blobs beside it); a folder
      that contains ``.trialbook/`` means that book;
    * ``sqlite:///path/to/book.db`` (blobs beside the file);
    * ``postgresql://user@host:port/db`` (needs the ``postgres`` extra; artifact files go
      to the folder named by ``TRIALBOOK_ARTIFACTS``).
    """
    from trialbook.store.sql.store import SqlStore

    url = sql_url(uri)
    if not url.startswith("sqlite:///"):
        return SqlStore(url, display_uri=uri)
    path = Path(url[len("sqlite:///") :])
    if not path.parent.exists():
        if not create:
            raise InvalidInput(f"no book at {path.parent}: run `trialbook init` first")
        path.parent.mkdir(parents=True)
    display = uri if uri.startswith("sqlite:///") else str(path.parent)
    return SqlStore(url, display_uri=display, blob_dir=path.parent / "blobs")
