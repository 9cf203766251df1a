"""JSON-RPC 2.0 messages of MCP, and their normalised SSE form. Pure: no I/O.

A ``kind: mcp`` stream hands the stream actor an ordinary ``text/event-stream``: each
JSON-RPC message becomes one SSE event whose ``event:`` is the message's ``method``
(``response`` for results and errors), whose ``data:`` is the raw JSON, and whose ``id:``
is the upstream SSE id (JSON-RPC 2.0 spec; MCP basic/index "Messages"). Synthetic events
(``mcp/session_restarted``, ``mcp/gap``, ``mcp/resync``) use the same framing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = [
    "INTERNAL_ERROR",
    "METHOD_NOT_FOUND",
    "RESPONSE",
    "McpCallError",
    "encode_event",
    "encode_field",
    "error_response",
    "event_name",
    "is_notification",
    "is_request",
    "is_response",
    "notification",
    "parse_messages",
    "request",
    "result_response",
]

RESPONSE = "response"
"""``Event.event`` of a JSON-RPC result or error."""

METHOD_NOT_FOUND = -32601
INTERNAL_ERROR = -32603


class McpCallError(Exception):
    """A JSON-RPC error answer, or a call that could not complete.

    Attributes:
        code: the JSON-RPC error code (None when the failure was not a JSON-RPC error,
            e.g. a stream that closed before the result and could not be resumed).
        message: a one-line description, free of secrets.
        data: the error's ``data`` member, if any.
    """

    def __init__(self, message: str, code: int | None = None, data: Any = None) -> None:
        self.code = code
        self.message = message
        self.data = data
        super().__init__(f"{message} (JSON-RPC error {code})" if code is not None else message)


def request(
    msg_id: int | str, method: str, params: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A JSON-RPC request object (``params`` left out when None)."""
    msg: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
    if params is not None:
        msg["params"] = dict(params)
    return msg


def notification(method: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A JSON-RPC notification object (no ``id``)."""
    msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        msg["params"] = dict(params)
    return msg


def result_response(msg_id: Any, result: Any) -> dict[str, Any]:
    """A JSON-RPC success response."""
    return {"jsonrpc": "2.0", "id": msg_id, "result": result}


def error_response(msg_id: Any, code: int, message: str) -> dict[str, Any]:
    """A JSON-RPC error response."""
    return {"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message}}


def is_request(msg: Mapping[str, Any]) -> bool:
    """A request has a ``method`` and an ``id``."""
    return "method" in msg and "id" in msg


def is_notification(msg: Mapping[str, Any]) -> bool:
    """A notification has a ``method`` and no ``id``."""
    return "method" in msg and "id" not in msg


def is_response(msg: Mapping[str, Any]) -> bool:
    """A response has no ``method`` and a ``result`` or an ``error``."""
    return "method" not in msg and ("result" in msg or "error" in msg)


def event_name(msg: Mapping[str, Any]) -> str:
    """The ``Event.event`` of a message: its method, or ``response``."""
    method = msg.get("method")
    return method if isinstance(method, str) and method else RESPONSE


def parse_messages(data: str) -> list[dict[str, Any]] | None:
    """The JSON-RPC messages in one SSE ``data`` (or a JSON body).

    A 2025-03-26 batch array gives one message per element (batching was removed in
    2025-06-18, but old servers still send arrays). Returns None when ``data`` is not JSON
    or holds no message object (keep-alive ``event: ping`` with odd data, say).
    """
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return None
    items = value if isinstance(value, list) else [value]
    messages = [item for item in items if isinstance(item, dict)]
    return messages or None


_PREFIXES = ('{"jsonrpc":"2.0","method":"', '{"jsonrpc": "2.0", "method": "')


def notification_method(data: str) -> str | None:
    """The method of a notification written the usual way, without parsing the JSON.

    Only for data that starts ``{"jsonrpc":"2.0","method":"`` (with or without the spaces
    Python's ``json.dumps`` puts in) and holds no ``"id"`` anywhere, so it cannot be a
    request; the method must have no escapes. Anything else gives None: parse it.
    """
    for prefix in _PREFIXES:
        if data.startswith(prefix):
            start = len(prefix)
            end = data.find('"', start)
            if end <= start or "\\" in data[start:end] or '"id"' in data:
                return None
            return data[start:end]
    return None


def encode_field(name: str, value: str) -> bytes:
    """One SSE field line per line of ``value`` (``data`` may span lines)."""
    return "".join(f"{name}: {line}\n" for line in value.split("\n")).encode("utf-8")


def encode_event(event: str, data: str, event_id: str | None = None) -> bytes:
    """One SSE event block: ``event:``, ``data:`` lines, optional ``id:``, blank line.

    ``event_id`` of ``""`` writes an empty ``id:`` (which resets the Last-Event-ID buffer,
    as after a new session); None writes none.
    """
    if "\n" not in data and "\n" not in event:
        head = f"event: {event}\ndata: {data}\n"
        if event_id:
            return f"{head}id: {event_id}\n\n".encode()
        return (head + ("id\n\n" if event_id is not None else "\n")).encode()
    out = encode_field("event", event) + encode_field("data", data)
    if event_id is not None:
        out += f"id: {event_id}\n".encode() if event_id else b"id\n"
    return out + b"\n"


def dumps(value: Any) -> str:
    """Compact JSON (the form posted and published)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
