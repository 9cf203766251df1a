"""Opening the two listening channels that are not a 2025 GET: the deprecated 2024-11-05
HTTP+SSE transport (a fallback) and the 2026-07-28 ``subscriptions/listen`` stream.

The client GETs the SSE endpoint; the server's first event is ``endpoint``, whose data is
the URI to POST messages to; answers arrive as ``message`` events on the GET stream. There
are no event ids and no resumption: every connection is a new session, initialized again
(2024-11-05 basic/transports "HTTP with SSE"; fallback per 2025-11-25 "Backwards
Compatibility"). The endpoint must have the stream's origin (as the python SDK requires).
An attempt that fails before its session is ready is recorded on the session, so callers
waiting for it fail at once with the real cause, then raised for the supervisor.
"""

from __future__ import annotations

import threading
import urllib.parse
from typing import TYPE_CHECKING, Any

from streamvisor.errors import ConnectError, StreamError, StreamProtocolError
from streamvisor.upstream.connection import Connection
from streamvisor.upstream.mcp import jsonrpc
from streamvisor.upstream.mcp.call import McpTimeoutError, exchange, result_of
from streamvisor.upstream.mcp.jsonrpc import McpCallError
from streamvisor.upstream.mcp.normalise import Normaliser
from streamvisor.upstream.mcp.session import Era, ListenPhase
from streamvisor.upstream.mcp.transport import ACCEPT_BOTH

if TYPE_CHECKING:
    from streamvisor.upstream.mcp.connection import McpConnection

__all__ = ["RESYNC", "endpoint_url", "open_legacy", "open_subscription"]

RESYNC = "mcp/resync"


def endpoint_url(base: str, data: str) -> str:
    """Resolve the ``endpoint`` event's URI against the stream URL.

    Raises:
        StreamProtocolError: the endpoint is on another origin.
    """
    url = urllib.parse.urljoin(base, data.strip())
    a, b = urllib.parse.urlsplit(base), urllib.parse.urlsplit(url)
    if (a.scheme, a.hostname, a.port) != (b.scheme, b.hostname, b.port):
        raise StreamProtocolError("the HTTP+SSE endpoint event names another origin")
    return url


def open_legacy(conn: McpConnection, deadline: float) -> None:
    """GET the stream, take the endpoint, initialize over it (a new session each time).

    Raises:
        StreamError, McpCallError: the attempt failed (recorded first, see the module).
    """
    st = conn.stream
    st.session.fallback_error = None  # callers wait for this attempt
    try:
        _open_legacy(conn, deadline)
    except (StreamError, McpCallError) as exc:
        if not conn.interrupted:
            text = _failed(conn, exc)
            if st.session.fallback_cause is not None and isinstance(exc, StreamError):
                # The stream's error (its last_error, tail's one line) names the real
                # cause too: "HTTP 405" alone hides that initialize was answered 404. The
                # class stays, so the failure is classified as before.
                exc.args = (text,)
        raise


def _failed(conn: McpConnection, exc: Exception) -> str:
    """Record the failure for the callers waiting for the session; returns its text."""
    st = conn.stream
    cause = st.session.fallback_cause
    if cause is not None:
        text = f"{st.url_shown}: {cause}, and the 2024-11-05 HTTP+SSE fallback failed: {exc}"
    else:
        text = f"{st.url_shown}: the HTTP+SSE stream failed: {exc}"
    st.session.legacy_failed(text)
    st.notify_changed()
    return text


def _open_legacy(conn: McpConnection, deadline: float) -> None:
    st = conn.stream
    s = st.session
    if s.initializations:
        st.restart_reason = "reconnect"
    s.discard()
    s.era = Era.LEGACY_SSE
    segment = Connection(conn.segment_spec("GET", {}), None, session=st.http)
    if not conn.attach(segment):
        return
    s.listen = ListenPhase.CONNECTING
    segment.open()
    norm = conn.normaliser = Normaliser(st)
    decoder = norm.decoder
    endpoint: str | None = None
    while endpoint is None:
        chunk = segment.read()
        if not chunk:
            if conn.interrupted:
                return
            raise ConnectError(f"{st.url_shown}: the HTTP+SSE stream closed before its endpoint")
        events = decoder.feed(chunk)
        for i, ev in enumerate(events):
            if ev.event == "endpoint":
                endpoint = endpoint_url(st.spec.url, ev.data)
                conn.buffer(norm.convert(events[i + 1 :]))
                break
    s.endpoint = endpoint

    def request(message: dict[str, Any], until: float) -> Any:
        return legacy_request(conn, message, until)

    st.legacy_request = request
    offered = st.options.handshake_versions
    params = {
        "protocolVersion": offered[0] if offered else "2024-11-05",
        "capabilities": {},
        "clientInfo": st.options.client_info_dict(),
    }
    result = request(jsonrpc.request(st.next_id(), "initialize", params), deadline)
    st.finish_initialize(Era.LEGACY_SSE, result, None, deadline)
    st.restart_reason = "expired"
    s.opened()


def legacy_request(conn: McpConnection, message: dict[str, Any], deadline: float) -> Any:
    """POST a request to the endpoint; its answer comes on the GET stream. From the reader
    thread (during ``open()``) the stream is read here; other threads wait for the reader.

    Raises:
        McpTimeoutError: no answer before ``deadline``.
        McpCallError: a JSON-RPC error.
        StreamError: the stream or the POST failed.
    """
    st = conn.stream
    msg_id = message["id"]
    slot = st.mail.expect(msg_id)
    try:
        response = exchange(st.target(), message, deadline, st.side_message, resumable=False)
        if response is not None:
            return result_of(response)
        if conn.reader == threading.get_ident():
            while not slot:
                segment = conn.segment
                chunk = segment.read() if segment is not None else b""
                if not chunk:
                    raise ConnectError(f"{st.url_shown}: the HTTP+SSE stream closed")
                conn.buffer(conn.normaliser.feed(chunk))
                if not slot and st.clock() >= deadline:
                    raise McpTimeoutError(f"no answer to {message.get('method')} in time")
        elif not st.mail.wait(slot, deadline):
            raise McpTimeoutError(f"no answer to {message.get('method')} in time")
        return result_of(slot[0])
    finally:
        st.mail.forget(msg_id)


def open_subscription(conn: McpConnection) -> None:
    """POST ``subscriptions/listen`` and wait for its acknowledgment (2026-07-28
    basic/patterns/subscriptions: the first message MUST be the ack). Nothing is replayed
    on this transport, so every listen after the first publishes ``mcp/resync``."""
    st = conn.stream
    s = st.session
    listen_id = f"listen-{st.next_id()}"
    params = {"notifications": st.options.filter_dict()}
    message, extra = st.prepare(jsonrpc.request(listen_id, "subscriptions/listen", params))
    extra["Accept"] = ACCEPT_BOTH
    segment = Connection(conn.segment_spec("POST", extra, message), None, session=st.http)
    if not conn.attach(segment):
        return
    s.listen = ListenPhase.CONNECTING
    segment.open()
    norm = conn.normaliser = Normaliser(st, listen_id=listen_id)
    conn.mark_generation()
    while not norm.acked:
        chunk = segment.read()
        if not chunk:
            if conn.interrupted:
                return
            raise ConnectError(f"{st.url_shown}: subscription closed before its acknowledgment")
        conn.buffer(norm.feed(chunk))
    s.opened()
    if s.listens > 1:
        st.queue_synthetic(RESYNC, {"reason": "relisten", "listens": s.listens})
