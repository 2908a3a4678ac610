"""The server side of the remote store (``store.remote.RemoteStore``): one ``Store``
method called by name with arguments in the wire format of ``store.codec``, and a batch
of calls run in one store transaction.

Only the methods of ``codec.METHODS`` are ever called (every public method of the
``Store`` protocol but ``transaction`` and ``close``; nothing private, no attribute such
as ``db``): a request naming anything else is ``NotFound``.

A payload is ``{"args": [...], "kwargs": {...}}`` (both optional), encoded; the answer is
``{"result": ...}``, encoded. A batch is ``{"calls": [{"method", "args", "kwargs"}, ...],
"commit": bool}``: the calls run in order in one ``store.transaction()``; with ``commit``
false it is rolled back at the end (the client's look at what its transaction would see).
The answer is the last call's result. When any call raises, nothing of the batch is kept
and the error is raised.

Every call is made as ``principal`` allows it (``services.store_policy``: the role it
needs on the projects it touches, ``who`` replaced by the principal's name, cross-project
reads filtered); in a batch, each call is checked in the batch's transaction, so a run
the batch created is found. ``LOCAL`` (the default: ``trialbook ui``, an embedded book)
is allowed everything, unchanged.

Errors are ``trialbook.errors`` classes; ``error_body`` is their wire form.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from trialbook.core.access import LOCAL, Principal
from trialbook.errors import InvalidInput, NotFound, TrialbookError
from trialbook.services.store_policy import Guard
from trialbook.store import codec
from trialbook.store.base import Store

__all__ = ["MAX_BATCH", "batch", "call", "error_body"]

MAX_BATCH = 10_000  # calls in one batch


class _DryRun(Exception):
    """Raised inside a batch's transaction to roll it back once it has run."""


def error_body(exc: TrialbookError) -> dict[str, str]:
    """The wire form of ``exc``: ``{"error": class name, "message": text}``."""
    return codec.encode_error(exc)


def call(store: Store, method: str, payload: Any, principal: Principal = LOCAL) -> dict[str, Any]:
    """``{"result": ...}`` of ``store.<method>(*args, **kwargs)`` with the arguments of
    ``payload``, as ``principal`` may make it. Raises ``NotFound`` for a method that is
    not on the allow-list, ``InvalidInput`` for a payload that does not fit the method,
    ``Forbidden`` for a call the principal's roles do not allow, and whatever the store
    raises."""
    guard = Guard(store, principal)
    result = _run(guard, method, payload)
    guard.commit()
    return {"result": codec.encode(result)}


def batch(store: Store, payload: Any, principal: Principal = LOCAL) -> dict[str, Any]:
    """``{"result": ...}`` of the last call of the batch ``payload`` (``None`` for an
    empty one), all of them run in one transaction, kept when ``payload["commit"]`` is
    true and rolled back otherwise; each as ``principal`` may make it (a call it may not
    make raises ``Forbidden`` and nothing of the batch is kept)."""
    if not isinstance(payload, Mapping):
        raise InvalidInput("a store batch is a JSON object with 'calls' and 'commit'")
    calls, commit = payload.get("calls"), payload.get("commit")
    if not isinstance(calls, list) or not isinstance(commit, bool):
        raise InvalidInput("a store batch needs 'calls' (a list) and 'commit' (true or false)")
    if len(calls) > MAX_BATCH:
        raise InvalidInput(f"a store batch holds at most {MAX_BATCH} calls, not {len(calls)}")
    for one in calls:
        if not isinstance(one, Mapping) or not isinstance(one.get("method"), str):
            raise InvalidInput("each call of a store batch is an object naming its 'method'")
    result: Any = None
    guard = Guard(store, principal)
    try:
        with store.transaction():
            for one in calls:
                result = _run(guard, one["method"], one)
            if not commit:
                raise _DryRun
        guard.commit()
    except _DryRun:
        pass
    return {"result": codec.encode(result)}


def _run(guard: Guard, method: str, payload: Any) -> Any:
    if method not in codec.METHODS:
        raise NotFound(f"the store has no method {method!r} that a client may call")
    args, kwargs = _arguments(method, payload)
    function = getattr(guard.store, method)
    try:
        inspect.signature(function).bind(*args, **kwargs)
    except TypeError as exc:
        raise InvalidInput(f"store method {method}: {exc}") from None
    return guard.call(method, function, args, kwargs)


def _arguments(method: str, payload: Any) -> tuple[list[Any], dict[str, Any]]:
    if payload is None:
        payload = {}
    if not isinstance(payload, Mapping):
        raise InvalidInput(f"store method {method}: the arguments are a JSON object with 'args' and 'kwargs'")
    args = codec.decode(payload.get("args", []))
    kwargs = codec.decode(payload.get("kwargs", {}))
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise InvalidInput(f"store method {method}: 'args' is a list and 'kwargs' an object")
    return args, kwargs
