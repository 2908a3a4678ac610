"""``services.accounts`` on a real SQLite book (``SqlStore.accounts``): tokens made, listed
and revoked; principals from tokens (``Unauthorized`` never naming the token); UI
passwords; sign-in with a password or a token, limited per name and per client; sessions
and their CSRF token; and the audit, as each kind of principal may read it.

ada is admin of p, vic viewer of p, root a server admin; q has no decision."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from trialbook.core.access import LOCAL, Principal
from trialbook.core.entities import AuditEvent, Decision, RunRecord
from trialbook.errors import Forbidden, InvalidInput, NotFound, TooManyAttempts, Unauthorized
from trialbook.services import accounts as svc
from trialbook.store import open_store
from trialbook.store.sql.accounts import SqlAccounts
from trialbook.store.sql.store import SqlStore

PASSWORD = "correct horse battery"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    opened = open_store(str(tmp_path / "book"))
    assert isinstance(opened, SqlStore)
    yield opened
    opened.close()


@pytest.fixture
def accounts(store: SqlStore) -> SqlAccounts:
    found = svc.accounts_of(store)
    assert isinstance(found, SqlAccounts)
    store.create_project("p")
    store.create_project("q")
    svc.add_user(found, "root", admin=True, who="ops")
    svc.add_user(found, "ada", admin=False, who="root")
    svc.add_user(found, "vic", admin=False, who="root")
    svc.grant(found, store, "ada", "p", "admin", who="root")
    svc.grant(found, store, "vic", "p", "viewer", who="ada")
    return found


# --------------------------------------------------------------------------- tokens
def test_a_token_is_made_once_listed_by_id_and_revoked(accounts: SqlAccounts) -> None:
    token, raw = svc.create_token(accounts, "ada", label="laptop", expires_days=30, who="root")
    assert raw.startswith(svc.TOKEN_PREFIX) and len(raw) == len(svc.TOKEN_PREFIX) + 43
    assert token.user == "ada" and token.label == "laptop" and raw not in repr(token)
    assert token.expires_at is not None and token.expires_at == pytest.approx(time.time() + 30 * 86400, abs=5)
    other, other_raw = svc.create_token(accounts, "ada", who="ada")
    assert other_raw != raw and other.id != token.id and other.expires_at is None
    assert svc.list_tokens(accounts, "ada") == [token, other]
    revoked = svc.revoke_token(accounts, token.id, who="root")
    assert revoked.revoked_at is not None
    assert [t.revoked_at is None for t in svc.list_tokens(accounts, "ada")] == [False, True]


@pytest.mark.parametrize("days", [0, -1.5])
def test_a_token_expires_after_a_positive_number_of_days(accounts: SqlAccounts, days: float) -> None:
    with pytest.raises(InvalidInput, match="--expires-days is a positive number of days"):
        svc.create_token(accounts, "ada", expires_days=days, who="root")
    with pytest.raises(NotFound, match="no user 'bob'"):
        svc.create_token(accounts, "bob", who="root")


def test_a_live_token_is_its_users_principal(accounts: SqlAccounts) -> None:
    _, raw = svc.create_token(accounts, "ada", who="root")
    assert svc.principal_for_token(accounts, raw) == Principal(
        "ada", server_admin=False, roles={"p": "admin"}
    )
    _, root_raw = svc.create_token(accounts, "root", who="root")
    assert svc.principal_for_token(accounts, root_raw).server_admin


def test_an_unknown_expired_or_revoked_token_is_unauthorized_without_naming_it(
    accounts: SqlAccounts,
) -> None:
    _, expiring_raw = svc.create_token(accounts, "ada", expires_days=1, who="root")
    revoked, revoked_raw = svc.create_token(accounts, "ada", who="root")
    svc.revoke_token(accounts, revoked.id, who="root")
    later = time.time() + 2 * 86400
    assert svc.principal_for_token(accounts, expiring_raw).name == "ada"
    cases = [(svc.new_token(), None), (expiring_raw, later), (revoked_raw, None), ("", None)]
    for raw, at in cases:
        with pytest.raises(Unauthorized, match="unknown, expired or revoked") as info:
            svc.principal_for_token(accounts, raw, now=at)
        assert raw not in str(info.value) or raw == ""
        assert svc.hash_secret(raw) not in str(info.value)


# --------------------------------------------------------------------------- passwords and sign-in
def test_a_password_has_at_least_twelve_characters(accounts: SqlAccounts) -> None:
    with pytest.raises(InvalidInput, match="at least 12 characters \\(this one has 11\\)"):
        svc.set_password(accounts, "ada", "x" * 11, who="ada")
    with pytest.raises(NotFound, match="no user 'bob'"):
        svc.set_password(accounts, "bob", PASSWORD, who="root")
    assert not accounts.get_user("ada").has_password
    svc.set_password(accounts, "ada", "x" * 12, who="ada")
    stored = accounts.password_hash("ada")
    assert stored is not None and stored.startswith("$argon2id$") and "x" * 12 not in stored
    assert accounts.get_user("ada").has_password


def test_sign_in_with_a_password_opens_a_session(store: SqlStore, accounts: SqlAccounts) -> None:
    svc.set_password(accounts, "ada", PASSWORD, who="ada")
    signed = svc.sign_in(accounts, name="ada", password=PASSWORD, client="10.0.0.1")
    assert signed.principal == Principal("ada", roles={"p": "admin"})
    assert signed.expires_at == pytest.approx(time.time() + svc.SESSION_TTL_S, abs=5)
    assert svc.session_principal(accounts, signed.cookie) == (signed.principal, signed.csrf)
    with store.db.read() as conn:
        kept = conn.exec_driver_sql("SELECT session_hash, csrf FROM ui_sessions").one()
    assert tuple(kept) == (svc.hash_secret(signed.cookie), signed.csrf)  # the cookie by hash only
    svc.grant(accounts, store, "ada", "q", "editor", who="root")
    found = svc.session_principal(accounts, signed.cookie)
    assert found is not None and found[0].roles == {"p": "admin", "q": "editor"}  # roles as stored now


def test_sign_in_with_a_token(accounts: SqlAccounts) -> None:
    _, raw = svc.create_token(accounts, "vic", who="root")
    signed = svc.sign_in(accounts, token=raw, client="10.0.0.2")
    assert signed.principal == Principal("vic", roles={"p": "viewer"})
    assert raw not in (signed.cookie, signed.csrf)
    assert svc.session_principal(accounts, signed.cookie) == (signed.principal, signed.csrf)


def test_wrong_names_passwords_and_tokens_are_one_unauthorized(accounts: SqlAccounts) -> None:
    svc.set_password(accounts, "ada", PASSWORD, who="ada")
    attempts: list[dict[str, Any]] = [
        {"name": "ada", "password": PASSWORD + "!"},
        {"name": "nobody", "password": PASSWORD},
        {"name": "vic", "password": PASSWORD},  # vic has no password
        {"name": "ada"},
        {"token": svc.new_token()},
        {},
    ]
    for i, given in enumerate(attempts):
        with pytest.raises(Unauthorized, match=r"^wrong name, password or token$"):
            svc.sign_in(accounts, client=f"10.0.1.{i}", **given)
    assert accounts.failures_since("name:ada", 0.0) == 2
    assert accounts.failures_since("ip:10.0.1.4", 0.0) == 1


def test_too_many_failures_for_a_name_stop_its_sign_in_anywhere(accounts: SqlAccounts) -> None:
    svc.set_password(accounts, "ada", PASSWORD, who="ada")
    at = time.time()
    for i in range(svc.MAX_FAILURES):
        with pytest.raises(Unauthorized):
            svc.sign_in(accounts, name="ada", password=f"guess number {i}", client=f"10.1.0.{i}", now=at)
    with pytest.raises(TooManyAttempts, match="too many failed sign-ins \\(5 in 5 minutes\\)"):
        svc.sign_in(accounts, name="ada", password=PASSWORD, client="10.1.1.1", now=at + 1)
    later = at + svc.FAILURE_WINDOW_S + 1
    signed = svc.sign_in(accounts, name="ada", password=PASSWORD, client="10.1.1.1", now=later)
    assert signed.principal.name == "ada"
    assert accounts.failures_since("name:ada", 0.0) == 0  # cleared by the success


def test_too_many_failures_from_a_client_stop_its_sign_ins(accounts: SqlAccounts) -> None:
    svc.set_password(accounts, "ada", PASSWORD, who="ada")
    at = time.time()
    for i in range(svc.MAX_FAILURES):
        with pytest.raises(Unauthorized):
            svc.sign_in(accounts, name=f"guess{i}", password=PASSWORD, client="10.2.0.1", now=at)
    with pytest.raises(TooManyAttempts):
        svc.sign_in(accounts, name="ada", password=PASSWORD, client="10.2.0.1", now=at + 1)
    with pytest.raises(TooManyAttempts):
        svc.sign_in(accounts, token=svc.new_token(), client="10.2.0.1", now=at + 1)
    assert (
        svc.sign_in(accounts, name="ada", password=PASSWORD, client="10.2.0.2", now=at + 1).principal.name
        == "ada"
    )


def test_sign_out_and_expiry_end_a_session(accounts: SqlAccounts) -> None:
    svc.set_password(accounts, "ada", PASSWORD, who="ada")
    at = time.time()
    first = svc.sign_in(accounts, name="ada", password=PASSWORD, client="c", now=at)
    second = svc.sign_in(accounts, name="ada", password=PASSWORD, client="c", now=at)
    assert first.cookie != second.cookie and first.csrf != second.csrf
    svc.sign_out(accounts, first.cookie)
    svc.sign_out(accounts, first.cookie)  # again: nothing
    assert svc.session_principal(accounts, first.cookie) is None
    assert svc.session_principal(accounts, second.cookie, now=at + 60) is not None
    assert svc.session_principal(accounts, second.cookie, now=second.expires_at) is None
    assert svc.session_principal(accounts, second.cookie, now=at) is None  # deleted once expired
    assert svc.session_principal(accounts, "no such cookie") is None


def test_csrf_matches_only_the_sessions_token() -> None:
    assert svc.csrf_matches("abc", "abc")
    assert not svc.csrf_matches("abc", "abd")
    assert not svc.csrf_matches("abc", None)
    assert not svc.csrf_matches("abc", "")
    assert not svc.csrf_matches("abc", "abcd")


# --------------------------------------------------------------------------- audit
@pytest.fixture
def audited(store: SqlStore, accounts: SqlAccounts) -> SqlAccounts:
    """p with a protocol change and a decision; q with a protocol change only; a token of ada."""
    store.update_protocol("p", {"noise": 0.01}, reason="flaky val", who="ada")
    store.update_protocol("q", {"test_budget": 3}, reason=None, who="root")
    for run_id, name in (("r1", "v1_base"), ("r2", "v2_mosaic")):
        store.create_run(
            RunRecord(id=run_id, project="p", name=name, status="finished", created_at=time.time())
        )
    decision = Decision("d1", "p", "r2", "r1", "WIN", [], {}, None, False, "ada", time.time())
    store.add_decision(decision)
    svc.create_token(accounts, "ada", label="ci", who="root")
    svc.grant(accounts, store, "vic", "q", "editor", who="root")
    return accounts


def _seen(events: list[AuditEvent]) -> list[tuple[str, str | None, str, str]]:
    return [(e.action, e.project, e.subject, e.detail) for e in events]


def test_a_project_admin_reads_the_audit_of_their_projects_only(
    store: SqlStore, audited: SqlAccounts
) -> None:
    ada = svc.principal_of(audited, audited.get_user("ada"))
    events = svc.audit_events(store, audited, ada)
    assert _seen(events) == [
        ("grant", "p", "ada", "admin"),
        ("grant", "p", "vic", "viewer"),
        ("protocol", "p", "noise", "0.005 -> 0.01 (flaky val)"),
        ("decide", "p", "v2_mosaic vs v1_base", "WIN"),
    ]
    assert [e.at for e in events] == sorted(e.at for e in events)
    assert svc.audit_events(store, audited, ada, "p") == events
    with pytest.raises(Forbidden, match="ada is not a member of project 'q'; reading the audit needs admin"):
        svc.audit_events(store, audited, ada, "q")


def test_a_viewer_may_not_read_the_audit(store: SqlStore, audited: SqlAccounts) -> None:
    vic = svc.principal_of(audited, audited.get_user("vic"))
    with pytest.raises(Forbidden, match="vic is viewer of project 'p'; reading the audit needs admin"):
        svc.audit_events(store, audited, vic, "p")
    assert svc.audit_events(store, audited, vic) == []  # admin of nothing: nothing


def test_a_server_admin_reads_every_event(store: SqlStore, audited: SqlAccounts) -> None:
    root = svc.principal_of(audited, audited.get_user("root"))
    seen = _seen(svc.audit_events(store, audited, root))
    token = audited.list_tokens("ada")[0]
    assert [s for s in seen if s[1] is None] == [
        ("user add", None, "root", "admin"),
        ("user add", None, "ada", "user"),
        ("user add", None, "vic", "user"),
        ("token create", None, f"{token.id} of ada", "ci"),
    ]
    assert [s for s in seen if s[1] == "q"] == [
        ("protocol", "q", "test_budget", "5 -> 3"),
        ("grant", "q", "vic", "editor"),
    ]
    assert len(seen) == 4 + 2 + 4
    # a project's audit holds no user or token event, and a decision-free project has
    # its protocol changes and grants only
    assert _seen(svc.audit_events(store, audited, root, "q")) == [s for s in seen if s[1] == "q"]
    assert svc.audit_events(store, audited, LOCAL) == svc.audit_events(store, audited, root)
    assert svc.audit_events(store, None, root, "q")[0].action == "protocol"


def test_the_token_cache_keeps_a_principal_for_its_ttl_and_never_past_expiry(
    accounts: SqlAccounts, store: SqlStore
) -> None:
    svc.add_user(accounts, "cid", admin=False, who="x")
    store.ensure_project("p")
    svc.grant(accounts, store, "cid", "p", "editor", who="x")
    token, raw = svc.create_token(accounts, "cid", who="x")
    cache = svc.TokenCache(ttl=0.3)
    assert cache.cached(raw) is None  # never looked up
    assert cache.lookup(accounts, raw).role_in("p") == "editor"
    svc.revoke_grant(accounts, "cid", "p", who="x")
    svc.revoke_token(accounts, token.id, who="x")
    kept = cache.cached(raw)
    assert kept is not None and kept.role_in("p") == "editor"  # within the ttl: as it was
    time.sleep(0.35)
    assert cache.cached(raw) is None
    with pytest.raises(Unauthorized):
        cache.lookup(accounts, raw)  # asked again: revoked
    _, short = svc.create_token(accounts, "cid", expires_days=0.1 / 86400, who="x")  # 0.1 s
    assert svc.TokenCache(ttl=60).lookup(accounts, short).name == "cid"
    long_lived = svc.TokenCache(ttl=60)
    long_lived.lookup(accounts, short)
    time.sleep(0.15)
    assert long_lived.cached(short) is None  # expired: not kept past it, whatever the ttl
    with pytest.raises(Unauthorized):
        long_lived.lookup(accounts, short)
    assert long_lived.cached("tb_unknown") is None
