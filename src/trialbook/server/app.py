"""The FastAPI application: the JSON API under ``/api/v1``, the server-rendered pages, our
own static files and plotly.js read from the installed ``plotly`` package (no CDN).

Routes are plain ``def`` functions: FastAPI runs them in its thread pool, so the store's
blocking calls never run on the event loop. They call ``trialbook.services`` only, never the
store or SQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from pathlib import Path

import jinja2
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trialbook._http import ERROR_HEADER
from trialbook.api import Book
from trialbook.errors import InvalidInput, NotFound, TrialbookError
from trialbook.server import auth as auth_rules
from trialbook.server import blobs, filters, json_api, pages, rpc
from trialbook.server.hosts import AllowedHosts, allowed_names
from trialbook.server.responses import JsonResponse, dumps, error_status
from trialbook.services import accounts as account_service

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
API_PREFIX = "/api/v1"
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")

# Pages run our own scripts only; plotly.js injects its own <style> elements.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)


def plotly_js_path() -> Path:
    """``plotly.min.js`` as bundled in the installed ``plotly`` Python package."""
    path = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))
    if not path.is_file():  # pragma: no cover - a broken plotly install
        raise NotFound(f"plotly.min.js is not in the installed plotly package ({path})")
    return path


class SecurityHeaders:
    """A small ASGI middleware adding the content security policy and friends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (b"x-frame-options", b"DENY"),
                ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def make_templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.policies["json.dumps_function"] = dumps
    env.policies["json.dumps_kwargs"] = {}
    filters.install(env)
    return env


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """Every method some route answers at the path of ``scope`` (Starlette's own 405 names
    only the first route matching the path: ``GET`` of ``/note``, not its ``PUT``)."""
    return [
        method
        for method in HTTP_METHODS
        if any(route.matches({**scope, "method": method})[0] == Match.FULL for route in app.router.routes)
    ]


def _validation_message(errors: Iterable[dict[str, object]]) -> str:
    """FastAPI's validation errors in one line: ``query offset: Input should be ...``."""
    parts = []
    for e in errors:
        loc = e.get("loc")
        where = " ".join(str(p) for p in loc) if isinstance(loc, (list, tuple)) else ""
        parts.append(f"{where}: {e.get('msg', 'invalid')}" if where else str(e.get("msg", "invalid")))
    return "; ".join(parts) or "invalid request"


def _accounts(book: Book) -> object | None:
    """The accounts of ``book``'s database; None for a book that keeps none (a remote one)."""
    try:
        accounts: object = account_service.accounts_of(book.store)
    except InvalidInput:
        return None
    return accounts


def create_app(
    book: Book,
    *,
    poll_interval: float = 2.0,
    allowed_hosts: Iterable[str] | None = None,
    auth: bool = False,
) -> FastAPI:
    """The web UI and JSON API over ``book``. Pages showing a run in progress poll for new
    epochs every ``poll_interval`` seconds.

    Only requests naming one of ``allowed_hosts`` in their ``Host`` header are answered
    (default: the loopback names, ``hosts.LOOPBACK_HOSTS``; any port), so that a rebound
    DNS name cannot make another site same-origin with the UI; the others get 400.

    ``auth`` (the team server): every route but the sign-in page and the static files
    needs a token or a UI session, and the route's rule in ``server.auth.ACCESS`` (a route
    without one makes this raise ``auth.MissingAccessRule``). Without it (``trialbook ui``)
    every request is the single local user, ``core.access.LOCAL``."""
    from trialbook import __version__

    accounts = _accounts(book)
    if auth and accounts is None:
        raise InvalidInput(f"{book.uri} keeps no accounts: a team server needs its own database")

    app = FastAPI(
        title="trialbook",
        version=__version__,
        description="The trialbook JSON API: projects, ranked runs, histories, compare, "
        "decisions, notes and dataset versions. Sealed test numbers are never "
        "returned, except as revealed by a decision.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.book = book
    app.state.templates = make_templates()
    app.state.poll_ms = max(100, round(poll_interval * 1000))
    app.state.accounts = accounts
    app.state.auth = auth
    hosts = allowed_names(allowed_hosts)

    @app.exception_handler(TrialbookError)
    def on_trialbook_error(request: Request, exc: TrialbookError) -> Response:
        status = error_status(exc)
        if request.url.path.startswith(API_PREFIX):
            # the message in a header too: the answer to a HEAD has no body to carry it
            said = (
                str(exc)
                .encode("ascii", "backslashreplace")
                .decode()[:500]
                .replace("\r", " ")
                .replace("\n", " ")
            )
            return JsonResponse({"detail": str(exc)}, status_code=status, headers={ERROR_HEADER: said})
        return pages.render_error(request, status, str(exc))

    @app.exception_handler(HTTPException)
    async def on_http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 405:
            methods = allowed_methods(app, request.scope)
            if methods:
                exc.headers = {**(exc.headers or {}), "Allow": ", ".join(methods)}
        return await http_exception_handler(request, exc)

    @app.exception_handler(RequestValidationError)
    def on_invalid_request(request: Request, exc: RequestValidationError) -> Response:
        # FastAPI's own 422, written with our strict JSON: its echo of the input may hold
        # NaN or a lone surrogate, which its default response cannot encode (a 500)
        if request.url.path.startswith(API_PREFIX):
            return JsonResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)
        return pages.render_error(request, 422, _validation_message(exc.errors()))

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly_js() -> FileResponse:
        return FileResponse(
            plotly_js_path(), media_type="text/javascript", headers={"cache-control": "public, max-age=86400"}
        )

    app.include_router(json_api.router, prefix=API_PREFIX)
    app.include_router(rpc.router, prefix=API_PREFIX)
    app.include_router(blobs.router, prefix=API_PREFIX)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    _add_middleware(app, hosts=hosts, accounts=accounts, auth=auth)
    return app


def _add_middleware(app: FastAPI, *, hosts: frozenset[str], accounts: object | None, auth: bool) -> None:
    """From the outermost: security headers, the ``Host`` check, then who is asking and
    whether the route lets them (``auth.Authenticate``; checked complete first)."""
    if auth:
        auth_rules.check_rules(app)
    app.add_middleware(
        auth_rules.Authenticate,
        routes_of=app,
        accounts=accounts,
        enabled=auth,
        error_page=pages.render_error,
        api_prefix=API_PREFIX,
    )
    app.add_middleware(AllowedHosts, names=hosts, api_prefix=API_PREFIX)
    app.add_middleware(SecurityHeaders)


def create_app_from_uri(uri: str | None = None) -> FastAPI:
    """``create_app`` on the book at ``uri`` (else ``$TRIALBOOK_URI``, else found from
    the current folder), for ``uvicorn --factory``."""
    return create_app(Book.open(uri))
