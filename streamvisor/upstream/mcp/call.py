"""One JSON-RPC request over Streamable HTTP, resumed when its SSE answer drops.

``exchange`` POSTs a request and waits for its response, whether the server answers with
JSON or with an SSE stream; messages on that stream other than the response (progress,
log notifications, server requests) go to ``on_message``. If the SSE answer ends or breaks
after an event id, the call resumes with GET + ``Last-Event-ID`` after the server's
``retry`` (2025-11-25 transports, "Resumability and Redelivery": resumption is always via
GET); with no id to resume from it fails at once. It never POSTs the request again: that
is the caller's choice (``idempotent``), and it never waits past its deadline.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from streamvisor.errors import HTTPStatusError, StreamError, StreamProtocolError
from streamvisor.policy.classify import parse_retry_after
from streamvisor.spec import StreamSpec
from streamvisor.upstream.mcp import modern
from streamvisor.upstream.mcp.jsonrpc import McpCallError, is_response, parse_messages
from streamvisor.upstream.mcp.transport import Reply, SseBody, get_stream, post

__all__ = [
    "McpTimeoutError",
    "StatusAnswer",
    "Target",
    "discover",
    "exchange",
    "result_of",
]

log = logging.getLogger(__name__)

RESUME_ATTEMPTS = 3
"""Resume GETs in a row that bring nothing before the call fails."""

OnMessage = Callable[[dict[str, Any], "str | None"], None]


class McpTimeoutError(McpCallError, TimeoutError):
    """The call got no response within its timeout."""


class StatusAnswer(HTTPStatusError):
    """The POST (or a resume GET) was answered with a status other than 200/202; its text
    is ``HTTP <status> <reason>``, like the listening stream's ``HTTPStatusError``.

    Attributes:
        error: the JSON-RPC error member of the body, if any.
        resumed: True when the status answered a resume GET.
    """

    def __init__(self, reply: Reply, resumed: bool = False) -> None:
        retry_after = parse_retry_after(reply.headers.get("Retry-After"))
        super().__init__(reply.status, retry_after, reply.reason)
        self.error = reply.json_error()
        self.resumed = resumed
        self.text = reply.error_text


@dataclass(frozen=True, slots=True)
class Target:
    """Where and how to send: the session's HTTP client, the stream spec, the URL and the
    headers every request of the session carries."""

    http: requests.Session
    spec: StreamSpec
    url: str
    headers: Mapping[str, str]


def exchange(
    target: Target,
    message: Mapping[str, Any],
    deadline: float,
    on_message: OnMessage,
    *,
    resumable: bool = True,
    clock: Callable[[], float] = time.monotonic,
    on_headers: Callable[[Mapping[str, str]], None] | None = None,
) -> dict[str, Any] | None:
    """POST ``message`` and return its response message (None for 202 Accepted).

    Args:
        target: where to send.
        message: a JSON-RPC request (or notification/response, answered 202).
        deadline: ``clock()`` value after which the call fails.
        on_message: called with every other message of the answer stream and its SSE id.
        resumable: resume a dropped SSE answer by GET + Last-Event-ID (False in 2026).
        clock: monotonic clock.
        on_headers: called with the POST's response headers (initialize: the session id).

    Raises:
        McpTimeoutError: no response before ``deadline``.
        McpCallError: the answer stream ended before the response and cannot be resumed.
        StatusAnswer: the POST or a resume GET got another status (404: session expired).
        StreamError: the request itself failed (connect error, read timeout).
    """
    msg_id = message.get("id")
    remaining = _remaining(deadline, clock)
    reply = post(
        target.http, target.spec, target.url, message, target.headers, read_timeout=remaining
    )
    if on_headers is not None:
        on_headers(reply.headers)
    if reply.status == 202:
        return None
    if reply.status != 200:
        raise StatusAnswer(reply)
    if reply.body is None:
        for msg in reply.messages or ():
            if is_response(msg) and msg.get("id") == msg_id:
                return msg
            on_message(msg, None)
        raise McpCallError(f"the answer to {message.get('method')} held no response")
    return _read_stream(target, reply.body, msg_id, deadline, on_message, resumable, clock)


def _read_stream(
    target: Target,
    body: SseBody,
    msg_id: Any,
    deadline: float,
    on_message: OnMessage,
    resumable: bool,
    clock: Callable[[], float],
) -> dict[str, Any]:
    last_id: str | None = None
    retry_ms: int | None = None
    empty_resumes = 0
    resumed = False
    while True:
        found, broke = _drain(body, msg_id, deadline, on_message, clock)
        if found is not None:
            return found
        decoder = body.decoder
        got_new = decoder.last_event_id is not None and decoder.last_event_id != last_id
        last_id = decoder.last_event_id or last_id
        retry_ms = decoder.retry if decoder.retry is not None else retry_ms
        if _remaining(deadline, clock) <= 0.001:
            raise McpTimeoutError(f"no response within the timeout (request id {msg_id})")
        if not resumable or not last_id:
            why = "broke" if broke else "closed"
            raise McpCallError(
                f"the answer stream {why} before the response and cannot be resumed "
                "(no event id); the request was not sent again"
            )
        empty_resumes = 0 if (got_new or not resumed) else empty_resumes + 1
        if empty_resumes >= RESUME_ATTEMPTS:
            raise McpCallError(
                f"the answer stream could not be resumed after {RESUME_ATTEMPTS} attempts "
                "(the server kept nothing after its last event id)"
            )
        delay = (retry_ms or 0) / 1000.0
        if delay > _remaining(deadline, clock):
            raise McpTimeoutError(f"no response within the timeout (request id {msg_id})")
        if delay > 0:
            threading.Event().wait(delay)  # the server's retry: the client MUST wait it
        log.debug("resuming call %s after event id", msg_id)
        reply = get_stream(
            target.http,
            target.spec,
            target.url,
            target.headers,
            last_id,
            read_timeout=_remaining(deadline, clock),
        )
        if reply.status != 200 or reply.body is None:
            raise StatusAnswer(reply, resumed=True)
        body = reply.body
        resumed = True


def _drain(
    body: SseBody,
    msg_id: Any,
    deadline: float,
    on_message: OnMessage,
    clock: Callable[[], float],
) -> tuple[dict[str, Any] | None, bool]:
    """Read ``body`` until the response, its end, or the deadline (which interrupts it).

    Returns the response (or None) and whether the stream broke rather than closed.
    """
    timer = threading.Timer(_remaining(deadline, clock), body.interrupt)
    timer.daemon = True
    timer.start()
    try:
        while True:
            try:
                events = body.read()
            except StreamError:
                return None, True
            if not events:
                return None, False
            for ev in events:
                for msg in parse_messages(ev.data) or ():
                    if is_response(msg) and msg.get("id") == msg_id:
                        return msg, False
                    on_message(msg, ev.id)
    finally:
        timer.cancel()
        body.close()


def discover(
    target: Target, message: Mapping[str, Any], version: str, deadline: float, on_message: OnMessage
) -> str:
    """Send a 2026 ``server/discover`` request: "" when its result offers ``version``, else
    why not; any other answer means "not 2026" (2026-07-28 basic/versioning).

    Raises:
        StreamError: the request itself failed (connect error, read timeout).
    """
    try:
        response = exchange(target, message, deadline, on_message, resumable=False)
    except StatusAnswer as exc:
        return f"server/discover answered {exc}"
    except (McpCallError, StreamProtocolError) as exc:
        return f"server/discover: {exc}"
    if response is not None and modern.is_modern_discover(response.get("result"), version):
        return ""
    return f"server/discover did not offer {version}"


def result_of(response: Mapping[str, Any] | None, method: str = "a request") -> Any:
    """The ``result`` of a response, or raise its JSON-RPC error as ``McpCallError``.

    Raises:
        McpCallError: the response is a JSON-RPC error (also a malformed one, with an
            ``error`` that is not an object, and no ``result``).
        StreamProtocolError: no response (``method`` was answered 202).
    """
    if response is None:
        raise StreamProtocolError(f"{method}: the server answered 202 to a request")
    error = response.get("error")
    if isinstance(error, Mapping):
        code = error.get("code")
        raise McpCallError(
            str(error.get("message") or "error"),
            code if isinstance(code, int) else None,
            error.get("data"),
        )
    if "result" not in response:
        # An ``error`` that is not an object ("nope", null) is still no result: never
        # hand it out as one (``mcp call`` printed null and exited 0).
        shown = json.dumps(error)[:200] if "error" in response else "nothing"
        raise McpCallError(f"{method}: a malformed JSON-RPC error in the answer: {shown}")
    return response.get("result")


def _remaining(deadline: float, clock: Callable[[], float]) -> float:
    return max(deadline - clock(), 0.001)
