"""The HTTP client of every remote part (the remote store, remote artifacts): one
``httpx.Client`` with keep-alive connections and ``TCP_NODELAY`` on its sockets.

Without ``TCP_NODELAY`` a request whose headers and body go out in two writes waits for
the server's delayed ACK of the first (about 40 ms on Linux) before its body leaves: every
small call to a team server took 45 ms instead of 1 ms.

``unauthorized`` and ``error_detail``: what every client says of a server's 401 and of a
refused request (the token itself is never in a message)."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trialbook.errors import Unauthorized

__all__ = ["ERROR_HEADER", "bearer", "client", "error_detail", "unauthorized"]

# a server API error's message, also in this header: the answer to a HEAD has no body
ERROR_HEADER = "x-trialbook-error"
_NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


def client(**kwargs: Any) -> Any:
    """An ``httpx.Client(**kwargs)`` whose connections set ``TCP_NODELAY``."""
    import httpx

    return httpx.Client(transport=httpx.HTTPTransport(socket_options=_NODELAY), **kwargs)


def bearer(token: str | None, source: str | None) -> dict[str, str]:
    """The ``Authorization`` header of ``token`` (none for None). A token holding what no
    token holds (a line break, a control or non-ASCII character: a bad paste) is refused
    here, as ``Unauthorized`` naming where it came from (``source``) and not the token, so
    that no HTTP library ever puts it in an error message of its own."""
    if not token:
        return {}
    if not (token.isascii() and token.isprintable()):
        from trialbook.errors import Unauthorized

        raise Unauthorized(
            f"the token {source or 'given'} holds a character no token has (a line break, a control "
            "or non-ASCII character): set it again, as `trialbook admin token create` printed it"
        )
    return {"Authorization": f"Bearer {token}"}


def unauthorized(uri: str, *, source: str | None, what: str | None = None) -> Unauthorized:
    """What a 401 from the server at ``uri`` means and what to do, as ``Unauthorized``
    (``source``: where the token sent came from, ``settings.token_source``; None when
    none was sent; ``what``: the request, to start the message with)."""
    from trialbook import settings
    from trialbook.errors import Unauthorized

    try:
        server = settings.server_of(uri)
    except ValueError:
        server = uri
    how = f"set {settings.TOKEN_VAR} or run `trialbook login {server}`"
    if source is None:
        message = f"the trialbook server at {uri} needs a token: {how}"
    else:
        message = (
            f"the trialbook server at {uri} refused the token {source} (unknown, expired or revoked): {how}"
        )
    return Unauthorized(f"{what}: {message}" if what else message)


def error_detail(response: Any) -> str:
    """What a server said of a refused request (an ``httpx.Response``): trialbook's error
    ``message``, else a JSON ``detail``, else the error header (a HEAD has no body), else
    the start of the body or the reason phrase."""
    try:
        doc = response.json()
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        for key in ("message", "detail"):
            if isinstance(doc.get(key), str) and doc[key]:
                return str(doc[key])
    header = response.headers.get(ERROR_HEADER)
    if header:
        return str(header)
    return str(response.text.strip()[:200] or response.reason_phrase)
