"""``store.sql.accounts.SqlAccounts`` (``SqlStore.accounts``), on SQLite and PostgreSQL:
users, tokens, roles, UI sessions, failed sign-ins and account events, with the refusals
the ``store.accounts.AccountStore`` protocol names; the raw token never stored; the
audit written with each change; and every method joining an open ``store.transaction()``
(committed or rolled back with it)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import sqlalchemy as sa

from trialbook.core.entities import AuditEvent, Grant, User
from trialbook.errors import Conflict, InvalidInput, NotFound
from trialbook.services import accounts as account_service
from trialbook.store import Store
from trialbook.store.accounts import AccountStore
from trialbook.store.sql.accounts import STALE_S, SqlAccounts
from trialbook.store.sql.schema import metadata
from trialbook.store.sql.store import SqlStore

HASH_A = "a" * 64
HASH_B = "b" * 64


def sql(store: Store) -> SqlStore:
    assert isinstance(store, SqlStore)
    return store


@pytest.fixture
def accounts(store: Store) -> SqlAccounts:
    return sql(store).accounts


def actions(accounts: SqlAccounts, project: str | None = None) -> list[tuple[str, str | None, str, str]]:
    return [(e.action, e.project, e.subject, e.detail) for e in accounts.events(project)]


def rows(store: Store, query: str) -> list[tuple[Any, ...]]:
    with sql(store).db.read() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(query).all()]


def test_the_accounts_are_one_account_store_per_sql_store(store: Store) -> None:
    accounts = sql(store).accounts
    assert isinstance(accounts, AccountStore)
    assert sql(store).accounts is accounts
    assert accounts.db is sql(store).db


# --------------------------------------------------------------------------- users
def test_users_are_added_listed_and_counted(accounts: SqlAccounts) -> None:
    assert accounts.user_count() == 0 and accounts.list_users() == []
    before = time.time()
    root = accounts.add_user("root", admin=True, who="ops")
    alice = accounts.add_user("alice.b-c_d@corp", admin=False, who="root")
    assert root == User("root", True, root.created_at, False) and root.created_at >= before
    assert accounts.get_user("root") == root
    assert accounts.get_user("alice.b-c_d@corp") == alice and not alice.admin
    assert [u.name for u in accounts.list_users()] == ["alice.b-c_d@corp", "root"]
    assert accounts.user_count() == 2
    assert actions(accounts) == [("user add", None, "root", "admin"), ("user add", None, alice.name, "user")]
    assert [e.who for e in accounts.events()] == ["ops", "root"]


def test_a_taken_name_is_a_conflict_and_records_nothing(accounts: SqlAccounts) -> None:
    accounts.add_user("alice", admin=False, who="ops")
    with pytest.raises(Conflict, match="'alice' already exists"):
        accounts.add_user("alice", admin=True, who="ops")
    assert accounts.get_user("alice").admin is False
    assert len(accounts.events()) == 1


@pytest.mark.parametrize("name", ["", "a" * 65, "a b", "a/b", "bob:x", "x\x00y", "tab\t", "é/"])
def test_a_bad_user_name_is_refused_naming_it(accounts: SqlAccounts, name: str) -> None:
    with pytest.raises(InvalidInput, match=r"user name .* must be 1 to 64 characters") as info:
        accounts.add_user(name, admin=False, who="ops")
    assert repr(name) in str(info.value)
    assert accounts.user_count() == 0 and accounts.events() == []


def test_names_of_64_characters_and_of_letters_are_taken(accounts: SqlAccounts) -> None:
    for name in ("a" * 64, "José", "x", "1.2-3_4@5"):
        assert accounts.add_user(name, admin=False, who="ops").name == name
    assert accounts.user_count() == 4


def test_an_unknown_user_is_not_found_with_the_command_that_adds_one(accounts: SqlAccounts) -> None:
    message = r"no user 'bob' on this server: trialbook admin user add bob --db URI"
    with pytest.raises(NotFound, match=message):
        accounts.get_user("bob")
    with pytest.raises(NotFound, match=message):
        accounts.set_password_hash("bob", "$argon2id$x", who="ops")
    with pytest.raises(NotFound, match=message):
        accounts.add_token("bob", token_id="t1", token_hash=HASH_A, label=None, expires_at=None, who="ops")
    with pytest.raises(NotFound, match=message):
        accounts.list_tokens("bob")
    with pytest.raises(NotFound, match=message):
        accounts.revoke_grant("bob", "p", who="ops")
    with pytest.raises(NotFound, match=message):
        accounts.add_session(HASH_A, "bob", csrf="c", expires_at=time.time() + 60)
    with pytest.raises(NotFound, match=r"no user 'b\\x00b' on this server$"):
        accounts.get_user("b\x00b")  # no query with a NUL byte (PostgreSQL refuses one)
    assert accounts.events() == []


def test_a_password_hash_is_set_and_read(accounts: SqlAccounts) -> None:
    accounts.add_user("alice", admin=False, who="ops")
    assert accounts.password_hash("alice") is None and not accounts.get_user("alice").has_password
    accounts.set_password_hash("alice", "$argon2id$v=19$first", who="ops")
    accounts.set_password_hash("alice", "$argon2id$v=19$second", who="alice")
    assert accounts.password_hash("alice") == "$argon2id$v=19$second"
    assert accounts.get_user("alice").has_password and accounts.list_users()[0].has_password
    assert accounts.password_hash("nobody") is None and accounts.password_hash("x" * 500) is None
    assert accounts.password_hash("n\x00ul") is None
    assert actions(accounts)[1:] == [("password set", None, "alice", ""), ("password set", None, "alice", "")]
    assert [e.who for e in accounts.events()][1:] == ["ops", "alice"]


# --------------------------------------------------------------------------- tokens
def test_tokens_are_added_listed_and_revoked_once(accounts: SqlAccounts) -> None:
    accounts.add_user("alice", admin=False, who="ops")
    first = accounts.add_token(
        "alice", token_id="t1", token_hash=HASH_A, label="laptop", expires_at=None, who="ops"
    )
    second = accounts.add_token(
        "alice", token_id="t2", token_hash=HASH_B, label=None, expires_at=time.time() + 3600, who="alice"
    )
    assert (first.id, first.user, first.label, first.last_used_at, first.revoked_at) == (
        "t1",
        "alice",
        "laptop",
        None,
        None,
    )
    assert accounts.list_tokens("alice") == [first, second]
    revoked = accounts.revoke_token("t1", who="ops")
    assert revoked.revoked_at is not None and revoked.id == "t1"
    again = accounts.revoke_token("t1", who="someone else")
    assert again.revoked_at == revoked.revoked_at  # the first time is kept
    assert accounts.list_tokens("alice") == [revoked, second]
    assert actions(accounts)[1:] == [
        ("token create", None, "t1 of alice", "laptop"),
        ("token create", None, "t2 of alice", ""),
        ("token revoke", None, "t1 of alice", "laptop"),
    ]
    with pytest.raises(NotFound, match="no token 'nope' on this server"):
        accounts.revoke_token("nope", who="ops")


def test_a_token_id_or_hash_taken_is_a_conflict(accounts: SqlAccounts) -> None:
    accounts.add_user("alice", admin=False, who="ops")
    accounts.add_token("alice", token_id="t1", token_hash=HASH_A, label=None, expires_at=None, who="ops")
    with pytest.raises(Conflict, match="token id 't1' is already taken"):
        accounts.add_token("alice", token_id="t1", token_hash=HASH_B, label=None, expires_at=None, who="ops")
    with pytest.raises(Conflict):
        accounts.add_token("alice", token_id="t2", token_hash=HASH_A, label=None, expires_at=None, who="ops")
    with pytest.raises(InvalidInput, match="token label is at most 200"):
        accounts.add_token(
            "alice", token_id="t3", token_hash=HASH_B, label="x" * 201, expires_at=None, who="o"
        )
    assert [t.id for t in accounts.list_tokens("alice")] == ["t1"]
    assert len(accounts.events()) == 2


def test_only_a_live_token_finds_its_user(accounts: SqlAccounts) -> None:
    alice = accounts.add_user("alice", admin=True, who="ops")
    accounts.add_token("alice", token_id="live", token_hash=HASH_A, label=None, expires_at=None, who="ops")
    accounts.add_token("alice", token_id="exp", token_hash=HASH_B, label=None, expires_at=2000.0, who="ops")
    accounts.add_token("alice", token_id="rev", token_hash="c" * 64, label=None, expires_at=None, who="ops")
    accounts.revoke_token("rev", who="ops")
    assert accounts.user_for_token(HASH_A, 1000.0) == alice
    assert accounts.user_for_token(HASH_B, 1999.0) == alice
    assert accounts.user_for_token(HASH_B, 2000.0) is None  # expired at its expires_at
    assert accounts.user_for_token(HASH_B, 5000.0) is None
    assert accounts.user_for_token("c" * 64, 1000.0) is None  # revoked
    assert accounts.user_for_token("d" * 64, 1000.0) is None  # unknown
    assert accounts.user_for_token("", 1000.0) is None


def test_last_used_is_written_at_most_once_a_minute(store: Store, accounts: SqlAccounts) -> None:
    accounts.add_user("alice", admin=False, who="ops")
    accounts.add_token("alice", token_id="t1", token_hash=HASH_A, label=None, expires_at=None, who="ops")

    def last_used() -> float | None:
        return accounts.list_tokens("alice")[0].last_used_at

    assert accounts.user_for_token(HASH_A, 1000.0) is not None and last_used() == 1000.0
    assert accounts.user_for_token(HASH_A, 1060.0) is not None and last_used() == 1000.0
    assert accounts.user_for_token(HASH_A, 1060.5) is not None and last_used() == 1060.5
    assert accounts.user_for_token(HASH_A, 900.0) is not None and last_used() == 1060.5  # never back
    assert accounts.user_for_token(HASH_A, 1200.0) is not None and last_used() == 1200.0


def test_the_raw_token_is_stored_nowhere(store: Store, accounts: SqlAccounts) -> None:
    store.create_project("p")
    accounts.add_user("alice", admin=False, who="ops")
    accounts.grant("alice", "p", "editor", who="ops")
    _, raw = account_service.create_token(accounts, "alice", label="ci", who="ops")
    assert account_service.principal_for_token(accounts, raw).name == "alice"
    found = []
    with sql(store).db.read() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(sa.select(table)):
                found += [(table.name, v) for v in row if isinstance(v, str) and raw in v]
        hashes = conn.execute(sa.text("SELECT token_hash FROM api_tokens")).scalars().all()
    assert found == []
    assert hashes == [account_service.hash_secret(raw)]
    assert raw not in repr(accounts.list_tokens("alice")) and raw not in repr(accounts.events())


# --------------------------------------------------------------------------- roles
def test_grants_are_replaced_listed_and_revoked(store: Store, accounts: SqlAccounts) -> None:
    store.create_project("p")
    store.create_project("q")
    accounts.add_user("alice", admin=False, who="ops")
    accounts.add_user("bob", admin=False, who="ops")
    first = accounts.grant("alice", "p", "viewer", who="ops")
    assert first == Grant("alice", "p", "viewer", "ops", first.at)
    accounts.grant("bob", "p", "editor", who="ops")
    accounts.grant("alice", "q", "admin", who="ops")
    replaced = accounts.grant("alice", "p", "editor", who="root")
    assert accounts.roles("alice") == {"p": "editor", "q": "admin"}
    assert accounts.roles("nobody") == {} and accounts.roles("n\x00") == {}
    assert accounts.grants() == [replaced, accounts.grants("p")[1], accounts.grants("q")[0]]
    assert [(g.user, g.project, g.role, g.who) for g in accounts.grants()] == [
        ("alice", "p", "editor", "root"),
        ("bob", "p", "editor", "ops"),
        ("alice", "q", "admin", "ops"),
    ]
    assert [g.user for g in accounts.grants("p")] == ["alice", "bob"] and accounts.grants("none") == []
    assert accounts.revoke_grant("alice", "p", who="root") is True
    assert accounts.revoke_grant("alice", "p", who="root") is False
    assert accounts.revoke_grant("alice", "no such project", who="root") is False
    assert accounts.roles("alice") == {"q": "admin"}
    assert actions(accounts, "p") == [
        ("grant", "p", "alice", "viewer"),
        ("grant", "p", "bob", "editor"),
        ("grant", "p", "alice", "editor"),
        ("revoke", "p", "alice", "editor"),
    ]
    assert actions(accounts, "q") == [("grant", "q", "alice", "admin")]
    assert [e.action for e in accounts.events() if e.project is None] == ["user add", "user add"]


def test_a_grant_needs_a_user_a_project_and_a_role(store: Store, accounts: SqlAccounts) -> None:
    store.create_project("p")
    accounts.add_user("alice", admin=False, who="ops")
    with pytest.raises(NotFound, match="no user 'bob' on this server"):
        accounts.grant("bob", "p", "viewer", who="ops")
    with pytest.raises(NotFound, match="no project named 'nope'"):
        accounts.grant("alice", "nope", "viewer", who="ops")
    with pytest.raises(InvalidInput, match="unknown role 'owner': use one of viewer, editor, admin"):
        accounts.grant("alice", "p", "owner", who="ops")
    assert accounts.grants() == [] and len(accounts.events()) == 1


# --------------------------------------------------------------------------- sessions
def test_a_session_lives_until_it_expires_and_is_then_deleted(store: Store, accounts: SqlAccounts) -> None:
    alice = accounts.add_user("alice", admin=False, who="ops")
    accounts.add_session(HASH_A, "alice", csrf="csrf-a", expires_at=2000.0)
    accounts.add_session(HASH_B, "alice", csrf="csrf-b", expires_at=3000.0)
    live = accounts.session(HASH_A, 1999.0)
    assert live is not None and (live.user, live.csrf, live.expires_at) == (alice, "csrf-a", 2000.0)
    assert accounts.session("c" * 64, 1000.0) is None
    assert accounts.session(HASH_A, 2000.0) is None  # expired: and forgotten
    assert rows(store, "SELECT session_hash FROM ui_sessions") == [(HASH_B,)]
    assert accounts.session(HASH_A, 1000.0) is None
    accounts.delete_session(HASH_B)
    accounts.delete_session(HASH_B)  # nothing there: nothing happens
    assert accounts.session(HASH_B, 1000.0) is None and rows(store, "SELECT * FROM ui_sessions") == []


def test_a_new_session_drops_those_expired_long_before(store: Store, accounts: SqlAccounts) -> None:
    accounts.add_user("alice", admin=False, who="ops")
    accounts.add_session(HASH_A, "alice", csrf="a", expires_at=1000.0)
    accounts.add_session(HASH_B, "alice", csrf="b", expires_at=1000.0 + STALE_S)
    assert len(rows(store, "SELECT * FROM ui_sessions")) == 2
    accounts.add_session("c" * 64, "alice", csrf="c", expires_at=1000.5 + STALE_S)
    assert sorted(rows(store, "SELECT session_hash FROM ui_sessions")) == [(HASH_B,), ("c" * 64,)]


# --------------------------------------------------------------------------- failed sign-ins
def test_failures_are_counted_by_subject_and_window_and_cleared(accounts: SqlAccounts) -> None:
    for at in (100.0, 200.0, 300.0):
        accounts.add_failure("name:alice", at)
    accounts.add_failure("ip:10.0.0.1", 250.0)
    assert accounts.failures_since("name:alice", 0.0) == 3
    assert accounts.failures_since("name:alice", 200.0) == 2  # at ``since`` or later
    assert accounts.failures_since("name:alice", 300.5) == 0
    assert accounts.failures_since("ip:10.0.0.1", 0.0) == 1 and accounts.failures_since("name:bob", 0) == 0
    accounts.clear_failures("name:alice")
    accounts.clear_failures("name:nobody")
    assert accounts.failures_since("name:alice", 0.0) == 0
    assert accounts.failures_since("ip:10.0.0.1", 0.0) == 1


def test_any_subject_typed_into_a_form_is_counted(accounts: SqlAccounts) -> None:
    long, nul = "name:" + "x" * 5000, "name:a\x00b"
    for subject in (long, long, nul):
        accounts.add_failure(subject, 100.0)
    assert accounts.failures_since(long, 0.0) == 2 and accounts.failures_since(nul, 0.0) == 1
    assert accounts.failures_since("name:" + "x" * 4999, 0.0) == 0
    accounts.clear_failures(long)
    assert accounts.failures_since(long, 0.0) == 0 and accounts.failures_since(nul, 0.0) == 1


def test_old_failures_are_dropped_by_a_new_one(store: Store, accounts: SqlAccounts) -> None:
    accounts.add_failure("ip:a", 100.0)
    accounts.add_failure("ip:b", 100.0 + STALE_S)
    accounts.add_failure("ip:c", 100.5 + STALE_S)
    assert sorted(rows(store, "SELECT subject FROM signin_failures")) == [("ip:b",), ("ip:c",)]


# --------------------------------------------------------------------------- audit
def test_events_made_elsewhere_are_kept_oldest_first_by_project(accounts: SqlAccounts) -> None:
    late = AuditEvent(300.0, "ada", "ship", "p", "v2", "forced: demo")
    early = AuditEvent(100.0, "ada", "decide", "p", "v2 vs v1", "WIN")
    other = AuditEvent(200.0, "bob", "note", "q", "v1", "")
    nowhere = AuditEvent(150.0, "ops", "server start", None, "server", "x" * 5000)
    for event in (late, early, other, nowhere):
        accounts.add_event(event)
    assert accounts.events() == [early, nowhere, other, late]
    assert accounts.events("p") == [early, late] and accounts.events("zzz") == []


# --------------------------------------------------------------------------- transactions
def test_the_accounts_join_an_open_transaction(store: Store, accounts: SqlAccounts) -> None:
    accounts.add_user("alice", admin=False, who="ops")
    with sql(store).transaction():
        store.create_project("p")
        accounts.grant("alice", "p", "admin", who="x")
        accounts.add_user("bob", admin=False, who="x")
        accounts.add_token("bob", token_id="t1", token_hash=HASH_A, label=None, expires_at=None, who="x")
        assert accounts.roles("alice") == {"p": "admin"}  # seen inside
        assert accounts.user_for_token(HASH_A, 1000.0) == accounts.get_user("bob")
    assert accounts.roles("alice") == {"p": "admin"}
    assert [e.action for e in accounts.events()] == ["user add", "grant", "user add", "token create"]
    assert accounts.list_tokens("bob")[0].last_used_at == 1000.0


def test_the_accounts_are_rolled_back_with_the_transaction(store: Store, accounts: SqlAccounts) -> None:
    accounts.add_user("alice", admin=False, who="ops")
    with pytest.raises(RuntimeError, match="boom"), sql(store).transaction():
        store.create_project("p")
        accounts.grant("alice", "p", "admin", who="x")
        accounts.add_user("bob", admin=True, who="x")
        accounts.add_failure("ip:x", 1.0)
        raise RuntimeError("boom")
    assert [p.name for p in store.list_projects()] == []
    assert accounts.grants() == [] and accounts.roles("alice") == {}
    assert [u.name for u in accounts.list_users()] == ["alice"]
    assert accounts.failures_since("ip:x", 0.0) == 0
    assert [e.action for e in accounts.events()] == ["user add"]


def test_a_refused_call_inside_a_transaction_leaves_the_rest_of_it(
    store: Store, accounts: SqlAccounts
) -> None:
    accounts.add_user("alice", admin=False, who="ops")
    with sql(store).transaction():
        store.create_project("p")
        with pytest.raises(Conflict):
            accounts.add_user("alice", admin=True, who="x")
        with pytest.raises(NotFound):
            accounts.grant("alice", "nope", "viewer", who="x")
        accounts.grant("alice", "p", "viewer", who="x")
    assert accounts.roles("alice") == {"p": "viewer"} and [p.name for p in store.list_projects()] == ["p"]
    assert [e.action for e in accounts.events()] == ["user add", "grant"]
