"""The OpenAPI document of the JSON API tells the truth: every JSON route declares the
schema of its answer (the service's TypedDict) and its errors (``{"detail": str}`` for
400/404/409, FastAPI's own for 422), and schemathesis, driving the app in process from
that document, finds no server error and no answer that does not fit it: on the app of
``trialbook ui`` and on the team server's (``auth=True``) with a server admin's token."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from support.datasets import make_dataset
from support.extras import REQUIRE_EXTRAS
from support.runs import add_run, make_sealed_book
from trialbook.api import Book
from trialbook.server.app import API_PREFIX, create_app
from trialbook.server.hosts import LOOPBACK_HOSTS
from trialbook.services import accounts as account_service
from trialbook.services import datasets as dataset_service

try:
    import schemathesis
except ImportError:  # pragma: no cover - depends on the install
    if REQUIRE_EXTRAS:
        raise
    pytest.skip("schemathesis is not installed (the dev extra)", allow_module_level=True)

OPENAPI = f"{API_PREFIX}/openapi.json"
MAX_EXAMPLES = 25
RUNS = ("v1_base", "v2_more_data", "v3_running", "train3")  # the runs of ``fill_book``
ROOT = "root"  # the server admin of the team server's variant (and a member to grant roles to)

# The schema each JSON route declares for its 200 (components/schemas/NAME).
MODELS = {
    ("get", "/projects"): "ProjectsOverview",
    ("get", "/projects/{project}"): "ProjectInfo",
    ("get", "/projects/{project}/runs"): "RunsTable",
    ("get", "/projects/{project}/runs/{run}"): "RunView",
    ("get", "/projects/{project}/runs/{run}/history"): "History",
    ("get", "/projects/{project}/runs/{run}/note"): "RunNote",
    ("put", "/projects/{project}/runs/{run}/note"): "RunNote",
    ("get", "/projects/{project}/compare"): "Comparison",
    ("post", "/projects/{project}/comparisons"): "Comparison",
    ("post", "/projects/{project}/decisions"): "DecisionView",
    ("get", "/projects/{project}/decisions"): "DecisionsList",
    ("get", "/decisions"): "DecisionsList",
    ("get", "/datasets"): "DatasetsOverview",
    ("get", "/datasets/{name}/diff"): "DatasetDiff",
    ("get", "/projects/{project}/members"): "Members",
    ("put", "/projects/{project}/members/{user}"): "Member",
    ("delete", "/projects/{project}/members/{user}"): "Revoked",
}
WRITES = {
    ("put", "/projects/{project}/runs/{run}/note"),
    *((m, p) for m, p in MODELS if m in ("post", "delete") or p.endswith("/members/{user}")),
}


def fill_book(path: Path) -> Book:
    """Two pinned runs with sealed test numbers (``make_sealed_book``), a running run, an
    unpinned one with an odd name, and two tagged versions of a dataset."""
    book = make_sealed_book(path / "book")
    add_run(book, "v3_running", parent="v2_more_data", curve=[0.2, 0.3], status="running")
    add_run(book, "train3", curve=[0.1, float("nan"), 0.2], pinned=False, legacy=True)
    data = make_dataset(path / "data")
    dataset_service.tag(book, "pallets", data, "v1", progress=False)
    (path / "data" / "images" / "val" / "new.jpg").write_bytes(b"another image")
    dataset_service.tag(book, "pallets", data, "v2", progress=False)
    return book


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Book]:
    book = fill_book(tmp_path_factory.mktemp("openapi"))
    yield book
    book.close()


@pytest.fixture(scope="module")
def document(filled: Book) -> dict[str, Any]:
    doc: dict[str, Any] = create_app(filled).openapi()
    return doc


def _content_schema(response: dict[str, Any], media: str = "application/json") -> dict[str, Any]:
    schema: dict[str, Any] = response["content"][media]["schema"]
    return schema


def test_every_json_route_declares_its_model_and_errors(document: dict[str, Any]) -> None:
    paths = document["paths"]
    declared = {(m, p.removeprefix(API_PREFIX)) for p, ops in paths.items() for m in ops}
    assert set(MODELS) <= declared, set(MODELS) - declared
    schemas = document["components"]["schemas"]
    assert schemas["Error"]["properties"] == {"detail": {"type": "string", "title": "Detail"}}
    assert schemas["Error"]["required"] == ["detail"]
    for (method, path), model in MODELS.items():
        responses = paths[API_PREFIX + path][method]["responses"]
        ok = _content_schema(responses["200"])
        assert ok == {"$ref": f"#/components/schemas/{model}"}, (method, path, ok)
        errors = {"400", "404", *(["409"] if (method, path) in WRITES else [])}
        for status in errors:
            assert _content_schema(responses[status]) == {"$ref": "#/components/schemas/Error"}, (
                method,
                path,
                status,
            )
        if (method, path) not in WRITES:
            assert "409" not in responses, (method, path)
    # every schema of an answer has its fields (none is a bare string any more)
    assert {"runs", "total", "offset", "limit", "filters"} <= set(schemas["RunsTable"]["required"])
    assert {"unwritten", "end_reason"} <= set(schemas["RunLine"]["properties"])
    artifact = paths[API_PREFIX + "/projects/{project}/runs/{run}/artifacts/{digest}"]["get"]["responses"]
    assert _content_schema(artifact["200"], "application/octet-stream") == {
        "type": "string",
        "format": "binary",
    }
    assert _content_schema(artifact["404"]) == {"$ref": "#/components/schemas/Error"}


def test_the_pages_answer_head(filled: Book) -> None:
    from support.http import Api

    api = Api(create_app(filled))
    for url in ("/", "/projects/pallets", "/projects/pallets/runs/v1_base", "/datasets", "/decisions"):
        got = api.request("HEAD", url)
        assert got.status_code == 200, (url, got.status_code)
        assert got.headers["content-type"].startswith("text/html"), url
        assert got.content == b"", url
        assert int(got.headers["content-length"]) == len(api.get(url).content), url
    assert api.request("HEAD", "/projects/nope").status_code == 404


def _document() -> dict[str, Any]:
    """The app's OpenAPI document (which no book changes), from an empty throwaway book:
    schemathesis reads it when this module is collected; the calls go to ``filled_app``."""
    with tempfile.TemporaryDirectory() as folder:
        book = Book.open(folder, create=True)
        try:
            doc: dict[str, Any] = create_app(book).openapi()
        finally:
            book.close()
    return doc


def _config() -> Any:
    """At most ``MAX_EXAMPLES`` examples per operation, derandomized, no deadline (the
    default of schemathesis' settings), no example database. The project and dataset in
    paths are the filled book's, run names mostly are (in paths, queries and bodies), so
    that most calls get past the 404 to an answer whose schema is checked."""
    from schemathesis.config import SchemathesisConfig

    return SchemathesisConfig.from_dict(
        {
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
            "phases": {"stateful": {"enabled": False}},
            # valid by the document, a request may still be refused by the services with
            # a message (an unknown sort column, a NAME:TAG that is none): 400 is part of
            # the contract; a 422 for such a request would be a lie of the document
            "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", 400, 404, 409]}},
            "dictionaries": {
                "runs": {"values": list(RUNS)},
                "tags": {"values": ["v1", "v2"]},
                "users": {"values": [ROOT, "member"]},
                "roles": {"values": ["viewer", "editor", "admin"]},
            },
            "parameters": {
                "path.project": "pallets",
                "path.run": {"dictionary": "runs", "probability": 0.8},
                "path.name": "pallets",
                "query.from": {"dictionary": "tags", "probability": 0.7},
                "query.to": {"dictionary": "tags", "probability": 0.7},
                "query.runs": {"dictionary": "runs", "probability": 0.5},
                "query.baseline": {"dictionary": "runs", "probability": 0.3},
                "body.candidate": {"dictionary": "runs", "probability": 0.7},
                "body.baseline": {"dictionary": "runs", "probability": 0.5},
                "body.runs[*]": {"dictionary": "runs", "probability": 0.7},
                "path.user": {"dictionary": "users", "probability": 0.7},
                "body.role": {"dictionary": "roles", "probability": 0.7},
            },
        }
    )


schema = schemathesis.openapi.from_dict(_document(), config=_config())


@pytest.fixture(scope="module")
def filled_app(filled: Book) -> Any:
    # schemathesis' ASGI client names its host "testserver"
    return create_app(filled, allowed_hosts=[*LOOPBACK_HOSTS, "testserver"])


def each_operation(test: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
    """``schema.parametrize()``: one test per operation of the document."""
    made: Callable[[Any, Any], None] = schema.parametrize()(test)
    return made


@each_operation
def test_no_server_error_and_every_answer_fits_the_document(case: Any, filled_app: Any) -> None:
    response = case.call_and_validate(app=filled_app)
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:300])


@pytest.fixture(scope="module")
def team_app(filled: Book) -> tuple[Any, str]:
    """The team server's app over the filled book, and a server admin's token."""
    accounts = account_service.accounts_of(filled.store)
    account_service.add_user(accounts, ROOT, admin=True, who="setup")
    account_service.add_user(accounts, "member", admin=False, who="setup")
    _, token = account_service.create_token(accounts, ROOT, who="setup")
    return create_app(filled, allowed_hosts=[*LOOPBACK_HOSTS, "testserver"], auth=True), token


@each_operation
def test_with_a_token_no_server_error_and_every_answer_fits(case: Any, team_app: tuple[Any, str]) -> None:
    app, token = team_app
    response = case.call_and_validate(app=app, headers={"authorization": f"Bearer {token}"})
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:300])
    assert response.status_code not in (401, 403), (case.method, case.formatted_path, response.text[:300])
