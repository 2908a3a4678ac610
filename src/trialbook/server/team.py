"""The team server's application, for ``trialbook server``: the web UI and the JSON API
(``server.app.create_app``) over one database and one artifact store.

No state lives in the process: uvicorn starts each worker from the import string
``trialbook.server.team:create_team_app`` (a factory), and every worker reads the same
configuration from the environment that ``trialbook server`` sets:

* ``TRIALBOOK_SERVER_DB``: the database, a ``postgresql://`` URI or an SQLite book;
* ``TRIALBOOK_SERVER_ARTIFACTS``: a folder or ``s3://bucket/prefix``;
* ``TRIALBOOK_SERVER_HOSTS``: the host names to answer to, comma-separated.

A worker refuses to start on a database whose schema is behind (it never migrates).
Every route needs a token or a UI session (``server.auth``); accounts are made with
``trialbook admin``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from trialbook import settings
from trialbook.errors import InvalidInput
from trialbook.server.app import create_app
from trialbook.services.team import open_server_book

__all__ = ["ARTIFACTS_VAR", "DB_VAR", "HOSTS_VAR", "create_team_app"]

DB_VAR = settings.SERVER_DB_VAR
ARTIFACTS_VAR = settings.SERVER_ARTIFACTS_VAR
HOSTS_VAR = settings.SERVER_HOSTS_VAR


def _required(name: str) -> str:
    value = settings.server_setting(name)
    if not value:
        raise InvalidInput(f"${name} is not set: start the team server with `trialbook server`")
    return value


def create_team_app() -> FastAPI:
    """The app of one worker (see the module docstring)."""
    book = open_server_book(_required(DB_VAR), _required(ARTIFACTS_VAR))
    hosts = [h.strip() for h in (settings.server_setting(HOSTS_VAR) or "").split(",") if h.strip()] or None
    try:
        app = create_app(book, allowed_hosts=hosts, auth=True)
    except BaseException:
        book.close()
        raise

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        book.close()

    app.router.lifespan_context = lifespan
    return app
