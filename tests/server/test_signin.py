"""Signing in to the team server's UI (``create_app(auth=True)``): with a name and password
or with a token, into an HttpOnly, SameSite session cookie (Secure under https); the
session refused once signed out or expired; the CSRF token required on every write a
session makes (every unsafe route of the app, enumerated); failed sign-ins limited.

On both homes of a team server's database (``book``: SQLite and PostgreSQL).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from blake3 import blake3

from support.runs import add_run
from support.server import InProcess
from trialbook.api import Book
from trialbook.server import auth
from trialbook.server.app import API_PREFIX, create_app
from trialbook.services import accounts as account_service

API = API_PREFIX
P = "pallets"
WHO = "setup"
PASSWORD = "a long enough password"
WRONG = "wrong name, password or token"
BLOB = b"uploaded bytes"


@dataclass
class Server:
    app: Any
    accounts: Any
    book: Book
    tokens: dict[str, str]

    def client(self, base_url: str = "http://127.0.0.1") -> httpx.Client:
        return httpx.Client(transport=InProcess(self.app), base_url=base_url)


@pytest.fixture
def server(book: Book, tmp_path: Path) -> Server:
    add_run(book, "v1_base", curve=[0.1, 0.3], val=0.3, per_class={"pallet": 0.3})
    add_run(book, "v2_next", parent="v1_base", curve=[0.1, 0.4], val=0.4, per_class={"pallet": 0.4})
    accounts = account_service.accounts_of(book.store)
    account_service.add_user(accounts, "root", admin=True, who=WHO)
    account_service.add_user(accounts, "ed", admin=False, who=WHO)
    account_service.add_user(accounts, "dummy", admin=False, who=WHO)
    account_service.grant(accounts, book.store, "ed", P, "editor", who=WHO)
    account_service.set_password(accounts, "ed", PASSWORD, who=WHO)
    account_service.set_password(accounts, "root", PASSWORD, who=WHO)
    tokens = {n: account_service.create_token(accounts, n, who=WHO)[1] for n in ("root", "ed")}
    return Server(create_app(book, auth=True), accounts, book, tokens)


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def sign_in(client: httpx.Client, **form: str) -> httpx.Response:
    return client.post("/signin", data=form)


def csrf_of(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def set_cookie(r: httpx.Response) -> str:
    cookies = [v for k, v in r.headers.multi_items() if k == "set-cookie"]
    assert len(cookies) == 1, cookies
    return cookies[0]


def test_sign_in_with_a_password_sets_a_session_cookie(server: Server, client: httpx.Client) -> None:
    form = client.get("/signin", params={"next": "/projects/pallets"})
    assert form.status_code == 200 and 'name="password"' in form.text and 'name="token"' in form.text
    assert 'value="/projects/pallets"' in form.text
    r = sign_in(client, name="ed", password=PASSWORD, next="/projects/pallets")
    assert r.status_code == 303 and r.headers["location"] == "/projects/pallets"
    cookie = set_cookie(r)
    attributes = {a.strip().split("=")[0].lower(): a.strip() for a in cookie.split(";")[1:]}
    assert cookie.startswith(f"{auth.SESSION_COOKIE}=")
    assert "httponly" in attributes and attributes["samesite"].lower() in ("samesite=lax", "samesite=strict")
    assert (
        attributes["path"] == "Path=/"
        and attributes["max-age"] == f"Max-Age={int(account_service.SESSION_TTL_S)}"
    )
    assert "secure" not in attributes  # plain http on loopback
    page = client.get("/projects/pallets")
    assert page.status_code == 200
    assert '<span id="me-name">ed</span>' in page.text and "editor of pallets" in page.text
    assert 'action="/signout"' in page.text and csrf_of(page.text)
    assert client.get(f"{API}/projects/{P}/runs").status_code == 200  # the API takes the session too
    # an editor sees no audit link; an admin does
    assert 'href="/audit"' not in page.text


def test_the_cookie_is_secure_under_https(server: Server) -> None:
    with server.client("https://127.0.0.1") as c:
        assert "secure" in set_cookie(sign_in(c, name="ed", password=PASSWORD)).lower()
    with server.client() as c:  # behind a proxy that terminates https
        r = c.post("/signin", data={"token": server.tokens["ed"]}, headers={"x-forwarded-proto": "https"})
        assert r.status_code == 303 and "; secure" in set_cookie(r).lower()


def test_sign_in_with_a_token(server: Server, client: httpx.Client) -> None:
    r = sign_in(client, token=server.tokens["root"], next="/decisions")
    assert r.status_code == 303 and r.headers["location"] == "/decisions"
    page = client.get("/")
    assert '<span id="me-name">root</span>' in page.text and "server admin" in page.text
    assert 'href="/audit"' in page.text
    assert client.get("/audit").status_code == 200
    assert server.tokens["root"] not in page.text and server.tokens["root"] not in r.text


@pytest.mark.parametrize(
    "form",
    [
        {"name": "ed", "password": "not the password"},
        {"name": "nobody", "password": PASSWORD},
        {"token": "tb_not_a_token"},
        {"name": "ed"},
        {},
    ],
)
def test_wrong_sign_ins_get_the_form_again_with_401(client: httpx.Client, form: dict[str, str]) -> None:
    r = sign_in(client, **form)
    assert r.status_code == 401 and WRONG in r.text and "set-cookie" not in r.headers
    assert 'name="password"' in r.text
    assert "tb_not_a_token" not in r.text


def test_next_only_leads_to_this_server(client: httpx.Client, server: Server) -> None:
    for target in (
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
        "/signout",
    ):
        r = sign_in(client, token=server.tokens["ed"], next=target)
        assert r.status_code == 303 and r.headers["location"] == "/", target
    anonymous = httpx.Client(transport=InProcess(server.app), base_url="http://127.0.0.1")
    with anonymous:
        sent = anonymous.get("/projects/pallets/compare", params={"runs": ["v1_base", "v2_next"]})
        assert sent.status_code == 303
        target = "/projects/pallets/compare?runs=v1_base&runs=v2_next"
        assert sent.headers["location"] == f"/signin?next={quote(target, safe='')}"
        back = sign_in(anonymous, name="ed", password=PASSWORD, next=target)
        assert back.headers["location"] == target
        assert anonymous.get(target).status_code == 200


def test_a_session_is_refused_after_sign_out(server: Server, client: httpx.Client) -> None:
    sign_in(client, name="ed", password=PASSWORD)
    cookie = client.cookies[auth.SESSION_COOKIE]
    page = client.get(f"/projects/{P}")
    token = csrf_of(page.text)
    r = client.post("/signout", data={"csrf": token})
    assert r.status_code == 303 and r.headers["location"] == "/signin"
    assert "max-age=0" in set_cookie(r).lower()
    # the old cookie, sent again, is dead on the server
    with server.client() as other:
        other.cookies.set(auth.SESSION_COOKIE, cookie)
        page = other.get(f"/projects/{P}")
        assert page.status_code == 303 and page.headers["location"].startswith("/signin")
        assert other.get(f"{API}/projects").status_code == 401
        assert (
            other.put(
                f"{API}/projects/{P}/runs/v1_base/note", json={"result": "x"}, headers={"x-csrf-token": token}
            ).status_code
            == 401
        )


def test_an_expired_session_is_refused(server: Server, client: httpx.Client) -> None:
    cookie = "an-expired-session-cookie-value"
    server.accounts.add_session(
        account_service.hash_secret(cookie), "ed", csrf="c" * 20, expires_at=time.time() - 1
    )
    client.cookies.set(auth.SESSION_COOKIE, cookie)
    assert client.get(f"{API}/projects").status_code == 401
    assert client.get("/").status_code == 303


def _fill(path: str, body: bytes) -> str:
    """``path`` (a route's template) with a real value in each parameter."""
    values = {"project": P, "run": "v1_base", "user": "dummy", "name": P, "method": "list_projects"}
    values["digest"] = blake3(body).hexdigest()
    return re.sub(r"{(\w+)(?::\w+)?}", lambda m: values.get(m.group(1), "x"), path)


def unsafe_routes(app: Any) -> list[tuple[str, str]]:
    """Every (method, path template) of ``app`` that may write, from its routes."""
    keys = {key for route in auth.app_routes(app) for key in auth.route_keys(route)}
    return sorted((m, p) for m, p in keys if m not in ("GET", "HEAD", "OPTIONS", "*"))


def test_every_write_of_a_session_needs_its_csrf_token(server: Server) -> None:
    routes = unsafe_routes(server.app)
    public = [(m, p) for m, p in routes if auth.ACCESS[(m, p)] == auth.PUBLIC]
    assert public == [("POST", "/signin")]  # signing in is the only write without a session
    checked = []
    for method, path in routes:
        if (method, path) in public:
            continue
        url = _fill(path, BLOB)
        body: dict[str, Any] = {"content": BLOB} if path.startswith(f"{API}/blobs") else {"json": {}}
        with server.client() as c:
            sign_in(c, token=server.tokens["root"])  # a server admin: no role refuses anything
            token = csrf_of(c.get("/").text)
            missing = c.request(method, url, **body)
            assert missing.status_code == 403 and "CSRF" in missing.text, (method, path, missing.status_code)
            wrong = c.request(method, url, headers={"x-csrf-token": token[:-2] + "xx"}, **body)
            assert wrong.status_code == 403, (method, path)
            given = c.request(method, url, headers={"x-csrf-token": token}, **body)
            assert given.status_code != 403, (method, path, given.status_code, given.text[:200])
            assert given.status_code != 401, (method, path)
            checked.append(f"{method} {path}")
    assert len(checked) >= 8, checked
    print(f"\nCSRF checked on {len(checked)} unsafe routes: {checked}")


def test_the_csrf_token_may_come_in_a_form_field(server: Server, client: httpx.Client) -> None:
    sign_in(client, name="ed", password=PASSWORD)
    token = csrf_of(client.get("/").text)
    assert client.post("/signout", data={"csrf": "nope"}).status_code == 403
    assert client.post("/signout", data={"other": token}).status_code == 403
    assert client.get("/").status_code == 200  # still signed in
    assert client.post("/signout", data={"csrf": token}).status_code == 303
    assert client.get("/").status_code == 303


def test_a_csrf_token_belongs_to_its_session(server: Server) -> None:
    with server.client() as a, server.client() as b:
        sign_in(a, name="ed", password=PASSWORD)
        sign_in(b, token=server.tokens["ed"])
        a_token, b_token = csrf_of(a.get("/").text), csrf_of(b.get("/").text)
        assert a_token != b_token
        url = f"{API}/projects/{P}/runs/v1_base/note"
        assert a.put(url, json={"result": "x"}, headers={"x-csrf-token": b_token}).status_code == 403
        assert a.put(url, json={"result": "x"}, headers={"x-csrf-token": a_token}).status_code == 200


def test_a_bearer_token_needs_no_csrf_token(server: Server, client: httpx.Client) -> None:
    r = client.put(
        f"{API}/projects/{P}/runs/v1_base/note",
        json={"result": "from a script"},
        headers={"authorization": f"Bearer {server.tokens['ed']}"},
    )
    assert r.status_code == 200, r.text


def test_the_sixth_wrong_password_is_refused_with_429(server: Server, client: httpx.Client) -> None:
    for _ in range(account_service.MAX_FAILURES):
        assert sign_in(client, name="ed", password="not the password").status_code == 401
    sixth = sign_in(client, name="ed", password="not the password")
    assert sixth.status_code == 429 and "too many failed sign-ins" in sixth.text
    # the right password too, now: the name is locked for the window
    assert sign_in(client, name="ed", password=PASSWORD).status_code == 429
    # a token sign-in from this client too (limited per client as well)
    assert sign_in(client, token=server.tokens["root"]).status_code == 429
    # the API with a token is no sign-in: not limited
    assert (
        client.get(f"{API}/projects", headers={"authorization": f"Bearer {server.tokens['ed']}"}).status_code
        == 200
    )


def test_csrf_matches_compares_in_constant_time_semantics() -> None:
    token = "x" * 43
    assert account_service.csrf_matches(token, token)
    assert account_service.csrf_matches(token, "".join(["x"] * 43))  # equal content, another object
    assert not account_service.csrf_matches(token, token[:-1] + "y")
    assert not account_service.csrf_matches(token, token[:-1])  # another length
    assert not account_service.csrf_matches(token, "")
    assert not account_service.csrf_matches(token, None)
    assert not account_service.csrf_matches(token, "é" * 43)  # not ASCII: no error, no match


def test_without_auth_there_is_no_sign_in(book: Book) -> None:
    add_run(book, "v1_base", curve=[0.1, 0.3])
    with httpx.Client(transport=InProcess(create_app(book)), base_url="http://127.0.0.1") as c:
        assert c.get("/signin").status_code == 303
        page = c.get("/")
        assert page.status_code == 200 and 'id="signout"' not in page.text and "csrf-token" not in page.text
        assert c.put(f"{API}/projects/{P}/runs/v1_base/note", json={"result": "x"}).status_code == 200


def test_a_huge_sign_in_form_is_refused(client: httpx.Client) -> None:
    r = client.post("/signin", data={"name": "ed", "password": "x" * (auth.FORM_LIMIT + 1)})
    assert r.status_code == 413 and "set-cookie" not in r.headers
