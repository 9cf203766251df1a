"""Downstream SSE clients for relay tests: raw sockets, read by one selector thread.

``ClientPool`` owns every client socket a test opens and one reader thread that feeds each
response into its own ``Downstream`` (head parsed, body decoded with our WHATWG decoder).
Tests wait on conditions with deadlines (``Downstream.wait``); ``ClientPool.close()`` closes
every socket and joins the thread. Nothing here sleeps to wait.
"""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from streamvisor.relay import RelayConfig, RelayServer
from streamvisor.sse import Decoder, Event

DEADLINE = 5.0


class Downstream:
    """One client connection: its status, headers, raw body, decoded events, and EOF."""

    def __init__(self, pool: ClientPool, sock: socket.socket) -> None:
        self._pool = pool
        self.sock = sock
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.body = b""
        self.events: list[Event] = []
        self.closed = False
        self._head = b""
        self._decoder = Decoder()

    # called by the reader thread, under the pool's condition
    def _feed(self, data: bytes) -> None:
        if self.closed:
            return  # bytes read just before the test dropped the connection
        if not data:
            self.closed = True
            self._decoder.end()
            return
        if self.status is None:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = self._head[:end].decode("latin-1").split("\r\n")
            self.status = int(lines[0].split()[1])
            for line in lines[1:]:
                name, _, value = line.partition(":")
                self.headers[name.strip().lower()] = value.strip()
            data = self._head[end + 4 :]
        self.body += data
        self.events.extend(self._decoder.feed(data))

    def wait(self, predicate: Callable[[Downstream], bool], timeout: float = DEADLINE) -> bool:
        """True once ``predicate(self)`` holds; False at the deadline."""
        with self._pool.cond:
            return self._pool.cond.wait_for(lambda: predicate(self), timeout)

    def wait_events(self, n: int, timeout: float = DEADLINE) -> list[Event]:
        """The first ``n`` events (fewer if the deadline passed first)."""
        self.wait(lambda d: len(d.events) >= n or d.closed, timeout)
        with self._pool.cond:
            return list(self.events[:n])

    def wait_closed(self, timeout: float = DEADLINE) -> bool:
        """True once the relay closed this connection."""
        return self.wait(lambda d: d.closed, timeout)

    @property
    def last_id(self) -> str | None:
        """The id a browser would resume from."""
        with self._pool.cond:
            return self._decoder.last_event_id

    def close(self) -> None:
        """Drop the connection (as a client going away)."""
        self._pool.drop(self)


class ClientPool:
    """Opens client connections to a relay and reads them all from one thread."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._stopping = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="relay-test-clients", daemon=True)
        self._thread.start()

    def get(
        self, port: int, target: str, headers: Mapping[str, str] | None = None, method: str = "GET"
    ) -> Downstream:
        """Open a connection and send one request."""
        sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        lines = [f"{method} {target} HTTP/1.1", "Host: relay"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))
        sock.setblocking(False)
        client = Downstream(self, sock)
        with self._lock:
            self._selector.register(sock, selectors.EVENT_READ, client)
        self._wake_w.send(b"x")
        return client

    def drop(self, client: Downstream) -> None:
        with self._lock, contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(client.sock)
        client.sock.close()
        with self.cond:
            if not client.closed:
                client._feed(b"")  # end of input: an event cut short is not dispatched

    def close(self) -> None:
        """Close every connection and join the reader thread."""
        self._stopping = True
        self._wake_w.send(b"x")
        self._thread.join(DEADLINE)
        with self._lock:
            for key in list(self._selector.get_map().values()):
                key.fileobj.close()  # type: ignore[union-attr]
            self._selector.close()
        self._wake_w.close()

    def _run(self) -> None:
        while not self._stopping:
            with self._lock:
                selector = self._selector
            for key, _ in selector.select(0.5):
                if key.data is None:
                    self._wake_r.recv(4096)
                    continue
                client: Downstream = key.data
                try:
                    data = client.sock.recv(262144)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                with self.cond:
                    client._feed(data)
                    self.cond.notify_all()
                if not data:
                    with self._lock, contextlib.suppress(KeyError, ValueError):
                        self._selector.unregister(client.sock)


@contextlib.contextmanager
def running_relay(config: RelayConfig, streams: tuple[str, ...] = ("s",)) -> Iterator[RelayServer]:
    """A started ``RelayServer`` on 127.0.0.1 port 0, always stopped afterwards."""
    server = RelayServer(config, streams)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def seqs(events: list[Event]) -> list[int]:
    """The ``seq`` of each demo-source event (its JSON data), in order."""
    return [int(json.loads(e.data)["seq"]) for e in events if e.event == "tick"]


def gap_data(event: Event) -> dict[str, Any]:
    """The JSON of a ``streamvisor.gap`` event."""
    assert event.event == "streamvisor.gap"
    data: dict[str, Any] = json.loads(event.data)
    return data
