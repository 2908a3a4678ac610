"""The remote store's endpoint, mounted under ``/api/v1``: ``POST /store/{method}`` calls
one ``Store`` method of the server's book, ``POST /store/_batch`` runs a list of calls in
one transaction (``services.store_rpc``; the wire format is ``store.codec``'s).

Answers: ``200 {"result": ...}``, or ``{"error": class name, "message": ...}`` with the
status of the error class (``responses.error_status``: 404, 409, 400, 401, 403, 503 for a
``StorageError``, 500 for the others). Each call is made as the request's principal may
make it (``request.state.principal``, set by the team server's authentication; unset in
``trialbook ui``, where it is ``LOCAL``: everything allowed). Not in the OpenAPI
document: it is the client library's wire, not an API for people.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request

from trialbook.api import Book
from trialbook.core.access import LOCAL, Principal
from trialbook.errors import TrialbookError
from trialbook.server.responses import JsonResponse, error_status
from trialbook.services import store_rpc

router = APIRouter(default_response_class=JsonResponse, include_in_schema=False)

Payload = Annotated[Any, Body()]


def _principal(request: Request) -> Principal:
    principal: Principal = getattr(request.state, "principal", LOCAL)
    return principal


def _answer(work: Any) -> JsonResponse:
    try:
        return JsonResponse(work())
    except TrialbookError as exc:
        return JsonResponse(store_rpc.error_body(exc), status_code=error_status(exc))


@router.post("/store/_batch")
def store_batch(request: Request, payload: Payload = None) -> JsonResponse:
    book: Book = request.app.state.book
    return _answer(lambda: store_rpc.batch(book.store, payload, _principal(request)))


@router.post("/store/{method}")
def store_call(method: str, request: Request, payload: Payload = None) -> JsonResponse:
    book: Book = request.app.state.book
    return _answer(lambda: store_rpc.call(book.store, method, payload, _principal(request)))
