"""``trialbook login URL`` / ``logout URL`` against a real loopback server that checks
tokens (``create_app(book, auth=True)`` on an SQLite book whose admin and token are made
with ``trialbook admin``): the token is checked, then kept for that server in
``$XDG_CONFIG_HOME/trialbook/credentials.json`` (file 0600, folder 0700); a remote book
of that server then works without ``TRIALBOOK_TOKEN``. And what clients say of a token
the server refuses, or of none."""

from __future__ import annotations

import json
import logging
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from support.accounts import admin_token
from support.env import without_trialbook
from support.extras import venv_command
from support.server import LoopbackServer, start
from trialbook import settings
from trialbook.api import Book
from trialbook.errors import Unauthorized
from trialbook.store.remote import RemoteStore


@dataclass
class Served:
    url: str
    token: str
    book: str  # the server's book (its folder)
    config: Path  # $XDG_CONFIG_HOME

    @property
    def credentials(self) -> Path:
        return self.config / "trialbook" / "credentials.json"

    @property
    def key(self) -> str:
        return settings.server_of(self.url)


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    from trialbook.server.app import create_app

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("TRIALBOOK_OUTBOX", str(tmp_path / "client" / "outbox.db"))
    monkeypatch.setenv("TRIALBOOK_USER", "tester")
    for name in ("TRIALBOOK_TOKEN", "TRIALBOOK_URI", "TRIALBOOK_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    folder = str(tmp_path / "server")
    Book.open(folder, create=True).close()
    token = admin_token(folder)
    book = Book.open(folder)
    server: LoopbackServer = start(create_app(book, auth=True))
    try:
        yield Served(server.url, token, folder, tmp_path / "config")
    finally:
        server.stop()
        book.close()


def login(*args: str, stdin: str | None = None) -> Result:
    from trialbook.cli.main import cli

    return CliRunner().invoke(cli, ["login", *args], input=stdin)


def test_login_checks_the_token_and_keeps_it_for_that_server_only_readable_by_you(served: Served) -> None:
    done = login(served.url + "/", "--token-stdin", stdin=served.token + "\n")
    assert done.exit_code == 0, done.output
    assert served.token not in done.output
    assert served.key in done.stdout and ("signed in to" in done.stdout or "token stored for" in done.stdout)
    assert stat.S_IMODE(served.credentials.stat().st_mode) == 0o600
    assert stat.S_IMODE(served.credentials.parent.stat().st_mode) == 0o700
    assert json.loads(served.credentials.read_text()) == {"servers": {served.key: served.token}}
    assert not [
        p.name for p in served.credentials.parent.iterdir() if p.name != "credentials.json"
    ]  # no temp file
    assert settings.token(served.url) == served.token
    assert settings.token("http://elsewhere.example:5210") is None


def test_a_refused_token_is_not_stored(served: Served) -> None:
    done = login(served.url, stdin="tb_" + "x" * 43 + "\n")  # stdin is no terminal: read from it
    assert done.exit_code == 1
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("Error: the server refused this token") and "nothing was stored" in line
    assert not served.credentials.exists()
    empty = login(served.url, stdin="\n")
    assert empty.exit_code == 1 and "no token given" in empty.stderr


def test_other_servers_tokens_are_kept_and_logout_forgets_one(served: Served) -> None:
    settings.store_token("https://team.example", "tb_other")
    assert login(served.url, stdin=served.token + "\n").exit_code == 0
    servers = json.loads(served.credentials.read_text())["servers"]
    assert servers == {"https://team.example:443": "tb_other", served.key: served.token}
    assert login(served.url, stdin=served.token + "\n").exit_code == 0  # again: the same
    from trialbook.cli.main import cli

    out = CliRunner().invoke(cli, ["logout", served.url])
    assert out.exit_code == 0 and "removed" in out.stdout
    assert json.loads(served.credentials.read_text())["servers"] == {"https://team.example:443": "tb_other"}
    assert "no token stored" in CliRunner().invoke(cli, ["logout", served.url]).stdout
    assert stat.S_IMODE(served.credentials.stat().st_mode) == 0o600


def test_after_login_a_remote_book_works_without_the_variable(served: Served) -> None:
    anonymous = RemoteStore(served.url)
    with pytest.raises(Unauthorized, match=r"needs a token: set TRIALBOOK_TOKEN or run `trialbook login"):
        anonymous.list_projects()
    anonymous.close()
    assert login(served.url, stdin=served.token + "\n").exit_code == 0
    store = RemoteStore(served.url)
    try:
        store.ensure_project("p")
        assert [p.name for p in store.list_projects()] == ["p"]
        assert served.token not in repr(store)
    finally:
        store.close()
    with Book.open(served.url) as book:  # the Python API, the same
        run = book.start("p", "v1_after_login", allow_unpinned=True)
        run.log({"metrics/x": 1.0}, epoch=0)
        run.finish()
    with Book.open(served.book) as server_book:
        assert [r.name for r in server_book.store.list_runs("p")] == ["v1_after_login"]


def test_a_refused_token_says_what_to_do_and_is_never_shown(
    served: Served, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "tb_" + "w" * 43
    monkeypatch.setenv("TRIALBOOK_TOKEN", wrong)
    caplog.set_level(logging.DEBUG)  # httpx's and httpcore's own logs too
    store = RemoteStore(served.url)
    with pytest.raises(Unauthorized) as refused:
        store.list_projects()
    store.close()
    assert caplog.records and wrong not in caplog.text
    message = str(refused.value)
    assert f"the trialbook server at {served.url} refused the token from $TRIALBOOK_TOKEN" in message
    assert "(unknown, expired or revoked)" in message and f"trialbook login {served.key}" in message
    assert wrong not in message
    # the Python API: refused at start, before any training; nothing waits in the outbox
    import trialbook as tb
    from trialbook.outbox import Outbox

    with pytest.raises(Unauthorized, match="refused the token"):
        tb.start("p", "v1_refused", uri=served.url, allow_unpinned=True)
    outbox = Outbox()
    assert not outbox.exists() or outbox.pending(served.url) == 0
    outbox.close()
    # artifacts the same, at once (no retries)
    from trialbook.artifacts.remote import RemoteBlobs

    blobs = RemoteBlobs(served.url, cache_dir=Path(served.book) / "cache")
    with pytest.raises(Unauthorized, match="refused the token") as blob_refused:
        blobs.get_bytes("ab" * 32)
    assert wrong not in str(blob_refused.value)
    blobs.close()


def test_login_as_a_process_with_the_token_piped(served: Served) -> None:
    env = without_trialbook()
    env["XDG_CONFIG_HOME"] = str(served.config)
    done = subprocess.run(
        [venv_command("trialbook"), "login", served.url],
        input=served.token + "\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert served.token not in done.stdout + done.stderr
    assert json.loads(served.credentials.read_text())["servers"] == {served.key: served.token}


@pytest.mark.parametrize(
    ("uri", "server"),
    [
        ("http://127.0.0.1:5210", "http://127.0.0.1:5210"),
        ("http://127.0.0.1:5210/", "http://127.0.0.1:5210"),
        ("HTTP://Team.Example:8080/book/", "http://team.example:8080"),
        ("https://team.example", "https://team.example:443"),
        ("http://team.example", "http://team.example:80"),
        ("http://[::1]:5210", "http://[::1]:5210"),
    ],
)
def test_a_server_is_keyed_by_scheme_host_and_port(uri: str, server: str) -> None:
    assert settings.server_of(uri) == server


def test_the_variable_wins_over_a_stored_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("TRIALBOOK_TOKEN", raising=False)
    settings.store_token("http://127.0.0.1:5210", "tb_stored")
    assert settings.token("http://127.0.0.1:5210/") == "tb_stored"
    assert settings.token() is None  # no server named: only the variable
    assert "credentials.json" in str(settings.token_source("http://127.0.0.1:5210"))
    monkeypatch.setenv("TRIALBOOK_TOKEN", "tb_variable")
    assert settings.token("http://127.0.0.1:5210") == "tb_variable"
    assert settings.token_source("http://127.0.0.1:5210") == "from $TRIALBOOK_TOKEN"
    with pytest.raises(ValueError, match="no server URL"):
        settings.server_of("/a/folder")


def test_a_token_no_server_would_take_is_refused_before_any_request(monkeypatch: pytest.MonkeyPatch) -> None:
    pasted = "tb_abc\ndef"  # a line break in it: an HTTP library's error would quote the header
    monkeypatch.setenv("TRIALBOOK_TOKEN", pasted)
    with pytest.raises(Unauthorized, match=r"from \$TRIALBOOK_TOKEN holds a character no token has") as bad:
        RemoteStore("http://127.0.0.1:9")
    assert "abc" not in str(bad.value)
