"""Errors raised by trialbook. Every message names what was wrong and where."""

from __future__ import annotations


class TrialbookError(Exception):
    """Base class of every error trialbook raises on purpose."""


class InvalidInput(TrialbookError, ValueError):
    """A value given to trialbook is not acceptable (a metric, a name, a split...)."""


class NotFound(TrialbookError, LookupError):
    """A project, run, dataset version or artifact does not exist."""


class Conflict(TrialbookError):
    """The request contradicts what is stored (a name taken, a tag bound to other content)."""


class BookNotFound(TrialbookError):
    """No book could be located from the current directory or the environment."""


class SchemaOutOfDate(TrialbookError):
    """The database schema is older than this version of trialbook expects."""


class IntegrityError(TrialbookError):
    """Stored content does not match its recorded hash."""


class StorageError(TrialbookError, OSError):
    """The book's storage refused a write or a read (a full disk, permissions, a read-only
    folder). The message names the file and the reason."""


class Unauthorized(TrialbookError):
    """A team server was called without a valid token or session (HTTP 401): none was
    given, or it is unknown, expired or revoked. Never carries the token itself."""


class Forbidden(TrialbookError, PermissionError):
    """The authenticated user's role does not allow this (HTTP 403). The message names the
    user, the project, the role held and the role needed."""


class TooManyAttempts(TrialbookError):
    """Too many failed sign-ins for one name or one client in a short time (HTTP 429)."""
