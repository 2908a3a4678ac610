"""``trialbook server`` as a user runs it: a subprocess with 2 uvicorn workers on a free
loopback port, over an SQLite book, with its artifacts in a real S3 store (SeaweedFS).
Its first admin and their token are made with ``trialbook admin`` before it starts
(``support.accounts``); the clients here send that token."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from blake3 import blake3

from support.accounts import admin_token, auth
from support.env import without_trialbook
from support.extras import venv_command
from support.runs import make_sealed_book
from support.seaweed import Seaweed, free_ports, seaweed, stop_process
from trialbook.artifacts.remote import RemoteBlobs
from trialbook.store.registry import sql_url

START_TIMEOUT_S = 30.0


@dataclass
class TeamServer:
    url: str
    process: subprocess.Popen[bytes]
    args: list[str]
    env: dict[str, str]
    started_in: float
    token: str = ""  # the admin's

    @property
    def auth(self) -> dict[str, str]:
        return auth(self.token)

    def restart(self) -> None:
        stop_process(self.process)
        again = _start(self.args, self.env, self.token)
        self.process, self.started_in = again.process, again.started_in


def _env(weed: Seaweed, home: Path) -> dict[str, str]:
    env = without_trialbook(aws=True)
    env.update(weed.env())
    env["XDG_CACHE_HOME"] = str(home / "cache")
    env["TRIALBOOK_SPOOL"] = str(home / "spool")
    return env


def _server_args(db: str, artifacts: str, port: int, *extra: str) -> list[str]:
    return [
        venv_command("trialbook"),
        "server",
        "--db",
        db,
        "--artifacts",
        artifacts,
        "--port",
        str(port),
        *extra,
    ]


def _start(args: list[str], env: dict[str, str], token: str = "") -> TeamServer:
    port = args[args.index("--port") + 1]
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = started + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"trialbook server exited {process.returncode}: {process.stderr.read()!r}")  # type: ignore[union-attr]
        try:
            headers = auth(token) if token else {}
            if httpx.get(url + "/api/v1/projects", headers=headers, timeout=2).status_code < 500:
                return TeamServer(url, process, args, env, time.monotonic() - started, token)
        except httpx.TransportError:
            time.sleep(0.05)
    stop_process(process)
    raise RuntimeError(f"trialbook server did not answer at {url} in {START_TIMEOUT_S}s")


@pytest.fixture(scope="module")
def weed() -> Seaweed:
    return seaweed()


@pytest.fixture(scope="module")
def team(weed: Seaweed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TeamServer]:
    """The server over the sealed book, whose admin's token this module's clients send
    (``TRIALBOOK_TOKEN``)."""
    home = tmp_path_factory.mktemp("team")
    make_sealed_book(home / "book").close()
    token = admin_token(str(home / "book"))
    artifacts = weed.new_prefix()
    (port,) = free_ports(1)
    server = _start(
        _server_args(str(home / "book"), artifacts, port, "--workers", "2"), _env(weed, home), token
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRIALBOOK_TOKEN", token)
        yield server
    stop_process(server.process)


def test_serves_the_ui_and_the_api(team: TeamServer) -> None:
    assert httpx.get(team.url + "/", headers=team.auth).status_code == 200
    projects = httpx.get(team.url + "/api/v1/projects", headers=team.auth).json()
    assert "pallets" in str(projects)
    runs = httpx.get(team.url + "/api/v1/projects/pallets/runs", headers=team.auth).json()
    assert {r["name"] for r in runs["runs"]} >= {"v1_base"}
    assert team.started_in < START_TIMEOUT_S


def test_anonymous_and_wrong_tokens_get_401(team: TeamServer) -> None:
    assert httpx.get(team.url + "/api/v1/projects").status_code == 401
    wrong = auth("tb_" + "x" * 43)
    assert httpx.get(team.url + "/api/v1/projects", headers=wrong).status_code == 401
    assert httpx.post(team.url + "/api/v1/store/list_projects", json={}, headers=wrong).status_code == 401
    assert httpx.head(team.url + "/api/v1/blobs/" + "ab" * 32).status_code == 401


def test_a_server_with_accounts_says_nothing_of_them(team: TeamServer) -> None:
    # the lines are printed once by the command, before the workers start
    assert team.process.stderr is not None
    os.set_blocking(team.process.stderr.fileno(), False)
    seen = team.process.stderr.read() or b""
    assert b"no accounts yet" not in seen and b"WARNING" not in seen


def test_blobs_round_trip_through_the_server_into_s3(team: TeamServer, weed: Seaweed, tmp_path: Path) -> None:
    blobs = RemoteBlobs(team.url, cache_dir=tmp_path / "cache")
    src = tmp_path / "best.pt"
    src.write_bytes(os.urandom(2_500_000))
    digest, size = blobs.put_file(src)
    assert digest == blake3(src.read_bytes()).hexdigest() and size == 2_500_000
    assert blobs.put_file(src) == (digest, size)  # idempotent
    assert blobs.get_bytes(digest) == src.read_bytes()
    assert blobs.export(digest, tmp_path / "out.pt").read_bytes() == src.read_bytes()
    assert blobs.path_of(digest).read_bytes() == src.read_bytes()
    small = blobs.put_bytes(b"a manifest")
    assert blobs.get_bytes(small) == b"a manifest"
    artifacts = team.args[team.args.index("--artifacts") + 1]
    assert f"{digest[:2]}/{digest[2:]}" in weed.keys(artifacts)
    # bytes that do not hash to the digest they are sent as: refused, nothing stored
    wrong = "ab" * 32
    got = httpx.put(f"{team.url}/api/v1/blobs/{wrong}", content=b"not those bytes", headers=team.auth)
    assert got.status_code == 400 and "refused" in got.json()["detail"]
    assert httpx.head(f"{team.url}/api/v1/blobs/{wrong}", headers=team.auth).status_code == 404
    assert httpx.get(f"{team.url}/api/v1/blobs/{wrong}", headers=team.auth).status_code == 404
    assert httpx.get(f"{team.url}/api/v1/blobs/not-a-digest", headers=team.auth).status_code == 400
    assert not blobs.path_of(wrong).exists()
    blobs.close()


def test_sigkilled_and_restarted_serves_the_same_data(team: TeamServer, tmp_path: Path) -> None:
    blobs = RemoteBlobs(team.url, cache_dir=tmp_path / "c1")
    digest = blobs.put_bytes(b"kept across a crash")
    before = httpx.get(team.url + "/api/v1/projects/pallets/runs", headers=team.auth).json()
    # the workers are children of the supervisor: each is killed as well, by its id
    children = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(team.process.pid)], capture_output=True, text=True
    ).stdout.split()
    team.process.send_signal(signal.SIGKILL)
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    team.process.wait(10)
    team.restart()
    assert httpx.get(team.url + "/api/v1/projects/pallets/runs", headers=team.auth).json() == before
    again = RemoteBlobs(team.url, cache_dir=tmp_path / "c2")
    assert again.get_bytes(digest) == b"kept across a crash"
    blobs.close()
    again.close()


def test_a_server_without_accounts_says_how_to_make_the_first(weed: Seaweed, tmp_path: Path) -> None:
    """No user yet: the server starts all the same, every request is refused, and the
    command says once how to make the first admin and their token."""
    make_sealed_book(tmp_path / "book").close()
    (port,) = free_ports(1)
    server = _start(_server_args(str(tmp_path / "book"), weed.new_prefix(), port), _env(weed, tmp_path))
    try:
        assert httpx.get(server.url + "/api/v1/projects").status_code == 401
        assert server.process.stderr is not None
        os.set_blocking(server.process.stderr.fileno(), False)
        seen = (server.process.stderr.read() or b"").decode()
    finally:
        stop_process(server.process)
    (line,) = [x for x in seen.splitlines() if "no accounts yet" in x]
    assert "every request will be refused (401)" in line
    assert f"trialbook admin user add NAME --admin --db {tmp_path / 'book'}" in line
    assert f"trialbook admin token create NAME --db {tmp_path / 'book'}" in line


def test_no_auth_is_gone_and_says_what_to_do(weed: Seaweed, tmp_path: Path) -> None:
    make_sealed_book(tmp_path / "book").close()
    (port,) = free_ports(1)
    done = subprocess.run(
        _server_args(str(tmp_path / "book"), weed.new_prefix(), port, "--no-auth"),
        env=_env(weed, tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert "--no-auth is gone" in line and "trialbook admin user add NAME --admin" in line


def _old_book(folder: Path) -> None:
    from alembic import command
    from alembic.config import Config

    from trialbook.store.sql.engine import MIGRATIONS_DIR

    folder.mkdir()
    engine = sa.create_engine(sql_url(str(folder)))
    with engine.connect() as conn:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.commit()
    engine.dispose()


def test_refused_on_an_old_schema_and_never_migrated(weed: Seaweed, tmp_path: Path) -> None:
    _old_book(tmp_path / "old")
    before = (tmp_path / "old" / "book.db").read_bytes()
    (port,) = free_ports(1)
    done = subprocess.run(
        _server_args(str(tmp_path / "old"), str(tmp_path / "art"), port),
        env=_env(weed, tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert f"trialbook db upgrade --uri {tmp_path / 'old'}" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert (tmp_path / "old" / "book.db").read_bytes() == before
