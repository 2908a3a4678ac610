"""A trialbook server on a free loopback port, for tests that need real sockets, and
``InProcess``, an ``httpx`` transport calling an ASGI app in process (no sockets).

``start(app)`` serves an ASGI app (``server.app.create_app(book)``) with uvicorn in a
thread of the test process; ``start(book_uri)`` serves the book at that URI the same way;
``start(book_uri, process=True)`` runs uvicorn in a subprocess of its own (which a test
may SIGKILL: ``server.process.kill()``, then ``server.restart()`` on the same port).
Each returns a ``LoopbackServer``: ``url`` is its base URL (``http://127.0.0.1:PORT``),
``stop()`` stops it (also as a context manager).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import anyio
import anyio.from_thread
import httpx

START_TIMEOUT_S = 30.0


class InProcess(httpx.BaseTransport):
    """A synchronous ``httpx`` transport that calls the ASGI ``app`` in process: each
    request goes through ``httpx.ASGITransport`` on an event loop of its own thread (an
    anyio blocking portal, started here and stopped by ``close``). No server, no sockets;
    an exception in the app is a 500, as a server answers it."""

    def __init__(self, app: Any) -> None:
        self._asgi = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self._portal_cm = anyio.from_thread.start_blocking_portal()
        self._portal = self._portal_cm.__enter__()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        content = request.read()

        async def send() -> tuple[int, httpx.Headers, bytes]:
            inner = httpx.Request(request.method, request.url, headers=request.headers, content=content)
            response = await self._asgi.handle_async_request(inner)
            body = await response.aread()
            return response.status_code, response.headers, body

        status, headers, body = self._portal.call(send)
        return httpx.Response(status, headers=headers, content=body, request=request)

    def close(self) -> None:
        self._portal_cm.__exit__(None, None, None)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 just now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, *, timeout: float = START_TIMEOUT_S, alive: Any = None) -> None:
    """Return once ``url`` answers HTTP (any status); ``RuntimeError`` after ``timeout``
    seconds, or as soon as ``alive()`` is false (the server died)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(f"{url}/api/v1/openapi.json", timeout=2.0)
            return
        except httpx.TransportError as exc:
            if alive is not None and not alive():
                raise RuntimeError(f"the test server for {url} died while starting") from exc
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the test server at {url} did not answer in {timeout:g} s: {exc}"
                ) from exc
            time.sleep(0.02)


class LoopbackServer:
    """A server on ``127.0.0.1:port``: in a thread (``app``) or a subprocess (``book_uri``)."""

    def __init__(
        self, *, app: Any = None, book_uri: str | None = None, port: int | None = None, owned: Any = None
    ) -> None:
        self.app = app
        self.owned = owned  # closed by stop(): the book an app of start(uri) serves
        self.book_uri = book_uri
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    # threads ---------------------------------------------------------------------------
    def _start_thread(self) -> None:
        import uvicorn

        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", self.port))
        self._server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", access_log=False))
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._sock]},
            name=f"trialbook-{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the test server at {self.url} did not start")
            time.sleep(0.01)

    # processes -------------------------------------------------------------------------
    def _start_process(self) -> None:
        assert self.book_uri is not None
        env = {**os.environ, "TRIALBOOK_URI": self.book_uri}
        command = [sys.executable, "-m", "uvicorn", "--factory", "trialbook.server.app:create_app_from_uri"]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"]
        self.process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL)
        process = self.process
        wait_ready(self.url, alive=lambda: process.poll() is None)

    def start(self) -> LoopbackServer:
        if self.app is not None:
            self._start_thread()
        else:
            self._start_process()
        return self

    def restart(self) -> LoopbackServer:
        """Start again on the same port (after a kill; a thread's server is stopped first)."""
        if self._server is not None:
            self._server.should_exit = True
            assert self._thread is not None
            self._thread.join(timeout=10)
            self._server = self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)
        self.process = None
        return self.start()

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._server = self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=5)
            self.process = None
        if self.owned is not None:
            self.owned.close()
            self.owned = None

    def __enter__(self) -> LoopbackServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(target: Any, *, process: bool = False) -> LoopbackServer:
    """A started server: ``target`` is an ASGI app, or a book URI (served by an app over
    ``Book.open(uri)`` in a thread, or by uvicorn in a subprocess with ``process=True``)."""
    if isinstance(target, str):
        if process:
            return LoopbackServer(book_uri=target).start()
        from trialbook.api import Book
        from trialbook.server.app import create_app

        book = Book.open(target, create=True)
        return LoopbackServer(app=create_app(book), book_uri=target, owned=book).start()
    if process:
        raise ValueError("a subprocess server serves a book URI, not an app object")
    return LoopbackServer(app=target).start()
