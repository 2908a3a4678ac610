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
