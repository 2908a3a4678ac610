"""The team server's book: one database (PostgreSQL, or an SQLite book) and one artifact
store (a folder, or ``s3://bucket/prefix``), opened by every worker process alike.

Migrations are explicit: a database whose schema is behind (or that holds no book yet)
is refused with the ``trialbook db upgrade`` command to run, and never migrated here, so
that workers starting at once never race a migration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trialbook import settings
from trialbook.api import Book
from trialbook.artifacts.local import BlobStore
from trialbook.errors import InvalidInput, SchemaOutOfDate
from trialbook.store.registry import scheme_of, sql_url
from trialbook.store.sql.schema import SCHEMA_HEAD

__all__ = ["blob_store", "check_artifacts", "check_schema", "database_uri", "open_server_book"]


def database_uri(db: str) -> str:
    """``db`` as a book URI: a ``postgresql://`` or ``sqlite:///`` URI as it is, a book
    folder as it is, the path of a book file as ``sqlite:///ABSOLUTE/PATH``."""
    if scheme_of(db) != "":
        return db
    path = Path(db).expanduser()
    if path.is_file():
        return f"sqlite:///{path.resolve()}"
    return str(path.resolve())


def check_schema(db: str) -> None:
    """Refuse (``SchemaOutOfDate``, one line naming ``trialbook db upgrade --uri ...``) a
    database that holds no book yet or whose schema is behind this trialbook's; refuse
    anything that is no book at all as opening it would. Changes nothing."""
    from trialbook.store.sql.engine import Database

    uri = database_uri(db)
    database = Database(sql_url(uri), migrate=False)
    try:
        found = database.probe()
    finally:
        database.dispose()
    if found.at_head:
        return
    upgrade = f"trialbook db upgrade --uri {uri}"
    if found.new:
        raise SchemaOutOfDate(f"{found.where} holds no trialbook book yet: create it first with `{upgrade}`")
    refusal = found.refusal()
    if refusal is not None and not found.upgradable:
        raise refusal
    raise SchemaOutOfDate(
        f"the database at {found.where} has schema {found.revision!r}; this trialbook needs "
        f"{SCHEMA_HEAD!r}. The server never migrates: back it up, then run `{upgrade}`"
    )


def blob_store(artifacts: str, cache_dir: Path) -> Any:
    """The artifact store ``artifacts`` names: ``s3://bucket/prefix`` (boto3's standard
    configuration gives the endpoint and credentials) or a folder."""
    if artifacts.lower().startswith("s3://"):
        from trialbook.artifacts.s3 import S3BlobStore

        return S3BlobStore(artifacts, cache_dir)
    check_artifacts(artifacts)
    return BlobStore(Path(artifacts).expanduser())


def check_artifacts(artifacts: str) -> None:
    """``InvalidInput`` for an ``--artifacts`` that is neither a folder nor ``s3://BUCKET/PREFIX``."""
    if artifacts.lower().startswith("s3://"):
        from trialbook.artifacts.s3 import parse_s3_uri

        parse_s3_uri(artifacts)
    elif "://" in artifacts:
        raise InvalidInput(f"--artifacts {artifacts}: give a folder or s3://BUCKET/PREFIX")


def _cache_dir(uri: str) -> Path:
    if scheme_of(uri) == "sqlite":
        return Path(uri[len("sqlite:///") :]).parent / "cache"
    if scheme_of(uri) == "":
        folder = Path(uri)
        return (folder / ".trialbook" if (folder / ".trialbook").is_dir() else folder) / "cache"
    return settings.user_cache_dir() / "server"


def open_server_book(db: str, artifacts: str) -> Book:
    """The server's book over ``db`` with its artifacts in ``artifacts`` (see the module
    docstring); refused as ``check_schema`` says."""
    from trialbook.store.sql.store import SqlStore

    uri = database_uri(db)
    check_schema(uri)
    cache = _cache_dir(uri)
    store = SqlStore(sql_url(uri), display_uri=uri)
    return Book(store, blob_store(artifacts, cache), cache_dir=cache)
