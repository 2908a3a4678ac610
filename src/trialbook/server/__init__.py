"""The web UI and its JSON API (``trialbook ui``): a FastAPI app over one book.

Needs the ``ui`` extra (fastapi, uvicorn, jinja2, plotly); nothing else in trialbook
imports this package, so ``import trialbook`` and ``trialbook --help`` stay light.

* ``app``: the application factory, error mapping, security headers, static files and
  plotly.js from the installed ``plotly`` package (no CDN);
* ``auth``: on the team server (``create_app(auth=True)``), who is asking (a bearer token
  or the UI's session cookie), the access rule of every route (deny by default) and CSRF;
* ``hosts``: the ``Host`` names the server answers to (loopback by default; DNS rebinding);
* ``inputs``: bounds of query numbers and the text check of every path and query parameter;
* ``json_api``: the JSON API under ``/api/v1`` (OpenAPI at ``/api/v1/openapi.json``);
* ``pages``: server-rendered Jinja2 pages (``templates/``) with a little JavaScript
  (``static/``);
* ``responses``: strict JSON responses and the mapping of errors to statuses;
* ``filters``: the templates' Jinja2 filters (numbers and times from ``core.format``).

Both the API and the pages call ``trialbook.services`` only: no store calls, no SQL.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def create_app(book: Any, **options: Any) -> Any:
    """The FastAPI application serving ``book`` (see ``trialbook.server.app.create_app``
    for ``options``: ``poll_interval``, ``allowed_hosts``, ``auth``)."""
    from trialbook.server.app import create_app as make

    return make(book, **options)
