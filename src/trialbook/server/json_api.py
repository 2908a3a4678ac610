"""The JSON API, mounted under ``/api/v1``: the read side of the future team server plus
the three writes the UI needs (a run's note, a decision, a recorded comparison). Reads
never write: only ``PUT`` and ``POST`` change the book.

Errors: ``{"detail": "..."}`` with 404 (``NotFound``), 400 (``InvalidInput``) or 409
(``Conflict``); 422 (FastAPI's own) for a request that does not fit the OpenAPI document.
Sealed test numbers are never returned, except as a decision reveals them.

Each route returns its service's dict as a ``JsonResponse`` (no per-item encoder walk, no
response validation at run time); its OpenAPI entry declares the service's TypedDict
(``responses={200: {"model": ...}}``), which documents the shape without checking it.

On a team server (``create_app(auth=True)``) ``server.auth`` has checked the route's rule
before it runs; the routes that list across projects answer only the projects the user
sees, and what a route writes names the authenticated user. The members of a project
(its grants) and the audit are here too.

Artifacts are served with the content type their name says for images, CSV and text, and
as ``application/octet-stream`` attachments otherwise (never HTML or SVG). The run review
(``services.review``) answers image by image with boxes, and thumbnails by digest, for
the pages' "Where it got worse" and "Images it gets most wrong", which load them lazily.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from trialbook import settings
from trialbook.api import Book
from trialbook.core.entities import AuditEvent, Grant
from trialbook.core.metrics import MAX_EPOCH
from trialbook.core.text import check_text
from trialbook.errors import InvalidInput, NotFound
from trialbook.server.auth import principal_of, visible_decisions, visible_projects, who_of
from trialbook.server.inputs import MAX_LIMIT, MAX_OFFSET, MIN_SINCE_EPOCH, check_params, texts
from trialbook.server.responses import READ_ERRORS, WRITE_ERRORS, Error, JsonResponse, Responses
from trialbook.services import accounts as account_service
from trialbook.services import artifacts as artifact_service
from trialbook.services import compare as compare_service
from trialbook.services import datasets as dataset_service
from trialbook.services import decisions as decision_service
from trialbook.services import notes as note_service
from trialbook.services import projects as project_service
from trialbook.services import review as review_service
from trialbook.services import runs as run_service

router = APIRouter(default_response_class=JsonResponse, dependencies=[Depends(check_params)])

MAX_IMAGES_PAGE = 1000  # the most reviewed images one answer carries


def ok(model: Any, description: str = "Successful Response") -> Responses:
    """The OpenAPI responses of a JSON route answering ``model`` (a service's TypedDict),
    with the error statuses every route may answer."""
    return {200: {"model": model, "description": description}, **READ_ERRORS, **AUTH_ERRORS}


def ok_write(model: Any, description: str = "Successful Response") -> Responses:
    """:func:`ok` of a route that writes (which may also answer 409)."""
    return {**ok(model, description), **WRITE_ERRORS}


def get_book(request: Request) -> Book:
    book: Book = request.app.state.book
    return book


BookDep = Annotated[Book, Depends(get_book)]


def accounts_of(request: Request) -> Any:
    """The accounts of the server's database (``InvalidInput``: a book that keeps none)."""
    accounts = request.app.state.accounts
    if accounts is None:
        return account_service.accounts_of(get_book(request).store)  # raises, naming the book
    return accounts


def _refused(status: int, description: str) -> Responses:
    return {status: {"model": Error, "description": description}}


# what a team server may answer any route (server.auth, before the route runs)
AUTH_ERRORS: Responses = {
    **_refused(401, "No token or session, or one that is unknown, expired or revoked"),
    **_refused(403, "The user's role does not allow it (names the user, project and roles)"),
}


class NoteFields(BaseModel):
    """Fields of a run's note to write; the fields left out keep their text."""

    hypothesis: str | None = Field(None, description="What you expected, and why.")
    change: str | None = Field(None, description="What this run changed.")
    result: str | None = Field(None, description="What came out (the draft helps).")
    next: str | None = Field(None, description="What to try next.")
    text: str | None = Field(None, description="Free text.")


class DecideRequest(BaseModel):
    candidate: str = Field(..., description="Name of the candidate run.")
    baseline: str = Field(..., description="Name of the run it should beat.")


class ComparisonRequest(BaseModel):
    """Runs to compare and record (two or more)."""

    runs: list[str] = Field(..., description="Names of the runs compared (two or more).")
    metric: str | None = Field(
        None, description="Another key (exploratory, recorded as such); null: the protocol metric."
    )
    baseline: str | None = Field(None, description="The run deltas are taken against (not recorded).")


class RoleRequest(BaseModel):
    role: str = Field(..., description="viewer, editor or admin")


class Member(TypedDict):
    user: str
    project: str
    role: str
    who: str
    at: float


class Members(TypedDict):
    """``GET /api/v1/projects/{project}/members``: the project's grants, by user."""

    project: str
    members: list[Member]


class Revoked(TypedDict):
    user: str
    project: str
    revoked: bool


class AuditLine(TypedDict):
    at: float
    who: str
    action: str
    project: str | None
    subject: str
    detail: str


def member_view(g: Grant) -> Member:
    return {"user": g.user, "project": g.project, "role": g.role, "who": g.who, "at": g.at}


def audit_line(e: AuditEvent) -> AuditLine:
    return {
        "at": e.at,
        "who": e.who,
        "action": e.action,
        "project": e.project,
        "subject": e.subject,
        "detail": e.detail,
    }


# --------------------------------------------------------------------------- projects
@router.get(
    "/projects",
    summary="Projects with run counts, shipped run and note debt",
    responses=ok(project_service.ProjectsOverview),
)
def list_projects(request: Request, book: BookDep) -> JsonResponse:
    return JsonResponse(visible_projects(principal_of(request), project_service.list_projects(book)))


@router.get(
    "/projects/{project}",
    summary="A project's protocol, audit history, ships and test splits",
    responses=ok(project_service.ProjectInfo),
)
def get_project(project: str, book: BookDep) -> JsonResponse:
    return JsonResponse(project_service.project_info(book, project))


@router.get(
    "/projects/{project}/runs",
    summary="One page of runs, ranked by the protocol metric",
    responses=ok(run_service.RunsTable),
)
def list_runs(
    project: str,
    book: BookDep,
    status: Annotated[list[str], Query(description="running, finished, failed, crashed")] = [],  # noqa: B006
    dataset: Annotated[str | None, Query(description="NAME:TAG; empty for runs without one")] = None,
    tag: Annotated[str | None, Query(description="KEY or KEY=VALUE")] = None,
    q: Annotated[str | None, Query(description="text in the run name")] = None,
    metric: Annotated[str | None, Query(description="rank by another key (exploratory)")] = None,
    sort: Annotated[
        str, Query(description="rank, best, final, epochs, name, created, status or dataset")
    ] = "rank",
    order: Annotated[str | None, Query(pattern="^(asc|desc)$")] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="runs skipped (paging)")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="runs in the page")] = 50,
    sparkline: bool = False,
) -> JsonResponse:
    return JsonResponse(
        run_service.runs_table(
            book,
            project,
            metric=metric,
            status=status,
            dataset=dataset,
            tag=tag,
            q=q,
            sort=sort,
            order=order,
            offset=offset,
            limit=limit,
            sparkline=sparkline,
        )
    )


# --------------------------------------------------------------------------- runs
@router.get(
    "/projects/{project}/runs/{run}",
    summary="One run (test evaluations sealed)",
    responses=ok(run_service.RunView),
)
def get_run(project: str, run: str, book: BookDep) -> JsonResponse:
    return JsonResponse(run_service.show_run(book, run, project=project, decisions=True))


@router.get(
    "/projects/{project}/runs/{run}/history",
    summary="A run's per-epoch points",
    responses=ok(run_service.History),
)
def get_history(
    project: str,
    run: str,
    book: BookDep,
    key: Annotated[list[str], Query(description="only these keys (default: all)")] = [],  # noqa: B006
    since_epoch: Annotated[
        int | None,
        Query(ge=MIN_SINCE_EPOCH, le=MAX_EPOCH, description="only epochs after this one (-1: all)"),
    ] = None,
) -> JsonResponse:
    return JsonResponse(
        run_service.history(book, run, project=project, keys=key or None, since_epoch=since_epoch)
    )


@router.get(
    "/projects/{project}/runs/{run}/note",
    summary="A run's note and a drafted result line",
    responses=ok(note_service.RunNote),
)
def get_note(project: str, run: str, book: BookDep) -> JsonResponse:
    return JsonResponse(note_service.get_note(book, run, project=project, draft=True))


@router.put(
    "/projects/{project}/runs/{run}/note",
    summary="Write fields of a run's note",
    responses=ok_write(note_service.RunNote),
)
def put_note(project: str, run: str, fields: NoteFields, request: Request, book: BookDep) -> JsonResponse:
    return JsonResponse(
        note_service.set_note(book, run, fields.model_dump(), project=project, who=who_of(request))
    )


@router.get(
    "/projects/{project}/runs/{run}/artifacts/{digest}",
    response_class=FileResponse,
    summary="Download an artifact (its content is checked against its digest first)",
    description="Served as its name says for images (PNG, JPEG, GIF, WebP), CSV and text, "
    "inline; anything else as an `application/octet-stream` attachment (never as HTML or SVG).",
    responses={
        200: {
            "description": "The artifact's bytes",
            "content": {
                media: {"schema": {"type": "string", "format": "binary"}}
                for media in ("application/octet-stream", "image/png", "image/jpeg", "text/csv", "text/plain")
            },
        },
        **READ_ERRORS,
    },
)
def get_artifact(project: str, run: str, digest: str, book: BookDep) -> FileResponse:
    found = artifact_service.artifact_file(book, run, digest, project=project)
    media, inline = artifact_media(found.name)
    return FileResponse(
        found.path,
        filename=found.name,
        media_type=media,
        content_disposition_type="inline" if inline else "attachment",
        headers={"cache-control": IMMUTABLE},
    )


# An artifact is served as what its name says only for these types, none of which a
# browser runs (never HTML, SVG or XML, whose scripts would run on this origin); any other
# file, a compressed one too, is an ``application/octet-stream`` attachment. The table is
# ours, not the system's MIME database, so every machine serves a file the same way; and
# ``X-Content-Type-Options: nosniff`` is on every answer (``app.SecurityHeaders``).
INLINE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".csv": "text/csv",
    **dict.fromkeys((".txt", ".log", ".yaml", ".yml", ".md", ".json", ".cfg", ".ini", ".toml"), "text/plain"),
}
IMMUTABLE = "private, max-age=31536000, immutable"  # the URL names the content (its digest)


def artifact_media(name: str) -> tuple[str, bool]:
    """The content type to serve artifact ``name`` with, and whether inline: images, CSV
    and text as themselves (Starlette adds ``charset=utf-8`` to text), anything else as an
    ``application/octet-stream`` attachment."""
    suffix = os.path.splitext(name.lower())[1]
    media = INLINE_TYPES.get(suffix)
    return (media, True) if media else ("application/octet-stream", False)


# --------------------------------------------------------------------------- review
JPEG_MAGIC = b"\xff\xd8\xff"


@dataclass(frozen=True)
class ReviewQuery:
    """The query of both review routes: the split, thresholds and page of images."""

    split: str
    iou: float
    conf: float
    limit: int
    offset: int


def review_query(
    split: Annotated[str, Query(description="val (test predictions are sealed)")] = "val",
    iou: Annotated[float, Query(gt=0, le=1, description="IoU a prediction needs to match a box")] = 0.5,
    conf: Annotated[float, Query(gt=0, le=1, description="the lowest confidence counted")] = 0.25,
    limit: Annotated[int, Query(ge=0, le=MAX_IMAGES_PAGE, description="images in the answer")] = 24,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="images skipped (paging)")] = 0,
) -> ReviewQuery:
    return ReviewQuery(split, iou, conf, limit, offset)


ReviewDep = Annotated[ReviewQuery, Depends(review_query)]


@router.get(
    "/projects/{project}/thumbs/{digest}",
    response_class=Response,
    summary="An image's stored thumbnail (JPEG), by its digest",
    responses={
        200: {
            "description": "The thumbnail",
            "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
        },
        **READ_ERRORS,
        **AUTH_ERRORS,
    },
)
def get_thumbnail(project: str, digest: str, book: BookDep) -> Response:
    data = review_service.thumbnail_bytes(book, digest)
    if not data.startswith(JPEG_MAGIC):  # a blob, but no thumbnail: never served as one
        raise NotFound(f"blob {digest[:12]} is not a thumbnail")
    return Response(data, media_type="image/jpeg", headers={"cache-control": IMMUTABLE})


def _page(found: dict[str, Any], q: ReviewQuery) -> JsonResponse:
    """``found`` (a review's JSON of its first ``offset + limit`` images) from ``offset``."""
    found["images"] = found["images"][q.offset :]
    found["offset"] = q.offset
    return JsonResponse(found)


@router.get(
    "/projects/{project}/review",
    summary="Where the candidate got worse than the baseline, image by image",
    description="`trialbook review --json` with each image's boxes (fractions of the image: "
    "`gt` `[cls, x1, y1, x2, y2]`, `candidate_pred`/`baseline_pred` `[cls, conf, x1, y1, x2, y2]`) "
    "and thumbnail digest (`GET /projects/{project}/thumbs/{digest}`); images worst for the "
    "candidate first, `limit` of them from `offset`. 404 (with the command that records them) "
    "when a run has no predictions on the split; 400 for runs evaluated on different splits "
    "and for the sealed test split.",
    responses=ok(dict[str, Any]),
)
def get_review(
    project: str,
    book: BookDep,
    q: ReviewDep,
    candidate: Annotated[str, Query(description="the run under review")],
    baseline: Annotated[str, Query(description="the run it is measured against")],
) -> JsonResponse:
    found = review_service.review(
        book, candidate, baseline, project=project, split=q.split, iou=q.iou, conf=q.conf
    )
    return _page(found.to_json(boxes=True, limit=q.offset + q.limit), q)


@router.get(
    "/projects/{project}/runs/{run}/review",
    summary="The images a run gets most wrong",
    description="Each image of the split with the run's tp, fp and fn and its boxes (as in "
    "`GET /projects/{project}/review`: `gt`, `pred`), the most false positives plus false "
    "negatives first, `limit` of them from `offset`.",
    responses=ok(dict[str, Any]),
)
def get_run_review(project: str, run: str, book: BookDep, q: ReviewDep) -> JsonResponse:
    found = review_service.run_images(book, run, project=project, split=q.split, iou=q.iou, conf=q.conf)
    return _page(found.to_json(boxes=True, limit=q.offset + q.limit), q)


# --------------------------------------------------------------------------- compare, decide
@router.get(
    "/projects/{project}/compare",
    summary="Compare runs on one metric (records nothing)",
    responses=ok(compare_service.Comparison),
)
def compare(
    project: str,
    book: BookDep,
    runs: Annotated[list[str], Query(description="run names (repeat)")] = [],  # noqa: B006
    metric: Annotated[str | None, Query(description="another key (exploratory)")] = None,
    baseline: Annotated[str | None, Query(description="the run deltas are taken against")] = None,
) -> JsonResponse:
    return JsonResponse(
        compare_service.compare_runs(book, runs, project=project, metric=metric, baseline=baseline)
    )


@router.post(
    "/projects/{project}/comparisons",
    summary="Compare runs and record the comparison",
    description="The comparison of `GET /projects/{project}/compare`, recorded: once a project's runs "
    "have been compared on the protocol metric, changing that metric needs a reason.",
    responses=ok_write(compare_service.Comparison, "The comparison, recorded"),
)
def record_comparison(project: str, body: ComparisonRequest, request: Request, book: BookDep) -> JsonResponse:
    runs = texts("runs", body.runs)
    metric = check_text("metric", body.metric) if body.metric is not None else None
    baseline = check_text("baseline", body.baseline) if body.baseline is not None else None
    if len(set(runs)) < 2:
        raise InvalidInput(f"recording a comparison needs two or more runs; got {len(set(runs))}")
    return JsonResponse(
        compare_service.compare_runs(
            book,
            runs,
            project=project,
            metric=metric or None,
            baseline=baseline or None,
            record=True,
            who=who_of(request),
        )
    )


@router.post(
    "/projects/{project}/decisions",
    summary="Decide: the four gates (reveals test numbers)",
    responses=ok_write(decision_service.DecisionView),
)
def decide(project: str, body: DecideRequest, request: Request, book: BookDep) -> JsonResponse:
    candidate = check_text("candidate", body.candidate)
    baseline = check_text("baseline", body.baseline)
    return JsonResponse(
        decision_service.decide(book, candidate, baseline, project=project, who=who_of(request))
    )


@router.get(
    "/projects/{project}/decisions",
    summary="A project's decisions and test-split use",
    responses=ok(decision_service.DecisionsList),
)
def project_decisions(project: str, book: BookDep) -> JsonResponse:
    return JsonResponse(decision_service.list_decisions(book, project))


@router.get(
    "/decisions",
    summary="Every decision, test reveals per test split, burned splits",
    responses=ok(decision_service.DecisionsList),
)
def all_decisions(request: Request, book: BookDep) -> JsonResponse:
    return JsonResponse(visible_decisions(principal_of(request), decision_service.list_decisions(book)))


# --------------------------------------------------------------------------- datasets
@router.get(
    "/datasets",
    summary="Dataset versions with tags and per-split, per-class counts",
    responses=ok(dataset_service.DatasetsOverview),
)
def datasets(book: BookDep) -> JsonResponse:
    return JsonResponse(dataset_service.datasets_overview(book))


@router.get(
    "/datasets/{name}/diff",
    summary="What changed between two versions",
    responses=ok(dataset_service.DatasetDiff),
)
def dataset_diff(
    name: str,
    book: BookDep,
    from_: Annotated[str, Query(alias="from", description="a tag or digest prefix")],
    to: Annotated[str, Query(description="a tag or digest prefix")],
    files: Annotated[int, Query(ge=0, le=100_000, description="file names listed per kind")] = 100,
) -> JsonResponse:
    return JsonResponse(dataset_service.diff(book, f"{name}:{from_}", f"{name}:{to}", files=files))


# --------------------------------------------------------------------------- members, audit
@router.get(
    "/projects/{project}/members",
    summary="Who holds which role on a project (its admins)",
    responses=ok(Members),
)
def list_members(project: str, request: Request, book: BookDep) -> JsonResponse:
    project_service.get_project(book, project)  # 404 for no such project
    grants = accounts_of(request).grants(project)
    return JsonResponse({"project": project, "members": [member_view(g) for g in grants]})


@router.put(
    "/projects/{project}/members/{user}",
    summary="Give a user a role on a project, replacing the one held (its admins)",
    responses=ok_write(Member, "The grant"),
)
def grant_member(project: str, user: str, body: RoleRequest, request: Request, book: BookDep) -> JsonResponse:
    role = check_text("role", body.role)
    granted = account_service.grant(
        accounts_of(request), book.store, user, project, role, who=_recorded(request)
    )
    return JsonResponse(member_view(granted))


@router.delete(
    "/projects/{project}/members/{user}",
    summary="Take a user's role on a project away (its admins)",
    responses=ok_write(Revoked, "Whether the user held a role"),
)
def revoke_member(project: str, user: str, request: Request, book: BookDep) -> JsonResponse:
    project_service.get_project(book, project)
    revoked = account_service.revoke_grant(accounts_of(request), user, project, who=_recorded(request))
    return JsonResponse({"user": user, "project": project, "revoked": revoked})


@router.get(
    "/audit",
    summary="Who did what: decisions, protocol changes, ships, grants, users and tokens",
    description="Of the projects the user is admin of (of `project` only, when given: 403 for "
    "a user who is not its admin); users and tokens for a server admin. Oldest first.",
    responses=ok(list[AuditLine]),
)
def audit(
    request: Request,
    book: BookDep,
    project: Annotated[str | None, Query(description="one project only")] = None,
) -> JsonResponse:
    accounts = request.app.state.accounts
    events = account_service.audit_events(book.store, accounts, principal_of(request), project or None)
    return JsonResponse([audit_line(e) for e in events])


def _recorded(request: Request) -> str:
    """Who an account change names: the authenticated user, or the local one."""
    return who_of(request) or settings.who()
