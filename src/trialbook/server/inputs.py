"""What a request may carry, checked before any of it reaches a service: the bounds of
the numbers in queries (FastAPI answers 422 past them) and text every backend stores
(``core.text.check_text``: no NUL, nothing that cannot be encoded as UTF-8; 400 otherwise).

``check_params`` is a dependency of both routers: every path and query parameter of every
route goes through it. Text in JSON bodies is checked field by field, by the route or by
the service it calls.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import Request

from trialbook.core.text import check_text

MAX_OFFSET = 10**9  # the furthest a page of runs may start
MAX_LIMIT = 500  # the most runs one page holds (``services.runs.MAX_PAGE``)
MIN_SINCE_EPOCH = -1  # since_epoch=-1: every epoch (epochs go from 0 to core.metrics.MAX_EPOCH)


def check_params(request: Request) -> None:
    """``InvalidInput`` (400) naming the first path or query parameter whose text no
    backend can store."""
    for name, value in request.path_params.items():
        if isinstance(value, str):
            check_text(f"path parameter {name}", value)
    for name, value in request.query_params.multi_items():
        check_text("query parameter name", name)
        check_text(f"query parameter {name}", value)


def texts(what: str, values: Iterable[str]) -> list[str]:
    """``values``, each checked with ``check_text`` (``what[i]`` names a bad one)."""
    return [check_text(f"{what}[{i}]", v) for i, v in enumerate(values)]
