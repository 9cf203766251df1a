"""``McpConnection``: one attempt of a ``kind: mcp`` stream, shaped like ``Connection``
(``open()``, ``read() -> bytes``, ``interrupt()``, ``close()``), so the stream actor,
supervisor, dedup and fan-out run unchanged.

``read()`` returns a normalised ``text/event-stream``: one SSE event per JSON-RPC message
(``event:`` its method or ``response``, ``data:`` the raw JSON, ``id:`` the upstream id),
plus the synthetic ``mcp/session_restarted``, ``mcp/gap`` and ``mcp/resync`` events.
Failures leave as ``StreamError`` for the supervisor (backoff, restart intensity);
transitions MCP defines as normal stay inside the attempt: SSE polling, a 405 on GET (no
listening stream: idle with pings), re-initializing a session that expired between
attempts, a graceful end of a 2026 subscription. The 2024-11-05 HTTP+SSE transport lives
in ``legacy.py``.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from streamvisor.errors import ConnectError, HTTPStatusError, StreamError, StreamProtocolError
from streamvisor.spec import StreamSpec
from streamvisor.upstream.connection import Connection
from streamvisor.upstream.mcp.call import StatusAnswer
from streamvisor.upstream.mcp.jsonrpc import McpCallError
from streamvisor.upstream.mcp.normalise import Normaliser
from streamvisor.upstream.mcp.session import EndVerdict, Era, GetVerdict, ListenPhase
from streamvisor.upstream.mcp.stream import LegacySseRequired, McpStream
from streamvisor.upstream.mcp.transport import request_headers
from streamvisor.upstream.watch import Waiter

__all__ = ["ListenConflictError", "McpConnection", "SessionExpiredError"]

log = logging.getLogger(__name__)

GAP = "mcp/gap"
_MAX_INLINE_CHANGES = 4


class SessionExpiredError(StreamError):
    """A session made in this very attempt was answered 404 at once: back off, then try a
    new one (a server that expires every session must not cause a busy loop)."""


class ListenConflictError(StreamError):
    """GET answered 409 (the server still holds an old listening stream): back off."""


class McpConnection:
    """One attempt of an MCP stream (see the module docstring). Not reusable after close.

    Args:
        stream: the stream's shared MCP state (it outlives attempts).
    """

    def __init__(self, stream: McpStream) -> None:
        self._st = stream
        self._spec = stream.spec
        self._lock = threading.Lock()
        self._interrupted = False
        self._wake = threading.Event()
        self._segment: Connection | None = None
        self._norm = Normaliser(stream)
        self._reopen = False
        self._eof = False
        self._gen = -1
        self._inits_at_start = 0
        self._out = bytearray()
        self._waiter = Waiter()
        self.reader: int | None = None  # thread id of open()/read()

    # -- ConnectionLike --------------------------------------------------------------------
    def open(self) -> None:
        """Make the session ready and open the listening channel.

        Raises:
            StreamError: for the supervisor (HTTP status, connect error, protocol error).
        """
        self.reader = threading.get_ident()
        st = self._st
        st.listener = self
        self._inits_at_start = st.session.initializations
        if self._interrupted:
            return
        try:
            with self._waiter.watch():  # interrupt() can stop a wait for an answer
                self._start(self._deadline())
        except Exception:
            if self._interrupted:
                return  # a requested stop is a normal end, not a failure
            raise

    def read(self) -> bytes:
        """The next chunk of the normalised event stream; ``b""`` at the end or after
        ``interrupt()``.

        Raises:
            StreamError: the listening channel failed (the supervisor reconnects).
        """
        while True:
            pending = self._st.mail.take()
            if pending or self._out:
                out = pending + bytes(self._out)
                self._out.clear()
                return out
            if self._interrupted or self._eof:
                return b""
            segment = self._segment
            if segment is None:
                self._idle()
                continue
            try:
                chunk = segment.read()
            except StreamError:
                if self._interrupted:
                    return b""
                raise
            if chunk:
                out = self._norm.feed(chunk)
                if out and not self._out:
                    return self._st.mail.take() + out  # the common case: one pass
                self._out += out
                continue
            if self._interrupted:
                return b""
            self._segment_ended()

    def interrupt(self) -> None:
        """Wake a blocked ``read()`` (it returns ``b""``), or ``open()`` waiting for an
        answer (``upstream/watch.py``). Thread-safe."""
        with self._lock:
            self._interrupted = True
            segment = self._segment
        self._wake.set()
        self._waiter.stop()
        if segment is not None:
            segment.interrupt()

    def close(self) -> None:
        """Interrupt and release the listening response. Idempotent."""
        self.interrupt()
        with self._lock:
            segment, self._segment = self._segment, None
        if segment is not None:
            segment.close()
        st = self._st
        if st.listener is self:
            st.listener = None
        if st.session.listen in (ListenPhase.CONNECTED, ListenPhase.POLLING):
            st.session.listen = ListenPhase.BACKING_OFF

    def session_changed(self) -> None:
        """Another thread made a new session: reopen the listening channel on it."""
        if self.reader == threading.get_ident():
            return
        with self._lock:
            self._reopen = True
            segment = self._segment
        self._wake.set()
        if segment is not None:
            segment.interrupt()

    def wake(self) -> None:
        """Messages wait in the mailbox: an idle ``read()`` returns them now."""
        self._wake.set()

    # -- opening -----------------------------------------------------------------------------
    def _deadline(self) -> float:
        return self._st.clock() + self._spec.connect_timeout + self._spec.read_timeout

    def _start(self, deadline: float) -> None:
        st = self._st
        if st.session.era is Era.LEGACY_SSE:
            self._open_legacy(deadline)
            return
        try:
            st.ensure_session(deadline)
        except LegacySseRequired:
            self._open_legacy(deadline)
            return
        self._open_listen(deadline)

    def _open_legacy(self, deadline: float) -> None:
        from streamvisor.upstream.mcp.legacy import open_legacy

        open_legacy(self, deadline)

    def _open_listen(self, deadline: float) -> None:
        s = self._st.session
        self._reopen = False
        if self._st.options.listen == "none":
            s.listen = ListenPhase.OFF
            return
        if s.era is Era.MODERN:
            self._open_subscription()
            return
        for _ in range(_MAX_INLINE_CHANGES):
            if self._interrupted or self._try_get(deadline):
                return
        raise StreamProtocolError(f"{self._st.url_shown}: the session kept changing; giving up")

    def _segment_spec(self, method: str, extra: Mapping[str, str], body: Any = None) -> StreamSpec:
        spec = self._spec

        def headers() -> Mapping[str, str]:
            return request_headers(spec, extra)

        return dataclasses.replace(
            spec, method=method, headers=headers, body=body, kind="sse", mcp=None, handler=None
        )

    def _attach(self, conn: Connection) -> bool:
        with self._lock:
            if self._interrupted:
                return False
            self._segment = conn
            return True

    def _try_get(self, deadline: float) -> bool:
        """One listening GET; True when settled (open or unsupported), False to try again."""
        st, s = self._st, self._st.session
        sent_cursor, session_id = s.cursor is not None, s.session_id
        conn = Connection(self._segment_spec("GET", s.headers()), s.cursor, session=st.http)
        if not self._attach(conn):
            return True
        s.listen = ListenPhase.CONNECTING
        try:
            conn.open()
        except HTTPStatusError as exc:
            conn.close()
            self._segment = None
            return self._get_refused(exc, sent_cursor, session_id, deadline)
        self._norm = Normaliser(st, last_event_id=s.cursor, sent_cursor=sent_cursor)
        self._gen = s.generation
        s.opened()
        return True

    def _get_refused(
        self, exc: HTTPStatusError, sent_cursor: bool, session_id: str | None, deadline: float
    ) -> bool:
        st, s = self._st, self._st.session
        verdict = s.get_verdict(exc.status, sent_cursor)
        name = self._spec.name
        if verdict is GetVerdict.UNSUPPORTED:
            log.info("stream %s: the server offers no listening stream (GET 405)", name)
            s.listen = ListenPhase.UNSUPPORTED
            self._gen = s.generation
            return True
        if verdict is GetVerdict.EXPIRED:
            st.expire(session_id)
            if s.initializations > self._inits_at_start:
                raise SessionExpiredError(f"{st.url_shown}: new MCP session expired at once (404)")
            st.ensure_session(deadline)
            return False
        if verdict is GetVerdict.CONFLICT_NEW_SESSION:
            log.info("stream %s: GET kept answering 409; starting a new session", name)
            st.restart_reason = "conflict"
            st.close(timeout=min(2.0, self._spec.read_timeout))
            st.ensure_session(deadline)
            st.restart_reason = "expired"
            return False
        if verdict is GetVerdict.CONFLICT_RETRY:
            raise ListenConflictError(f"{st.url_shown}: GET answered 409 (a stream is still open)")
        if verdict is GetVerdict.UNRESUMABLE_DROP:
            self._gap(exc.status)
            return False
        if verdict is GetVerdict.UNRESUMABLE_RETRY:
            raise ConnectError(f"{st.url_shown}: resume refused ({exc}); retrying")
        raise exc

    def _gap(self, why: object) -> None:
        log.warning(
            "stream %s: cannot resume the listening stream; a gap is possible", self._spec.name
        )
        self._st.queue_synthetic(GAP, {"reason": "unresumable", "detail": str(why)})

    def _open_subscription(self) -> None:
        from streamvisor.upstream.mcp.legacy import open_subscription

        open_subscription(self)

    # -- reading -----------------------------------------------------------------------------
    def _segment_ended(self) -> None:
        """The listening response ended cleanly: poll, re-listen, or end the attempt."""
        st, s = self._st, self._st.session
        segment, self._segment = self._segment, None
        if segment is not None:
            segment.close()
        if self._reopen or s.generation != self._gen:
            self._reopen_on(self._deadline())
            return
        if s.era is Era.MODERN:
            if not self._norm.graceful:
                raise ConnectError(
                    f"{st.url_shown}: the subscription closed without the server's graceful end"
                )
            self._pause(self._spec.backoff.initial)
            self._reopen_on(self._deadline())
            return
        if s.era is Era.LEGACY_SSE:
            self._eof = True
            return
        verdict = s.end_verdict(self._norm.received, self._norm.sent_cursor)
        if verdict is EndVerdict.END:
            self._eof = True
            return
        if verdict is EndVerdict.UNRESUMABLE_DROP:
            self._gap("the server sent nothing after our Last-Event-ID")
        else:
            delay = s.retry_ms / 1000.0 if s.retry_ms is not None else self._spec.backoff.initial
            log.debug("stream %s: polling again in %.3fs", self._spec.name, delay)
            self._pause(delay)
        self._reopen_on(self._deadline())

    def _reopen_on(self, deadline: float) -> None:
        if self._interrupted:
            return
        self._st.ensure_session(deadline)
        self._open_listen(deadline)

    def _pause(self, seconds: float) -> None:
        """Wait, interruptibly (the server's ``retry``: the client MUST wait it all)."""
        clock = self._st.clock
        deadline = clock() + max(seconds, 0.01)
        while not self._interrupted and not self._reopen:
            left = deadline - clock()
            if left <= 0:
                return
            self._wake.wait(left)
            self._wake.clear()

    def _idle(self) -> None:
        """No listening stream (405 or ``listen: none``): wait; ping every ``ping_interval``
        to notice an expired session (then end the attempt so a new session is made)."""
        st = self._st
        interval = st.options.ping_interval
        woke = self._wake.wait(interval if interval > 0 else None)
        self._wake.clear()
        if self._interrupted:
            return
        if woke:  # a new session, or messages waiting in the mailbox
            if self._reopen:
                self._reopen_on(self._deadline())
            return
        session_id = st.session.session_id
        try:
            st.ping()
        except StatusAnswer as exc:
            if exc.status == 404 and st.expire(session_id):
                raise SessionExpiredError(
                    f"{st.url_shown}: ping answered 404 (session expired)"
                ) from None
            raise
        except McpCallError as exc:
            log.info("stream %s: ping failed: %s", self._spec.name, exc)

    # -- used by legacy.py -------------------------------------------------------------------
    @property
    def stream(self) -> McpStream:
        return self._st

    def attach(self, conn: Connection) -> bool:
        return self._attach(conn)

    @property
    def normaliser(self) -> Normaliser:
        return self._norm

    @normaliser.setter
    def normaliser(self, value: Normaliser) -> None:
        self._norm = value

    def buffer(self, data: bytes) -> None:
        self._out += data

    def mark_generation(self) -> None:
        """The listening channel now belongs to the session's current generation."""
        self._gen = self._st.session.generation

    @property
    def interrupted(self) -> bool:
        return self._interrupted

    @property
    def segment(self) -> Connection | None:
        return self._segment

    def segment_spec(self, method: str, extra: Mapping[str, str], body: Any = None) -> StreamSpec:
        return self._segment_spec(method, extra, body)


ConnectionFactory = Callable[[StreamSpec, "str | None"], McpConnection]
