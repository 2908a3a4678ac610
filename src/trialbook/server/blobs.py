"""Artifact bytes by digest, for remote books (``artifacts.remote.RemoteBlobs``):
``PUT /api/v1/blobs/{digest}`` takes a streamed body, hashes it as it arrives and stores it
in the server's artifact store only when it hashes to ``digest`` (400 otherwise, nothing
stored); ``GET`` streams a blob back (verified first), ``HEAD`` says whether it is there.
Writing a blob twice is harmless: it is stored once per content."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from trialbook.api import Book
from trialbook.server.responses import READ_ERRORS, JsonResponse
from trialbook.services import blobs as blob_service

router = APIRouter(default_response_class=JsonResponse)

BINARY = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}


def _book(request: Request) -> Book:
    book: Book = request.app.state.book
    return book


@router.put(
    "/blobs/{digest}",
    summary="Upload a blob (its bytes must hash to the digest: blake3)",
    openapi_extra={"requestBody": {"required": True, "content": BINARY}},
    responses={200: {"description": "Stored (or already there): its digest and size"}, **READ_ERRORS},
)
async def put_blob(digest: str, request: Request) -> JsonResponse:
    book = _book(request)
    upload = await run_in_threadpool(blob_service.begin_upload, book, digest)
    try:
        async for chunk in request.stream():
            if chunk:
                await run_in_threadpool(upload.write, chunk)
    except BaseException:
        upload.abort()
        raise
    stored, size = await run_in_threadpool(upload.finish)
    return JsonResponse({"digest": stored, "size": size})


@router.get(
    "/blobs/{digest}",
    response_class=FileResponse,
    summary="Download a blob (checked against its digest first)",
    responses={200: {"description": "The blob's bytes", "content": BINARY}, **READ_ERRORS},
)
def get_blob(digest: str, request: Request) -> FileResponse:
    path = blob_service.blob_file(_book(request), digest)
    return FileResponse(path, media_type="application/octet-stream")


@router.head("/blobs/{digest}", summary="Whether a blob is stored (200) or not (404)", responses=READ_ERRORS)
def head_blob(digest: str, request: Request) -> Response:
    found = blob_service.has_blob(_book(request), digest)
    return Response(status_code=200 if found else 404)
