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
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from streamvisor.errors import StreamvisorError
from streamvisor.relay import http
from streamvisor.relay.client import Client, Route
from streamvisor.relay.encoder import encode_comment, encode_event, encode_gap, encode_retry
from streamvisor.relay.metrics import RouteCounters, build_relay_registry
from streamvisor.relay.ring import ReplayRing, new_epoch, skip_stored
from streamvisor.relay.settings import RelayConfig
from streamvisor.sse import Event

if TYPE_CHECKING:
    from streamvisor.relay.history_sqlite import SQLiteHistory

__all__ = ["RelayError", "RelayServer"]

log = logging.getLogger(__name__)

CUT_LOG_INTERVAL = 10.0
"""Slow-client cuts are logged at most once per this many seconds (with a count)."""
_BACKLOG = 4096  # a reconnect storm of thousands must not overflow the accept queue
_BEARER = [("WWW-Authenticate", "Bearer")]
_UNAUTHORIZED = http.error_response(401, "unauthorized", _BEARER)
_GET_ONLY = http.error_response(405, "method not allowed", [("Allow", "GET")])
_GET_OR_HEAD = http.error_response(405, "method not allowed", [("Allow", "GET, HEAD")])


class RelayError(StreamvisorError):
    """The relay could not start (e.g. its address is in use)."""


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
        self._routes: dict[str, Route] = {}
        for name in config.streams if config.streams is not None else streams:
            self._add_route(name)
        self._pending: set[Client] = set()
        self._inbox: list[tuple[str, Sequence[Event]]] = []
        self._inbox_lock = threading.Lock()
        self._drain_due = False
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
        """Relay the events of one read of ``stream``. Thread-safe, never blocks.

        Crosses into the loop with one ``call_soon_threadsafe`` per read, or fewer: reads
        that arrive while the loop has not yet taken the previous ones join them, and the
        loop then writes each stream's events to each client in one write.
        """
        loop = self._loop
        if loop is None or not events:
            return
        with self._inbox_lock:
            self._inbox.append((stream, tuple(events)))  # a copy: the caller may reuse its list
            if self._drain_due:
                return
            self._drain_due = True
        try:
            loop.call_soon_threadsafe(self._drain)
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
        # list() copies in one step under the GIL: the loop thread may add a route meanwhile
        return {name: route.counters for name, route in list(self._routes.items())}

    # -- loop thread ---------------------------------------------------------------------
    def _run(self, ready: concurrent.futures.Future[tuple[str, int]]) -> None:
        loop = asyncio.new_event_loop()
        try:
            config = self.config
            server = loop.run_until_complete(
                loop.create_server(
                    lambda: Client(self, self.config.max_buffer_bytes),
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

    def _add_route(self, name: str) -> Route:
        config, now = self.config, self._clock()
        stored: set[str] = set()
        if self._history is None:
            ring = ReplayRing(config.max_events, config.max_age, new_epoch(now))
        else:
            ring, stored = self._history.open_ring(name, now)
        route = self._routes[name] = Route(name, ring, stored)
        route.counters.retained = len(ring)
        return route

    def _drain(self) -> None:
        with self._inbox_lock:
            batch, self._inbox = self._inbox, []
            self._drain_due = False
        if len(batch) == 1:
            self._fanout(*batch[0])
            return
        merged: dict[str, list[Event]] = {}
        for stream, events in batch:
            merged.setdefault(stream, []).extend(events)
        for stream, events in merged.items():
            self._fanout(stream, events)

    def _fanout(self, stream: str, events: Sequence[Event]) -> None:
        route = self._routes.get(stream)
        if route is None:
            if not self._dynamic:
                return
            route = self._add_route(stream)
        history = self._history
        if history is not None:
            events, keys = skip_stored(route.stored, events)
            if not events:
                return
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
        if history is not None:
            history.append(stream, first, now, frames, keys)
        clients = route.clients
        if clients:
            counters.deliveries += len(frames) * len(clients)
            for client in clients:
                transport = client.transport
                if not transport.is_closing():  # lost, not yet forgotten (connection_lost)
                    transport.write(data)
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
                if not client.transport.is_closing():
                    client.transport.write(beat)
            if route.cut:
                self._drop_cut(route)
        self._log_cuts()

    # -- client callbacks (loop thread) -----------------------------------------------------
    def client_opened(self, client: Client) -> None:
        """A connection was accepted; its request head is still to come."""
        self._pending.add(client)

    def client_request(self, client: Client, request: http.Request) -> None:
        """A client's request head is complete: answer it, or attach it to a stream."""
        self._pending.discard(client)
        config = self.config
        path, method = request.path, request.method
        if path.startswith("/streams/"):
            cors = http.cors_headers(request, config.allow_origins, preflight=True)
            if method == "OPTIONS" and config.allow_origins:
                client.respond(http.plain_response(204, extra=cors))
            elif method != "GET":
                client.respond(_GET_ONLY)
            elif not http.authorized(request, config.tokens):
                # An allowed origin may read the refusal: a fetch()-based client sees the
                # 401, not a CORS error.
                origin = http.cors_headers(request, config.allow_origins)
                client.respond(
                    http.error_response(401, "unauthorized", [*_BEARER, *origin])
                    if origin
                    else _UNAUTHORIZED
                )
            elif path[9:] not in self._routes:
                origin = http.cors_headers(request, config.allow_origins)
                client.respond(http.error_response(404, "unknown stream", origin))
            else:
                self._attach(client, self._routes[path[9:]], request)
        elif path in ("/health", "/metrics"):
            if method not in ("GET", "HEAD"):
                client.respond(_GET_OR_HEAD)
            elif path == "/health":
                clients = sum(len(route.clients) for route in self._routes.values())
                body = json.dumps({"status": "ok", "clients": clients}).encode()
                client.respond(http.head_only(http.plain_response(200, body), method))
            elif not http.authorized(request, config.tokens):
                client.respond(_UNAUTHORIZED)
            else:
                body = generate_latest(self._registry)
                reply = http.plain_response(200, body, CONTENT_TYPE_LATEST)
                client.respond(http.head_only(reply, method))
        else:
            client.respond(http.error_response(404, "not found"))

    def _attach(self, client: Client, route: Route, request: http.Request) -> None:
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
            # +-10 %: clients that connected together must not all come back together
            client.retire_later(self.config.max_lifetime * random.uniform(0.9, 1.1))

    def client_overflow(self, client: Client) -> None:
        """A client's unsent bytes passed ``max_buffer_bytes``: cut it (it resumes)."""
        route = client.route
        if route is None or client not in route.clients:
            return
        route.cut.append(client)  # taken out of the set after the write loop
        client.transport.abort()
        route.counters.cuts += 1
        self._cuts_unlogged += 1
        self._log_cuts()

    def _drop_cut(self, route: Route) -> None:
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

    def client_lost(self, client: Client) -> None:
        """A client's connection is gone."""
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
