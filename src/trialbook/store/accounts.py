"""``AccountStore``: users, tokens, roles, UI sessions, failed sign-ins and the audit events
of accounts, in a team server's database (``SqlStore.accounts``).

Not part of ``Store``: nothing here is ever called through the remote store's endpoint
(``codec.METHODS``). Tokens and session ids are stored as hashes only (the caller hashes:
``services.accounts``); passwords as the caller's memory-hard hash. Times are Unix seconds.
Every method is one transaction.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from trialbook.core.entities import ApiToken, AuditEvent, Grant, User

__all__ = ["AccountStore", "SessionRow"]


class SessionRow(Protocol):
    """A live UI session: its user and the CSRF token of its forms."""

    user: User
    csrf: str
    expires_at: float


@runtime_checkable
class AccountStore(Protocol):
    def add_user(self, name: str, *, admin: bool, who: str) -> User:
        """A new user. Raises ``Conflict`` when the name is taken, ``InvalidInput`` for a
        name that is not 1-64 characters of letters, digits, ``._-@``. Records an
        ``AuditEvent`` ("user add")."""
        ...

    def get_user(self, name: str) -> User:
        """The user ``name``. Raises ``NotFound``."""
        ...

    def list_users(self) -> list[User]:
        """Every user, by name."""
        ...

    def user_count(self) -> int:
        """How many users there are (0: the server has no account yet)."""
        ...

    def set_password_hash(self, name: str, password_hash: str, *, who: str) -> None:
        """Set the user's UI password hash (an argon2 string). Raises ``NotFound``.
        Records an ``AuditEvent`` ("password set")."""
        ...

    def password_hash(self, name: str) -> str | None:
        """The user's password hash; None when unset or the user does not exist."""
        ...

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
        """Store a token of user ``name`` by its hash. Raises ``NotFound`` for an unknown
        user. Records an ``AuditEvent`` ("token create", subject the token id)."""
        ...

    def list_tokens(self, name: str) -> list[ApiToken]:
        """The tokens of user ``name``, oldest first (revoked ones too). Raises ``NotFound``."""
        ...

    def revoke_token(self, token_id: str, *, who: str) -> ApiToken:
        """Revoke a token (idempotent: revoking again keeps the first time). Raises
        ``NotFound``. Records an ``AuditEvent`` ("token revoke") the first time."""
        ...

    def user_for_token(self, token_hash: str, now: float) -> User | None:
        """The user of the live token with this hash (not revoked, not expired at
        ``now``); None otherwise. Sets the token's ``last_used_at`` to ``now`` when it is
        more than 60 s older (so a busy client does not write on every call)."""
        ...

    def token_expiry(self, token_hash: str) -> float | None:
        """When the token with this hash expires (``None``: never, or no such token)."""
        ...

    def grant(self, name: str, project: str, role: str, *, who: str) -> Grant:
        """Give user ``name`` ``role`` on ``project`` (replacing the role held). Raises
        ``NotFound`` for an unknown user or project, ``InvalidInput`` for an unknown role.
        Records an ``AuditEvent`` ("grant", detail the role)."""
        ...

    def revoke_grant(self, name: str, project: str, *, who: str) -> bool:
        """Take away the user's role on ``project``; whether one was held. Raises
        ``NotFound`` for an unknown user. Records an ``AuditEvent`` ("revoke") when one was."""
        ...

    def roles(self, name: str) -> dict[str, str]:
        """``{project name: role}`` of user ``name`` (``{}`` for none or an unknown user)."""
        ...

    def grants(self, project: str | None = None) -> list[Grant]:
        """Every grant (of ``project``), by project then user."""
        ...

    def add_session(self, session_hash: str, name: str, *, csrf: str, expires_at: float) -> None:
        """Store a UI session of user ``name`` by the hash of its cookie value."""
        ...

    def session(self, session_hash: str, now: float) -> SessionRow | None:
        """The live session with this hash (not expired at ``now``); None otherwise."""
        ...

    def delete_session(self, session_hash: str) -> None:
        """Forget a session (sign-out); nothing when there is none."""
        ...

    def add_failure(self, subject: str, at: float) -> None:
        """Remember one failed sign-in for ``subject`` (``"name:alice"``, ``"ip:1.2.3.4"``)."""
        ...

    def failures_since(self, subject: str, since: float) -> int:
        """How many failed sign-ins of ``subject`` happened at ``since`` or later."""
        ...

    def clear_failures(self, subject: str) -> None:
        """Forget the failed sign-ins of ``subject`` (after a successful one)."""
        ...

    def add_event(self, event: AuditEvent) -> None:
        """Record an audit event made elsewhere (none of the methods above)."""
        ...

    def events(self, project: str | None = None) -> list[AuditEvent]:
        """The account events (of ``project``; with ``None`` every one), oldest first."""
        ...
