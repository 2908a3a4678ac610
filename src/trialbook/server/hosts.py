"""The names the server answers to: the ``Host`` header of every request is checked
against the hosts the server was started for, so that a page on another site whose name
is re-pointed at this machine (DNS rebinding) never becomes same-origin with the UI.

Allowed by default: the loopback names (``127.0.0.1``, ``localhost``, ``::1``), with any
port; ``trialbook ui --host H`` adds ``H`` and ``--allow-host NAME`` adds more. A request
whose ``Host`` names the very address it arrived on (the ASGI ``server`` of its scope: an
IP literal under uvicorn) is allowed too: such a name is no rebinding. Anything else gets
400 and a one-line message naming the host and how to allow it.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from trialbook.server.responses import dumps

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def host_name(value: str) -> str:
    """The name in a ``Host`` value (or a name given to allow), lower case, without the
    port, the brackets of an IPv6 address or a final dot. A value that is no
    ``NAME[:PORT]`` comes back whole (lower case), matching no allowed name."""
    text = value.strip().lower()
    if text.startswith("["):
        end = text.find("]")
        rest = text[end + 1 :] if end > 0 else "?"
        if rest and not (rest[0] == ":" and rest[1:].isdigit()):
            return text
        name = text[1:end]
    elif text.count(":") == 1:
        name, port = text.split(":")
        if not port.isdigit():
            return text
    else:
        name = text  # a bare IPv6 address (given to allow), or a plain name
    return name[:-1] if name.endswith(".") else name


def allowed_names(hosts: Iterable[str] | None) -> frozenset[str]:
    """The names of ``hosts`` (default: the loopback names), as :func:`host_name` reads them."""
    return frozenset(host_name(h) for h in (LOOPBACK_HOSTS if hosts is None else hosts) if h.strip())


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class AllowedHosts:
    """ASGI middleware refusing requests whose ``Host`` is not one of ``names``."""

    def __init__(self, app: ASGIApp, names: frozenset[str], api_prefix: str) -> None:
        self.app = app
        self.names = names
        self.api_prefix = api_prefix

    def refusal(self, scope: Scope) -> str | None:
        """Why the request of ``scope`` is refused, or None when its host is allowed."""
        host = _header(scope, b"host")
        if host is None:
            return "the request has no Host header; this server answers only requests naming its host"
        name = host_name(host)
        server = scope.get("server")
        if name in self.names or (name and server and name == host_name(str(server[0]))):
            return None
        shown = ", ".join(sorted(self.names)) or "no name"
        return (
            f"host {host!r} is not allowed: this server answers to {shown} only; "
            f"to allow it, start it with --allow-host {name}"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        why = self.refusal(scope)
        if why is None:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": why[:120]})
            return
        if str(scope.get("path", "")).startswith(self.api_prefix):
            body, media = dumps({"detail": why}).encode(), b"application/json"
        else:
            body, media = f"{why}\n".encode(), b"text/plain; charset=utf-8"
        await send(
            {
                "type": "http.response.start",
                "status": 400,
                "headers": [(b"content-type", media), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body if scope.get("method") != "HEAD" else b""})
