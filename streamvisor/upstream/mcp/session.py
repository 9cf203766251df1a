"""``McpSession``: the state of one MCP upstream across connection attempts, and the
decisions MCP gives to HTTP statuses. Pure: no I/O, no threads, no clock.

The I/O layer (``stream.py``, ``connection.py``) asks this object what a status or an end
of stream means and records what happened; it holds the lock. Rules and their sources
(modelcontextprotocol.io/specification/<version>/basic/transports):

* the session id comes only from the response that carries ``InitializeResult``, and is
  visible ASCII 0x21-0x7E ("Session Management");
* 404 to a request that carried the session id means the session expired: drop the id
  *and* the cursor, initialize again (MUST);
* GET answered 405 means the server offers no listening stream: a state, not a failure;
* 409 on GET (a stale stream still registered server-side, python-sdk and go-sdk) is
  retried, and after ``conflict_reinit_after`` in a row the session is replaced;
* a clean end after an id is SSE polling (2025-11-25, SEP-1699): reconnect after
  ``retry`` with Last-Event-ID, not a failure;
* a resume that brings nothing back (the python SDK answers an unknown Last-Event-ID with
  an empty 200) is tried ``unresumable_after`` times, then the cursor is dropped and a
  gap reported (what a server does with an unknown id is undefined: spec issue #1939);
* ``initialize`` answered 400, 404 or 405 means a 2024-11-05 HTTP+SSE server, when
  ``legacy_sse`` is on ("Backwards Compatibility"); that is a guess until an HTTP+SSE
  session is made: if the fallback fails first, the era is forgotten (the next attempt
  starts with ``initialize`` again) and callers waiting for the session fail at once with
  both answers.
"""

from __future__ import annotations

import enum
import re
from typing import Any

from streamvisor.errors import StreamProtocolError
from streamvisor.policy.redact import MASK
from streamvisor.upstream.mcp.options import McpOptions

__all__ = [
    "EndVerdict",
    "Era",
    "GetVerdict",
    "ListenPhase",
    "McpSession",
    "SessionPhase",
    "session_id_from",
    "valid_session_id",
]

_SESSION_ID = re.compile(r"[\x21-\x7e]+")
_KNOWN_SERVER_REQUESTS = frozenset(
    {"ping", "sampling/createMessage", "elicitation/create", "roots/list"}
)


def valid_session_id(value: str | None) -> bool:
    """Visible ASCII only (0x21-0x7E), non-empty (2025-03-26 "Session Management")."""
    return value is not None and _SESSION_ID.fullmatch(value) is not None


def session_id_from(headers: Any, shown: str) -> str | None:
    """``Mcp-Session-Id`` of the initialize answer, validated (visible ASCII).

    Raises:
        StreamProtocolError: the header is there but not a valid session id.
    """
    value = headers.get("Mcp-Session-Id") if headers is not None else None
    if value is None:
        return None
    if not valid_session_id(value):
        raise StreamProtocolError(f"{shown}: the server sent an invalid Mcp-Session-Id")
    return str(value)


class Era(enum.Enum):
    """Which MCP transport the server speaks."""

    UNKNOWN = "unknown"
    STREAMABLE = "streamable_http"  # 2025-03-26, 2025-06-18, 2025-11-25: initialize + sessions
    MODERN = "2026-07-28"  # sessionless, subscriptions/listen
    LEGACY_SSE = "http+sse"  # 2024-11-05: GET stream, endpoint event, POSTs


class SessionPhase(enum.Enum):
    INITIALIZING = "initializing"
    READY = "ready"
    REINITIALIZING = "reinitializing"
    FAILED = "failed"


class ListenPhase(enum.Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    UNSUPPORTED = "unsupported"  # GET answered 405: no listening stream
    POLLING = "polling"  # between SSE polls (server closed after an id, retry pending)
    BACKING_OFF = "backing_off"  # the attempt failed; the supervisor will reconnect
    OFF = "none"  # listen: none
    CLOSED = "closed"


class GetVerdict(enum.Enum):
    """What a status on the listening GET means."""

    OPEN = "open"
    UNSUPPORTED = "unsupported"
    EXPIRED = "expired"  # re-initialize, then GET again
    CONFLICT_RETRY = "conflict_retry"  # back off and GET again, same session
    CONFLICT_NEW_SESSION = "conflict_new_session"  # DELETE, re-initialize, GET
    UNRESUMABLE_RETRY = "unresumable_retry"  # back off, GET again with the cursor
    UNRESUMABLE_DROP = "unresumable_drop"  # drop the cursor, publish a gap, GET fresh
    FAIL = "fail"  # the generic rules decide (classify)


class EndVerdict(enum.Enum):
    """What a clean end of the listening GET means."""

    POLL = "poll"  # wait retry, GET again with Last-Event-ID; not a failure
    UNRESUMABLE_RETRY = "unresumable_retry"
    UNRESUMABLE_DROP = "unresumable_drop"
    END = "end"  # no cursor to resume from: an ordinary end of stream


class McpSession:
    """Mutable, lock-free record of one MCP upstream; the caller serialises access.

    Attributes:
        era: the transport, once detected.
        phase: the session's lifecycle phase.
        listen: the listening channel's phase.
        session_id: ``Mcp-Session-Id`` (never logged or shown: see ``snapshot``).
        protocol_version: the negotiated version, or None before initialize.
        cursor: the listening stream's Last-Event-ID (survives connections that close
            before sending a new id).
        retry_ms: the server's last ``retry:`` on the listening stream.
        generation: bumped at every (re)initialize, so a connection notices a new session.
        fallback_cause: why HTTP+SSE is being tried (``initialize answered HTTP 404 ...``),
            until an HTTP+SSE session is made.
        fallback_error: why the last HTTP+SSE attempt failed before its session was ready
            (None while an attempt runs, and once a session is ready).
    """

    def __init__(self, options: McpOptions) -> None:
        self.options = options
        self.era = Era.UNKNOWN
        self.phase = SessionPhase.INITIALIZING
        self.listen = ListenPhase.CONNECTING if options.listen != "none" else ListenPhase.OFF
        self.session_id: str | None = None
        self.protocol_version: str | None = None
        self.endpoint: str | None = None
        self.cursor: str | None = None
        self.retry_ms: int | None = None
        self.generation = 0
        self.conflicts = 0
        self.unresumable = 0
        self.initializations = 0
        self.expiries = 0
        self.resumes = {"ok": 0, "failed": 0}
        self.server_requests: dict[str, int] = {}
        self.listens = 0
        self.last_ping_rtt: float | None = None
        self.error: str | None = None
        self.fallback_cause: str | None = None
        self.fallback_error: str | None = None

    # -- session lifecycle ---------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.phase is SessionPhase.READY

    def initialized(self, era: Era, session_id: str | None, version: str | None) -> bool:
        """Record a successful (re)initialize; True when it replaced an earlier session
        (publish ``mcp/session_restarted``)."""
        self.era = era
        self.session_id = session_id
        self.protocol_version = version
        self.phase = SessionPhase.READY
        self.generation += 1
        self.initializations += 1
        self.conflicts = 0
        self.error = None
        self.fallback_cause = self.fallback_error = None
        return self.initializations > 1

    def expire(self, session_id: str | None) -> bool:
        """The server answered 404 to a request carrying ``session_id``: drop it and the
        cursor. Compare-and-drop: a stale 404 for an already replaced session is ignored.

        Returns:
            True when the current session was dropped.
        """
        if not self.ready or session_id != self.session_id:
            return False
        self.expiries += 1
        self._drop(SessionPhase.REINITIALIZING)
        return True

    def discard(self) -> None:
        """Forget the session on purpose (409 escalation, HTTP+SSE reconnect, stop)."""
        self._drop(SessionPhase.REINITIALIZING if self.initializations else self.phase)

    def _drop(self, phase: SessionPhase) -> None:
        self.session_id = None
        self.cursor = None
        self.endpoint = None
        self.unresumable = 0
        self.phase = phase

    def failed(self, reason: str) -> None:
        self.phase = SessionPhase.FAILED
        self.error = reason

    def initialize_verdict(self, status: int) -> bool:
        """True when ``initialize`` answered ``status`` means "try 2024-11-05 HTTP+SSE"."""
        return self.options.legacy_sse and status in (400, 404, 405)

    def fall_back(self, cause: str) -> None:
        """Try HTTP+SSE next; ``cause`` says why (what ``initialize`` was answered). While
        the last HTTP+SSE attempt's failure stands, the era stays unknown (a caller's own
        ``initialize`` must not make it look known again)."""
        self.fallback_cause = cause
        if self.fallback_error is None:
            self.era = Era.LEGACY_SSE

    def legacy_failed(self, error: str) -> None:
        """An HTTP+SSE attempt failed before its session was ready: record ``error`` for
        the callers waiting for that session. Unless an HTTP+SSE session was made before,
        the era was only a guess: forget it, so the next attempt sends ``initialize``."""
        self.fallback_error = error
        self.failed(error)
        if self.listen is ListenPhase.CONNECTING:
            self.listen = ListenPhase.BACKING_OFF
        if self.fallback_cause is not None:
            self.era = Era.UNKNOWN

    def version_header(self) -> str | None:
        """``MCP-Protocol-Version`` to send: from 2025-06-18 on (2025-03-26 has none)."""
        version = self.protocol_version
        if version is None or version < "2025-06-18":
            return None
        return version

    def headers(self) -> dict[str, str]:
        """Headers every request after initialize carries."""
        headers: dict[str, str] = {}
        if self.session_id is not None:
            headers["Mcp-Session-Id"] = self.session_id
        version = self.version_header()
        if version is not None:
            headers["MCP-Protocol-Version"] = version
        return headers

    # -- listening stream ----------------------------------------------------------------
    def get_verdict(self, status: int, sent_cursor: bool) -> GetVerdict:
        """Decide what the status of a listening GET means (see the module rules)."""
        if status == 200:
            return GetVerdict.OPEN
        if status == 405:
            return GetVerdict.UNSUPPORTED
        if status == 404 and self.session_id is not None:
            return GetVerdict.EXPIRED
        if status == 409:
            self.conflicts += 1
            if self.conflicts >= self.options.conflict_reinit_after:
                self.conflicts = 0
                return GetVerdict.CONFLICT_NEW_SESSION
            return GetVerdict.CONFLICT_RETRY
        if sent_cursor and status in (400, 410, 416, 422):
            return (
                GetVerdict.UNRESUMABLE_DROP if self._unresumable() else GetVerdict.UNRESUMABLE_RETRY
            )
        return GetVerdict.FAIL

    def opened(self) -> None:
        """The listening stream is open (200)."""
        self.listens += 1
        self.conflicts = 0
        self.listen = ListenPhase.CONNECTED

    def saw(self, event_id: str | None) -> None:
        """A message or id arrived on the listening stream; ``event_id`` is the stream's
        Last-Event-ID after it (an empty ``id:`` clears the cursor)."""
        self.unresumable = 0
        self.cursor = event_id or None

    def resumed(self) -> None:
        """A GET with Last-Event-ID brought something back (counted once per GET)."""
        self.resumes["ok"] += 1

    def end_verdict(self, received: bool, sent_cursor: bool) -> EndVerdict:
        """Decide what a clean end of the listening GET means.

        Args:
            received: the connection carried at least one byte of events or fields
                (comments excluded).
            sent_cursor: the GET carried a Last-Event-ID.
        """
        if sent_cursor and not received:
            return (
                EndVerdict.UNRESUMABLE_DROP if self._unresumable() else EndVerdict.UNRESUMABLE_RETRY
            )
        if self.cursor is not None:
            self.listen = ListenPhase.POLLING
            return EndVerdict.POLL
        return EndVerdict.END

    def _unresumable(self) -> bool:
        """Count a resume that failed; True when the cursor is to be dropped."""
        self.unresumable += 1
        self.resumes["failed"] += 1
        if self.unresumable >= self.options.unresumable_after:
            self.unresumable = 0
            self.cursor = None
            return True
        return False

    def server_request(self, method: str) -> None:
        """Count a server-to-client request (label: known methods, else ``other``)."""
        label = method if method in _KNOWN_SERVER_REQUESTS else "other"
        self.server_requests[label] = self.server_requests.get(label, 0) + 1

    # -- status ----------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Health fields for ``status()`` and metrics; the session id is never shown."""
        return {
            "era": self.era.value,
            "session": self.phase.value,
            "listen": self.listen.value,
            "protocol_version": self.protocol_version,
            "session_id": MASK if self.session_id is not None else None,
            "initializations": self.initializations,
            "session_expiries": self.expiries,
            "resumes": dict(self.resumes),
            "server_requests": dict(self.server_requests),
            "listens": self.listens,
            "last_ping_rtt": self.last_ping_rtt,
            "error": self.error,
        }
