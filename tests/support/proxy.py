"""A small TCP proxy of the tests' own, for faults of the network between a client and a
server: ``127.0.0.1:PORT`` forwarded to ``127.0.0.1:UPSTREAM``, in threads.

``refuse()`` closes the listening socket (a new connection is refused: ``ECONNREFUSED``)
and cuts every open connection (a reset); ``stall()`` keeps accepting but forwards
nothing, in either direction, until ``resume()`` (what was held is then sent); ``resume()``
also listens again (same port) after ``refuse()``. ``refused_for(s)`` and ``stalled_for(s)``
do either for a while, as context managers. ``stop()`` ends it all.

Bounded: at most ``MAX_CONNECTIONS`` open connections (more are closed at once), two
threads each, all daemon threads, every socket on loopback.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

__all__ = ["MAX_CONNECTIONS", "Proxy"]

MAX_CONNECTIONS = 64
_POLL_S = 0.05


def _cut(sock: socket.socket) -> None:
    """Close ``sock`` with a reset (SO_LINGER 0), as a network that drops it."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    with contextlib.suppress(OSError):
        sock.close()


class _Pair:
    """One client connection and its upstream one, pumped by two threads."""

    def __init__(self, proxy: Proxy, client: socket.socket, upstream: socket.socket) -> None:
        self.proxy, self.client, self.upstream = proxy, client, upstream
        self.closed = threading.Event()
        for src, dst in ((client, upstream), (upstream, client)):
            src.settimeout(_POLL_S)
            threading.Thread(target=self._pump, args=(src, dst), daemon=True, name="proxy-pump").start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while not self.closed.is_set():
                try:
                    data = src.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    break
                while not self.proxy.flowing.wait(_POLL_S):  # stalled: hold the bytes
                    if self.closed.is_set():
                        return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self.close()

    def close(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            _cut(self.client)
            _cut(self.upstream)
            self.proxy._forget(self)


class Proxy:
    """Forwards ``127.0.0.1:port`` (free, chosen here, unless given) to ``127.0.0.1:upstream``."""

    def __init__(self, upstream: int, *, port: int = 0) -> None:
        self.upstream = upstream
        self.flowing = threading.Event()
        self.flowing.set()
        self.accepted = 0  # connections accepted, in all
        self._pairs: set[_Pair] = set()
        self._lock = threading.Lock()
        self._stopped = False
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.port = port
        self._listen()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # listening -------------------------------------------------------------------------
    def _listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(128)
        sock.settimeout(_POLL_S)
        self.port = sock.getsockname()[1]
        self._listener = sock
        self._thread = threading.Thread(target=self._accept, args=(sock,), daemon=True, name="proxy-accept")
        self._thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
            except OSError:
                _cut(client)  # the server is not there: the client sees a reset
                continue
            with self._lock:
                if len(self._pairs) >= MAX_CONNECTIONS or self._listener is not listener:
                    _cut(client)
                    _cut(upstream)
                    continue
                self._pairs.add(_Pair(self, client, upstream))

    def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _forget(self, pair: _Pair) -> None:
        with self._lock:
            self._pairs.discard(pair)

    # faults ----------------------------------------------------------------------------
    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._pairs)

    def cut(self) -> None:
        """Reset every open connection."""
        with self._lock:
            pairs = list(self._pairs)
        for pair in pairs:
            pair.close()

    def refuse(self) -> None:
        """Refuse new connections (nothing listens) and cut the open ones."""
        self._close_listener()
        self.cut()

    def stall(self) -> None:
        """Accept, but forward nothing until ``resume()``."""
        self.flowing.clear()

    def resume(self) -> None:
        """Forward again (and listen again, on the same port, after ``refuse()``)."""
        if self._stopped:
            return
        if self._listener is None:
            deadline = time.monotonic() + 5
            while True:
                try:
                    self._listen()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        self.flowing.set()

    @contextlib.contextmanager
    def refused_for(self, seconds: float) -> Iterator[None]:
        """Refuse for ``seconds`` (the block runs meanwhile; waits out the rest after it)."""
        until = time.monotonic() + seconds
        self.refuse()
        try:
            yield
            time.sleep(max(0.0, until - time.monotonic()))
        finally:
            self.resume()

    @contextlib.contextmanager
    def stalled_for(self, seconds: float) -> Iterator[None]:
        """Stall for ``seconds`` (the block runs meanwhile; waits out the rest after it)."""
        until = time.monotonic() + seconds
        self.stall()
        try:
            yield
            time.sleep(max(0.0, until - time.monotonic()))
        finally:
            self.resume()

    def stop(self) -> None:
        self._stopped = True
        self._close_listener()
        self.flowing.set()
        self.cut()

    def __enter__(self) -> Proxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
