"""``SqlAccounts``: the ``store.accounts.AccountStore`` of a team server's database, on
the tables of migration 0007 (``users``, ``api_tokens``, ``grants``, ``ui_sessions``,
``signin_failures``, ``account_events``).

Every method is one transaction of the store's ``Database`` (``write()`` / ``read()``,
as the store's mixins use them), so that inside an open ``SqlStore.transaction()`` it
joins that transaction (a savepoint) instead of opening another connection. What a
method records in the audit (``account_events``) is written in its own transaction.

Two tables are kept small as they go: a new UI session removes those that had expired
long before it (``STALE_S``; an expired one looked up is removed then), and a new failed
sign-in removes failures older than ``STALE_S`` before it. Times are the callers' (Unix
seconds), so a test's clock works as the real one does.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from trialbook.core.access import check_role
from trialbook.core.entities import ApiToken, AuditEvent, Grant, User
from trialbook.errors import Conflict, InvalidInput, NotFound
from trialbook.store.sql.base import SqlBase, now
from trialbook.store.sql.engine import Database
from trialbook.store.sql.schema import (
    account_events,
    api_tokens,
    signin_failures,
    ui_sessions,
    users,
)
from trialbook.store.sql.schema import grants as grants_table

__all__ = ["STALE_S", "SqlAccounts", "SqlSession"]

MAX_NAME = 64
MAX_TEXT = 200  # labels, subjects of failures, CSRF tokens (String(200) columns)
MAX_TOKEN_ID = 32
LAST_USED_EVERY_S = 60.0
STALE_S = 30 * 86400.0  # sessions and failures this much older than a new one are dropped


@dataclass
class SqlSession:
    """A live UI session (``store.accounts.SessionRow``; not frozen: the protocol's
    attributes are plain ones, which a frozen dataclass does not match for mypy)."""

    user: User
    csrf: str
    expires_at: float


def _valid_name(name: str) -> bool:
    return 0 < len(name) <= MAX_NAME and all(c.isalnum() or c in "._-@" for c in name)


def _check_name(name: str) -> None:
    if not _valid_name(name):
        raise InvalidInput(
            f"user name {name!r} must be 1 to {MAX_NAME} characters of letters, digits, '.', '_', '-' or '@'"
        )


def _no_user(name: str) -> NotFound:
    hint = f": trialbook admin user add {name} --db URI" if _valid_name(name) else ""
    return NotFound(f"no user {name!r} on this server{hint}")


def _subject_key(subject: str) -> str:
    """The ``signin_failures.subject`` of ``subject``: itself, or (longer than the column,
    or holding a NUL byte: a name typed into the sign-in form) its SHA-256."""
    if len(subject) <= MAX_TEXT and "\x00" not in subject:
        return subject
    return "sha256:" + hashlib.sha256(subject.encode("utf-8", "surrogatepass")).hexdigest()


def _user(row: Any) -> User:
    return User(
        name=row.name,
        admin=bool(row.admin),
        created_at=row.created_at,
        has_password=row.password_hash is not None,
    )


def _token(row: Any) -> ApiToken:
    return ApiToken(
        id=row.id,
        user=row.user,
        label=row.label,
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def _grant(row: Any) -> Grant:
    return Grant(user=row.user, project=row.project, role=row.role, who=row.who, at=row.at)


def _event(row: Any) -> AuditEvent:
    return AuditEvent(
        at=row.at,
        who=row.who,
        action=row.action,
        project=row.project,
        subject=row.subject,
        detail=row.detail,
    )


_USER_COLUMNS = (users.c.name, users.c.admin, users.c.created_at, users.c.password_hash)


class SqlAccounts(SqlBase):
    """Users, tokens, roles, UI sessions, failed sign-ins and account events on ``db``
    (the ``Database`` of a ``SqlStore``: ``SqlStore.accounts``)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # helpers ------------------------------------------------------------------------
    def _require_user(self, conn: Connection, name: str) -> Any:
        """The row of user ``name``; ``NotFound`` if there is none."""
        if not _valid_name(name):
            raise _no_user(name)
        row = conn.execute(sa.select(*_USER_COLUMNS).where(users.c.name == name)).first()
        if row is None:
            raise _no_user(name)
        return row

    def _record(
        self,
        conn: Connection,
        *,
        who: str,
        action: str,
        subject: str,
        detail: str,
        project: str | None = None,
    ) -> None:
        conn.execute(
            account_events.insert().values(
                at=now(), who=who, action=action, project=project, subject=subject, detail=detail
            )
        )

    # users --------------------------------------------------------------------------
    def add_user(self, name: str, *, admin: bool, who: str) -> User:
        _check_name(name)
        created_at = now()
        with self.db.write() as conn:
            inserted = conn.execute(
                self._insert(users)
                .values(name=name, admin=admin, password_hash=None, created_at=created_at)
                .on_conflict_do_nothing()
                .returning(users.c.name)
            ).first()
            if inserted is None:
                raise Conflict(f"user {name!r} already exists on this server")
            self._record(conn, who=who, action="user add", subject=name, detail="admin" if admin else "user")
        return User(name=name, admin=admin, created_at=created_at, has_password=False)

    def get_user(self, name: str) -> User:
        with self.db.read() as conn:
            return _user(self._require_user(conn, name))

    def list_users(self) -> list[User]:
        with self.db.read() as conn:
            rows = conn.execute(sa.select(*_USER_COLUMNS).order_by(users.c.name)).all()
        return [_user(r) for r in rows]

    def user_count(self) -> int:
        with self.db.read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(users)).scalar_one())

    def set_password_hash(self, name: str, password_hash: str, *, who: str) -> None:
        with self.db.write() as conn:
            self._require_user(conn, name)
            conn.execute(users.update().where(users.c.name == name).values(password_hash=password_hash))
            self._record(conn, who=who, action="password set", subject=name, detail="")

    def password_hash(self, name: str) -> str | None:
        if not _valid_name(name):
            return None
        with self.db.read() as conn:
            value = conn.execute(sa.select(users.c.password_hash).where(users.c.name == name)).scalar()
        return None if value is None else str(value)

    # tokens -------------------------------------------------------------------------
    def add_token(
        self,
        name: str,
        *,
        token_id: str,
        token_hash: str,
        label: str | None,
        expires_at: float | None,
        who: str,
    ) -> ApiToken:
        if not 0 < len(token_id) <= MAX_TOKEN_ID:
            raise InvalidInput(f"a token id is 1 to {MAX_TOKEN_ID} characters, not {token_id!r}")
        if label is not None and len(label) > MAX_TEXT:
            raise InvalidInput(f"a token label is at most {MAX_TEXT} characters (this one has {len(label)})")
        token = ApiToken(
            id=token_id,
            user=name,
            label=label,
            created_at=now(),
            expires_at=expires_at,
            last_used_at=None,
            revoked_at=None,
        )
        with self.db.write() as conn:
            self._require_user(conn, name)
            self._require_new(conn, api_tokens, token_id, "token")
            conn.execute(
                api_tokens.insert().values(
                    id=token.id,
                    user=name,
                    label=label,
                    token_hash=token_hash,
                    created_at=token.created_at,
                    expires_at=expires_at,
                    last_used_at=None,
                    revoked_at=None,
                )
            )
            self._record(
                conn, who=who, action="token create", subject=f"{token_id} of {name}", detail=label or ""
            )
        return token

    def list_tokens(self, name: str) -> list[ApiToken]:
        with self.db.read() as conn:
            self._require_user(conn, name)
            rows = conn.execute(
                sa.select(api_tokens)
                .where(api_tokens.c.user == name)
                .order_by(api_tokens.c.created_at, api_tokens.c.id)
            ).all()
        return [_token(r) for r in rows]

    def revoke_token(self, token_id: str, *, who: str) -> ApiToken:
        with self.db.write() as conn:
            query = sa.select(api_tokens).where(api_tokens.c.id == token_id)
            row = conn.execute(self.db.lock_row(query)).first()
            if row is None:
                raise NotFound(
                    f"no token {token_id!r} on this server: trialbook admin token list NAME --db URI"
                )
            if row.revoked_at is None:
                conn.execute(api_tokens.update().where(api_tokens.c.id == token_id).values(revoked_at=now()))
                self._record(
                    conn,
                    who=who,
                    action="token revoke",
                    subject=f"{token_id} of {row.user}",
                    detail=row.label or "",
                )
                row = conn.execute(query).one()
        return _token(row)

    def token_expiry(self, token_hash: str) -> float | None:
        query = sa.select(api_tokens.c.expires_at).where(api_tokens.c.token_hash == token_hash)
        with self.db.read() as conn:
            found: float | None = conn.execute(query).scalar()
        return found

    def user_for_token(self, token_hash: str, now: float) -> User | None:
        query = (
            sa.select(*_USER_COLUMNS, api_tokens.c.id.label("token_id"), api_tokens.c.last_used_at)
            .select_from(api_tokens.join(users, users.c.name == api_tokens.c.user))
            .where(
                api_tokens.c.token_hash == token_hash,
                api_tokens.c.revoked_at.is_(None),
                sa.or_(api_tokens.c.expires_at.is_(None), api_tokens.c.expires_at > now),
            )
        )
        with self.db.read() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        stale = row.last_used_at is None or row.last_used_at < now - LAST_USED_EVERY_S
        if stale and not self.db.read_only:
            with self.db.write() as conn:
                # the same condition again: two requests at once write once, never back in time
                conn.execute(
                    api_tokens.update()
                    .where(
                        api_tokens.c.id == row.token_id,
                        sa.or_(
                            api_tokens.c.last_used_at.is_(None),
                            api_tokens.c.last_used_at < now - LAST_USED_EVERY_S,
                        ),
                    )
                    .values(last_used_at=now)
                )
        return _user(row)

    # roles --------------------------------------------------------------------------
    def grant(self, name: str, project: str, role: str, *, who: str) -> Grant:
        check_role(role)
        at = now()
        with self.db.write() as conn:
            self._require_user(conn, name)
            self._project_id(conn, project)
            values = {"role": role, "who": who, "at": at}
            conn.execute(
                self._insert(grants_table)
                .values(user=name, project=project, **values)
                .on_conflict_do_update(index_elements=["user", "project"], set_=values)
            )
            self._record(conn, who=who, action="grant", project=project, subject=name, detail=role)
        return Grant(user=name, project=project, role=role, who=who, at=at)

    def revoke_grant(self, name: str, project: str, *, who: str) -> bool:
        held = sa.and_(grants_table.c.user == name, grants_table.c.project == project)
        with self.db.write() as conn:
            self._require_user(conn, name)
            role = conn.execute(self.db.lock_row(sa.select(grants_table.c.role).where(held))).scalar()
            if role is None:
                return False
            conn.execute(grants_table.delete().where(held))
            self._record(conn, who=who, action="revoke", project=project, subject=name, detail=str(role))
        return True

    def roles(self, name: str) -> dict[str, str]:
        if not _valid_name(name):
            return {}
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(grants_table.c.project, grants_table.c.role).where(grants_table.c.user == name)
            ).all()
        return {r.project: r.role for r in rows}

    def grants(self, project: str | None = None) -> list[Grant]:
        query = sa.select(grants_table).order_by(grants_table.c.project, grants_table.c.user)
        if project is not None:
            query = query.where(grants_table.c.project == project)
        with self.db.read() as conn:
            return [_grant(r) for r in conn.execute(query)]

    # UI sessions --------------------------------------------------------------------
    def add_session(self, session_hash: str, name: str, *, csrf: str, expires_at: float) -> None:
        if len(csrf) > MAX_TEXT:
            raise InvalidInput(f"a CSRF token is at most {MAX_TEXT} characters")
        with self.db.write() as conn:
            self._require_user(conn, name)
            conn.execute(ui_sessions.delete().where(ui_sessions.c.expires_at < expires_at - STALE_S))
            conn.execute(
                ui_sessions.insert().values(
                    session_hash=session_hash, user=name, csrf=csrf, expires_at=expires_at, created_at=now()
                )
            )

    def session(self, session_hash: str, now: float) -> SqlSession | None:
        query = (
            sa.select(*_USER_COLUMNS, ui_sessions.c.csrf, ui_sessions.c.expires_at)
            .select_from(ui_sessions.join(users, users.c.name == ui_sessions.c.user))
            .where(ui_sessions.c.session_hash == session_hash)
        )
        with self.db.read() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        if row.expires_at <= now:
            if not self.db.read_only:
                self.delete_session(session_hash)
            return None
        return SqlSession(user=_user(row), csrf=row.csrf, expires_at=row.expires_at)

    def delete_session(self, session_hash: str) -> None:
        with self.db.write() as conn:
            conn.execute(ui_sessions.delete().where(ui_sessions.c.session_hash == session_hash))

    # failed sign-ins ----------------------------------------------------------------
    def add_failure(self, subject: str, at: float) -> None:
        with self.db.write() as conn:
            conn.execute(signin_failures.delete().where(signin_failures.c.at < at - STALE_S))
            conn.execute(signin_failures.insert().values(subject=_subject_key(subject), at=at))

    def failures_since(self, subject: str, since: float) -> int:
        query = (
            sa.select(sa.func.count())
            .select_from(signin_failures)
            .where(signin_failures.c.subject == _subject_key(subject), signin_failures.c.at >= since)
        )
        with self.db.read() as conn:
            return int(conn.execute(query).scalar_one())

    def clear_failures(self, subject: str) -> None:
        with self.db.write() as conn:
            conn.execute(signin_failures.delete().where(signin_failures.c.subject == _subject_key(subject)))

    # audit --------------------------------------------------------------------------
    def add_event(self, event: AuditEvent) -> None:
        with self.db.write() as conn:
            conn.execute(
                account_events.insert().values(
                    at=event.at,
                    who=event.who,
                    action=event.action,
                    project=event.project,
                    subject=event.subject,
                    detail=event.detail,
                )
            )

    def events(self, project: str | None = None) -> list[AuditEvent]:
        query = sa.select(account_events).order_by(account_events.c.at, account_events.c.id)
        if project is not None:
            query = query.where(account_events.c.project == project)
        with self.db.read() as conn:
            return [_event(r) for r in conn.execute(query)]
