"""The server-rendered pages. Each calls ``trialbook.services`` once or twice and
renders a template (autoescaped); charts get their numbers from a JSON block in the page
(``<script type="application/json">``, escaped by ``tojson``) and draw with plotly.js.

Pages answer ``GET`` and ``HEAD`` and never write: what changes the book (a note, a
decision, recording a comparison) is a button whose script calls the JSON API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from trialbook.api import Book
from trialbook.core.config import ASKED_ENV_KEY, split_asked
from trialbook.errors import TrialbookError
from trialbook.server.inputs import MAX_LIMIT, MAX_OFFSET, check_params
from trialbook.server.responses import error_status
from trialbook.services import compare as compare_service
from trialbook.services import datasets as dataset_service
from trialbook.services import decisions as decision_service
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
    html = env.get_template(template).render(
        request=request, book_uri=_book(request).uri, poll_ms=request.app.state.poll_ms, **context
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
    overview = project_service.list_projects(_book(request))
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
) -> HTMLResponse:
    book = _book(request)
    # a page only reads: the page's "Record this comparison" button records it (POST)
    view = compare_service.compare_runs(
        book, runs, project=project, metric=metric or None, baseline=baseline or None, record=False
    )
    return render(
        request,
        "compare.html",
        page="compare",
        title=f"Compare · {project}",
        project=project,
        view=view,
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
    view = decision_service.list_decisions(_book(request), project or None)
    return render(request, "decisions.html", page="decisions", title="Decisions", view=view)
