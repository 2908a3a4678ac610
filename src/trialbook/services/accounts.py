"""Accounts on a team server: users, tokens, roles, UI sign-in and the audit.

The server (``trialbook server``) authenticates every request as a ``core.access.Principal``
from a bearer token (``principal_for_token``) or a UI session cookie
(``session_principal``); the admin commands (``trialbook admin ...``) call the functions
here on the server's database (``open_accounts``). Nothing here is reachable through the
remote store's endpoint.

Secrets: a token is ``tb_`` and 43 URL-safe characters (256 random bits), shown once; the
database keeps its SHA-256 only (a random 256-bit secret needs no slow hash, and the hash is
what a lookup finds). A session cookie is kept the same way. A UI password is hashed with
argon2id (``argon2-cffi``, in the ``ui`` extra). Comparisons of secrets are constant-time
(``hmac.compare_digest``), and failed sign-ins are limited per name and per client
(``MAX_FAILURES`` in ``FAILURE_WINDOW_S``).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from trialbook import settings
from trialbook.core.access import Principal, check_role
from trialbook.core.entities import ApiToken, AuditEvent, Grant, User
from trialbook.errors import InvalidInput, NotFound, TooManyAttempts, Unauthorized

__all__ = [
    "FAILURE_WINDOW_S",
    "MAX_FAILURES",
    "SESSION_TTL_S",
    "TOKEN_PREFIX",
    "SignIn",
    "accounts_of",
    "add_user",
    "admin_cli_who",
    "audit_events",
    "create_token",
    "csrf_matches",
    "grant",
    "hash_secret",
    "list_tokens",
    "new_token",
    "open_accounts",
    "principal_for_token",
    "principal_of",
    "revoke_grant",
    "revoke_token",
    "session_principal",
    "set_password",
    "sign_in",
    "sign_out",
]

TOKEN_PREFIX = "tb_"
SESSION_TTL_S = 12 * 3600.0
MAX_FAILURES = 5
FAILURE_WINDOW_S = 300.0
MIN_PASSWORD = 12


def new_token() -> str:
    """A new random token: ``tb_`` and 43 URL-safe characters."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_secret(raw: str) -> str:
    """The SHA-256 (hex) under which a token or a session id is stored."""
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def admin_cli_who() -> str:
    """The name recorded for what ``trialbook admin`` does on the database directly: the
    operator's login, marked as such (``ops (trialbook admin)``)."""
    return f"{settings.who()} (trialbook admin)"


def accounts_of(store: Any) -> Any:
    """The ``store.accounts.AccountStore`` of a SQL store; ``InvalidInput`` for a remote
    book (accounts are managed on the server's database: ``--db URI``)."""
    accounts = getattr(store, "accounts", None)
    if accounts is None:
        raise InvalidInput(
            f"{store.uri} keeps no accounts: run `trialbook admin` with --db on the team server's database"
        )
    return accounts


@contextlib.contextmanager
def open_accounts(db: str) -> Iterator[tuple[Any, Any]]:
    """``(accounts, store)`` of the team server's database ``db`` (a ``postgresql://`` URI
    or an SQLite book), refused like the server refuses it when its schema is behind."""
    from trialbook.services.team import check_schema, database_uri
    from trialbook.store.registry import open_store

    check_schema(db)
    store = open_store(database_uri(db))
    try:
        yield accounts_of(store), store
    finally:
        store.close()


def add_user(accounts: Any, name: str, *, admin: bool, who: str) -> User:
    """A new user (``Conflict`` when taken)."""
    user: User = accounts.add_user(name, admin=admin, who=who)
    return user


def _hasher() -> Any:
    try:
        from argon2 import PasswordHasher
    except ImportError:  # pragma: no cover - the ui extra is missing
        raise InvalidInput("UI passwords need argon2-cffi: pip install 'trialbook[ui]'") from None
    return PasswordHasher()


def set_password(accounts: Any, name: str, password: str, *, who: str) -> None:
    """Set the UI password of ``name`` (at least ``MIN_PASSWORD`` characters), hashed with
    argon2id. ``NotFound`` for an unknown user."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(
            f"a password has at least {MIN_PASSWORD} characters (this one has {len(password)})"
        )
    accounts.get_user(name)
    accounts.set_password_hash(name, _hasher().hash(password), who=who)


def create_token(
    accounts: Any, name: str, *, label: str | None = None, expires_days: float | None = None, who: str
) -> tuple[ApiToken, str]:
    """A new token of ``name``: what is listed, and the token itself (shown once)."""
    if expires_days is not None and not expires_days > 0:
        raise InvalidInput(f"--expires-days is a positive number of days, not {expires_days}")
    raw = new_token()
    expires_at = time.time() + expires_days * 86400.0 if expires_days is not None else None
    token: ApiToken = accounts.add_token(
        name,
        token_id=secrets.token_hex(6),
        token_hash=hash_secret(raw),
        label=label,
        expires_at=expires_at,
        who=who,
    )
    return token, raw


def list_tokens(accounts: Any, name: str) -> list[ApiToken]:
    tokens: list[ApiToken] = accounts.list_tokens(name)
    return tokens


def revoke_token(accounts: Any, token_id: str, *, who: str) -> ApiToken:
    token: ApiToken = accounts.revoke_token(token_id, who=who)
    return token


def grant(accounts: Any, store: Any, name: str, project: str, role: str, *, who: str) -> Grant:
    """Give ``name`` ``role`` on ``project`` (``NotFound`` for an unknown user or project)."""
    check_role(role)
    store.get_project(project)
    result: Grant = accounts.grant(name, project, role, who=who)
    return result


def revoke_grant(accounts: Any, name: str, project: str, *, who: str) -> bool:
    return bool(accounts.revoke_grant(name, project, who=who))


def principal_of(accounts: Any, user: User) -> Principal:
    """The principal of ``user``, with their roles as stored now."""
    return Principal(name=user.name, server_admin=user.admin, roles=accounts.roles(user.name))


def principal_for_token(accounts: Any, raw: str, *, now: float | None = None) -> Principal:
    """The principal of a live token; ``Unauthorized`` (never naming the token) for one
    that is unknown, expired or revoked."""
    user = accounts.user_for_token(hash_secret(raw), time.time() if now is None else now)
    if user is None:
        raise Unauthorized("the token is unknown, expired or revoked: ask an admin for a new one")
    return principal_of(accounts, user)


TOKEN_CACHE_S = 2.0  # how long a worker trusts a token's principal without asking the database


class TokenCache:
    """The principals of live tokens, by token hash, for ``ttl`` seconds (per server
    process): a request's token then costs no database round trip (two queries) when the
    same client called within the last ``ttl`` seconds. So a revoked token, an expired one
    or a changed role takes effect within ``ttl`` seconds, not at once. Unknown, expired
    and revoked tokens are never kept: each of their requests asks the database."""

    def __init__(self, ttl: float = TOKEN_CACHE_S, size: int = 4096) -> None:
        self.ttl, self.size = ttl, size
        self._kept: dict[str, tuple[float, Principal]] = {}

    def cached(self, raw: str) -> Principal | None:
        """The principal of ``raw`` if it was looked up less than ``ttl`` seconds ago (and
        the token has not expired since)."""
        found = self._kept.get(hash_secret(raw))
        if found is None or found[0] <= time.time():
            return None
        return found[1]

    def lookup(self, accounts: Any, raw: str) -> Principal:
        """``principal_for_token``, kept for ``ttl`` seconds or until the token expires."""
        principal = principal_for_token(accounts, raw)
        digest = hash_secret(raw)
        until = time.time() + self.ttl
        expires = accounts.token_expiry(digest)
        if len(self._kept) >= self.size:
            self._kept.clear()  # many clients at once: start again rather than grow
        self._kept[digest] = (until if expires is None else min(until, expires), principal)
        return principal


@dataclass(frozen=True)
class SignIn:
    """A new UI session: the cookie's value (shown to the browser only), its CSRF token,
    the principal and when it expires."""

    cookie: str
    csrf: str
    principal: Principal
    expires_at: float


def _check_attempts(accounts: Any, subjects: list[str], now: float) -> None:
    for subject in subjects:
        if accounts.failures_since(subject, now - FAILURE_WINDOW_S) >= MAX_FAILURES:
            raise TooManyAttempts(
                f"too many failed sign-ins ({MAX_FAILURES} in {FAILURE_WINDOW_S / 60:g} minutes): "
                "wait a few minutes and try again"
            )


def _verify_password(accounts: Any, name: str, password: str) -> User | None:
    from argon2.exceptions import InvalidHashError, VerificationError

    stored = accounts.password_hash(name)
    hasher = _hasher()
    if stored is None:
        # the same work as a real check, so that the time taken does not tell which names exist
        with contextlib.suppress(VerificationError, InvalidHashError):
            hasher.verify(_DUMMY_HASH.get(hasher), password)
        return None
    try:
        hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    user: User = accounts.get_user(name)
    return user


class _Dummy:
    """One argon2 hash made on first use, checked against when a name has no password."""

    value: str | None = None

    def get(self, hasher: Any) -> str:
        if self.value is None:
            self.value = hasher.hash(secrets.token_urlsafe(16))
        return self.value


_DUMMY_HASH = _Dummy()


def sign_in(
    accounts: Any,
    *,
    name: str | None = None,
    password: str | None = None,
    token: str | None = None,
    client: str = "unknown",
    now: float | None = None,
) -> SignIn:
    """A new UI session from a name and password, or from a token. ``Unauthorized`` for
    wrong ones (the same message whichever was wrong), ``TooManyAttempts`` once the name
    or the client has failed ``MAX_FAILURES`` times in ``FAILURE_WINDOW_S``."""
    at = time.time() if now is None else now
    subjects = [f"ip:{client}"] + ([f"name:{name}"] if name else [])
    _check_attempts(accounts, subjects, at)
    user: User | None = None
    if token:
        user = accounts.user_for_token(hash_secret(token), at)
    elif name and password:
        try:
            user = _verify_password(accounts, name, password)
        except NotFound:
            user = None
    if user is None:
        for subject in subjects:
            accounts.add_failure(subject, at)
        raise Unauthorized("wrong name, password or token")
    for subject in subjects:
        accounts.clear_failures(subject)
    cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    expires_at = at + SESSION_TTL_S
    accounts.add_session(hash_secret(cookie), user.name, csrf=csrf, expires_at=expires_at)
    return SignIn(cookie=cookie, csrf=csrf, principal=principal_of(accounts, user), expires_at=expires_at)


def session_principal(
    accounts: Any, cookie: str, *, now: float | None = None
) -> tuple[Principal, str] | None:
    """``(principal, csrf token)`` of a live session cookie; None for none."""
    row = accounts.session(hash_secret(cookie), time.time() if now is None else now)
    if row is None:
        return None
    return principal_of(accounts, row.user), row.csrf


def csrf_matches(expected: str, given: str | None) -> bool:
    """Whether the CSRF token ``given`` with a write is the session's (constant-time)."""
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


def sign_out(accounts: Any, cookie: str) -> None:
    accounts.delete_session(hash_secret(cookie))


def _project_events(store: Any, name: str) -> list[AuditEvent]:
    """The protocol changes, decisions and ships of project ``name``."""
    events = [
        AuditEvent(
            at=c.at,
            who=c.who,
            action="protocol",
            project=name,
            subject=c.field,
            detail=f"{c.old!r} -> {c.new!r}" + (f" ({c.reason})" if c.reason else ""),
        )
        for c in store.protocol_history(name)
    ]
    runs = {r.id: r.name for r in store.list_runs(name)}
    for d in store.list_decisions(name):
        subject = f"{runs.get(d.candidate_id, d.candidate_id)} vs {runs.get(d.baseline_id, d.baseline_id)}"
        detail = d.verdict + (" (test revealed)" if d.revealed else "")
        events.append(AuditEvent(d.at, d.who, "decide", name, subject, detail))
    for s in store.list_ships(name):
        detail = f"forced: {s.reason}" if s.forced else f"on decision {s.decision_id}"
        events.append(AuditEvent(s.at, s.who, "ship", name, runs.get(s.run_id, s.run_id), detail))
    return events


def audit_events(
    store: Any, accounts: Any | None, principal: Principal, project: str | None = None
) -> list[AuditEvent]:
    """What was done, oldest first: decisions, protocol changes and ships of the projects
    ``principal`` is admin of (of ``project`` only, when given), and the account events
    (grants of those projects; users and tokens for a server admin). ``Forbidden`` when
    ``project`` is given and the principal is not its admin."""
    if project is not None:
        principal.require(project, "admin", "reading the audit")
        names = [project]
    else:
        names = [p.name for p in store.list_projects() if principal.can(p.name, "admin")]
    events = [e for name in names for e in _project_events(store, name)]
    everything = principal.server_admin or principal.local
    for event in accounts.events(project) if accounts is not None else []:
        if (event.project is None and everything) or event.project in names:
            events.append(event)
    events.sort(key=lambda e: e.at)
    return events
