"""How the server answers: strict JSON from plain dicts, and trialbook's errors as HTTP
statuses (404 ``NotFound``, 409 ``Conflict``, 400 ``InvalidInput``)."""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi.responses import JSONResponse
from typing_extensions import TypedDict

from trialbook.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    StorageError,
    TooManyAttempts,
    TrialbookError,
    Unauthorized,
)


def _clean(value: Any) -> Any:
    """A copy of ``value`` that JSON can carry: NaN and infinities become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """Strict JSON (no NaN tokens, which browsers refuse); compact unless ``indent``."""
    kwargs.setdefault("separators", (",", ":"))
    try:
        return json.dumps(value, allow_nan=False, default=str, **kwargs)
    except ValueError:
        return json.dumps(_clean(value), allow_nan=False, default=str, **kwargs)


class JsonResponse(JSONResponse):
    """JSON rendered straight from plain dicts (no per-item encoder walk). A
    ``JSONResponse`` so that FastAPI documents a route's declared model as its schema."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content).encode("utf-8")


def error_status(exc: TrialbookError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, InvalidInput):
        return 400
    if isinstance(exc, Unauthorized):
        return 401
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, TooManyAttempts):
        return 429
    if isinstance(exc, StorageError):  # a read-only book, a full disk: the request was fine
        return 503
    return 500


class Error(TypedDict):
    """What was wrong and where (400 ``InvalidInput``, 404 ``NotFound``, 409 ``Conflict``)."""

    detail: str


def _error(description: str) -> dict[str, Any]:
    return {"model": Error, "description": description}


# The error statuses of the API's routes, for the OpenAPI document (422 is FastAPI's own).
Responses = dict[int | str, dict[str, Any]]
BAD_REQUEST: Responses = {400: _error("Invalid input: a value no backend stores, a bad filter or name")}
NOT_FOUND: Responses = {404: _error("No such project, run, dataset version or artifact")}
CONFLICT: Responses = {409: _error("The request contradicts what is stored")}
READ_ERRORS: Responses = {**BAD_REQUEST, **NOT_FOUND}
WRITE_ERRORS: Responses = {**READ_ERRORS, **CONFLICT}
