"""The server-rendered pages. Each calls ``trialbook.services`` once or twice and
renders a template (autoescaped); charts get their numbers from a JSON block in the page
(``<script type="application/json">``, escaped by ``tojson``) and draw with plotly.js.

Pages answer ``GET`` and ``HEAD`` and never write: what changes the book (a note, a
decision, recording a comparison) is a button whose script calls the JSON API (with the
session's CSRF token, from ``<meta name="csrf-token">``).

On a team server (``create_app(auth=True)``) the layout names the signed-in user and
their role, ``/signin`` signs in (a name and password, or a token: the session cookie
``tb_session``) and ``/signout`` signs out; lists across projects show only the projects
the user sees; ``/audit`` lists who did what in the projects the user is admin of."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from trialbook.api import Book
from trialbook.core.config import ASKED_ENV_KEY, split_asked
from trialbook.errors import TooManyAttempts, TrialbookError, Unauthorized
from trialbook.server import auth
from trialbook.server.inputs import MAX_LIMIT, MAX_OFFSET, check_params
from trialbook.server.responses import error_status
from trialbook.services import accounts as account_service
from trialbook.services import compare as compare_service
from trialbook.services import datasets as dataset_service
from trialbook.services import decisions as decision_service
from trialbook.services import gallery as gallery_service
from trialbook.services import projects as project_service
from trialbook.services import runs as run_service

router = APIRouter(
    default_response_class=HTMLResponse, include_in_schema=False, dependencies=[Depends(check_params)]
)

Route = TypeVar("Route", bound=Callable[..., HTMLResponse])


def page(path: str) -> Callable[[Route], Route]:
    """A page at ``path``, answering ``GET`` and ``HEAD`` (the same headers, no body)."""
    add: Callable[[Route], Route] = router.api_route(path, methods=["GET", "HEAD"])
    return add


def _book(request: Request) -> Book:
    book: Book = request.app.state.book
    return book


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    env = request.app.state.templates
    anonymous = getattr(request.state, "principal", None) is auth.ANONYMOUS  # the sign-in page
    html = env.get_template(template).render(
        request=request,
        book_uri="" if anonymous else _book(request).uri,
        poll_ms=request.app.state.poll_ms,
        me=auth.identity(request),
        **context,
    )
    response = HTMLResponse(html, status_code=status)
    if request.method == "HEAD":
        response.body = b""  # the headers of the GET (its content-length too), no body
    return response


def render_error(request: Request, status: int, message: str) -> HTMLResponse:
    return render(
        request,
        "error.html",
        status=status,
        status_code=status,
        message=message,
        page="error",
        title=f"Error {status}",
    )


@page("/")
def home(request: Request) -> HTMLResponse:
    overview = auth.visible_projects(
        auth.principal_of(request), project_service.list_projects(_book(request))
    )
    return render(request, "home.html", page="home", title="Projects", overview=overview)


@page("/projects/{project}")
def project(
    request: Request,
    project: str,
    status: Annotated[str, Query()] = "",
    dataset: Annotated[str | None, Query()] = None,
    tag: Annotated[str, Query()] = "",
    q: Annotated[str, Query()] = "",
    sort: Annotated[str, Query()] = "rank",
    order: Annotated[str, Query()] = "",
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> HTMLResponse:
    book = _book(request)
    summary = project_service.project_info(book, project)
    table = run_service.runs_table(
        book,
        project,
        status=[status] if status else [],
        dataset=dataset if dataset not in (None, "*") else None,
        tag=tag or None,
        q=q or None,
        sort=sort,
        order=order or None,
        offset=offset,
        limit=limit,
        sparkline=True,
    )
    params = {
        k: v
        for k, v in (
            ("status", status),
            ("dataset", dataset),
            ("tag", tag),
            ("q", q),
            ("sort", sort if sort != "rank" else ""),
            ("order", order),
            ("limit", str(limit) if limit != 50 else ""),
        )
        if v not in (None, "", "*")
    }

    def page_url(offset: int) -> str:
        merged = {**params, **({"offset": str(offset)} if offset > 0 else {})}
        return f"?{urlencode(merged)}"

    def sort_url(column: str) -> str:
        same = table["sort"] == column
        flip = "asc" if same and (table["order"] or "desc") == "desc" else "desc"
        merged = {**params, "sort": column, "order": flip}
        return f"?{urlencode(merged)}"

    return render(
        request,
        "project.html",
        page="project",
        title=project,
        project=summary,
        table=table,
        page_url=page_url,
        sort_url=sort_url,
        filters={"status": status, "dataset": dataset or "*", "tag": tag, "q": q},
    )


@page("/projects/{project}/compare")
def compare(
    request: Request,
    project: str,
    runs: Annotated[list[str], Query()] = [],  # noqa: B006
    metric: Annotated[str | None, Query()] = None,
    baseline: Annotated[str | None, Query()] = None,
    candidate: Annotated[str | None, Query()] = None,
    iou: Annotated[float, Query(gt=0, le=1)] = 0.5,
    conf: Annotated[float, Query(gt=0, le=1)] = 0.25,
) -> HTMLResponse:
    book = _book(request)
    # a page only reads: the page's "Record this comparison" button records it (POST)
    view = compare_service.compare_runs(
        book, runs, project=project, metric=metric or None, baseline=baseline or None, record=False
    )
    compared = [(r["name"], r["id"]) for r in view["runs"]]
    # the images themselves come from the JSON API, loaded by the page's script
    review = gallery_service.review_section(
        book, compared, view["baseline"], candidate=candidate or None, iou=iou, conf=conf
    )
    return render(
        request,
        "compare.html",
        page="compare",
        title=f"Compare · {project}",
        project=project,
        view=view,
        plots=gallery_service.side_by_side(book, compared),
        review=review,
        charts=True,
    )


@page("/projects/{project}/runs/{run}")
def run(request: Request, project: str, run: str) -> HTMLResponse:
    book = _book(request)
    view = run_service.show_run(book, run, project=project, decisions=True)
    curves = run_service.history(book, run, project=project)
    # the keys the user asked for first, the rest (at the training library's defaults) folded
    asked, rest = split_asked(view["config"], view["env"])
    metric = view["protocol_metric"]
    # the protocol metric first, the learning rates last
    summary = sorted(view["summary"].items(), key=lambda kv: (kv[0] != metric, kv[0].startswith("lr"), kv[0]))
    note = view["note"]
    saved = (note["result"] or "").strip() if note else ""
    gallery = gallery_service.run_gallery(book, view["id"], project=project)
    images = gallery_service.run_images_section(book, view["name"], view["id"])
    return render(
        request,
        "run.html",
        page="run",
        title=f"{run} · {project}",
        project=project,
        run=view,
        summary=summary,
        config_asked=asked,
        config_rest=rest,
        env={k: v for k, v in view["env"].items() if k != ASKED_ENV_KEY},
        # a draft equal to the saved result says nothing new: the page keeps it hidden
        draft_shown=bool(view["draft"]) and view["draft"].strip() != saved,
        curves=curves,
        gallery=gallery,
        images=images,
        charts=True,
    )


@page("/datasets")
def datasets(request: Request, a: str = "", b: str = "") -> HTMLResponse:
    book = _book(request)
    view = dataset_service.datasets_overview(book)
    diff = None
    diff_error = None
    if a and b:
        try:
            diff = dataset_service.diff(book, a, b, files=dataset_service.DIFF_FILES_SHOWN)
        except TrialbookError as exc:
            diff_error = f"{exc} (error {error_status(exc)})"
    return render(
        request,
        "datasets.html",
        page="datasets",
        title="Datasets",
        view=view,
        diff=diff,
        diff_error=diff_error,
        a=a,
        b=b,
        charts=bool(view["datasets"]),
    )


@page("/decisions")
def decisions(request: Request, project: str | None = None) -> HTMLResponse:
    me = auth.principal_of(request)
    if project:
        me.require(project, "viewer", "reading its decisions")
    view = auth.visible_decisions(me, decision_service.list_decisions(_book(request), project or None))
    return render(request, "decisions.html", page="decisions", title="Decisions", view=view)


@page("/audit")
def audit(request: Request, project: str | None = None) -> HTMLResponse:
    me = auth.principal_of(request)
    book = _book(request)
    events = account_service.audit_events(book.store, request.app.state.accounts, me, project or None)
    admin_of = [
        p["name"] for p in project_service.list_projects(book)["projects"] if me.can(p["name"], "admin")
    ]
    return render(
        request,
        "audit.html",
        page="audit",
        title="Audit",
        events=list(reversed(events)),
        project=project or "",
        admin_of=admin_of,
    )


# --------------------------------------------------------------------------- sign-in
def _signin_form(
    request: Request, *, status: int = 200, message: str = "", next_url: str = "/", name: str = ""
) -> HTMLResponse:
    return render(
        request,
        "signin.html",
        status=status,
        page="signin",
        title="Sign in",
        message=message,
        next_url=next_url,
        name=name,
    )


@router.api_route("/signin", methods=["GET", "HEAD"])
def signin(request: Request, next: str = "/") -> Response:
    if not request.app.state.auth:  # trialbook ui: nobody signs in
        return RedirectResponse(auth.safe_next(next), status_code=303)
    return _signin_form(request, next_url=auth.safe_next(next))


def _field(form: Any, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


@router.post("/signin")
async def signin_post(request: Request) -> Response:
    """A new session from the form's name and password, or its token: the cookie, then
    back to ``next``. Wrong ones: the form again (401); too many: 429."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > auth.FORM_LIMIT:  # a sign-in form is a few fields
        return render_error(request, 413, f"a sign-in form is at most {auth.FORM_LIMIT} bytes")
    form = await request.form()
    next_url = auth.safe_next(_field(form, "next"))
    if not request.app.state.auth:
        return RedirectResponse(next_url, status_code=303)
    name, password, token = (
        _field(form, "name").strip(),
        _field(form, "password"),
        _field(form, "token").strip(),
    )
    client = request.client.host if request.client else "unknown"
    try:
        signed = await run_in_threadpool(
            lambda: account_service.sign_in(
                request.app.state.accounts,
                name=name or None,
                password=password or None,
                token=token or None,
                client=client,
            )
        )
    except TooManyAttempts as exc:
        return _signin_form(request, status=429, message=str(exc), next_url=next_url, name=name)
    except Unauthorized:
        return _signin_form(
            request, status=401, message="wrong name, password or token", next_url=next_url, name=name
        )
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(
        auth.SESSION_COOKIE,
        signed.cookie,
        max_age=int(account_service.SESSION_TTL_S),
        path="/",
        httponly=True,
        samesite="lax",
        secure=auth.secure_request(request.scope),
    )
    return response


@router.post("/signout")
def signout(request: Request) -> Response:
    """Forget the session (its CSRF token checked by ``server.auth``) and its cookie."""
    cookie = request.cookies.get(auth.SESSION_COOKIE)
    if cookie and request.app.state.accounts is not None and request.app.state.auth:
        account_service.sign_out(request.app.state.accounts, cookie)
    response = RedirectResponse("/signin" if request.app.state.auth else "/", status_code=303)
    response.delete_cookie(
        auth.SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=auth.secure_request(request.scope),
    )
    return response
