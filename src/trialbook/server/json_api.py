"""The JSON API, mounted under ``/api/v1``: the read side of the future team server plus
the two writes the UI needs (a run's note, a decision).

Errors: ``{"detail": "..."}`` with 404 (``NotFound``), 400 (``InvalidInput``) or 409
(``Conflict``). Sealed test numbers are never returned, except as a decision reveals them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from trialbook.api import Book
from trialbook.server.responses import JsonResponse
from trialbook.services import artifacts as artifact_service
from trialbook.services import compare as compare_service
from trialbook.services import datasets as dataset_service
from trialbook.services import decisions as decision_service
from trialbook.services import notes as note_service
from trialbook.services import projects as project_service
from trialbook.services import runs as run_service

router = APIRouter(default_response_class=JsonResponse)


def get_book(request: Request) -> Book:
    book: Book = request.app.state.book
    return book


BookDep = Annotated[Book, Depends(get_book)]


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


# --------------------------------------------------------------------------- projects
@router.get("/projects", summary="Projects with run counts, shipped run and note debt")
def list_projects(book: BookDep) -> JsonResponse:
    return JsonResponse(project_service.list_projects(book))


@router.get("/projects/{project}", summary="A project's protocol, audit history, ships and test splits")
def get_project(project: str, book: BookDep) -> JsonResponse:
    return JsonResponse(project_service.project_info(book, project))


@router.get("/projects/{project}/runs", summary="One page of runs, ranked by the protocol metric")
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
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
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
@router.get("/projects/{project}/runs/{run}", summary="One run (test evaluations sealed)")
def get_run(project: str, run: str, book: BookDep) -> JsonResponse:
    return JsonResponse(run_service.show_run(book, run, project=project, decisions=True))


@router.get("/projects/{project}/runs/{run}/history", summary="A run's per-epoch points")
def get_history(
    project: str,
    run: str,
    book: BookDep,
    key: Annotated[list[str], Query(description="only these keys (default: all)")] = [],  # noqa: B006
    since_epoch: Annotated[int | None, Query(description="only epochs after this one")] = None,
) -> JsonResponse:
    return JsonResponse(
        run_service.history(book, run, project=project, keys=key or None, since_epoch=since_epoch)
    )


@router.get("/projects/{project}/runs/{run}/note", summary="A run's note and a drafted result line")
def get_note(project: str, run: str, book: BookDep) -> JsonResponse:
    return JsonResponse(note_service.get_note(book, run, project=project, draft=True))


@router.put("/projects/{project}/runs/{run}/note", summary="Write fields of a run's note")
def put_note(project: str, run: str, fields: NoteFields, book: BookDep) -> JsonResponse:
    return JsonResponse(note_service.set_note(book, run, fields.model_dump(), project=project))


@router.get(
    "/projects/{project}/runs/{run}/artifacts/{digest}",
    response_class=FileResponse,
    summary="Download an artifact (its content is checked against its digest first)",
)
def get_artifact(project: str, run: str, digest: str, book: BookDep) -> FileResponse:
    found = artifact_service.artifact_file(book, run, digest, project=project)
    return FileResponse(found.path, filename=found.name, media_type="application/octet-stream")


# --------------------------------------------------------------------------- compare, decide
@router.get("/projects/{project}/compare", summary="Compare runs on one metric")
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


@router.post("/projects/{project}/decisions", summary="Decide: the four gates (reveals test numbers)")
def decide(project: str, body: DecideRequest, book: BookDep) -> JsonResponse:
    return JsonResponse(decision_service.decide(book, body.candidate, body.baseline, project=project))


@router.get("/projects/{project}/decisions", summary="A project's decisions and test-split use")
def project_decisions(project: str, book: BookDep) -> JsonResponse:
    return JsonResponse(decision_service.list_decisions(book, project))


@router.get("/decisions", summary="Every decision, test reveals per test split, burned splits")
def all_decisions(book: BookDep) -> JsonResponse:
    return JsonResponse(decision_service.list_decisions(book))


# --------------------------------------------------------------------------- datasets
@router.get("/datasets", summary="Dataset versions with tags and per-split, per-class counts")
def datasets(book: BookDep) -> JsonResponse:
    return JsonResponse(dataset_service.datasets_overview(book))


@router.get("/datasets/{name}/diff", summary="What changed between two versions")
def dataset_diff(
    name: str,
    book: BookDep,
    from_: Annotated[str, Query(alias="from", description="a tag or digest prefix")],
    to: Annotated[str, Query(description="a tag or digest prefix")],
    files: Annotated[int, Query(ge=0, le=100_000, description="file names listed per kind")] = 100,
) -> JsonResponse:
    return JsonResponse(dataset_service.diff(book, f"{name}:{from_}", f"{name}:{to}", files=files))
