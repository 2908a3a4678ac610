"""Deny by default on the team server (``create_app(auth=True)``): every route of the app,
for each of six identities (a server admin, the admin, an editor and a viewer of project
``pallets``, a viewer of project ``quarry`` only, and nobody), gets the status this
module's own table expects: 401 (or the sign-in page) for nobody, 403 for a role too
small, an answer otherwise. A route the table does not name fails the test, so a new
route cannot ship without a decision about who may call it.

On both homes of a team server's database: SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from blake3 import blake3
from fastapi import FastAPI

from support.datasets import make_dataset
from support.review_book import add_predictions
from support.runs import BASE_TEST, CAND_TEST, add_run, set_protocol
from support.server import InProcess
from trialbook.api import Book
from trialbook.server import auth
from trialbook.server.app import API_PREFIX, create_app
from trialbook.services import accounts as account_service
from trialbook.services import datasets as dataset_service

API = API_PREFIX
P, Q = "pallets", "quarry"
WHO = "setup"
PASSWORD = "a long enough password"

# the identities: name -> (server admin?, roles)
USERS: dict[str, tuple[bool, dict[str, str]]] = {
    "root": (True, {}),
    "padmin": (False, {P: "admin"}),
    "ed": (False, {P: "editor"}),
    "vi": (False, {P: "viewer"}),
    "qvi": (False, {Q: "viewer"}),
}
IDENTITIES = [*USERS, "anonymous"]

# who passes each level of rule (anonymous never does, except PUBLIC)
PASSES: dict[str, set[str]] = {
    "public": {*USERS, "anonymous"},
    "signed_in": set(USERS),
    "viewer": {"root", "padmin", "ed", "vi"},
    "editor": {"root", "padmin", "ed"},
    "admin": {"root", "padmin"},
    "editor_somewhere": {"root", "padmin", "ed"},
    "server_admin": {"root"},
}


@dataclass(frozen=True)
class Call:
    """What the test sends to one route, and the level of rule it expects of it."""

    level: str
    url: str
    json: Any = None
    content: bytes | None = None
    form: dict[str, str] | None = None


RUN = f"{API}/projects/{P}/runs/v1_base"


def expected_calls(world: dict[str, str]) -> dict[tuple[str, str], Call]:
    """The hand-written expectation of every route: ``(METHOD, PATH TEMPLATE)`` (``*`` for
    a mount) -> the request sent and the rule level it must meet. ``world`` fills in
    what the book holds (an artifact's digest, a token to sign in with)."""
    art = world["artifact"]
    blob = world["blob"]
    return {
        ("GET", "/signin"): Call("public", "/signin"),
        ("HEAD", "/signin"): Call("public", "/signin"),
        ("POST", "/signin"): Call("public", "/signin", form={"token": world["signin_token"], "next": "/"}),
        ("POST", "/signout"): Call("signed_in", "/signout"),
        ("GET", "/static/plotly.min.js"): Call("public", "/static/plotly.min.js"),
        ("*", "/static"): Call("public", "/static/app.css"),
        ("GET", f"{API}/openapi.json"): Call("signed_in", f"{API}/openapi.json"),
        ("HEAD", f"{API}/openapi.json"): Call("signed_in", f"{API}/openapi.json"),
        ("GET", f"{API}/projects"): Call("signed_in", f"{API}/projects"),
        ("GET", f"{API}/projects/{{project}}"): Call("viewer", f"{API}/projects/{P}"),
        ("GET", f"{API}/projects/{{project}}/runs"): Call("viewer", f"{API}/projects/{P}/runs"),
        ("GET", f"{API}/projects/{{project}}/runs/{{run}}"): Call("viewer", RUN),
        ("GET", f"{API}/projects/{{project}}/runs/{{run}}/history"): Call("viewer", f"{RUN}/history"),
        ("GET", f"{API}/projects/{{project}}/runs/{{run}}/note"): Call("viewer", f"{RUN}/note"),
        ("PUT", f"{API}/projects/{{project}}/runs/{{run}}/note"): Call(
            "editor", f"{RUN}/note", json={"result": "checked"}
        ),
        ("GET", f"{API}/projects/{{project}}/runs/{{run}}/artifacts/{{digest}}"): Call(
            "viewer", f"{RUN}/artifacts/{art}"
        ),
        ("GET", f"{API}/projects/{{project}}/runs/{{run}}/review"): Call("viewer", f"{RUN}/review"),
        ("GET", f"{API}/projects/{{project}}/review"): Call(
            "viewer", f"{API}/projects/{P}/review?candidate=v2_more_data&baseline=v1_base"
        ),
        ("GET", f"{API}/projects/{{project}}/thumbs/{{digest}}"): Call(
            "viewer", f"{API}/projects/{P}/thumbs/{world['thumb']}"
        ),
        ("GET", f"{API}/projects/{{project}}/compare"): Call(
            "viewer", f"{API}/projects/{P}/compare?runs=v1_base&runs=v2_more_data"
        ),
        ("POST", f"{API}/projects/{{project}}/comparisons"): Call(
            "editor", f"{API}/projects/{P}/comparisons", json={"runs": ["v1_base", "v2_more_data"]}
        ),
        ("POST", f"{API}/projects/{{project}}/decisions"): Call(
            "editor",
            f"{API}/projects/{P}/decisions",
            json={"candidate": "v2_more_data", "baseline": "v1_base"},
        ),
        ("GET", f"{API}/projects/{{project}}/decisions"): Call("viewer", f"{API}/projects/{P}/decisions"),
        ("GET", f"{API}/projects/{{project}}/members"): Call("admin", f"{API}/projects/{P}/members"),
        ("PUT", f"{API}/projects/{{project}}/members/{{user}}"): Call(
            "admin", f"{API}/projects/{P}/members/dummy", json={"role": "viewer"}
        ),
        ("DELETE", f"{API}/projects/{{project}}/members/{{user}}"): Call(
            "admin", f"{API}/projects/{P}/members/dummy"
        ),
        ("GET", f"{API}/decisions"): Call("signed_in", f"{API}/decisions"),
        ("GET", f"{API}/datasets"): Call("signed_in", f"{API}/datasets"),
        ("GET", f"{API}/datasets/{{name}}/diff"): Call("signed_in", f"{API}/datasets/{P}/diff?from=v1&to=v2"),
        ("GET", f"{API}/audit"): Call("signed_in", f"{API}/audit"),
        ("POST", f"{API}/store/_batch"): Call(
            "signed_in", f"{API}/store/_batch", json={"calls": [], "commit": False}
        ),
        ("POST", f"{API}/store/{{method}}"): Call(
            "signed_in", f"{API}/store/list_projects", json={"args": [], "kwargs": {}}
        ),
        ("GET", f"{API}/blobs/{{digest}}"): Call("signed_in", f"{API}/blobs/{art}"),
        ("HEAD", f"{API}/blobs/{{digest}}"): Call("signed_in", f"{API}/blobs/{art}"),
        ("PUT", f"{API}/blobs/{{digest}}"): Call(
            "editor_somewhere", f"{API}/blobs/{blake3(blob.encode()).hexdigest()}", content=blob.encode()
        ),
        ("GET", "/"): Call("signed_in", "/"),
        ("HEAD", "/"): Call("signed_in", "/"),
        ("GET", "/projects/{project}"): Call("viewer", f"/projects/{P}"),
        ("HEAD", "/projects/{project}"): Call("viewer", f"/projects/{P}"),
        ("GET", "/projects/{project}/compare"): Call(
            "viewer", f"/projects/{P}/compare?runs=v1_base&runs=v2_more_data"
        ),
        ("HEAD", "/projects/{project}/compare"): Call(
            "viewer", f"/projects/{P}/compare?runs=v1_base&runs=v2_more_data"
        ),
        ("GET", "/projects/{project}/runs/{run}"): Call("viewer", f"/projects/{P}/runs/v1_base"),
        ("HEAD", "/projects/{project}/runs/{run}"): Call("viewer", f"/projects/{P}/runs/v1_base"),
        ("GET", "/datasets"): Call("signed_in", "/datasets"),
        ("HEAD", "/datasets"): Call("signed_in", "/datasets"),
        ("GET", "/decisions"): Call("signed_in", "/decisions"),
        ("HEAD", "/decisions"): Call("signed_in", "/decisions"),
        ("GET", "/audit"): Call("signed_in", "/audit"),
        ("HEAD", "/audit"): Call("signed_in", "/audit"),
    }


@dataclass
class Team:
    """A team server's app over a filled book, with a token per user."""

    book: Book
    app: Any
    accounts: Any
    tokens: dict[str, str]
    world: dict[str, str]

    def client(self) -> httpx.Client:
        return httpx.Client(transport=InProcess(self.app), base_url="http://127.0.0.1")

    def headers(self, identity: str) -> dict[str, str]:
        return {} if identity == "anonymous" else {"authorization": f"Bearer {self.tokens[identity]}"}


def fill(book: Book, folder: Path) -> dict[str, str]:
    """Project pallets: two pinned runs with sealed test numbers, a note, an artifact,
    per-image predictions with thumbnails; two tags of a dataset; project quarry with a
    run of its own."""
    set_protocol(book, P, latency_budget_ms=8.0)
    per_class = {"pallet": 0.5, "box": 0.6}
    base = add_run(
        book, "v1_base", curve=[0.1, 0.3, 0.5], val=0.5, per_class=per_class, latency=4.0, test=BASE_TEST
    )
    add_run(
        book,
        "v2_more_data",
        parent="v1_base",
        curve=[0.1, 0.4, 0.6],
        val=0.6,
        per_class={"pallet": 0.6, "box": 0.7},
        latency=4.0,
        test=CAND_TEST,
        test_per_class={"pallet": 0.6, "box": 0.7},
        note={"hypothesis": "more data helps"},
    )
    add_run(book, "v1_quarry", project=Q, curve=[0.2, 0.3])
    weights = folder / "best.pt"
    weights.write_bytes(b"weights " * 100)
    book.attach(base).log_artifact(weights)
    data = make_dataset(folder / "data")
    dataset_service.tag(book, P, data, "v1", progress=False)
    (folder / "data" / "images" / "val" / "new.jpg").write_bytes(b"another image")
    dataset_service.tag(book, P, data, "v2", progress=False)
    digest = str(book.store.list_artifacts(base.id)[0].digest)
    thumbs = add_predictions(book, folder / "review", {"v1_base": False, "v2_more_data": True})
    return {"artifact": digest, "blob": "the bytes of an upload", "thumb": thumbs[0]}


def make_team(book: Book, folder: Path) -> Team:
    world = fill(book, folder)
    accounts = account_service.accounts_of(book.store)
    tokens = {}
    for name, (admin, roles) in USERS.items():
        account_service.add_user(accounts, name, admin=admin, who=WHO)
        for project, role in roles.items():
            account_service.grant(accounts, book.store, name, project, role, who=WHO)
        tokens[name] = account_service.create_token(accounts, name, label="tests", who=WHO)[1]
    account_service.add_user(accounts, "dummy", admin=False, who=WHO)
    account_service.add_user(accounts, "signer", admin=False, who=WHO)
    world["signin_token"] = account_service.create_token(accounts, "signer", who=WHO)[1]
    return Team(book, create_app(book, auth=True), accounts, tokens, world)


@pytest.fixture
def team(book: Book, tmp_path: Path) -> Team:
    """On each home (``book`` is SQLite and PostgreSQL)."""
    return make_team(book, tmp_path)


@pytest.fixture
def client(team: Team) -> Iterator[httpx.Client]:
    with team.client() as c:
        yield c


def send(client: httpx.Client, method: str, call: Call, headers: dict[str, str]) -> httpx.Response:
    if call.form is not None:
        return client.request(method, call.url, data=call.form, headers=headers)
    return client.request(method, call.url, json=call.json, content=call.content, headers=headers)


def anonymous_verdict(api: bool, method: str, r: httpx.Response) -> str | None:
    """Nobody gets 401 (with ``WWW-Authenticate: Bearer`` from the API), or a page's
    sign-in redirect."""
    if not api and method in ("GET", "HEAD"):
        location = r.headers.get("location", "")
        if r.status_code != 303 or not location.startswith("/signin"):
            return f"expected 303 to /signin, got {r.status_code} {location}"
        return None
    if r.status_code != 401:
        return f"expected 401, got {r.status_code} {r.text[:200]}"
    if api and not r.headers.get("www-authenticate", "").startswith("Bearer"):
        return "a 401 without WWW-Authenticate: Bearer"
    return None


def verdict(identity: str, level: str, method: str, call: Call, r: httpx.Response) -> str | None:
    """Why ``r`` is not what ``identity`` should get from a route of ``level``; None if it is."""
    api = call.url.startswith(API)
    if identity in PASSES[level]:
        if r.status_code in (401, 403) or not 200 <= r.status_code < 400:
            return f"expected an answer, got {r.status_code} {r.text[:200]}"
        signin = r.status_code == 303 and r.headers.get("location", "").startswith("/signin")
        if signin and level != "public" and call.url != "/signout":  # signing out ends there
            return "expected an answer, got sent to the sign-in page"
        return None
    if identity == "anonymous":
        return anonymous_verdict(api, method, r)
    if r.status_code != 403:
        return f"expected 403, got {r.status_code} {r.text[:200]}"
    if api and identity not in r.json()["detail"]:
        return f"a 403 that does not name the user: {r.text[:200]}"
    return None


def test_every_route_for_every_identity(
    team: Team, client: httpx.Client, record_property: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    calls = expected_calls(team.world)
    keys = {key for route in auth.app_routes(team.app) for key in auth.route_keys(route)}
    assert keys - set(calls) == set(), f"routes this test has no expectation for: {sorted(keys - set(calls))}"
    assert set(calls) - keys == set(), f"expectations of no route: {sorted(set(calls) - keys)}"
    # the app's own table says the same (a route's rule changed: change this test too)
    for (method, path), call in calls.items():
        rule = auth.ACCESS[(method, path)]
        level = rule[1] if isinstance(rule, tuple) else rule
        assert level == call.level, (method, path, rule, call.level)
    problems = []
    seen: dict[str, dict[int, int]] = {i: {} for i in IDENTITIES}
    texts = []
    for method, path in sorted(keys):
        call = calls[(method, path)]
        for identity in IDENTITIES:
            sent = "GET" if method == "*" else method
            r = send(client, sent, call, team.headers(identity))
            seen[identity][r.status_code] = seen[identity].get(r.status_code, 0) + 1
            texts.append(r.text + " ".join(f"{k}: {v}" for k, v in r.headers.items()))
            why = verdict(identity, call.level, sent, call, r)
            if why:
                problems.append(f"{identity:9} {sent:6} {path}: {why}")
    size = (
        f"{len(keys)} routes (method, path) x {len(IDENTITIES)} identities = "
        f"{len(keys) * len(IDENTITIES)} requests"
    )
    record_property("matrix", size)
    record_property("statuses", repr(seen))
    print(f"\nauth matrix: {size}")
    for identity, statuses in seen.items():
        print(f"  {identity:9} {dict(sorted(statuses.items()))}")
    assert not problems, "\n".join(problems)
    # no answer and no log line carries a token
    for token in [*team.tokens.values(), team.world["signin_token"]]:
        assert not any(token in t for t in texts)
        assert token not in caplog.text


def test_who_is_the_authenticated_user(team: Team, client: httpx.Client) -> None:
    decided = client.post(
        f"{API}/projects/{P}/decisions",
        json={"candidate": "v2_more_data", "baseline": "v1_base"},
        headers=team.headers("ed"),
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["who"] == "ed"
    listed = client.get(f"{API}/decisions", headers=team.headers("vi")).json()
    assert [d["who"] for d in listed["decisions"]] == ["ed"]
    audit = client.get(f"{API}/audit", params={"project": P}, headers=team.headers("padmin"))
    assert audit.status_code == 200
    assert {"action": "decide", "who": "ed"}.items() <= next(
        e for e in audit.json() if e["action"] == "decide"
    ).items()
    assert all(e["who"] not in ("unknown", "tester") for e in audit.json() if e["action"] == "decide")


def test_lists_show_only_the_projects_a_user_sees(team: Team, client: httpx.Client) -> None:
    client.post(
        f"{API}/projects/{P}/decisions",
        json={"candidate": "v2_more_data", "baseline": "v1_base"},
        headers=team.headers("ed"),
    )
    names = [p["name"] for p in client.get(f"{API}/projects", headers=team.headers("qvi")).json()["projects"]]
    assert names == [Q]
    assert sorted(
        p["name"] for p in client.get(f"{API}/projects", headers=team.headers("root")).json()["projects"]
    ) == [P, Q]
    decisions = client.get(f"{API}/decisions", headers=team.headers("qvi")).json()
    assert decisions["decisions"] == [] and all(s["project"] == Q for s in decisions["test_splits"])
    assert len(client.get(f"{API}/decisions", headers=team.headers("vi")).json()["decisions"]) == 1
    home = client.get("/", headers=team.headers("qvi")).text
    assert f"/projects/{Q}" in home and f"/projects/{P}" not in home
    page = client.get("/decisions", params={"project": P}, headers=team.headers("qvi"))
    assert page.status_code == 403 and "qvi" in page.text
    # the audit: a non-admin sees nothing without a project, 403 with one
    assert client.get(f"{API}/audit", headers=team.headers("ed")).json() == []
    assert client.get(f"{API}/audit", params={"project": P}, headers=team.headers("ed")).status_code == 403
    assert client.get(f"{API}/audit", headers=team.headers("padmin")).json() != []


def test_a_viewer_of_one_project_cannot_read_another(team: Team, client: httpx.Client) -> None:
    r = client.get(f"{API}/projects/{P}/runs", headers=team.headers("qvi"))
    assert r.status_code == 403
    message = r.json()["detail"]
    assert "qvi" in message and repr(P) in message and "not a member" in message and "viewer" in message
    assert r.headers["x-trialbook-error"]
    assert client.get(f"{API}/projects/{Q}/runs", headers=team.headers("qvi")).status_code == 200
    # and its pages: the error page, naming the user
    page = client.get(f"/projects/{P}/runs/v1_base", headers=team.headers("qvi"))
    assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
    assert "qvi" in page.text
    # a viewer writes nothing: the message names the role held and needed
    put = client.put(f"{RUN}/note", json={"result": "x"}, headers=team.headers("vi"))
    assert (
        put.status_code == 403
        and "vi is viewer" in put.json()["detail"]
        and "needs editor" in put.json()["detail"]
    )


def test_expired_and_revoked_tokens_get_401(team: Team, client: httpx.Client) -> None:
    _, short = account_service.create_token(team.accounts, "vi", expires_days=1e-6, who=WHO)  # 86 ms
    assert client.get(f"{API}/projects", headers={"authorization": f"Bearer {short}"}).status_code == 200
    time.sleep(0.2)
    expired = client.get(f"{API}/projects", headers={"authorization": f"Bearer {short}"})
    assert expired.status_code == 401 and short not in expired.text
    assert "expired" in expired.json()["detail"] and "invalid_token" in expired.headers["www-authenticate"]
    token, raw = account_service.create_token(team.accounts, "vi", who=WHO)
    assert client.get(f"{API}/projects", headers={"authorization": f"Bearer {raw}"}).status_code == 200
    account_service.revoke_token(team.accounts, token.id, who=WHO)
    time.sleep(account_service.TOKEN_CACHE_S + 0.25)  # a revocation takes effect within it
    revoked = client.get(f"{API}/projects", headers={"authorization": f"Bearer {raw}"})
    assert revoked.status_code == 401 and raw not in revoked.text
    # a page with a dead token: 401 too (not the sign-in redirect a cookie-less browser gets)
    assert client.get(f"/projects/{P}", headers={"authorization": f"Bearer {raw}"}).status_code == 401
    # made-up tokens and other schemes
    for value in ("Bearer tb_nope", "Basic dmk6cGFzcw==", "Bearer "):
        r = client.get(f"{API}/projects", headers={"authorization": value})
        assert r.status_code == 401 and "nope" not in r.text, value


def test_a_foreign_host_is_refused_before_authentication(team: Team, client: httpx.Client) -> None:
    for identity in ("anonymous", "root"):
        headers = {**team.headers(identity), "host": "evil.example"}
        r = client.get(f"{API}/projects", headers=headers)
        assert r.status_code == 400 and "evil.example" in r.json()["detail"], identity
        assert client.get("/", headers=headers).status_code == 400
        assert client.get("/signin", headers=headers).status_code == 400
        assert client.get("/static/app.css", headers=headers).status_code == 400


def test_public_paths_are_only_signin_and_static(team: Team, client: httpx.Client) -> None:
    assert client.get("/signin").status_code == 200
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/nope.js").status_code == 404
    for path in ("/nope", "/projects/nope", "/signin/x"):
        r = client.get(path)
        assert r.status_code == 303 and r.headers["location"].startswith("/signin"), path
    assert client.get(f"{API}/nope").status_code == 401
    assert client.post(f"{API}/projects").status_code == 401  # a method no route takes
    assert client.get(f"{API}/nope", headers=team.headers("root")).status_code == 404


def test_a_route_without_an_access_rule_is_refused(team: Team, client: httpx.Client) -> None:
    app: FastAPI = team.app

    @app.get("/extra")
    def extra() -> dict[str, str]:
        return {"secret": "served"}

    with pytest.raises(auth.MissingAccessRule, match="GET /extra"):
        auth.check_rules(team.app)
    r = client.get("/extra", headers=team.headers("root"))
    assert r.status_code == 500 and "route without an access rule" in r.text and "served" not in r.text
    assert client.get("/extra").status_code == 500


def test_create_app_refuses_a_route_without_a_rule(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(auth.ACCESS, ("GET", f"{API}/datasets"))
    with pytest.raises(auth.MissingAccessRule, match="/api/v1/datasets"):
        create_app(team.book, auth=True)
    create_app(team.book)  # without authentication there is nothing to check


def test_without_auth_everything_is_the_local_user(team: Team) -> None:
    with httpx.Client(transport=InProcess(create_app(team.book)), base_url="http://127.0.0.1") as c:
        assert c.get(f"{API}/projects").status_code == 200
        page = c.get(f"/projects/{P}")
        assert page.status_code == 200 and 'id="me"' not in page.text and "csrf-token" not in page.text
        assert c.put(f"{RUN}/note", json={"result": "as the local user"}).status_code == 200
        assert c.get("/signin").status_code == 303
