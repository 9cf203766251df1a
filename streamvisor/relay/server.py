"""The relay server: one asyncio loop thread re-serves streams to many SSE clients.

Measured design (``shared/research/relay.md``): one loop thread owns every downstream
socket through an ``asyncio.Protocol`` server; no thread, queue or actor per client. A
stream's events cross into the loop once per read (``publish`` ->
``call_soon_threadsafe``), are encoded once, retained in the stream's ``ReplayRing`` and
the same ``bytes`` object is written to every client. Resume and registration happen in one
loop callback, so no live event can fall between the replay and the live stream. A client
whose unsent bytes pass ``max_buffer_bytes`` is cut (the transport's high-water mark is the
bound, so asyncio tells us through ``pause_writing``); it resumes with Last-Event-ID.
Nagle stays on for client sockets: with ``TCP_NODELAY`` every small write is its own segment
(1.82x nchan's CPU measured, 0.91x with Nagle on; research section 7).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from streamvisor.errors import StreamvisorError
from streamvisor.relay import http
from streamvisor.relay.encoder import encode_comment, encode_event, encode_gap, encode_retry
from streamvisor.relay.metrics import RouteCounters, build_relay_registry
from streamvisor.relay.ring import ReplayRing, new_epoch
from streamvisor.relay.settings import RelayConfig
from streamvisor.sse import Event

if TYPE_CHECKING:
    from streamvisor.relay.history_sqlite import SQLiteHistory

__all__ = ["RelayError", "RelayServer"]

log = logging.getLogger(__name__)

HEAD_TIMEOUT = 10.0
"""Seconds a new connection may take to send its request head."""
CUT_LOG_INTERVAL = 10.0
"""Slow-client cuts are logged at most once per this many seconds (with a count)."""
_BACKLOG = 4096  # a reconnect storm of thousands must not overflow the accept queue


class RelayError(StreamvisorError):
    """The relay could not start (e.g. its address is in use)."""


class _Route:
    """One served stream: its ring, its connected clients and its counters."""

    __slots__ = ("clients", "counters", "cut", "name", "ring")

    def __init__(self, name: str, ring: ReplayRing) -> None:
        self.name = name
        self.ring = ring
        self.clients: set[_Client] = set()
        self.cut: list[_Client] = []
        self.counters = RouteCounters()


class _Client(asyncio.Protocol):
    """One downstream connection: reads its request head, then only receives writes."""

    __slots__ = ("_parser", "_relay", "_timer", "route", "transport")

    transport: asyncio.Transport  # set by connection_made, before any other callback

    def __init__(self, relay: RelayServer) -> None:
        self._relay = relay
        self._parser: http.HeadParser | None = http.HeadParser()
        self._timer: asyncio.TimerHandle | None = None
        self.route: _Route | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
            except OSError:
                pass
        transport.set_write_buffer_limits(high=self._relay.config.max_buffer_bytes)
        self._relay._pending.add(self)
        self._timer = self._relay._loop_call_later(HEAD_TIMEOUT, transport.abort)

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None:
            return  # anything after the head is ignored (an SSE client sends nothing)
        try:
            request = parser.feed(data)
        except http.BadRequestError as exc:
            self._parser = None
            self.respond(http.plain_response(exc.status, b'{"error": "bad request"}'))
            return
        if request is not None:
            self._parser = None
            self._cancel_timer()
            self._relay._pending.discard(self)
            self._relay._handle(self, request)

    def eof_received(self) -> bool:
        return False  # the client is gone: close our side too

    def pause_writing(self) -> None:
        # asyncio calls this from inside write() once unsent bytes pass the high-water mark
        self._relay._cut(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        self._relay._forget(self)

    def respond(self, data: bytes) -> None:
        """Send a one-shot answer and close (after the bytes are out)."""
        self.transport.write(data)
        self.transport.close()

    def retire_later(self, delay: float) -> None:
        """Close this client after ``delay`` seconds (``max_lifetime``); it resumes."""
        self._timer = self._relay._loop_call_later(delay, self.transport.close)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class RelayServer:
    """Serves each stream at ``/streams/<name>``, plus ``/health`` and ``/metrics``.

    Args:
        config: listen address, retention, client limits, auth and CORS.
        streams: the streams to serve when ``config.streams`` is None (more are added as
            they publish); ignored when ``config.streams`` lists them.
        history: persistent history (``store: sqlite``), or None for memory only.
        clock: wall clock in seconds (retention ages; persisted with the history).
    """

    def __init__(
        self,
        config: RelayConfig,
        streams: Iterable[str] = (),
        *,
        history: SQLiteHistory | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._history = history
        self._clock = clock
        self._dynamic = config.streams is None
        self._routes: dict[str, _Route] = {}
        for name in config.streams if config.streams is not None else streams:
            self._add_route(name)
        self._pending: set[_Client] = set()
        self._retry = encode_retry(round(config.retry * 1000))
        self._heartbeat = encode_comment()
        self._registry = build_relay_registry(self.counters)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._beat: asyncio.TimerHandle | None = None
        self._cuts_unlogged = 0
        self._cut_logged_at = -CUT_LOG_INTERVAL
        self.address: tuple[str, int] | None = None

    # -- lifecycle (any thread) ------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> tuple[str, int]:
        """Bind and serve in the relay's loop thread; returns the bound ``(host, port)``.

        Raises:
            RelayError: already started, or the address cannot be bound.
        """
        if self._thread is not None:
            raise RelayError("relay already started")
        ready: concurrent.futures.Future[tuple[str, int]] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="streamvisor-relay", daemon=True
        )
        self._thread.start()
        try:
            self.address = ready.result(timeout)
        except OSError as exc:
            self._thread.join(timeout)
            where = f"{self.config.host}:{self.config.port}"
            raise RelayError(f"cannot listen on {where}: {exc.strerror or exc}") from None
        return self.address

    def publish(self, stream: str, events: Sequence[Event]) -> None:
        """Relay the events of one read of ``stream``. Thread-safe, never blocks."""
        loop = self._loop
        if loop is None or not events:
            return
        try:
            # a copy: the caller may reuse its list once we return
            loop.call_soon_threadsafe(self._fanout, stream, tuple(events))
        except RuntimeError:
            pass  # the loop is closed: the relay is stopping

    def stop(self, timeout: float = 5.0) -> None:
        """Close every client (after what was written is sent) and the listener. Idempotent."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            loop.call_soon_threadsafe(self._shutdown)
        except RuntimeError:
            pass
        thread.join(timeout)
        if thread.is_alive():
            log.warning("relay loop did not stop within %.1fs", timeout)

    def counters(self) -> dict[str, RouteCounters]:
        """Per stream, the counters behind ``/metrics`` (read them in any thread)."""
        return {name: route.counters for name, route in self._routes.items()}

    # -- loop thread ---------------------------------------------------------------------
    def _run(self, ready: concurrent.futures.Future[tuple[str, int]]) -> None:
        loop = asyncio.new_event_loop()
        try:
            config = self.config
            server = loop.run_until_complete(
                loop.create_server(
                    lambda: _Client(self),
                    config.host.strip("[]"),
                    config.port,
                    backlog=_BACKLOG,
                    reuse_address=True,
                )
            )
        except OSError as exc:
            loop.close()
            ready.set_exception(exc)
            return
        self._server = server
        host, port = server.sockets[0].getsockname()[:2]
        self._loop = loop
        self._beat = loop.call_later(self.config.heartbeat, self._heartbeat_tick)
        ready.set_result((str(host), int(port)))
        try:
            loop.run_forever()
        finally:
            self._loop = None
            try:
                loop.run_until_complete(asyncio.wait_for(server.wait_closed(), 1.0))
            except TimeoutError:
                pass
            loop.close()

    def _loop_call_later(self, delay: float, callback: Callable[[], object]) -> asyncio.TimerHandle:
        assert self._loop is not None
        return self._loop.call_later(delay, callback)

    def _add_route(self, name: str) -> _Route:
        config, now = self.config, self._clock()
        history = self._history
        if history is None:
            ring = ReplayRing(config.max_events, config.max_age, new_epoch(now))
        else:
            epoch, last_seq, rows = history.load(name, now)
            if epoch is None:
                epoch = new_epoch(now)
                history.create(name, epoch)
            ring = ReplayRing(config.max_events, config.max_age, epoch, last_seq)
            if rows:
                ring = ReplayRing(config.max_events, config.max_age, epoch, rows[0][0] - 1)
                ring.restore(rows)
        route = self._routes[name] = _Route(name, ring)
        route.counters.retained = len(ring)
        return route

    def _fanout(self, stream: str, events: Sequence[Event]) -> None:
        route = self._routes.get(stream)
        if route is None:
            if not self._dynamic:
                return
            route = self._add_route(stream)
        now = self._clock()
        ring = route.ring
        ring.expire(now)
        first = ring.last_seq + 1
        frames = []
        for event in events:
            frame = encode_event(event, ring.next_id())
            ring.append(frame, now)
            frames.append(frame)
        data = frames[0] if len(frames) == 1 else b"".join(frames)
        counters = route.counters
        counters.events += len(frames)
        counters.retained = len(ring)
        if self._history is not None:
            self._history.append(stream, first, now, frames)
        clients = route.clients
        if clients:
            counters.deliveries += len(frames) * len(clients)
            for client in clients:
                client.transport.write(data)
            if route.cut:
                self._drop_cut(route)

    def _heartbeat_tick(self) -> None:
        assert self._loop is not None
        self._beat = self._loop.call_later(self.config.heartbeat, self._heartbeat_tick)
        beat, now = self._heartbeat, self._clock()
        for route in self._routes.values():
            route.ring.expire(now)
            route.counters.retained = len(route.ring)
            for client in route.clients:
                client.transport.write(beat)
            if route.cut:
                self._drop_cut(route)
        self._log_cuts()

    def _handle(self, client: _Client, request: http.Request) -> None:
        config = self.config
        path, method = request.path, request.method
        if path.startswith("/streams/"):
            cors = http.cors_headers(request, config.allow_origins, preflight=True)
            if method == "OPTIONS" and config.allow_origins:
                client.respond(http.plain_response(204, extra=cors))
            elif method != "GET":
                client.respond(_error(405, "method not allowed", [("Allow", "GET")]))
            elif not http.authorized(request, config.tokens):
                client.respond(_error(401, "unauthorized", [("WWW-Authenticate", "Bearer")]))
            elif path[9:] not in self._routes:
                client.respond(_error(404, "unknown stream"))
            else:
                self._attach(client, self._routes[path[9:]], request)
        elif path in ("/health", "/metrics"):
            if method not in ("GET", "HEAD"):
                client.respond(_error(405, "method not allowed", [("Allow", "GET, HEAD")]))
            elif path == "/health":
                clients = sum(len(route.clients) for route in self._routes.values())
                body = json.dumps({"status": "ok", "clients": clients}).encode()
                client.respond(_strip_body(http.plain_response(200, body), method))
            elif not http.authorized(request, config.tokens):
                client.respond(_error(401, "unauthorized", [("WWW-Authenticate", "Bearer")]))
            else:
                body = generate_latest(self._registry)
                reply = http.plain_response(200, body, CONTENT_TYPE_LATEST)
                client.respond(_strip_body(reply, method))
        else:
            client.respond(_error(404, "not found"))

    def _attach(self, client: _Client, route: _Route, request: http.Request) -> None:
        """Replay what the client missed and register it for live events, in one step."""
        counters = route.counters
        last_id = request.headers.get("last-event-id") or request.query.get("lastEventId")
        parts = [b"", self._retry]
        gap = False
        if last_id:
            resume = route.ring.since(last_id, self._clock())
            if resume.gap is not None:
                gap = True
                g = resume.gap
                parts.append(encode_gap(g.resume_id, g.last_event_id, g.oldest_retained, g.reason))
                counters.gaps += 1
            parts.extend(resume.frames)
            counters.replayed += len(resume.frames)
        parts[0] = http.stream_head(gap, http.cors_headers(request, self.config.allow_origins))
        client.route = route
        route.clients.add(client)
        counters.connections += 1
        counters.clients = len(route.clients)
        client.transport.write(b"".join(parts))
        if route.cut:
            self._drop_cut(route)
        elif self.config.max_lifetime is not None:
            client.retire_later(self.config.max_lifetime)

    def _cut(self, client: _Client) -> None:
        route = client.route
        if route is None or client not in route.clients:
            return
        route.cut.append(client)  # taken out of the set after the write loop
        client.transport.abort()
        route.counters.cuts += 1
        self._cuts_unlogged += 1
        self._log_cuts()

    def _drop_cut(self, route: _Route) -> None:
        for client in route.cut:
            route.clients.discard(client)
        route.cut.clear()
        route.counters.clients = len(route.clients)

    def _log_cuts(self) -> None:
        now = time.monotonic()
        if self._cuts_unlogged and now - self._cut_logged_at >= CUT_LOG_INTERVAL:
            log.warning(
                "relay: disconnected %d slow client(s) whose unsent bytes passed %d bytes; "
                "they can resume with Last-Event-ID",
                self._cuts_unlogged,
                self.config.max_buffer_bytes,
            )
            self._cuts_unlogged = 0
            self._cut_logged_at = now

    def _forget(self, client: _Client) -> None:
        self._pending.discard(client)
        route = client.route
        if route is not None:
            route.clients.discard(client)
            route.counters.clients = len(route.clients)

    def _shutdown(self) -> None:
        assert self._loop is not None and self._server is not None
        if self._beat is not None:
            self._beat.cancel()
        self._server.close()
        for client in list(self._pending):
            client.transport.abort()
        for route in self._routes.values():
            for client in list(route.clients):
                transport = client.transport
                # close() sends what is buffered first; a stalled client has nothing to wait for
                if transport.get_write_buffer_size():
                    transport.abort()
                else:
                    transport.close()
        self._loop.call_soon(self._loop.stop)  # after the connection_lost callbacks


def _error(status: int, message: str, extra: Sequence[tuple[str, str]] = ()) -> bytes:
    body = json.dumps({"error": message}).encode()
    return http.plain_response(status, body, extra=extra)


def _strip_body(response: bytes, method: str) -> bytes:
    if method != "HEAD":
        return response
    return response[: response.index(b"\r\n\r\n") + 4]
