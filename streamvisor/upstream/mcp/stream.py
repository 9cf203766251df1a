"""``McpStream``: one ``kind: mcp`` upstream's session, shared by its connection attempts
and by callers of ``sv.call``; it initializes, replays ``after_initialize`` and answers.

Thread-safe: the stream's reader thread and any number of calling threads use it. One lock
serialises (re)initialization, so two threads that both hit a 404 start one new session.
The session's id is never logged; errors carry redacted URLs only.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import requests

from streamvisor.errors import ReadTimeoutError, StreamError, StreamProtocolError
from streamvisor.policy.classify import Action, classify
from streamvisor.policy.redact import redact_url
from streamvisor.spec import StreamSpec
from streamvisor.sse import Event
from streamvisor.upstream.connector import shared_session
from streamvisor.upstream.mcp import jsonrpc, modern
from streamvisor.upstream.mcp.call import StatusAnswer, Target, discover, exchange, result_of
from streamvisor.upstream.mcp.jsonrpc import McpCallError
from streamvisor.upstream.mcp.mailbox import Mailbox
from streamvisor.upstream.mcp.options import McpOptions, parse_options
from streamvisor.upstream.mcp.session import Era, McpSession, session_id_from
from streamvisor.upstream.mcp.transport import delete, request_headers

__all__ = ["LegacySseFailedError", "LegacySseRequired", "McpStream", "Publish"]

log = logging.getLogger(__name__)

Publish = Callable[[str, Sequence[Event]], None]
SESSION_RESTARTED = "mcp/session_restarted"


class Listener(Protocol):
    """The stream's current listening connection, told when another thread re-initialized."""

    def session_changed(self) -> None: ...
    def wake(self) -> None: ...


class LegacySseRequired(StreamError):
    """The server speaks the 2024-11-05 HTTP+SSE transport: its session lives on the GET
    stream, which the listening connection opens."""


class LegacySseFailedError(McpCallError, StreamError):
    """The HTTP+SSE attempt a caller waited for failed before its session was ready. The
    text gives the real cause: what ``initialize`` was answered (when HTTP+SSE was a
    fallback) and how the fallback failed. Both an ``McpCallError`` and a ``StreamError``."""


class McpStream:
    """The shared, per-stream MCP state (see the module docstring).

    Args:
        spec: the ``kind: mcp`` stream.
        http: the requests session (default: the process-wide shared one).
        publish: called with ``(stream, events)`` for messages that arrive outside the
            listening stream (a call's progress and log notifications).
        clock: monotonic clock.
    """

    def __init__(
        self,
        spec: StreamSpec,
        *,
        http: requests.Session | None = None,
        publish: Publish | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spec = spec
        self.options: McpOptions = parse_options(spec.mcp)
        self.session = McpSession(self.options)
        self.http = http or shared_session()
        self.publish = publish
        self.clock = clock
        self.url_shown = redact_url(spec.url)
        self._init_lock = threading.Lock()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._ids = itertools.count(1)
        self.mail = Mailbox(clock)
        self.listener: Listener | None = None
        self.legacy_request: Callable[[dict[str, Any], float], Any] | None = None
        self.restart_reason = "expired"

    # -- identity and headers --------------------------------------------------------------
    def next_id(self) -> int:
        return next(self._ids)

    @property
    def post_url(self) -> str:
        """Where messages go: the HTTP+SSE ``endpoint`` in that era, else the stream URL."""
        return self.session.endpoint or self.spec.url

    def target(self, extra: dict[str, str] | None = None) -> Target:
        headers = self.session.headers()
        if extra:
            headers.update(extra)
        return Target(self.http, self.spec, self.post_url, request_headers(self.spec, headers))

    def prepare(self, message: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """Add the 2026 envelope when that era was negotiated."""
        s = self.session
        if s.era is Era.MODERN and s.protocol_version is not None:
            return modern.envelope(message, s.protocol_version, self.options.client_info_dict())
        return message, {}

    # -- session -----------------------------------------------------------------------------
    def ensure_session(self, deadline: float) -> None:
        """Make sure a session is ready, initializing one if needed.

        Raises:
            LegacySseRequired: the server speaks HTTP+SSE (the listening connection makes
                those sessions).
            StreamError: initialize failed (``classify`` tells whether for good);
                ``ReadTimeoutError`` at ``deadline``.
        """
        if self.session.ready:
            return
        if self.session.era is Era.LEGACY_SSE:
            raise LegacySseRequired(f"{self.url_shown} speaks the 2024-11-05 HTTP+SSE transport")
        # Bounded: another initialize (the stream's) must not hold a call past its timeout.
        if not self._init_lock.acquire(timeout=max(deadline - self.clock(), 0.0)):
            raise ReadTimeoutError(f"{self.url_shown}: no session in time (initialize pending)")
        try:
            if not self.session.ready:
                self._initialize(deadline)
        except StreamError as exc:
            if classify(exc) is Action.PERMANENT:
                self.session.failed(str(exc))
            raise
        finally:
            self._init_lock.release()

    def _initialize(self, deadline: float) -> None:
        s, o = self.session, self.options
        version, not_modern = o.modern_version, ""
        if version is not None and s.era in (Era.UNKNOWN, Era.MODERN):
            not_modern = self._probe(version, deadline)
            if not not_modern:
                self._ready(Era.MODERN, None, version)
                return
        if o.listen == "subscriptions":
            raise StreamProtocolError(
                f"{self.url_shown} does not speak 2026-07-28 (listen: subscriptions needs it)"
                + (f": {not_modern}" if not_modern else "")
            )
        offered = o.handshake_versions
        if not offered:
            raise StreamProtocolError(f"{self.url_shown} does not speak any offered version")
        s.session_id, s.protocol_version = None, None
        params = {
            "protocolVersion": offered[0],
            "capabilities": {},
            "clientInfo": o.client_info_dict(),
        }
        message = jsonrpc.request(self.next_id(), "initialize", params)
        target = Target(self.http, self.spec, self.spec.url, request_headers(self.spec, {}))
        answered: list[Any] = []
        try:
            response = exchange(
                target,
                message,
                deadline,
                self.side_message,
                resumable=False,
                on_headers=answered.append,
            )
        except StatusAnswer as exc:
            if s.initialize_verdict(exc.status):
                s.fall_back(f"initialize answered {exc}")
                raise LegacySseRequired(
                    f"{self.url_shown} answered initialize with HTTP {exc.status}: "
                    "trying the 2024-11-05 HTTP+SSE transport"
                ) from None
            raise
        result = result_of(response, "initialize")
        # The session id is taken only from the response carrying InitializeResult.
        session_id = session_id_from(answered[0] if answered else None, self.url_shown)
        self.finish_initialize(Era.STREAMABLE, result, session_id, deadline)

    def finish_initialize(
        self, era: Era, result: Any, session_id: str | None, deadline: float
    ) -> None:
        """Check the InitializeResult, send ``notifications/initialized``, replay
        ``after_initialize`` and mark the session ready (both handshake eras).

        Raises:
            StreamProtocolError: no result, or a protocol version that was not offered.
            StatusAnswer, StreamError: ``notifications/initialized`` failed.
        """
        s = self.session
        if not isinstance(result, dict):
            raise StreamProtocolError(f"{self.url_shown}: initialize returned no result")
        version = result.get("protocolVersion")
        if not isinstance(version, str) or version not in self.options.protocol_versions:
            raise StreamProtocolError(
                f"{self.url_shown}: server chose protocol version {version!r}, not offered"
            )
        s.era, s.session_id, s.protocol_version = era, session_id, version
        self.post(jsonrpc.notification("notifications/initialized"), deadline)
        for method, params in self.options.after_initialize_calls():
            try:
                self.request_on_session(method, params, deadline)
            except (McpCallError, StreamError) as exc:
                log.warning(
                    "stream %s: %s after initialize failed: %s", self.spec.name, method, exc
                )
        self._ready(era, session_id, version)

    def side_message(self, msg: dict[str, Any], sse_id: str | None) -> None:
        """A message on a POST's answer stream: answer requests, publish the rest."""
        if jsonrpc.is_request(msg):
            self.answer(msg)
            if msg.get("method") == "ping":
                return
        self.publish_messages([msg])

    def _probe(self, version: str, deadline: float) -> str:
        """``server/discover`` at the 2026 version: "" when the server speaks it, else why
        it does not (any answer that is not a discover result means "not 2026")."""
        message, headers = modern.envelope(
            jsonrpc.request(self.next_id(), "server/discover", {}),
            version,
            self.options.client_info_dict(),
        )
        target = Target(self.http, self.spec, self.spec.url, request_headers(self.spec, headers))
        until = min(deadline, self.clock() + self.spec.read_timeout)
        return discover(target, message, version, until, self.side_message)

    def _ready(self, era: Era, session_id: str | None, version: str) -> None:
        with self._changed:
            restarted = self.session.initialized(era, session_id, version)
            self._changed.notify_all()
        log.info(
            "stream %s: MCP session ready (%s, protocol %s, initialize #%d)",
            self.spec.name,
            era.value,
            version,
            self.session.initializations,
        )
        listener = self.listener
        if listener is not None:
            listener.session_changed()
        if restarted and era is not Era.MODERN:
            self.queue_synthetic(
                SESSION_RESTARTED,
                {"reason": self.restart_reason, "initializations": self.session.initializations},
            )

    def expire(self, session_id: str | None) -> bool:
        """A 404 answered a request carrying ``session_id``: drop it (compare-and-drop)."""
        with self._lock:
            dropped = self.session.expire(session_id)
        if dropped:
            log.info("stream %s: MCP session expired (404); initializing again", self.spec.name)
        return dropped

    def wait_ready(self, deadline: float) -> bool:
        """Wait (for an HTTP+SSE session the listening connection makes) until ready;
        False at ``deadline``.

        Raises:
            LegacySseFailedError: the last HTTP+SSE attempt failed (at once, with why).
        """
        with self._changed:
            while not self.session.ready:
                if self.session.fallback_error is not None:
                    raise LegacySseFailedError(self.session.fallback_error)
                left = deadline - self.clock()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def notify_changed(self) -> None:
        with self._changed:
            self._changed.notify_all()

    # -- messages ----------------------------------------------------------------------------
    def post(self, message: dict[str, Any], deadline: float) -> None:
        """POST a notification or response; 200 and 202 are fine.

        Raises:
            StatusAnswer: any other status (404: session expired).
        """
        message, extra = self.prepare(message)
        exchange(self.target(extra), message, deadline, self.side_message, resumable=False)

    def request_on_session(
        self, method: str, params: dict[str, Any] | None, deadline: float
    ) -> Any:
        """One request on the current session (no re-initialize); returns its result."""
        message, extra = self.prepare(jsonrpc.request(self.next_id(), method, params))
        s = self.session
        if s.era is Era.LEGACY_SSE:
            if self.legacy_request is None:
                raise McpCallError("the HTTP+SSE stream is not connected")
            return self.legacy_request(message, deadline)
        response = exchange(
            self.target(extra),
            message,
            deadline,
            self.side_message,
            resumable=s.era is Era.STREAMABLE and s.session_id is not None,
        )
        return result_of(response, method)

    def answer(self, msg: dict[str, Any]) -> None:
        """Answer a server-to-client request: ``ping`` -> ``{}``, anything else -> -32601
        (streamvisor declares no client capabilities; basic/utilities/ping: MUST respond)."""
        method = str(msg.get("method"))
        self.session.server_request(method)
        if method == "ping":
            reply = jsonrpc.result_response(msg.get("id"), {})
        else:
            reply = jsonrpc.error_response(
                msg.get("id"), jsonrpc.METHOD_NOT_FOUND, f"{method} is not supported"
            )
        try:
            self.post(reply, self.clock() + self.spec.read_timeout)
        except (StreamError, McpCallError) as exc:
            log.info("stream %s: answering %s failed: %s", self.spec.name, method, exc)

    def ping(self) -> float:
        """A ``ping`` request; returns the round trip in seconds.

        Raises:
            StatusAnswer: e.g. 404 when the session expired.
            StreamError, McpCallError: the ping failed.
        """
        started = self.clock()
        self.request_on_session("ping", None, started + self.spec.read_timeout)
        rtt = self.clock() - started
        self.session.last_ping_rtt = rtt
        return rtt

    def publish_messages(self, messages: Sequence[dict[str, Any]]) -> None:
        """Publish messages that arrived outside the listening stream (a call's progress
        and log notifications), as events without an id: their SSE ids belong to another
        stream and must not move the cursor.

        With a ``publish`` hook they go out at once; without one they are handed to the
        listening connection, whose ``read()`` emits them (at once when no listening stream
        is open, else with its next chunk), so dedup and fan-out stay in the stream's thread.
        """
        if not messages:
            return
        if self.publish is not None:
            now = time.time()
            cursor = self.session.cursor
            events = [
                Event(self.spec.name, None, jsonrpc.event_name(m), jsonrpc.dumps(m), cursor, now)
                for m in messages
            ]
            try:
                self.publish(self.spec.name, events)
            except Exception:
                log.exception("stream %s: publishing call messages failed", self.spec.name)
            return
        for msg in messages:
            self.mail.push(jsonrpc.encode_event(jsonrpc.event_name(msg), jsonrpc.dumps(msg)))
        listener = self.listener
        if listener is not None:
            listener.wake()

    def queue_synthetic(self, event: str, data: dict[str, Any]) -> None:
        """Queue an ``mcp/...`` event for the listening stream (an empty ``id:`` after a new
        session, so the old session's Last-Event-ID is neither resumed nor checkpointed)."""
        self.mail.queue(event, data, "" if event == SESSION_RESTARTED else None)

    # -- stop and status ---------------------------------------------------------------------
    def close(self, timeout: float = 2.0) -> None:
        """DELETE the session (unless ``persist_session`` or not ``delete_on_stop``); a 405
        (termination not allowed) or any failure is tolerated."""
        s = self.session
        if s.session_id is None or s.era is not Era.STREAMABLE:
            return
        if self.options.persist_session or not self.options.delete_on_stop:
            return
        status = delete(
            self.http, self.spec, self.spec.url, request_headers(self.spec, s.headers()), timeout
        )
        log.debug("stream %s: DELETE session answered %s", self.spec.name, status)
        with self._lock:
            s.discard()

    def status(self) -> dict[str, Any]:
        return self.session.snapshot()
