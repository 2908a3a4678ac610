"""The server refuses what it must and answers every bad request with a 4xx and a message:
hosts it was not started for (DNS rebinding), numbers out of range, text no backend can
store; and a page never writes (the compare page records a comparison only when asked)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from support.http import Api, ServerThread
from support.runs import add_run, make_sealed_book
from trialbook.api import Book
from trialbook.cli.main import cli
from trialbook.server.app import create_app

API = "/api/v1"
RUNS = f"{API}/projects/pallets/runs"
NOTE = f"{RUNS}/v2_more_data/note"  # a run without a note
HISTORY = f"{RUNS}/v1_base/history"
DECIDE = f"{API}/projects/pallets/decisions"
COMPARISONS = f"{API}/projects/pallets/comparisons"
COMPARE_PAGE = "/projects/pallets/compare?runs=v1_base&runs=v2_more_data"
HUGE = 2**63  # one past the largest SQLite INTEGER
JSON = {"content-type": "application/json"}


@pytest.fixture
def book(tmp_path: Path) -> Iterator[Book]:
    opened = make_sealed_book(tmp_path / "book")
    add_run(opened, "v3_running", curve=[0.1, 0.2, 0.3], status="running")
    yield opened
    opened.close()


@pytest.fixture
def api(book: Book) -> Api:
    return Api(create_app(book))


def detail(response: httpx.Response) -> str:
    """The message of an API error: ``detail`` as text (FastAPI's 422 lists its errors)."""
    body: Any = response.json()["detail"]
    return body if isinstance(body, str) else " ".join(str(e["loc"]) + " " + e["msg"] for e in body)


# --------------------------------------------------------------------------- 11: hosts
@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.0.0.1:5210", "localhost:8000", "LOCALHOST", "localhost.", "[::1]:5210", "[::1]"],
)
def test_the_loopback_names_are_answered_with_any_port(api: Api, host: str) -> None:
    assert api.get(f"{API}/projects", headers={"host": host}).status_code == 200
    assert api.get("/", headers={"host": host}).status_code == 200


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:5210", "127.0.0.1.evil.example", "localhost.evil.example:80"]
)
def test_other_hosts_are_refused_with_400_naming_the_host(api: Api, host: str) -> None:
    name = host.rsplit(":", 1)[0]
    r = api.get(RUNS, headers={"host": host})
    assert r.status_code == 400, r.text
    message = detail(r)
    assert repr(host) in message and f"--allow-host {name}" in message and "\n" not in message
    page = api.get("/projects/pallets", headers={"host": host})
    assert page.status_code == 400 and page.headers["content-type"].startswith("text/plain")
    assert repr(host) in page.text and f"--allow-host {name}" in page.text
    assert page.text.count("\n") == 1  # one line
    assert api.request("HEAD", "/", headers={"host": host}).status_code == 400
    # nothing was read, nothing was written
    assert api.put(NOTE, json={"result": "x"}, headers={"host": host}).status_code == 400
    assert api.get(NOTE).json()["note"] is None


def test_allowed_hosts_add_names(book: Book) -> None:
    api = Api(create_app(book, allowed_hosts=["127.0.0.1", "localhost", "::1", "Trialbook.LAN"]))
    assert api.get(RUNS, headers={"host": "trialbook.lan:5210"}).status_code == 200
    assert api.get(RUNS, headers={"host": "localhost"}).status_code == 200
    assert api.get(RUNS, headers={"host": "evil.lan"}).status_code == 400


def test_a_served_ui_refuses_a_rebound_name(book: Book) -> None:
    """Over real HTTP (uvicorn): what a DNS-rebinding page sends, refused; the loopback
    names and the address the request arrived on, answered."""
    with ServerThread(create_app(book)) as server:
        port = server.port
        evil = httpx.get(f"{server.url}/api/v1/projects", headers={"host": f"evil.example:{port}"})
        assert evil.status_code == 400 and "evil.example" in evil.json()["detail"]
        assert httpx.get(f"{server.url}/", headers={"host": f"rebind.example:{port}"}).status_code == 400
        assert httpx.get(f"{server.url}/api/v1/projects").status_code == 200  # Host: 127.0.0.1:PORT
        assert httpx.get(f"{server.url}/", headers={"host": f"localhost:{port}"}).status_code == 200


def test_the_package_factory_keeps_its_default(book: Book) -> None:
    import trialbook.server

    api = Api(trialbook.server.create_app(book))
    assert api.get(RUNS).status_code == 200
    assert api.get(RUNS, headers={"host": "evil.example"}).status_code == 400


def test_ui_command_allows_its_host_and_allow_host_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    import trialbook as tb

    tb.init(tmp_path).close()
    served: dict[str, Any] = {}

    def fake_run(app: Any, **kwargs: Any) -> None:
        served.update(kwargs, app=app)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    args = ["ui", "--uri", str(tmp_path), "--host", "192.0.2.7", "--allow-host", "box.lan"]
    result = CliRunner().invoke(cli, [*args, "--allow-host", "ui.example.org"])
    assert result.exit_code == 0, result.output
    assert served["host"] == "192.0.2.7"
    api = Api(served["app"])
    for host in ("192.0.2.7:5210", "box.lan", "ui.example.org:80", "127.0.0.1:5210", "localhost"):
        assert api.get(f"{API}/projects", headers={"host": host}).status_code == 200, host
    refused = api.get(f"{API}/projects", headers={"host": "other.lan"})
    assert refused.status_code == 400 and "--allow-host other.lan" in detail(refused)
    assert "--allow-host" in CliRunner().invoke(cli, ["ui", "--help"]).output


# --------------------------------------------------------------------------- 12: bad requests
@pytest.mark.parametrize(
    ("url", "name"),
    [
        (f"{RUNS}?offset={HUGE}", "offset"),
        (f"{RUNS}?offset={HUGE - 1}", "offset"),
        (f"{RUNS}?offset=1000000001", "offset"),
        (f"{RUNS}?offset=-1", "offset"),
        (f"{RUNS}?status=finished&offset={HUGE}", "offset"),
        (f"{RUNS}?limit={HUGE}", "limit"),
        (f"{RUNS}?limit=-{HUGE}", "limit"),
        (f"{HISTORY}?since_epoch={HUGE}", "since_epoch"),
        (f"{HISTORY}?since_epoch=-{HUGE + 1}", "since_epoch"),
        (f"{HISTORY}?since_epoch={2**31}", "since_epoch"),
        (f"{HISTORY}?since_epoch=-2", "since_epoch"),
    ],
)
def test_numbers_out_of_range_get_a_4xx_naming_the_parameter(api: Api, url: str, name: str) -> None:
    r = api.get(url)
    assert 400 <= r.status_code < 500, (url, r.status_code)
    assert name in detail(r)


@pytest.mark.parametrize("query", [f"offset={HUGE}", "offset=-5", f"offset={HUGE - 1}", f"limit={HUGE}"])
def test_the_project_page_refuses_numbers_out_of_range(api: Api, query: str) -> None:
    r = api.get(f"/projects/pallets?{query}")
    assert 400 <= r.status_code < 500, (query, r.status_code)
    assert r.headers["content-type"].startswith("text/html")
    assert query.split("=")[0] in r.text


def test_the_largest_numbers_in_range_are_answered(api: Api) -> None:
    page = api.json(f"{RUNS}?offset=1000000000&limit=500")
    assert page["runs"] == [] and page["total"] == 3
    assert api.get("/projects/pallets?offset=1000000000").status_code == 200
    assert api.json(f"{HISTORY}?since_epoch={2**31 - 1}")["series"] == {}
    every = api.json(f"{HISTORY}?since_epoch=-1")
    assert [p[0] for p in every["series"]["metrics/mAP50-95(B)"]] == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    "url",
    [
        f"{RUNS}?tag=%00",
        f"{RUNS}?q=a%00b",
        f"{RUNS}?dataset=%00",
        f"{RUNS}?metric=%00",
        f"{RUNS}?status=%00",
        f"{HISTORY}?key=%00",
        f"{API}/projects/pallets/compare?runs=v1_base&runs=%00",
        f"{API}/projects/pal%00lets",
        f"{RUNS}/v1%00/note",
        f"{API}/datasets/pallets/diff?from=%00&to=v1",
        "/projects/pallets?tag=%00",
        "/projects/pallets/compare?runs=v1_base&runs=%00",
        "/decisions?project=%00",
    ],
)
def test_a_nul_in_a_path_or_query_gets_400(api: Api, url: str) -> None:
    r = api.get(url)
    assert r.status_code == 400, (url, r.status_code, r.text[:200])
    assert "NUL" in (detail(r) if url.startswith(API) else r.text)


@pytest.mark.parametrize(
    ("url", "method", "body", "field"),
    [
        (NOTE, "PUT", '{"result": "\\ud800"}', "result"),
        (NOTE, "PUT", '{"hypothesis": "a\\u0000b"}', "hypothesis"),
        (DECIDE, "POST", '{"candidate": "\\ud800", "baseline": "v1_base"}', "candidate"),
        (DECIDE, "POST", '{"candidate": "v2_more_data", "baseline": "v1\\udfff"}', "baseline"),
        (DECIDE, "POST", '{"candidate": "v2_more_data", "baseline": "v1\\u0000"}', "baseline"),
        (COMPARISONS, "POST", '{"runs": ["v1_base", "\\ud800"], "metric": null}', "runs"),
        (COMPARISONS, "POST", '{"runs": ["v1_base", "v2_more_data"], "metric": "\\ud800"}', "metric"),
    ],
)
def test_text_no_backend_stores_gets_400_before_the_store(
    api: Api, book: Book, url: str, method: str, body: str, field: str
) -> None:
    before = len(book.store.list_decisions())
    r = api.request(method, url, content=body.encode(), headers=JSON)
    assert r.status_code == 400, (body, r.status_code, r.text[:200])
    message = detail(r)
    assert field in message and ("UTF-8" in message or "NUL" in message), message
    assert len(book.store.list_decisions()) == before
    assert api.get(NOTE).json()["note"] is None
    assert book.store.first_comparison_at("pallets") is None


@pytest.mark.parametrize(
    ("url", "method", "body"),
    [
        (NOTE, "PUT", '{"result": ["\\ud800"]}'),  # FastAPI's 422 echoes the input
        (NOTE, "PUT", '["\\udc00"]'),
        (NOTE, "PUT", '{"result": NaN}'),
        (DECIDE, "POST", '{"candidate": {"\\ud800": 1}, "baseline": "v1_base"}'),
        (DECIDE, "POST", '{"candidate": Infinity, "baseline": "v1_base"}'),
    ],
)
def test_invalid_bodies_get_422_even_when_they_echo_odd_input(
    api: Api, url: str, method: str, body: str
) -> None:
    r = api.request(method, url, content=body.encode(), headers=JSON)
    assert r.status_code == 422, (body, r.status_code)
    assert r.json()["detail"][0]["msg"]


def test_405_names_every_method_of_the_path(api: Api) -> None:
    r = api.request("DELETE", NOTE)
    assert r.status_code == 405 and r.headers["allow"] == "GET, PUT"
    r = api.request("PATCH", DECIDE)
    assert r.status_code == 405 and r.headers["allow"] == "GET, POST"
    r = api.post("/projects/pallets")
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"


# --------------------------------------------------------------------------- 13: GET never writes
def test_the_compare_page_records_nothing(api: Api, book: Book) -> None:
    for _ in range(2):
        page = api.get(COMPARE_PAGE)
        assert page.status_code == 200
        assert book.store.first_comparison_at("pallets") is None
    assert 'id="record-form"' in page.text and "Record this comparison" in page.text
    assert api.json(f"{API}/projects/pallets")["compared_at"] is None
    api.get(f"{API}/projects/pallets/compare", params={"runs": ["v1_base", "v2_more_data"]})
    assert book.store.first_comparison_at("pallets") is None


def test_posting_a_comparison_records_it(api: Api, book: Book) -> None:
    r = api.post(COMPARISONS, json={"runs": ["v1_base", "v2_more_data"], "metric": None})
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["project"] == "pallets" and not done["exploratory"]
    assert [x["name"] for x in done["runs"]] == ["v2_more_data", "v1_base"]
    assert done["metric"] == done["protocol_metric"]
    first = book.store.first_comparison_at("pallets")
    assert first is not None
    # the project now counts as compared: a change of its protocol metric needs a reason
    assert api.json(f"{API}/projects/pallets")["compared_at"] == pytest.approx(first)


def test_recording_needs_two_runs_of_the_project(api: Api, book: Book) -> None:
    one = api.post(COMPARISONS, json={"runs": ["v1_base", "v1_base"]})
    assert one.status_code == 400 and "two or more runs" in detail(one)
    missing = api.post(COMPARISONS, json={"runs": ["v1_base", "v9_nothing"]})
    assert missing.status_code == 404 and "v9_nothing" in detail(missing)
    assert api.post(COMPARISONS, json={"metric": None}).status_code == 422
    assert book.store.first_comparison_at("pallets") is None


def test_the_compare_page_script_posts_the_comparison() -> None:
    from trialbook.server.app import STATIC_DIR

    script = (STATIC_DIR / "app.js").read_text()
    assert "/comparisons`" in script and 'getElementById("record-form")' in script
