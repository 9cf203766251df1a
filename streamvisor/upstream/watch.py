"""Connection pools whose connections show their socket while a request waits for its answer.

``Connection.interrupt()`` wakes a blocked read by shutting the stream's socket down. Before
the response headers come, requests gives no handle on that socket, so a stop had to wait
for a server that took the connection but never answered: up to the read timeout (60 s by
default), and ``Streamvisor.stop()`` or the daemon's shutdown used their whole timeout.

Here a connection hands its socket to the current thread's watcher (``watching()``) just
before it waits for the response, so the thread that wants the attempt stopped can shut it
down. Sessions get these pools through ``WatchingAdapter``; a request through a proxy (a
separate pool manager) or a caller's own session is not watched and waits as before.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import requests
import requests.adapters
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

__all__ = ["Waiter", "WatchingAdapter", "shut", "socket_of", "watched_session", "watching"]

Watcher = Callable[[socket.socket], None]

_local = threading.local()


@contextlib.contextmanager
def watching(watcher: Watcher) -> Iterator[None]:
    """Within the block, requests this thread sends hand their socket to ``watcher``
    (called in this thread, just before waiting for the response; possibly more than once:
    redirects)."""
    previous = getattr(_local, "watcher", None)
    _local.watcher = watcher
    try:
        yield
    finally:
        _local.watcher = previous


class Waiter:
    """The socket an attempt is waiting on for an answer, for a stop from another thread.

    ``with waiter.watch(): <send requests>`` in the attempt's thread; ``stop()`` from any
    thread shuts the current socket down, and any socket shown after it, at once.
    """

    __slots__ = ("_lock", "_sock", "_stopped")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._stopped = False

    @contextlib.contextmanager
    def watch(self) -> Iterator[None]:
        """Within the block, this thread's requests show their socket to this waiter."""
        try:
            with watching(self._show):
                yield
        finally:
            with self._lock:
                self._sock = None

    def stop(self) -> None:
        """Shut the socket waited on down (now, or as soon as one is shown). Thread-safe."""
        with self._lock:
            self._stopped = True
            sock = self._sock
        shut(sock)

    def _show(self, sock: socket.socket) -> None:
        with self._lock:
            self._sock = sock
            stopped = self._stopped
        if stopped:
            shut(sock)


def _show(sock: Any) -> None:
    watcher: Watcher | None = getattr(_local, "watcher", None)
    if watcher is not None and isinstance(sock, socket.socket):
        watcher(sock)


class _WatchedHTTPConnection(HTTPConnection):
    def getresponse(self) -> Any:
        _show(self.sock)
        return super().getresponse()


class _WatchedHTTPSConnection(HTTPSConnection):
    def getresponse(self) -> Any:
        _show(self.sock)
        return super().getresponse()


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class WatchingAdapter(requests.adapters.HTTPAdapter):
    """``HTTPAdapter`` whose pools' connections show their socket to ``watching()``."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


def watched_session() -> requests.Session:
    """A new ``requests.Session`` with ``WatchingAdapter`` for http and https."""
    session = requests.Session()
    adapter = WatchingAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def shut(sock: socket.socket | None) -> None:
    """Shut ``sock`` down both ways (``SHUT_RDWR``) without closing it: a read blocked on it
    in another thread returns; never blocks, never raises. None: nothing to do."""
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def socket_of(response: requests.Response) -> socket.socket | None:
    """The socket under a streaming response (private urllib3/http.client attributes)."""
    raw: Any = response.raw
    sock = getattr(getattr(raw, "_connection", None), "sock", None)
    if sock is None:
        # http.client moves the socket into the response for read-until-close bodies.
        fp = getattr(getattr(raw, "_fp", None), "fp", None)
        sock = getattr(getattr(fp, "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None
