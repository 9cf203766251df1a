"""``invoke``: ``sv.call`` on a stream's MCP session, across eras, with its rules: wait
for a session, re-initialize once on 404 (the request was not processed), resume a
dropped answer, re-send only what the caller marked idempotent, cancel on timeout.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from streamvisor.errors import ReadTimeoutError, StreamError
from streamvisor.upstream.mcp import jsonrpc
from streamvisor.upstream.mcp.call import McpTimeoutError, StatusAnswer, exchange, result_of
from streamvisor.upstream.mcp.jsonrpc import McpCallError
from streamvisor.upstream.mcp.session import Era
from streamvisor.upstream.mcp.stream import LegacySseRequired, McpStream

__all__ = ["EMPTY_METHOD", "invoke"]

log = logging.getLogger(__name__)

EMPTY_METHOD = "the method is empty (e.g. tools/list)"

_CLOCK_SLACK = 0.05
"""Seconds a socket's timeout may fire before the call's deadline on our clock."""


def invoke(
    stream: McpStream,
    method: str,
    params: Mapping[str, Any] | None,
    *,
    timeout: float,
    idempotent: bool = False,
) -> Any:
    """Send ``method(params)`` and return its result.

    Raises:
        ValueError: ``method`` is empty or blank, or ``params`` is not a mapping (nothing
            is sent).
        McpTimeoutError: no result within ``timeout`` seconds (a ``TimeoutError``).
        McpCallError: a JSON-RPC error, or an answer stream that could not be resumed.
        StreamError: the session could not be made (connect error, HTTP status); when
            the HTTP+SSE session the stream was making failed, at once, as
            ``LegacySseFailedError`` (also an ``McpCallError``) giving both answers.
    """
    if not method.strip():
        raise ValueError(EMPTY_METHOD)
    if params is not None and not isinstance(params, Mapping):
        got = type(params).__name__
        raise ValueError(f"params must be a mapping (MCP requests take named params), got {got}")
    deadline = stream.clock() + timeout
    sent_once = False
    expired_once = False
    while True:
        _ensure(stream, deadline)
        s = stream.session
        message, extra = stream.prepare(jsonrpc.request(stream.next_id(), method, params))
        if s.era is Era.LEGACY_SSE:
            return stream.request_on_session(method, dict(params or {}) or None, deadline)
        session_id = s.session_id
        try:
            response = exchange(
                stream.target(extra),
                message,
                deadline,
                stream.side_message,
                resumable=s.era is Era.STREAMABLE and session_id is not None,
            )
        except StatusAnswer as exc:
            if exc.status == 404 and session_id is not None and not expired_once:
                stream.expire(session_id)  # not processed: safe to send on a new session
                expired_once = True
                continue
            raise McpCallError(_status_text(exc, method), _code(exc)) from None
        except McpTimeoutError:
            _cancel(stream, message)
            raise
        except McpCallError:
            if idempotent and not sent_once:
                sent_once = True
                log.info("stream %s: %s answer lost; sending it again", stream.spec.name, method)
                continue  # a new request id, as 2026-07-28 requires for a re-issue
            raise
        if response is None:
            raise McpCallError(f"{method}: the server answered 202 to a request")
        return result_of(response, method)


def _ensure(stream: McpStream, deadline: float) -> None:
    try:
        stream.ensure_session(deadline)
    except ReadTimeoutError as exc:
        if stream.clock() < deadline - _CLOCK_SLACK:
            raise  # the stream's read timeout, before the call's own
        raise McpTimeoutError(f"no session within the timeout: {exc}") from None
    except LegacySseRequired:
        if not stream.wait_ready(deadline):
            raise McpTimeoutError("no HTTP+SSE session in time (is the stream running?)") from None


def _cancel(stream: McpStream, message: Mapping[str, Any]) -> None:
    """Legacy eras: tell the server (``notifications/cancelled``); 2026: closing the
    stream was the cancellation (the answer stream is already closed)."""
    if stream.session.era is Era.MODERN:
        return
    note = jsonrpc.notification(
        "notifications/cancelled", {"requestId": message.get("id"), "reason": "timeout"}
    )
    try:
        stream.post(note, stream.clock() + min(2.0, stream.spec.read_timeout))
    except (StreamError, McpCallError):
        pass


def _status_text(exc: StatusAnswer, method: str) -> str:
    detail = exc.error.get("message") if exc.error else None
    return f"{method}: {exc}" + (f": {detail}" if detail else "")


def _code(exc: StatusAnswer) -> int | None:
    code = exc.error.get("code") if exc.error else None
    return code if isinstance(code, int) else None
