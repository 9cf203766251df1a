"""The admin HTTP endpoint: /health, /ready, /streams (JSON) and /metrics on one port, plus
the views (``streamvisor.views.routes``): the status page ``/``, its live feed
``/status/events`` and the stream commands ``POST /streams/<name>/reconnect|close|start``.

Rule: one ``wsgiref`` server, bound where it is told (127.0.0.1 by default in the config),
quiet per request, one daemon thread per connection (a live feed holds its thread; the
feeds are capped). Every answer comes from the ``snapshot`` and ``ready`` callables at
request time. Those callables own their deadlines (``Streamvisor.status()`` asks with a
timeout); any exception they raise becomes a 503 with a short JSON body, never a traceback.
``stop()`` ends open feeds and idle connections at once (their sockets are shut down).
"""

from __future__ import annotations

import enum
import json
import logging
import math
import socket
import socketserver
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer
from wsgiref.types import StartResponse, WSGIEnvironment

from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from streamvisor.daemon.metrics import build_registry
from streamvisor.errors import StreamvisorError
from streamvisor.policy.redact import Redactor
from streamvisor.views.ringlog import RingLogHandler
from streamvisor.views.routes import MAX_FEEDS, StreamCommands, ViewRoutes

__all__ = ["REQUEST_TIMEOUT", "AdminError", "AdminServer"]

log = logging.getLogger(__name__)

_JSON = "application/json"
_ROUTES = ("/health", "/ready", "/streams", "/metrics")
_THREAD_NAME = "streamvisor-admin"
_REQUEST_THREAD_NAME = "streamvisor-admin-request"

REQUEST_TIMEOUT = 2.0
"""Socket timeout per connection: a client that stalls holds the serving thread this long."""


class AdminError(StreamvisorError):
    """The admin server could not start (e.g. its address is in use)."""


def _jsonable(value: Any) -> Any:
    """Return ``value`` made of dicts, lists, str, int, finite float, bool and None only."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, enum.Enum):
        return _jsonable(value.value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return str(value)


def _format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Handler(WSGIRequestHandler):
    # A client that connects and sends nothing, or stops reading, gives up its thread.
    timeout = REQUEST_TIMEOUT
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Send per-request lines to DEBUG instead of stderr (the feed's token scrubbed)."""
        scrub = self.server.redactor.scrub
        args = tuple(scrub(a) if isinstance(a, str) else a for a in args)
        log.debug("%s " + format, self.address_string(), *args)


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    allow_reuse_port = False  # two daemons on one port must fail, not share it
    daemon_threads = True
    block_on_close = False  # stop() joins the request threads itself, with a deadline
    redactor = Redactor()

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve each connection in its own daemon thread, remembered until it ends."""
        thread = threading.Thread(
            target=self._serve_one, args=(request, client_address), name=_REQUEST_THREAD_NAME
        )
        thread.daemon = True
        with self._live_lock:
            self._live[thread] = request
        thread.start()

    def _serve_one(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._live_lock:
                self._live.pop(threading.current_thread(), None)

    def end_requests(self, timeout: float) -> None:
        """Shut down every open connection's socket (waking its thread) and join them."""
        with self._live_lock:
            live = dict(self._live)
        for request in live.values():
            try:
                request.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by its thread
        for thread in live:
            thread.join(timeout)

    def server_bind(self) -> None:
        self._live: dict[threading.Thread, Any] = {}
        self._live_lock = threading.Lock()
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup; skip it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)
        self.setup_environ()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log a broken connection at DEBUG instead of printing a traceback."""
        log.debug("error serving %s", client_address, exc_info=True)


class _Server6(_Server):
    address_family = socket.AF_INET6


class AdminServer:
    """Serve health, readiness, stream status, Prometheus metrics and the views over HTTP.

    Args:
        host: address to bind, an IPv4 or IPv6 literal (``"::1"``, brackets allowed) or a name.
        port: port to bind; 0 picks a free one (see ``address``).
        snapshot: returns the ``Streamvisor.status()`` mapping.
        ready: returns True when the daemon is ready (``/ready`` answers 200).
        registry: what ``/metrics`` exposes; by default ``build_registry(snapshot)``.
        commands: what the stream commands act on (a ``Streamvisor``); None answers 503.
        token: the ``admin.token`` the page's feed and the commands require, or None.
        log_ring: keeps recent WARNING+ log records for the page; attached to the root
            logger from ``start()`` to ``stop()``.
        feed_interval: seconds between the live feed's snapshots.
        max_feeds: live feeds open at once (each holds a thread); more get 503.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        snapshot: Callable[[], Mapping[str, Any]],
        ready: Callable[[], bool],
        registry: CollectorRegistry | None = None,
        commands: StreamCommands | None = None,
        token: str | None = None,
        log_ring: RingLogHandler | None = None,
        feed_interval: float = 1.0,
        max_feeds: int = MAX_FEEDS,
    ) -> None:
        self._host = host.strip("[]")
        self._port = port
        self._snapshot = snapshot
        self._ready = ready
        self._registry = registry if registry is not None else build_registry(snapshot)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._failing = False
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._token = token
        self._log_ring = log_ring
        self._views = ViewRoutes(
            self._feed_status,
            self._closing,
            commands=commands,
            token=token,
            log_lines=log_ring.lines if log_ring is not None else None,
            interval=feed_interval,
            max_feeds=max_feeds,
        )

    @property
    def address(self) -> tuple[str, int] | None:
        """The bound ``(host, port)`` while serving, else None."""
        server = self._server
        if server is None:
            return None
        host, port = server.server_address[:2]
        return str(host), int(port)

    @property
    def open_feeds(self) -> int:
        """How many live feeds (``/status/events``) are open now."""
        return self._views.open_feeds

    def set_stopping(self) -> None:
        """Make ``/health`` report ``"stopping"`` (still 200) during a graceful shutdown."""
        self._stopping.set()

    def start(self) -> tuple[str, int]:
        """Bind and serve in one daemon thread.

        Returns:
            The bound ``(host, port)``.

        Raises:
            AdminError: already started, or the address cannot be bound.
        """
        with self._lock:
            if self._server is not None:
                raise AdminError("admin server already started")
            where = _format_address(self._host, self._port)
            try:
                family = socket.getaddrinfo(
                    self._host, self._port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
                )[0][0]
                server_class = _Server6 if family == socket.AF_INET6 else _Server
                server = server_class((self._host, self._port), _Handler)
            except (OSError, OverflowError) as exc:
                reason = getattr(exc, "strerror", None) or str(exc)
                raise AdminError(f"cannot listen on {where}: {reason}") from exc
            server.set_app(self._app)
            server.redactor = Redactor([self._token] if self._token else [])
            self._closing.clear()
            if self._log_ring is not None:
                logging.getLogger().addHandler(self._log_ring)
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.2}, name=_THREAD_NAME
            )
            thread.daemon = True
            self._server, self._thread = server, thread
            thread.start()
            host, port = server.server_address[:2]
            address = (str(host), int(port))
            log.info("admin endpoint listening on %s", _format_address(*address))
            return address

    def stop(self, timeout: float = 2.0) -> None:
        """Stop serving, close the socket and join the thread; a no-op when not running.

        Args:
            timeout: how long to wait for the serving thread to end.
        """
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
            if server is None or thread is None:
                return
            self._closing.set()  # open feeds end within a tick
            if thread.is_alive():
                server.shutdown()
            thread.join(timeout)
            server.server_close()
            # A request busy in a snapshot ends when its ask times out; its reply is lost.
            server.end_requests(timeout)
            if self._log_ring is not None:
                logging.getLogger().removeHandler(self._log_ring)
            if thread.is_alive():
                log.warning("admin thread did not stop within %.1fs", timeout)

    # WSGI application -------------------------------------------------------------------

    def _app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/")
        if self._views.handles(path):
            return self._views(environ, start_response)
        if path not in _ROUTES:
            status, ctype, body = "404 Not Found", _JSON, b'{"error": "not found"}'
        elif method not in ("GET", "HEAD"):
            status, ctype, body = (
                "405 Method Not Allowed",
                _JSON,
                b'{"error": "method not allowed"}',
            )
        else:
            status, ctype, body = self._route(path)
        headers = [("Content-Type", ctype), ("Content-Length", str(len(body)))]
        if status.startswith("405"):
            headers.append(("Allow", "GET, HEAD"))
        headers.append(("Cache-Control", "no-store"))
        start_response(status, headers)
        return [] if method == "HEAD" else [body]

    def _route(self, path: str) -> tuple[str, str, bytes]:
        if path == "/health":
            text = "stopping" if self._stopping.is_set() else "ok"
            return "200 OK", _JSON, json.dumps({"status": text}).encode()
        try:
            if path == "/ready":
                ok = bool(self._ready())
                result = (
                    "200 OK" if ok else "503 Service Unavailable",
                    _JSON,
                    _dump({"ready": ok}),
                )
            elif path == "/streams":
                result = ("200 OK", _JSON, _dump(self._status()))
            else:
                result = ("200 OK", CONTENT_TYPE_LATEST, generate_latest(self._registry))
        except Exception as exc:
            return self._unavailable(path, exc)
        if self._failing:
            self._failing = False
            log.info("status available again")
        return result

    def _status(self, *, feed: bool = False) -> dict[str, Any]:
        """The ``/streams`` body: streams and subscribers, JSON-ready (the feed adds
        ``started_at``)."""
        status = self._snapshot()
        parts = {
            "streams": status.get("streams", {}),
            "subscribers": status.get("subscribers", {}),
        }
        if feed and status.get("started_at") is not None:
            parts["started_at"] = status["started_at"]
        if "cluster" in status:  # cluster mode: member, live instances, quota, leases
            parts["cluster"] = status["cluster"]
        result: dict[str, Any] = _jsonable(parts)
        return result

    def _feed_status(self) -> dict[str, Any]:
        return self._status(feed=True)

    def _unavailable(self, path: str, exc: Exception) -> tuple[str, str, bytes]:
        # WARNING once per outage: a scraper every few seconds must not flood the log.
        level = logging.DEBUG if self._failing else logging.WARNING
        log.log(level, "%s unavailable: %s: %s", path, type(exc).__name__, exc)
        self._failing = True
        body: dict[str, Any] = {"error": "status unavailable", "reason": type(exc).__name__}
        if path == "/ready":
            body["ready"] = False
        return "503 Service Unavailable", _JSON, _dump(body)


def _dump(value: Any) -> bytes:
    return json.dumps(value, allow_nan=False).encode()
