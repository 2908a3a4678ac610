"""``services.store_policy``: who may call which method of the remote store's endpoint.

Every call goes through ``services.store_rpc.call`` / ``batch`` with its arguments
encoded as the wire carries them (``store.codec``, JSON and back), on a real SQLite book,
as a ``core.access.Principal``: vic (viewer of p), edith (editor of p), ada (admin of p),
root (a server admin); nobody but root and ``LOCAL`` has a role on q. The last test goes
through the real app with tokens (``create_app(book, auth=True)``) and ``RemoteStore``."""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from trialbook.api import Book
from trialbook.core.access import LOCAL, Principal
from trialbook.core.entities import Artifact, DatasetVersion, Decision, Evaluation, RunRecord
from trialbook.errors import Forbidden, NotFound
from trialbook.services import accounts as account_service
from trialbook.services import store_policy, store_rpc
from trialbook.services.store_policy import NEEDS, POLICIES
from trialbook.store import base, codec

VIC = Principal("vic", roles={"p": "viewer"})
EDITH = Principal("edith", roles={"p": "editor"})
ADA = Principal("ada", roles={"p": "admin"})
ROOT = Principal("root", server_admin=True)
NOBODY = Principal("nobody")
SEALED = {"metrics/mAP50-95(B)": 0.61}


def wire(value: Any) -> Any:
    """``value`` encoded and through JSON, as a client sends it."""
    return json.loads(json.dumps(codec.encode(value)))


def rpc(store: Any, as_: Principal, method: str, /, *args: Any, **kwargs: Any) -> Any:
    """``store.<method>(*args, **kwargs)`` through the endpoint's ``call``, as ``as_``."""
    payload = {"args": wire(list(args)), "kwargs": wire(kwargs)}
    answer = store_rpc.call(store, method, json.loads(json.dumps(payload)), as_)
    return codec.decode(json.loads(json.dumps(answer))["result"])


def one(method: str, /, *args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"method": method, "args": wire(list(args)), "kwargs": wire(kwargs)}


def batch(store: Any, as_: Principal, calls: list[dict[str, Any]], *, commit: bool = True) -> Any:
    answer = store_rpc.batch(store, {"calls": calls, "commit": commit}, as_)
    return codec.decode(json.loads(json.dumps(answer))["result"])


def run_record(run_id: str, project: str, name: str, parent: str | None = None) -> RunRecord:
    return RunRecord(
        id=run_id, project=project, name=name, status="running", created_at=time.time(), parent_id=parent
    )


def decision(project: str, candidate: str, baseline: str, *, who: str = "mallory") -> Decision:
    return Decision(
        id=f"d-{candidate}-{time.monotonic_ns()}",
        project=project,
        candidate_id=candidate,
        baseline_id=baseline,
        verdict="WIN",
        gates=[],
        protocol={},
        test_split_digest=None,
        revealed=False,
        who=who,
        at=time.time(),
    )


@pytest.fixture
def filled(tmp_path: Path) -> Iterator[Book]:
    """Projects p (runs p1, p2 with points, notes, a val and a sealed test evaluation, a
    decision) and q (run q1, a child of p1, with the same), made locally; the users of
    the principals above in the book's accounts."""
    store_policy.clear_cache()
    book = Book.open(str(tmp_path / "b"), create=True)
    store = book.store
    for project in ("p", "q"):
        store.ensure_project(project)
    store.create_run(run_record("p1", "p", "v1_a"))
    store.create_run(run_record("p2", "p", "v2_b"))
    store.create_run(run_record("q1", "q", "v1_a", parent="p1"))
    for run_id in ("p1", "p2", "q1"):
        store.log_batch(run_id, [("metrics/mAP50-95(B)", 0, 0.5), ("metrics/mAP50-95(B)", 1, 0.6)])
        store.set_note(run_id, {"hypothesis": f"pallets of {run_id}"}, who="tester")
        for split in ("val", "test"):
            store.add_evaluation(
                Evaluation(
                    id=f"{run_id}-{split}",
                    run_id=run_id,
                    split=split,
                    sealed=split == "test",
                    created_at=time.time(),
                    metrics=dict(SEALED),
                )
            )
    store.add_decision(decision("p", "p2", "p1"))
    store.add_decision(decision("q", "q1", "q1"))
    accounts = getattr(store, "accounts", None)
    if accounts is not None:
        for who in (VIC, EDITH, ADA, ROOT, NOBODY):
            accounts.add_user(who.name, admin=who.server_admin, who="tester")
            for project, role in who.roles.items():
                accounts.grant(who.name, project, role, who="tester")
    yield book
    book.close()


def sealed_one(evaluations: list[Evaluation]) -> Evaluation:
    """The one test (sealed) evaluation of ``evaluations``."""
    (found,) = [e for e in evaluations if e.split == "test"]
    return found


def accounts_of(book: Book) -> Any:
    if getattr(book.store, "accounts", None) is None:
        pytest.fail("the SQL store keeps no accounts yet (SqlStore.accounts)")
    return account_service.accounts_of(book.store)


def refused(store: Any, as_: Principal, method: str, /, *args: Any, **kwargs: Any) -> str:
    """The message of the ``Forbidden`` that the call raises."""
    with pytest.raises(Forbidden) as err:
        rpc(store, as_, method, *args, **kwargs)
    return str(err.value)


def who_of_note(book: Book, run_id: str) -> str:
    with book.store.db.read() as conn:  # type: ignore[attr-defined]
        found = conn.execute(
            sa.text("SELECT who FROM notes WHERE run_id = :r ORDER BY version DESC"), {"r": run_id}
        ).first()
    return str(found[0])


# the table ---------------------------------------------------------------------------------


def test_every_method_of_the_wire_has_a_policy() -> None:
    assert set(POLICIES) == set(codec.METHODS)
    for method, policy in POLICIES.items():
        params = set(inspect.signature(getattr(base.Store, method)).parameters)
        assert policy.params() <= params, method
        assert policy.need in NEEDS, method
        assert policy.action, method
    # every write but those of datasets and projects needs a role, and says what it is
    for method in codec.WRITES:
        action = POLICIES[method].action
        assert not action.startswith(("reading", "listing")), method
        assert POLICIES[method].need != "viewer", method


def test_a_method_without_a_policy_is_refused(filled: Book, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(POLICIES, "get_project")
    assert "no access policy" in refused(filled.store, ROOT, "get_project", "p")
    assert rpc(filled.store, LOCAL, "get_project", "p").name == "p"


# reads -------------------------------------------------------------------------------------


def test_a_viewer_reads_their_project_and_no_other(filled: Book) -> None:
    store = filled.store
    assert rpc(store, VIC, "get_project", "p").name == "p"
    assert rpc(store, VIC, "get_run_by_id", "p1").name == "v1_a"
    assert rpc(store, VIC, "runs_page", "p", "metrics/mAP50-95(B)", "max").total == 2
    assert set(rpc(store, VIC, "get_summaries", ["p1", "p2"])) == {"p1", "p2"}
    assert rpc(store, VIC, "get_notes", ["p1"])["p1"].hypothesis == "pallets of p1"
    assert sealed_one(rpc(store, VIC, "list_evaluations", ["p1"])).metrics == {}  # sealed stays sealed
    message = refused(store, VIC, "get_project", "q")
    assert message.startswith("vic is not a member of project 'q'; reading the project needs viewer")
    assert "trialbook admin grant vic q viewer" in message
    assert "project 'q'" in refused(store, VIC, "get_all_history", "q1")
    # a list of run ids needs each run's project
    assert "project 'q'" in refused(store, VIC, "get_summaries", ["p1", "q1"])
    assert "project 'q'" in refused(store, VIC, "sparklines", ["q1"], "metrics/mAP50-95(B)")
    assert "project 'q'" in refused(store, VIC, "list_decisions", "q")


def test_what_does_not_exist_is_let_through(filled: Book) -> None:
    store = filled.store
    with pytest.raises(NotFound):
        rpc(store, NOBODY, "get_project", "new")  # as a client asks before it creates
    with pytest.raises(NotFound):
        rpc(store, VIC, "get_run_by_id", "nope")
    assert rpc(store, VIC, "get_all_history", "nope") == {}
    assert rpc(store, VIC, "get_summaries", ["p1", "nope"])["nope"] == {}


def test_reads_of_everything_are_filtered(filled: Book) -> None:
    store = filled.store
    assert [p.name for p in rpc(store, VIC, "list_projects")] == ["p"]
    assert [r.project for r in rpc(store, VIC, "find_runs", "v1_a")] == ["p"]
    assert set(rpc(store, VIC, "project_counts")) == {"p"}
    assert {r.project for r in rpc(store, VIC, "list_runs")} == {"p"}
    assert rpc(store, VIC, "run_names", ["p1", "q1", "nope"]) == {"p1": "v1_a"}
    assert {d.project for d in rpc(store, VIC, "list_decisions")} == {"p"}
    assert rpc(store, VIC, "child_runs", "p1") == []
    assert [n.run_id for n in rpc(store, VIC, "search_notes", "pallets", limit=5)] != []
    assert {n.run_id for n in rpc(store, VIC, "search_notes", "pallets")} == {"p1", "p2"}
    assert rpc(store, NOBODY, "list_projects") == []
    assert rpc(store, NOBODY, "search_notes", "pallets") == []
    # a server admin and LOCAL see everything
    for who in (ROOT, LOCAL):
        assert [p.name for p in rpc(store, who, "list_projects")] == ["p", "q"]
        assert set(rpc(store, who, "project_counts")) == {"p", "q"}
        assert [r.id for r in rpc(store, who, "child_runs", "p1")] == ["q1"]
        assert {n.run_id for n in rpc(store, who, "search_notes", "pallets")} == {"p1", "p2", "q1"}


def test_sealed_numbers_need_editor(filled: Book) -> None:
    store = filled.store
    message = refused(store, VIC, "list_evaluations", ["p1"], reveal=True)
    assert "vic is viewer of project 'p'; reading sealed test numbers needs editor" in message
    assert sealed_one(rpc(store, EDITH, "list_evaluations", ["p1"], reveal=True)).metrics == SEALED
    assert "project 'q'" in refused(store, EDITH, "list_evaluations", ["q1"], reveal=True)


# writes ------------------------------------------------------------------------------------


def test_a_viewer_cannot_write(filled: Book) -> None:
    store = filled.store
    message = refused(store, VIC, "log_batch", "p1", codec.Points([("loss", 0, 1.0)]))
    assert message.startswith("vic is viewer of project 'p'; logging points needs editor")
    assert "writing a note needs editor" in refused(store, VIC, "set_note", "p1", {"text": "x"}, who="vic")
    assert "starting a run needs editor" in refused(store, VIC, "create_run", run_record("v", "p", "v3_c"))
    made = decision("p", "p2", "p1")
    assert "recording a decision needs editor" in refused(store, VIC, "add_decision", made)
    assert "changing the protocol needs admin" in refused(
        store, VIC, "update_protocol", "p", {"noise": 0.01}, reason=None, who="vic"
    )
    assert rpc(store, LOCAL, "get_all_history", "p1")["metrics/mAP50-95(B)"] == [(0, 0.5), (1, 0.6)]


def test_an_editor_logs_writes_notes_and_decides(filled: Book) -> None:
    store = filled.store
    rpc(store, EDITH, "create_run", run_record("p3", "p", "v3_c"))
    rpc(store, EDITH, "log_batch", "p3", codec.Points([("loss", 0, 1.0)]), heartbeat_at=time.time())
    rpc(store, EDITH, "set_run_status", "p3", "finished", ended_at=time.time())
    assert rpc(store, EDITH, "count_unwritten", "p3", 2) == 2
    ev = Evaluation(id="p3-val", run_id="p3", split="val", sealed=False, created_at=time.time())
    rpc(store, EDITH, "add_evaluation", ev)
    art = Artifact(id="a1", run_id="p3", name="best.pt", digest="0" * 64, size=1, created_at=time.time())
    rpc(store, EDITH, "add_artifact", art)
    assert rpc(store, EDITH, "set_note", "p3", {"text": "works"}, who="edith").version == 1
    rpc(store, EDITH, "add_decision", decision("p", "p3", "p1"))
    rpc(store, EDITH, "record_comparison", "p", ["p3", "p1"], "loss", exploratory=True, who="edith")
    assert rpc(store, LOCAL, "get_all_history", "p3") == {"loss": [(0, 1.0)]}
    assert rpc(store, LOCAL, "get_run_by_id", "p3").status == "finished"
    # nothing on q
    assert "project 'q'" in refused(store, EDITH, "log_batch", "q1", codec.Points([("loss", 0, 1.0)]))
    assert "project 'q'" in refused(store, EDITH, "create_run", run_record("q9", "q", "v9_x"))


def test_the_protocol_and_ships_need_admin(filled: Book) -> None:
    store = filled.store
    message = refused(store, EDITH, "update_protocol", "p", {"noise": 0.01}, reason=None, who="edith")
    assert message.startswith("edith is editor of project 'p'; changing the protocol needs admin")
    ship = {"decision_id": None, "forced": True, "reason": "demo", "who": "edith"}
    assert "shipping a run needs admin" in refused(store, EDITH, "ship_run", "p", "p2", **ship)
    changed = rpc(store, ADA, "update_protocol", "p", {"noise": 0.01}, reason="r", who="ada")
    assert changed.protocol.noise == 0.01
    assert rpc(store, ADA, "ship_run", "p", "p2", **ship).run_id == "p2"
    assert "project 'q'" in refused(store, ADA, "ship_run", "q", "q1", **ship)


def test_a_server_admin_does_everything(filled: Book) -> None:
    store = filled.store
    assert rpc(store, ROOT, "get_project", "q").name == "q"
    rpc(store, ROOT, "log_batch", "q1", codec.Points([("loss", 0, 1.0)]))
    rpc(store, ROOT, "update_protocol", "q", {"noise": 0.02}, reason="r", who="root")
    ship = {"decision_id": None, "forced": True, "reason": "demo", "who": "root"}
    assert rpc(store, ROOT, "ship_run", "q", "q1", **ship).who == "root"
    assert sealed_one(rpc(store, ROOT, "list_evaluations", ["q1"], reveal=True)).metrics == SEALED
    version = DatasetVersion(digest="d" * 64, name="pallets", created_at=time.time())
    assert rpc(store, ROOT, "add_tagged_version", version, "v1").digest == "d" * 64


def test_who_is_the_principal(filled: Book) -> None:
    store = filled.store
    rpc(store, EDITH, "set_note", "p1", {"text": "x"}, who="mallory")
    assert who_of_note(filled, "p1") == "edith"
    rpc(store, EDITH, "add_decision", decision("p", "p2", "p1", who="mallory"))
    assert {d.who for d in store.list_decisions("p")} == {"mallory", "edith"}  # the first made locally
    rpc(store, ADA, "update_protocol", "p", {"noise": 0.03}, reason="r", who="mallory")
    assert [c.who for c in store.protocol_history("p")] == ["ada"]
    ship = {"decision_id": None, "forced": True, "reason": "demo", "who": "mallory"}
    assert rpc(store, ADA, "ship_run", "p", "p2", **ship).who == "ada"
    assert [s.who for s in store.list_ships("p")] == ["ada"]
    # LOCAL: as given
    rpc(store, LOCAL, "set_note", "p2", {"text": "y"}, who="mallory")
    assert who_of_note(filled, "p2") == "mallory"


def test_datasets(filled: Book) -> None:
    store = filled.store
    version = DatasetVersion(digest="e" * 64, name="pallets", created_at=time.time())
    message = refused(store, VIC, "add_tagged_version", version, "v1")
    assert "vic is editor of no project; tagging a dataset needs editor of some project" in message
    assert "recording a dataset version" in refused(store, VIC, "add_dataset_version", version)
    tag, made = rpc(store, EDITH, "tag_version", version, "v1")
    assert made and tag.digest == "e" * 64
    assert rpc(store, VIC, "get_tag", "pallets", "v1").digest == "e" * 64
    assert [v.name for v in rpc(store, NOBODY, "list_dataset_versions")] == ["pallets"]


# batches -----------------------------------------------------------------------------------


def test_an_editor_creates_and_logs_a_run_in_one_batch(filled: Book) -> None:
    store = filled.store
    calls = [
        one("create_run", run_record("p4", "p", "v4_d")),
        one("log_batch", "p4", codec.Points([("loss", 0, 1.0), ("loss", 1, 0.5)])),
        one("set_note", "p4", {"text": "in one go"}, who="mallory"),
        one("get_all_history", "p4"),
    ]
    assert batch(store, EDITH, calls, commit=False) == {"loss": [(0, 1.0), (1, 0.5)]}
    with pytest.raises(NotFound):
        store.get_run_by_id("p4")  # a look only
    # a run the look created is not remembered as p's: the same id, made in q, is q's
    store.create_run(run_record("p4", "q", "v4_d"))
    assert "project 'q'" in refused(store, EDITH, "log_batch", "p4", codec.Points([("loss", 0, 1.0)]))
    calls = [
        one("create_run", run_record("p5", "p", "v5_e")),
        one("log_batch", "p5", codec.Points([("loss", 0, 1.0)])),
        one("set_note", "p5", {"text": "kept"}, who="mallory"),
    ]
    batch(store, EDITH, calls, commit=True)
    assert store.get_all_history("p5") == {"loss": [(0, 1.0)]}
    assert who_of_note(filled, "p5") == "edith"


def test_a_refused_call_keeps_nothing_of_its_batch(filled: Book) -> None:
    store = filled.store
    calls = [
        one("create_run", run_record("p6", "p", "v6_f")),
        one("log_batch", "q1", codec.Points([("loss", 0, 1.0)])),
    ]
    with pytest.raises(Forbidden):
        batch(store, EDITH, calls)
    with pytest.raises(NotFound):
        store.get_run_by_id("p6")


# projects ----------------------------------------------------------------------------------


def test_creating_a_project_makes_its_creator_admin(filled: Book) -> None:
    store, accounts = filled.store, accounts_of(filled)
    assert rpc(store, VIC, "create_project", "mine").name == "mine"
    assert accounts.roles("vic") == {"p": "viewer", "mine": "admin"}
    # ensure_project of a new one too, and the batch that made it may set its protocol
    calls = [
        one("ensure_project", "ours"),
        one("update_protocol", "ours", {"noise": 0.02}, reason="first", who="mallory"),
        one("create_run", run_record("o1", "ours", "v1_a")),
    ]
    batch(store, NOBODY, calls)
    assert store.get_project("ours").protocol.noise == 0.02
    assert [c.who for c in store.protocol_history("ours")] == ["nobody"]
    assert accounts.roles("nobody") == {"ours": "admin"}
    # ensure_project of an existing project: viewer
    assert rpc(store, VIC, "ensure_project", "p").name == "p"
    assert "opening the project needs viewer" in refused(store, VIC, "ensure_project", "q")
    assert "project 'ours'" in refused(store, VIC, "ensure_project", "ours")
    assert accounts.roles("vic") == {"p": "viewer", "mine": "admin"}


def test_a_project_and_its_grant_are_rolled_back_with_their_batch(filled: Book) -> None:
    store, accounts = filled.store, accounts_of(filled)
    calls = [one("create_project", "gone"), one("log_batch", "q1", codec.Points([("loss", 0, 1.0)]))]
    with pytest.raises(Forbidden):
        batch(store, VIC, calls)
    with pytest.raises(NotFound):
        store.get_project("gone")
    assert batch(store, VIC, [one("ensure_project", "look"), one("list_projects")], commit=False)
    with pytest.raises(NotFound):
        store.get_project("look")
    assert accounts.roles("vic") == {"p": "viewer"}


# LOCAL -------------------------------------------------------------------------------------


def test_local_is_unchanged(filled: Book) -> None:
    store = filled.store
    assert [p.name for p in rpc(store, LOCAL, "list_projects")] == ["p", "q"]
    assert sealed_one(rpc(store, LOCAL, "list_evaluations", ["q1"], reveal=True)).metrics == SEALED
    rpc(store, LOCAL, "update_protocol", "q", {"noise": 0.04}, reason="r", who="someone")
    assert [c.who for c in store.protocol_history("q")] == ["someone"]
    assert rpc(store, LOCAL, "create_project", "free").name == "free"
    assert batch(store, LOCAL, [one("ensure_project", "free2"), one("list_projects")])[-1].name == "q"
    # the default of call and batch
    payload = {"args": wire(["q"])}
    assert codec.decode(store_rpc.call(store, "get_project", payload)["result"]).name == "q"


# over HTTP ---------------------------------------------------------------------------------


def test_the_team_server_applies_the_policy(filled: Book) -> None:
    from support.server import InProcess
    from trialbook.server.app import create_app
    from trialbook.store.remote import RemoteStore

    accounts = accounts_of(filled)
    _, vic_token = account_service.create_token(accounts, "vic", who="tester")
    _, edith_token = account_service.create_token(accounts, "edith", who="tester")
    transport = InProcess(create_app(filled, auth=True))
    stores = {
        name: RemoteStore("http://127.0.0.1", client=httpx.Client(transport=transport), token=token)
        for name, token in (("vic", vic_token), ("edith", edith_token))
    }
    try:
        vic, edith = stores["vic"], stores["edith"]
        assert [p.name for p in vic.list_projects()] == ["p"]
        with pytest.raises(Forbidden, match="vic is not a member of project 'q'; reading the project"):
            vic.get_project("q")
        with pytest.raises(Forbidden, match="logging points needs editor"):
            vic.log_batch("p1", [("loss", 0, 1.0)])
        with edith.transaction():
            edith.create_run(run_record("h1", "p", "v7_h"))
            edith.log_batch("h1", [("loss", 0, 1.0)])
            edith.set_note("h1", {"text": "over http"}, who="mallory")
        assert filled.store.get_all_history("h1") == {"loss": [(0, 1.0)]}
        assert who_of_note(filled, "h1") == "edith"
    finally:
        for store in stores.values():
            store.close()
        transport.close()


def test_the_run_cache_is_bounded_and_kept_per_store(filled: Book) -> None:
    cache = store_policy._RunProjects(3)
    cache.update({"a": "p", "b": "p", "c": "q"})
    assert cache.get("a") == "p"  # now the most recent
    cache.update({"d": "q"})
    assert (len(cache), cache.get("b"), cache.get("a")) == (3, None, "p")
    # what a request resolved is remembered once it is kept
    rpc(filled.store, VIC, "get_all_history", "p1")
    remembered = store_policy._cache_of(filled.store)
    assert remembered is not None and remembered.get("p1") == "p"
    assert store_policy.RUN_CACHE_SIZE == 10_000
