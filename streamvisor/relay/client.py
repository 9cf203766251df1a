"""One downstream connection of the relay (an ``asyncio.Protocol``), and one served stream.

Loop thread only. A ``Client`` reads its request head (h11, through ``http.HeadParser``),
hands it to its owner, and from then on only receives writes: no queue, no task, no buffer
of its own beyond the transport's (whose high-water mark is the slow-client bound). A client
costs one small slotted object besides its transport and socket.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Protocol

from streamvisor.relay import http
from streamvisor.relay.metrics import RouteCounters
from streamvisor.relay.ring import ReplayRing

__all__ = ["HEAD_TIMEOUT", "Client", "ClientOwner", "Route"]

HEAD_TIMEOUT = 10.0
"""Seconds a new connection may take to send its request head."""


class ClientOwner(Protocol):
    """What a ``Client`` tells its server (all in the loop thread)."""

    def client_opened(self, client: Client) -> None: ...

    def client_request(self, client: Client, request: http.Request) -> None: ...

    def client_overflow(self, client: Client) -> None: ...

    def client_lost(self, client: Client) -> None: ...


class Route:
    """One served stream: its ring, its connected clients and its counters."""

    __slots__ = ("clients", "counters", "cut", "name", "ring", "stored")

    def __init__(self, name: str, ring: ReplayRing, stored: set[str] | None = None) -> None:
        self.name = name
        self.ring = ring
        self.stored = stored or set()  # keys of restored events an upstream may replay
        self.clients: set[Client] = set()
        self.cut: list[Client] = []  # overflowed during a write loop; removed after it
        self.counters = RouteCounters()


class Client(asyncio.Protocol):
    """One downstream connection: reads its request head, then only receives writes.

    Args:
        owner: the server it reports to.
        max_buffer_bytes: the transport's high-water mark; passing it calls
            ``owner.client_overflow`` from inside ``write()``.
    """

    __slots__ = ("_limit", "_owner", "_parser", "_timer", "route", "transport")

    transport: asyncio.Transport  # set by connection_made, before any other callback

    def __init__(self, owner: ClientOwner, max_buffer_bytes: int) -> None:
        self._owner = owner
        self._limit = max_buffer_bytes
        self._parser: http.HeadParser | None = http.HeadParser()
        self._timer: asyncio.TimerHandle | None = None
        self.route: Route | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:  # Nagle on: see server.py (measured)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
            except OSError:
                pass
        transport.set_write_buffer_limits(high=self._limit)
        self._owner.client_opened(self)
        self._timer = asyncio.get_running_loop().call_later(HEAD_TIMEOUT, transport.abort)

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None:
            return  # anything after the head is ignored (an SSE client sends nothing)
        try:
            request = parser.feed(data)
        except http.BadRequestError as exc:
            self._parser = None
            self.respond(http.error_response(exc.status, "bad request"))
            return
        if request is not None:
            self._parser = None
            self._cancel_timer()
            self._owner.client_request(self, request)

    def eof_received(self) -> bool:
        return False  # the client is gone: close our side too

    def pause_writing(self) -> None:
        # asyncio calls this from inside write() once unsent bytes pass the high-water mark
        self._owner.client_overflow(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        self._owner.client_lost(self)

    def respond(self, data: bytes) -> None:
        """Send a one-shot answer and close (after the bytes are out)."""
        self.transport.write(data)
        self.transport.close()

    def retire_later(self, delay: float) -> None:
        """Close this client after ``delay`` seconds (``max_lifetime``); it resumes."""
        self._timer = asyncio.get_running_loop().call_later(delay, self.transport.close)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
