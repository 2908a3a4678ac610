"""The remote store beyond the contract suite: transactions over a stateless server, the
errors a client sees when the server is not there or is not a trialbook server, the
allow-list of the endpoint, the token header and the registry's opener."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.runs import MAP, make_run
from support.server import InProcess, free_port, start
from trialbook.api import Book
from trialbook.core.entities import RunRecord
from trialbook.errors import Conflict, InvalidInput, NotFound, StorageError
from trialbook.store import open_book
from trialbook.store.remote import RemoteStore

Served = tuple[RemoteStore, Book]


def run_record(name: str, project: str = "pallets") -> RunRecord:
    return RunRecord(id=uuid.uuid4().hex, project=project, name=name, status="running", created_at=1.0)


# transactions ------------------------------------------------------------------------
def test_a_transaction_keeps_every_write_and_its_reads_see_them(served: Served) -> None:
    remote, backing = served
    with remote.transaction():
        remote.ensure_project("pallets")
        run = remote.create_run(run_record("v1_base"))
        remote.log_batch(run.id, {MAP: {0: 0.1, 1: 0.2}})
        assert remote.get_run("pallets", "v1_base") == run  # a read inside sees the block's writes
        assert remote.get_history([run.id], MAP) == {run.id: [(0, 0.1), (1, 0.2)]}
        assert backing.store.list_runs() == []  # nothing is in the book before the end
    assert backing.store.get_run("pallets", "v1_base") == run
    assert backing.store.get_history([run.id], MAP) == {run.id: [(0, 0.1), (1, 0.2)]}


def test_a_transaction_that_raises_keeps_nothing(served: Served) -> None:
    remote, backing = served
    with pytest.raises(RuntimeError, match="half-way"), remote.transaction():
        remote.ensure_project("pallets")
        run = remote.create_run(run_record("v1_base"))
        remote.log_batch(run.id, {MAP: {0: 0.1}})
        raise RuntimeError("stopped half-way")
    assert backing.store.list_projects() == [] and backing.store.list_runs() == []


def test_a_refused_write_raises_at_its_call_and_the_block_goes_on(served: Served) -> None:
    remote, backing = served
    make_run(remote, "v1_base")
    with remote.transaction():
        with pytest.raises(Conflict):
            remote.create_run(run_record("v1_base"))  # the name is taken
        with pytest.raises(NotFound):
            remote.get_run("pallets", "v9_none")  # a lookup that fails, as the importers do
        remote.create_run(run_record("v2_next"))
    assert sorted(r.name for r in backing.store.list_runs("pallets")) == ["v1_base", "v2_next"]


def test_an_inner_block_that_raises_drops_only_its_own_writes(served: Served) -> None:
    remote, backing = served
    with remote.transaction():
        remote.ensure_project("pallets")
        remote.create_run(run_record("v1_kept"))
        with pytest.raises(ValueError), remote.transaction():
            remote.create_run(run_record("v2_dropped"))
            raise ValueError("inner")
    assert [r.name for r in backing.store.list_runs("pallets")] == ["v1_kept"]


def test_an_error_of_a_write_that_answers_nothing_ends_the_block_and_keeps_nothing(served: Served) -> None:
    remote, backing = served
    with pytest.raises(NotFound), remote.transaction():
        remote.ensure_project("pallets")
        remote.log_batch("no-such-run", {MAP: {0: 0.5}})  # kept, sent at the end
    assert backing.store.list_projects() == []


def test_a_write_another_client_made_meanwhile_makes_the_end_refuse_everything(served: Served) -> None:
    remote, backing = served
    with pytest.raises(Conflict), remote.transaction():
        remote.ensure_project("pallets")
        remote.create_run(run_record("v1_base"))
        make_run(backing.store, "v1_base")  # the same name, by someone else, before the end
    assert [r.name for r in backing.store.list_runs()] == ["v1_base"]
    assert backing.store.list_runs()[0].id != ""


# errors --------------------------------------------------------------------------------
def test_a_server_that_is_not_there_is_a_storage_error_naming_it() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    store = RemoteStore(url)
    with pytest.raises(StorageError, match=f"cannot reach the trialbook server at {url} \\(list_projects\\)"):
        store.list_projects()
    store.close()


def _asgi(status: int, body: bytes, seen: list[dict[str, Any]] | None = None) -> Callable[..., Any]:
    """A small ASGI app answering every request with ``status`` and ``body`` (and keeping
    each request's headers in ``seen``)."""

    async def app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if seen is not None:
            seen.append({k.decode(): v.decode() for k, v in scope["headers"]})
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": body})

    return app


def test_a_5xx_and_a_server_of_another_kind_are_storage_errors_naming_the_server() -> None:
    failing = RemoteStore(
        "http://box:1", client=httpx.Client(transport=InProcess(_asgi(502, b"bad gateway")))
    )
    with pytest.raises(StorageError, match="server at http://box:1 failed on get_project: 502 bad gateway"):
        failing.get_project("p")
    failing.close()
    other = RemoteStore("http://box:2", client=httpx.Client(transport=InProcess(_asgi(404, b"Not Found"))))
    with pytest.raises(
        StorageError, match=r"refused list_runs: 404 Not Found .*trialbook server of this version"
    ):
        other.list_runs()
    other.close()


def test_the_token_goes_in_the_authorization_header(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []
    monkeypatch.setenv("TRIALBOOK_TOKEN", "s3cret")
    store = RemoteStore("http://box:3", client=httpx.Client(transport=InProcess(_asgi(500, b"", seen))))
    with pytest.raises(StorageError):
        store.list_projects()
    store.close()
    assert seen[0]["authorization"] == "Bearer s3cret"


def test_the_endpoint_calls_only_store_methods_of_the_allow_list(served: Served) -> None:
    remote, _ = served
    client = remote._client
    for name in ("close", "db", "transaction", "_empty", "__init__", "uri"):
        r = client.post(f"/api/v1/store/{name}", json={})
        assert r.status_code == 404, (name, r.text)
        assert r.json() == {
            "error": "NotFound",
            "message": f"the store has no method {name!r} that a client may call",
        }
    r = client.post("/api/v1/store/get_project", json={"kwargs": {"nope": 1}})
    assert r.status_code == 400 and r.json()["error"] == "InvalidInput"
    assert "get_project" in r.json()["message"]
    r = client.post("/api/v1/store/_batch", json={"calls": "x", "commit": True})
    assert r.status_code == 400 and r.json()["error"] == "InvalidInput"
    r = client.post("/api/v1/store/get_project", json={"kwargs": {"name": "none"}})
    assert r.status_code == 404 and r.json()["error"] == "NotFound"


def test_errors_of_the_servers_store_come_back_as_the_same_class(served: Served) -> None:
    remote, backing = served
    with pytest.raises(NotFound) as got:
        remote.get_project("nope")
    with pytest.raises(NotFound) as direct:
        backing.store.get_project("nope")
    assert str(got.value) == str(direct.value)
    with pytest.raises(InvalidInput, match="limit"):
        make_run(remote, "v1_base")
        remote.runs_page("pallets", MAP, "max", limit=0)


def test_points_with_nan_and_infinities_travel(served: Served) -> None:
    remote, backing = served
    run = make_run(remote, "v1_base")
    remote.log_batch(run.id, [(MAP, 0, float("nan")), (MAP, 1, 0.25)])
    history = backing.store.get_history([run.id], MAP)[run.id]
    assert history[1] == (1, 0.25) and history[0][1] != history[0][1]
    assert json.dumps(remote.get_summaries([run.id])[run.id][MAP].nan_count) == "1"


# the registry ----------------------------------------------------------------------------
def test_an_http_uri_opens_a_remote_book_over_real_loopback_http(tmp_path: Any) -> None:
    with start(str(tmp_path / "book")) as server:
        opened = open_book(server.url, create=False)
        try:
            assert isinstance(opened.store, RemoteStore) and opened.store.uri == server.url
            from trialbook.artifacts.remote import RemoteBlobs  # registered by trialbook.api

            assert opened.blob_dir is None and not opened.store.read_only
            assert isinstance(opened.blobs, RemoteBlobs) and opened.blobs.base_url == server.url
            make_run(opened.store, "v1_base")
            assert [r.name for r in opened.store.list_runs("pallets")] == ["v1_base"]
        finally:
            opened.store.close()


def test_a_remote_book_keeps_its_artifacts_on_its_server() -> None:
    import trialbook.api  # noqa: F401  (registers the server's blob store, as `import trialbook` does)
    from trialbook.artifacts.remote import RemoteBlobs

    opened = open_book("https://team.example:5210")
    try:
        assert isinstance(opened.blobs, RemoteBlobs)
        assert opened.blobs.root == "https://team.example:5210/api/v1/blobs"
    finally:
        opened.store.close()
        if isinstance(opened.blobs, RemoteBlobs):
            opened.blobs.close()


# the importers -------------------------------------------------------------------------
def test_an_ultralytics_import_over_http_is_written_whole_and_once(served: Served, tmp_path: Path) -> None:
    import yaml

    from support.ultralytics_files import DETECT, args_yaml, results_csv
    from trialbook.integrations.importers.ultralytics_runs import import_ultralytics

    remote, backing = served
    folder = tmp_path / "runs" / "detect" / "train"
    folder.mkdir(parents=True)
    (folder / "args.yaml").write_text(yaml.safe_dump(args_yaml(name="train", save_dir=str(folder))))
    (folder / "results.csv").write_text(results_csv(DETECT, list(range(1, 6)), time_column=True))
    book = Book(remote)
    report = import_ultralytics(book, [folder], project="pallets", weights=False)
    assert report.failed == [] and [r.epochs for r in report.imported] == [5]
    (stored,) = backing.store.list_runs("pallets")
    assert stored.status == "finished"
    assert set(backing.store.get_all_history(stored.id)) >= set(DETECT) - {"epoch"}
    again = import_ultralytics(book, [folder], project="pallets", weights=False)
    assert again.imported == [] and len(again.skipped) == 1
    assert len(backing.store.list_runs("pallets")) == 1
