"""Who is asking, and may they: the team server's authentication and its access rule per
route (``create_app(auth=True)``, which ``trialbook server`` uses; ``trialbook ui`` on
loopback has none: every request is ``core.access.LOCAL``).

``Authenticate`` (ASGI middleware, inside the ``Host`` check) authenticates each request
from ``Authorization: Bearer TOKEN`` (``services.accounts.principal_for_token``, kept per
worker for 2 s by ``services.accounts.TokenCache``, so a revocation or a changed role takes
effect within 2 s), else from
the UI's session cookie ``tb_session`` (``services.accounts.session_principal``), and puts
the ``Principal`` in the request's state (``request.state.principal``, always set). It then
finds the route the request is for, the way the router will (``route.matches(scope)``),
and applies that route's rule from ``ACCESS`` before any endpoint runs:

* ``PUBLIC``: anyone (the sign-in page and the static files only);
* ``SIGNED_IN``: any user; the route filters what it answers by the projects the user
  sees (lists of projects, decisions, datasets, the audit; ``/api/v1/store/*``, whose
  per-method policy is ``services.store_policy``'s);
* ``EDITOR_SOMEWHERE``: an editor of some project (uploading artifact bytes);
* ``SERVER_ADMIN``;
* ``("project", ROLE, PARAM)``: at least ``ROLE`` on the project named by the path
  parameter ``PARAM`` (403 from ``Principal.require``: the user, the project, the role
  held, the role needed).

Anonymous requests get 401 (``WWW-Authenticate: Bearer``) under ``/api/v1`` and a 303 to
``/signin?next=PATH`` for a page; a token that is unknown, expired or revoked gets 401 (the
token is never echoed). A write authenticated by the session cookie carries the session's
CSRF token (header ``X-CSRF-Token`` or form field ``csrf``), else 403.

Deny by default: a route that has no rule in ``ACCESS`` makes ``create_app(auth=True)``
raise (``check_rules``), and is refused with 500 at request time if one appears later.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeAlias
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.requests import cookie_parser
from starlette.responses import RedirectResponse, Response
from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trialbook._http import ERROR_HEADER
from trialbook.core.access import LOCAL, Principal
from trialbook.errors import Forbidden, Unauthorized
from trialbook.server.responses import JsonResponse
from trialbook.services import accounts as account_service
from trialbook.services.decisions import DecisionsList
from trialbook.services.projects import ProjectsOverview

__all__ = [
    "ACCESS",
    "ANONYMOUS",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "EDITOR_SOMEWHERE",
    "PUBLIC",
    "SERVER_ADMIN",
    "SESSION_COOKIE",
    "SIGNED_IN",
    "Authenticate",
    "MissingAccessRule",
    "app_routes",
    "check_rules",
    "identity",
    "principal_of",
    "route_keys",
    "safe_next",
    "secure_request",
    "visible_decisions",
    "visible_projects",
    "who_of",
]

API = "/api/v1"
SESSION_COOKIE = "tb_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_LIMIT = 64 * 1024  # the most of a form body read for its csrf field

PUBLIC = "public"
SIGNED_IN = "signed_in"
EDITOR_SOMEWHERE = "editor_somewhere"
SERVER_ADMIN = "server_admin"
Rule: TypeAlias = "str | tuple[str, str, str]"  # a name above, or on_project(...)


def on_project(role: str, param: str = "project") -> tuple[str, str, str]:
    """The rule: at least ``role`` on the project named by the path parameter ``param``."""
    return ("project", role, param)


VIEWER, EDITOR, ADMIN = on_project("viewer"), on_project("editor"), on_project("admin")
PAGE = ("GET", "HEAD")

_RULES: list[tuple[tuple[str, ...], str, Rule]] = [
    # signing in, and what every page loads before (scripts, styles, plotly.js)
    (PAGE, "/signin", PUBLIC),
    (("POST",), "/signin", PUBLIC),
    (("POST",), "/signout", SIGNED_IN),
    (("GET",), "/static/plotly.min.js", PUBLIC),
    (("*",), "/static", PUBLIC),
    (PAGE, f"{API}/openapi.json", SIGNED_IN),
    # the JSON API
    (("GET",), f"{API}/projects", SIGNED_IN),
    (("GET",), f"{API}/projects/{{project}}", VIEWER),
    (("GET",), f"{API}/projects/{{project}}/runs", VIEWER),
    (("GET",), f"{API}/projects/{{project}}/runs/{{run}}", VIEWER),
    (("GET",), f"{API}/projects/{{project}}/runs/{{run}}/history", VIEWER),
    (("GET",), f"{API}/projects/{{project}}/runs/{{run}}/note", VIEWER),
    (("PUT",), f"{API}/projects/{{project}}/runs/{{run}}/note", EDITOR),
    (("GET",), f"{API}/projects/{{project}}/runs/{{run}}/artifacts/{{digest}}", VIEWER),
    (("GET",), f"{API}/projects/{{project}}/runs/{{run}}/review", VIEWER),
    (("GET",), f"{API}/projects/{{project}}/review", VIEWER),
    (("GET",), f"{API}/projects/{{project}}/thumbs/{{digest}}", VIEWER),
    (("GET",), f"{API}/projects/{{project}}/compare", VIEWER),
    (("POST",), f"{API}/projects/{{project}}/comparisons", EDITOR),
    (("POST",), f"{API}/projects/{{project}}/decisions", EDITOR),
    (("GET",), f"{API}/projects/{{project}}/decisions", VIEWER),
    (("GET",), f"{API}/projects/{{project}}/members", ADMIN),
    (("PUT", "DELETE"), f"{API}/projects/{{project}}/members/{{user}}", ADMIN),
    (("GET",), f"{API}/decisions", SIGNED_IN),
    (("GET",), f"{API}/datasets", SIGNED_IN),
    (("GET",), f"{API}/datasets/{{name}}/diff", SIGNED_IN),
    (("GET",), f"{API}/audit", SIGNED_IN),
    # the remote store's wire (each method's own policy: services.store_policy) and blobs
    (("POST",), f"{API}/store/_batch", SIGNED_IN),
    (("POST",), f"{API}/store/{{method}}", SIGNED_IN),
    (("GET",), f"{API}/blobs/{{digest}}", SIGNED_IN),
    (("HEAD",), f"{API}/blobs/{{digest}}", SIGNED_IN),
    (("PUT",), f"{API}/blobs/{{digest}}", EDITOR_SOMEWHERE),
    # the pages
    (PAGE, "/", SIGNED_IN),
    (PAGE, "/projects/{project}", VIEWER),
    (PAGE, "/projects/{project}/compare", VIEWER),
    (PAGE, "/projects/{project}/runs/{run}", VIEWER),
    (PAGE, "/datasets", SIGNED_IN),
    (PAGE, "/decisions", SIGNED_IN),
    (PAGE, "/audit", SIGNED_IN),
]

ACCESS: dict[tuple[str, str], Rule] = {
    (method, path): rule for methods, path, rule in _RULES for method in methods
}
"""The access rule of every route: ``(METHOD, PATH TEMPLATE)`` (as FastAPI declares the
route; ``"*"`` for a mount) to its rule."""

ANONYMOUS = Principal(name="anonymous")
"""The principal of a request to a public route: no role anywhere."""


class MissingAccessRule(RuntimeError):
    """A route of the app has no rule in ``ACCESS`` (or a rule names no route)."""


# --------------------------------------------------------------------------- routes
def app_routes(app: Any) -> list[Any]:
    """Every route of ``app``, flat: those of included routers with their full paths
    (FastAPI >= 0.16x keeps included routers as one lazy route each)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # pragma: no cover - an older FastAPI: the routes are flat already
        return list(app.router.routes)
    return list(iter_route_contexts(app.router.routes))


def route_keys(route: Any) -> list[tuple[str, str]]:
    """The ``ACCESS`` keys of one route: one per method (``"*"`` for a mount)."""
    path = str(route.path)
    methods = getattr(route, "methods", None)
    if isinstance(getattr(route, "original_route", route), Mount) or not methods:
        return [("*", path)]
    return [(m, path) for m in sorted(methods)]


def check_rules(app: Any) -> None:
    """``MissingAccessRule`` naming each route of ``app`` without a rule in ``ACCESS``,
    and each rule that names no route (a route renamed, its rule left behind)."""
    keys = {key for route in app_routes(app) for key in route_keys(route)}
    missing = sorted(keys - set(ACCESS))
    stale = sorted(set(ACCESS) - keys)
    if missing or stale:
        said = []
        if missing:
            said.append("routes without an access rule: " + ", ".join(f"{m} {p}" for m, p in missing))
        if stale:
            said.append("access rules of no route: " + ", ".join(f"{m} {p}" for m, p in stale))
        raise MissingAccessRule("; ".join(said) + " (server/auth.py ACCESS)")


def _match(routes: list[Any], scope: Scope) -> tuple[tuple[str, str], dict[str, Any]] | None:
    """The ``ACCESS`` key of the route among ``routes`` (``app_routes``) that the router
    will give ``scope`` to, and its path parameters; None when none takes it whole (a 404
    or a 405)."""
    for route in routes:
        found, child = route.matches(scope)
        if found == Match.FULL:
            first = route_keys(route)[0]
            key = first if first[0] == "*" else (scope["method"], first[1])
            return key, dict(child.get("path_params", {}))
    return None


# --------------------------------------------------------------------------- the request
def principal_of(request: Request) -> Principal:
    """The principal ``Authenticate`` put in the request's state."""
    principal: Principal = request.state.principal
    return principal


def who_of(request: Request) -> str | None:
    """The name to record for what the request writes: the authenticated user; None
    (the services then record ``settings.who()``) without authentication."""
    principal = principal_of(request)
    return None if principal.local else principal.name


def identity(request: Request) -> dict[str, Any] | None:
    """Who is signed in, for the layout: name, role (on the page's project, if any),
    whether by session (a sign-out button), the session's CSRF token and whether the
    user administers some project (the audit link). None without sign-in."""
    state = request.scope.get("state") or {}
    principal = state.get("principal")
    via = state.get("auth")
    if not isinstance(principal, Principal) or via not in ("token", "session"):
        return None
    project = request.path_params.get("project")
    if isinstance(project, str) and project:
        held = principal.role_in(project)
        role = f"{held} of {project}" if held else f"not a member of {project}"
        if principal.server_admin:
            role += " (server admin)"
    else:
        role = "server admin" if principal.server_admin else "signed in"
    return {
        "name": principal.name,
        "role": role,
        "session": via == "session",
        "csrf": state.get("csrf") or "",
        "admin": principal.server_admin or "admin" in principal.roles.values(),
    }


def safe_next(value: str | None) -> str:
    """``value`` when it is a path of this server (``/projects/p?x=1``), else ``/``: never
    another site (``//evil``, ``https://...``, ``/\\evil``) nor the sign-in pages."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path in ("/signin", "/signout"):
        return "/"
    return value


def secure_request(scope: Scope) -> bool:
    """Whether the request came over https (directly, or through a proxy saying so)."""
    if scope.get("scheme") == "https":
        return True
    proto = _header(scope, b"x-forwarded-proto")
    return proto is not None and proto.split(",")[0].strip().lower() == "https"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _bearer(scope: Scope) -> str | None:
    """The token of ``Authorization: Bearer TOKEN``; "" for another kind of
    ``Authorization`` (refused); None when there is none."""
    header = _header(scope, b"authorization")
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def _cookie(scope: Scope) -> str | None:
    header = _header(scope, b"cookie")
    if not header:
        return None
    return cookie_parser(header).get(SESSION_COOKIE) or None


# --------------------------------------------------------------------------- middleware
ErrorPage = Callable[[Request, int, str], Response]


class Authenticate:
    """ASGI middleware: authenticate, then apply the route's rule (module docstring).

    ``enabled`` false (``trialbook ui``): every request is ``LOCAL``, nothing checked."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes_of: Any,
        accounts: Any,
        enabled: bool,
        error_page: ErrorPage,
        api_prefix: str = API,
    ) -> None:
        self.app = app
        self.routes_of = routes_of  # the FastAPI app whose routes the router will use
        self.accounts = accounts
        self.enabled = enabled
        self.error_page = error_page
        self.api_prefix = api_prefix
        self._routes: tuple[list[Any], list[Any]] = ([], [])  # (the app's routes, flat)
        self._tokens = account_service.TokenCache()

    def routes(self) -> list[Any]:
        """``app_routes`` of the app, made again whenever its routes change (one added)."""
        top = list(self.routes_of.router.routes)
        known = self._routes[0]
        if len(top) != len(known) or any(a is not b for a, b in zip(top, known, strict=True)):
            self._routes = (top, app_routes(self.routes_of))
        return self._routes[1]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        if not self.enabled:
            state.update(principal=LOCAL, auth=None, csrf=None)
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":  # no route takes one
            await send({"type": "websocket.close", "code": 1008, "reason": "not served"})
            return
        state.update(principal=ANONYMOUS, auth=None, csrf=None)
        refusal, receive = await self._admit(scope, receive)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _admit(self, scope: Scope, receive: Receive) -> tuple[Response | None, Receive]:
        """None when the request may go on (its principal in its state), else the answer
        that refuses it; and the ``receive`` to go on with (a form read is replayed)."""
        found = _match(self.routes(), scope)
        rule = ACCESS.get(found[0]) if found is not None else None
        if found is not None and rule is None:
            method, path = found[0]
            said = f"route without an access rule: {method} {path}"
            return self._refusal(scope, receive, 500, said), receive
        if rule == PUBLIC:
            return None, receive
        try:
            principal, via, csrf = await self._authenticate(scope)
        except Unauthorized as exc:
            return self._refusal(scope, receive, 401, str(exc), invalid_token=True), receive
        if principal is None:
            return self._anonymous(scope, receive), receive
        scope["state"].update(principal=principal, auth=via, csrf=csrf)
        if csrf is not None and scope["method"] not in SAFE_METHODS:
            given = _header(scope, CSRF_HEADER.encode())
            if given is None:
                given, receive = await _form_field(scope, receive, CSRF_FIELD)
            if not account_service.csrf_matches(csrf, given):
                return self._refusal(scope, receive, 403, "missing or wrong CSRF token"), receive
        if found is not None and rule is not None:
            try:
                _apply(rule, principal, found[1], f"{scope['method']} {found[0][1]}")
            except Forbidden as exc:
                return self._refusal(scope, receive, 403, str(exc)), receive
        return None, receive

    async def _authenticate(self, scope: Scope) -> tuple[Principal | None, str | None, str | None]:
        """``(principal, "token" | "session", the session's CSRF token)``; Nones for a
        request that carries neither; ``Unauthorized`` for a token that is no live one."""
        token = _bearer(scope)
        if token is not None:
            if not token:
                raise Unauthorized("give the token as `Authorization: Bearer TOKEN`")
            principal = self._tokens.cached(token)
            if principal is None:
                principal = await run_in_threadpool(self._tokens.lookup, self.accounts, token)
            return principal, "token", None
        cookie = _cookie(scope)
        if cookie is not None:
            found = await run_in_threadpool(account_service.session_principal, self.accounts, cookie)
            if found is not None:
                return found[0], "session", found[1]
        return None, None, None

    def _api(self, scope: Scope) -> bool:
        path = str(scope.get("path", ""))
        return path == self.api_prefix or path.startswith(self.api_prefix + "/")

    def _anonymous(self, scope: Scope, receive: Receive) -> Response:
        """A page is sent to the sign-in page (and back once signed in); the rest get 401."""
        if not self._api(scope) and scope["method"] in ("GET", "HEAD"):
            raw = scope.get("raw_path")  # as sent (a %2F or %3F in a name stays so)
            path = (raw.decode("latin-1") if raw else str(scope.get("path", "/"))) or "/"
            query = scope.get("query_string", b"").decode("latin-1")
            target = safe_next(path + (f"?{query}" if query else ""))
            location = "/signin" + (f"?next={quote(target, safe='')}" if target != "/" else "")
            return RedirectResponse(location, status_code=303)
        return self._refusal(
            scope,
            receive,
            401,
            "this server needs a token (Authorization: Bearer TOKEN) or a signed-in session: "
            "sign in at /signin, or ask an admin for a token (trialbook admin token create NAME)",
        )

    def _refusal(
        self, scope: Scope, receive: Receive, status: int, message: str, *, invalid_token: bool = False
    ) -> Response:
        """``{"detail": message}`` under the API (the message in ``ERROR_HEADER`` too), the
        error page elsewhere."""
        headers: dict[str, str] = {}
        if status == 401:
            headers["www-authenticate"] = 'Bearer error="invalid_token"' if invalid_token else "Bearer"
        if self._api(scope) or status == 500:
            said = message.encode("ascii", "backslashreplace").decode()[:500]
            headers[ERROR_HEADER] = said.replace("\r", " ").replace("\n", " ")
            response: Response = JsonResponse({"detail": message}, status_code=status, headers=headers)
            if scope.get("method") == "HEAD":
                response.body = b""
            return response
        response = self.error_page(Request(scope, receive), status, message)
        response.headers.update(headers)
        return response


def _apply(rule: Rule, principal: Principal, params: Mapping[str, Any], action: str) -> None:
    """Nothing when ``principal`` passes ``rule``; else ``Forbidden`` saying why."""
    if rule == SIGNED_IN:
        return
    if rule == SERVER_ADMIN:
        principal.require_server_admin(action)
        return
    if rule == EDITOR_SOMEWHERE:
        if not principal.editor_somewhere():
            raise Forbidden(
                f"{principal.name} is editor of no project; {action} needs editor of some project "
                f"(a project's admin can grant it: trialbook admin grant {principal.name} PROJECT editor)"
            )
        return
    if isinstance(rule, tuple) and rule[0] == "project":
        _, role, param = rule
        principal.require(str(params.get(param, "")), role, action)
        return
    raise Forbidden(f"{action}: unknown access rule {rule!r}")  # pragma: no cover - ACCESS is checked


async def _form_field(scope: Scope, receive: Receive, name: str) -> tuple[str | None, Receive]:
    """The field ``name`` of a form-encoded body (read up to ``FORM_LIMIT``), and a
    ``receive`` that gives the app the whole body again."""
    media = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        return None, receive
    messages: list[Message] = []
    body = b""
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        body += message.get("body", b"")
        if not message.get("more_body") or len(body) > FORM_LIMIT:
            break
    complete = bool(messages) and messages[-1]["type"] == "http.request" and not messages[-1].get("more_body")

    async def replay() -> Message:
        if messages:
            return messages.pop(0)
        return await receive()

    if not complete:
        return None, replay
    values = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).get(name)
    return (values[0] if values else None), replay


# --------------------------------------------------------------------------- what a user sees
def visible_projects(principal: Principal, overview: ProjectsOverview) -> ProjectsOverview:
    """``overview`` with only the projects ``principal`` may read."""
    return {**overview, "projects": [p for p in overview["projects"] if principal.can_see(p["name"])]}


def visible_decisions(principal: Principal, view: DecisionsList) -> DecisionsList:
    """``view`` with only the decisions and test splits of projects ``principal`` may read."""
    return {
        **view,
        "decisions": [d for d in view["decisions"] if principal.can_see(d["project"])],
        "test_splits": [s for s in view["test_splits"] if principal.can_see(s["project"])],
        "burned": [s for s in view["burned"] if principal.can_see(s["project"])],
    }
