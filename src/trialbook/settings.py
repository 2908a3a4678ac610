"""Configuration in one place: every ``TRIALBOOK_*`` variable trialbook reads, the cache
and spool folders, and who the current user is.

Nothing else in trialbook reads ``os.environ`` for its own settings; each value is read
when asked for (not at import), so a test or a script that sets a variable before calling
trialbook is obeyed. The README's "Configuration" table lists the same names.

* ``TRIALBOOK_URI``: the book (a folder, ``sqlite:///PATH``, ``postgresql://...``);
  default: the nearest ``.trialbook/`` from the current folder up;
* ``TRIALBOOK_ARTIFACTS``: where a database book keeps artifact files (a folder book
  keeps them in its ``blobs/``); default: none;
* ``TRIALBOOK_USER``: the name recorded as "who"; default the OS login name
  (``getpass.getuser()``: ``$LOGNAME``, ``$USER``, ``$LNAME``, ``$USERNAME``, then the
  password database, so a service or a container without ``$USER`` still has one), else
  ``unknown``;
* ``TRIALBOOK_SPOOL``: where points that could not be written wait; default
  ``~/.trialbook-spool``;
* ``TRIALBOOK_OUTBOX``: the SQLite file where every write of a run against a remote
  book waits until the server has it; default ``outbox.db`` in ``$TRIALBOOK_SPOOL`` when
  that is set, else in trialbook's folder of the user's cache;
* ``TRIALBOOK_OFFLINE``: ``1`` (or ``true``/``yes``) keeps writes to a remote book in
  the outbox only, never trying the network (``trialbook sync`` uploads them later);
* ``TRIALBOOK_UPLOAD_GRACE``: how many seconds a remote run's end (and a process's)
  waits for its uploads before leaving the rest in the outbox; default 10 (it stops
  waiting at once when the server cannot be reached);
* ``TRIALBOOK_PREDICTIONS_MAX_IMAGES``: the most images of a split an evaluation records
  per-image predictions and thumbnails for (default 20,000; more: none, with a warning).
* ``TRIALBOOK_SYSTEM_METRICS``: ``0`` (or ``false``/``no``/``off``) records no
  ``system/`` series (CPU, memory, GPU and epoch time, ``trialbook.system``) for the runs
  started after it is set; default on;
* ``TRIALBOOK_TOKEN``: the token a remote book sends to its server (``Authorization:
  Bearer``); default: the token ``trialbook login URL`` stored for that server in
  ``credentials.json`` of trialbook's folder of the user's config (``$XDG_CONFIG_HOME``,
  default ``~/.config``), mode 0600; else none;
* ``TRIALBOOK_SERVER_DB``, ``TRIALBOOK_SERVER_ARTIFACTS``, ``TRIALBOOK_SERVER_HOSTS``:
  what ``trialbook server`` hands its worker processes (the database, the artifacts
  folder or ``s3://`` URI, the host names answered); set by the command, not by users;
* ``XDG_CACHE_HOME``: the stat cache of a database book goes in its ``trialbook/``;
  default ``~/.cache``;
* ``XDG_CONFIG_HOME``: ``trialbook/credentials.json`` there holds the tokens of
  ``trialbook login``; default ``~/.config``.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "ARTIFACTS_VAR",
    "OFFLINE_VAR",
    "OUTBOX_VAR",
    "PREDICTIONS_MAX_IMAGES_VAR",
    "SERVER_ARTIFACTS_VAR",
    "SERVER_DB_VAR",
    "SERVER_HOSTS_VAR",
    "SPOOL_VAR",
    "SYSTEM_METRICS_VAR",
    "TOKEN_VAR",
    "UPLOAD_GRACE_VAR",
    "URI_VAR",
    "USER_VAR",
    "artifacts_dir",
    "book_uri",
    "credentials_path",
    "forget_token",
    "offline",
    "outbox_path",
    "predictions_max_images",
    "server_of",
    "server_setting",
    "spool_dir",
    "store_token",
    "system_metrics",
    "token",
    "token_source",
    "upload_grace_s",
    "user_cache_dir",
    "user_config_dir",
    "who",
]

URI_VAR = "TRIALBOOK_URI"
ARTIFACTS_VAR = "TRIALBOOK_ARTIFACTS"
USER_VAR = "TRIALBOOK_USER"
SPOOL_VAR = "TRIALBOOK_SPOOL"
OUTBOX_VAR = "TRIALBOOK_OUTBOX"
OFFLINE_VAR = "TRIALBOOK_OFFLINE"
TOKEN_VAR = "TRIALBOOK_TOKEN"
UPLOAD_GRACE_VAR = "TRIALBOOK_UPLOAD_GRACE"
SYSTEM_METRICS_VAR = "TRIALBOOK_SYSTEM_METRICS"
PREDICTIONS_MAX_IMAGES_VAR = "TRIALBOOK_PREDICTIONS_MAX_IMAGES"
DEFAULT_UPLOAD_GRACE_S = 10.0
SERVER_DB_VAR = "TRIALBOOK_SERVER_DB"
SERVER_ARTIFACTS_VAR = "TRIALBOOK_SERVER_ARTIFACTS"
SERVER_HOSTS_VAR = "TRIALBOOK_SERVER_HOSTS"


def _get(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def token(uri: str | None = None) -> str | None:
    """The token to send to the server of ``uri``: ``$TRIALBOOK_TOKEN``, else the one
    ``trialbook login`` stored for that server (``store_token``), else None."""
    value = _get(TOKEN_VAR)
    if value or uri is None:
        return value
    try:
        server = server_of(uri)
    except ValueError:
        return None
    stored = _read_credentials().get(server)
    return stored if isinstance(stored, str) and stored else None


def token_source(uri: str | None = None) -> str | None:
    """Where ``token(uri)`` comes from, in words for a message (never the token itself):
    ``from $TRIALBOOK_TOKEN``, or the credentials file; None when there is no token."""
    if _get(TOKEN_VAR):
        return f"from ${TOKEN_VAR}"
    if token(uri) is not None:
        return f"stored by `trialbook login` in {credentials_path()}"
    return None


def server_of(uri: str) -> str:
    """The server of a book URI, as the credentials file keys it: ``scheme://host:port``
    (lower case, the scheme's default port made explicit, no path, no trailing slash).
    ``ValueError`` for a URI that is no ``http(s)://`` one."""
    from urllib.parse import urlsplit

    parts = urlsplit(uri.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{uri!r} is no server URL: give http(s)://HOST[:PORT]")
    host = parts.hostname.lower()
    shown = f"[{host}]" if ":" in host else host
    port = parts.port or (443 if scheme == "https" else 80)
    return f"{scheme}://{shown}:{port}"


def user_config_dir() -> Path:
    """trialbook's folder in the user's config (``$XDG_CONFIG_HOME/trialbook``)."""
    base = _get("XDG_CONFIG_HOME")
    return (Path(base) if base else Path.home() / ".config") / "trialbook"


def credentials_path() -> Path:
    """The file of the tokens ``trialbook login`` stored: ``{"servers": {server: token}}``."""
    return user_config_dir() / "credentials.json"


def _read_credentials() -> dict[str, object]:
    """``{server: token}`` of the credentials file; ``{}`` when there is none (or it
    cannot be read: a token is then simply not found)."""
    import json

    try:
        doc = json.loads(credentials_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    servers = doc.get("servers") if isinstance(doc, dict) else None
    return dict(servers) if isinstance(servers, dict) else {}


def store_token(uri: str, value: str | None) -> Path:
    """Keep ``value`` as the token of ``uri``'s server in the credentials file (None:
    forget it), keeping the other servers' tokens; the file's path. The folder is made
    0700 and the file written 0600 through a temporary file in the same folder, renamed
    over it (never a moment readable by others, never half-written)."""
    import json

    server = server_of(uri)
    path = credentials_path()
    servers = _read_credentials()
    if value is None:
        servers.pop(server, None)
    else:
        servers[server] = value
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)  # (left by a process of this id that died writing it)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"servers": servers}, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def forget_token(uri: str) -> bool:
    """Remove the stored token of ``uri``'s server; whether there was one."""
    if server_of(uri) not in _read_credentials():
        return False
    store_token(uri, None)
    return True


def server_setting(name: str) -> str | None:
    """One of the ``TRIALBOOK_SERVER_*`` variables ``trialbook server`` sets for its workers."""
    if name not in (SERVER_DB_VAR, SERVER_ARTIFACTS_VAR, SERVER_HOSTS_VAR):
        raise KeyError(name)
    return _get(name)


def book_uri() -> str | None:
    """``$TRIALBOOK_URI``, or None when it is unset or blank."""
    return _get(URI_VAR)


def artifacts_dir() -> Path | None:
    """``$TRIALBOOK_ARTIFACTS`` as a folder, or None."""
    value = _get(ARTIFACTS_VAR)
    return Path(os.path.expanduser(value)) if value else None


def who() -> str:
    """The name recorded with decisions, protocol changes, notes and ships:
    ``$TRIALBOOK_USER``, else the OS login name, else ``unknown`` (module docstring)."""
    return _get(USER_VAR) or _login_name() or "unknown"


def _login_name() -> str | None:
    """The OS login name (``getpass.getuser()``), or None when the system has none: no
    login variable, and a uid the password database does not know (a container's)."""
    import getpass  # here, not with ``import trialbook``

    try:
        name = getpass.getuser()
    except (OSError, KeyError, ImportError):
        return None
    return name.strip() or None


def user_cache_dir() -> Path:
    """trialbook's folder in the user's cache (``$XDG_CACHE_HOME/trialbook``)."""
    base = _get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "trialbook"


def spool_dir() -> Path:
    """Where points that could not be written are kept until they are replayed."""
    value = _get(SPOOL_VAR)
    return Path(os.path.expanduser(value)) if value else Path.home() / ".trialbook-spool"


def outbox_path() -> Path:
    """The outbox file of remote books (module docstring, ``TRIALBOOK_OUTBOX``)."""
    value = _get(OUTBOX_VAR)
    if value:
        return Path(os.path.expanduser(value))
    spool = _get(SPOOL_VAR)
    return (Path(os.path.expanduser(spool)) if spool else user_cache_dir()) / "outbox.db"


def upload_grace_s() -> float:
    """``$TRIALBOOK_UPLOAD_GRACE`` in seconds (module docstring); a value that is no
    number of seconds >= 0 is refused, naming the variable."""
    value = _get(UPLOAD_GRACE_VAR)
    if not value:
        return DEFAULT_UPLOAD_GRACE_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0 or seconds == float("inf"):
        from trialbook.errors import InvalidInput

        raise InvalidInput(f"${UPLOAD_GRACE_VAR}={value!r}: give a number of seconds >= 0 (default 10)")
    return seconds


def offline() -> bool:
    """Whether ``$TRIALBOOK_OFFLINE`` asks for no network at all."""
    return (_get(OFFLINE_VAR) or "").lower() in ("1", "true", "yes", "on")


def predictions_max_images() -> str | None:
    """``$TRIALBOOK_PREDICTIONS_MAX_IMAGES`` as given (the Ultralytics integration parses
    it, and warns of a bad value rather than stop a training)."""
    return _get(PREDICTIONS_MAX_IMAGES_VAR)


def system_metrics() -> bool:
    """Whether a run records the ``system/`` series: yes unless ``$TRIALBOOK_SYSTEM_METRICS``
    is ``0``, ``false``, ``no`` or ``off``."""
    return (_get(SYSTEM_METRICS_VAR) or "").lower() not in ("0", "false", "no", "off")
