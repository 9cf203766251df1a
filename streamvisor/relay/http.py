"""HTTP/1.1 for the relay: the request head (parsed by h11), response heads, auth and CORS.

No I/O here: bytes in, a ``Request`` out; values in, response bytes out. h11 (sans-I/O, the
model for our own decoder) parses and validates the head, including its size cap; after the
head the relay writes the response itself, so that one pre-encoded frame can go to every
client unchanged. Every response says ``Connection: close``: an SSE body runs until the
connection closes (RFC 9112 section 6.3, item 8), and the other answers are one-shot.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import parse_qsl, unquote

import h11

__all__ = [
    "BadRequestError",
    "HeadParser",
    "Request",
    "authorized",
    "cors_headers",
    "error_response",
    "head_only",
    "plain_response",
    "stream_head",
]

MAX_HEAD_BYTES = 16384
"""Request heads larger than this are refused with 431 (h11's own default is 16 KiB)."""

_STREAM_HEADERS = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/event-stream\r\n"
    b"Cache-Control: no-cache\r\n"
    b"Connection: close\r\n"
    b"X-Accel-Buffering: no\r\n"  # tells nginx in front of us not to buffer the stream
)


class BadRequestError(Exception):
    """The request head is malformed or too large; ``status`` is the answer to send."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


@dataclass(frozen=True, slots=True)
class Request:
    """A parsed request head.

    Attributes:
        method: e.g. ``GET``.
        path: the percent-decoded path, e.g. ``/streams/ticker``.
        query: query parameters (the first value of each name wins).
        headers: header values by lower-case name (Latin-1; repeated headers joined by
            ``, ``, RFC 9110 section 5.3).
    """

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]


class HeadParser:
    """Feed the bytes of one connection until its request head is complete."""

    __slots__ = ("_conn",)

    def __init__(self, max_size: int = MAX_HEAD_BYTES) -> None:
        self._conn = h11.Connection(h11.SERVER, max_incomplete_event_size=max_size)

    def feed(self, data: bytes) -> Request | None:
        """The request once its head is complete, else None (more bytes are needed).

        Raises:
            BadRequestError: malformed or oversized head, or the client closed early.
        """
        conn = self._conn
        conn.receive_data(data)
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise BadRequestError(exc.error_status_hint) from None
        if event is h11.NEED_DATA:
            return None
        if not isinstance(event, h11.Request):
            raise BadRequestError(400)
        target = event.target.decode("latin-1")
        raw_path, _, raw_query = target.partition("?")
        query: dict[str, str] = {}
        for param, arg in parse_qsl(raw_query, keep_blank_values=True):
            query.setdefault(param, arg)
        headers: dict[str, str] = {}
        for name, value in event.headers:
            key, text = name.decode("latin-1"), value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        return Request(event.method.decode("ascii"), unquote(raw_path), query, headers)


def _head(status: int, headers: Sequence[tuple[str, str]]) -> bytes:
    reason = HTTPStatus(status).phrase
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines.extend(f"{name}: {value}" for name, value in headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def plain_response(
    status: int,
    body: bytes = b"",
    content_type: str = "application/json",
    extra: Sequence[tuple[str, str]] = (),
) -> bytes:
    """A complete one-shot response (head and body) with ``Connection: close``."""
    headers = [
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
        ("Connection", "close"),
        *extra,
    ]
    return _head(status, headers) + body


def error_response(status: int, message: str, extra: Sequence[tuple[str, str]] = ()) -> bytes:
    """A one-shot JSON error answer: ``{"error": message}``."""
    body = json.dumps({"error": message}).encode()
    return plain_response(status, body, extra=extra)


def head_only(response: bytes, method: str) -> bytes:
    """``response`` without its body when answering ``HEAD`` (RFC 9110 section 9.3.2)."""
    if method != "HEAD":
        return response
    return response[: response.index(b"\r\n\r\n") + 4]


def stream_head(gap: bool, extra: Sequence[tuple[str, str]] = ()) -> bytes:
    """The head of an SSE response; ``gap`` adds ``Streamvisor-Gap: 1``."""
    parts = [_STREAM_HEADERS]
    if gap:
        parts.append(b"Streamvisor-Gap: 1\r\n")
    parts.extend(f"{name}: {value}\r\n".encode("latin-1") for name, value in extra)
    parts.append(b"\r\n")
    return b"".join(parts)


def authorized(request: Request, tokens: Sequence[str]) -> bool:
    """True when no tokens are set, or the request presents one of them.

    The token comes from ``Authorization: Bearer T`` (RFC 6750 section 2.1) or the
    ``access_token`` query parameter (section 2.3: ``EventSource`` cannot set headers).
    Compared in constant time.
    """
    if not tokens:
        return True
    given = request.query.get("access_token")
    auth = request.headers.get("authorization", "")
    scheme, _, credentials = auth.strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        given = credentials.strip()
    if not given:
        return False
    candidate = given.encode("utf-8", "surrogateescape")
    found = False
    for token in tokens:  # no early exit: the time taken does not tell which token matched
        found |= hmac.compare_digest(candidate, token.encode("utf-8"))
    return found


def cors_headers(
    request: Request, allow_origins: Sequence[str], *, preflight: bool = False
) -> list[tuple[str, str]]:
    """CORS response headers for ``request`` (empty when its origin is not allowed).

    The relay's own headers are exposed (``Streamvisor-Gap``); a preflight allows
    ``Last-Event-ID`` and ``Authorization`` (Fetch standard, section 3.2).
    """
    origin = request.headers.get("origin")
    if not origin or not allow_origins:
        return []
    if "*" in allow_origins:
        allowed = "*"
    elif origin in allow_origins:
        allowed = origin
    else:
        return []
    headers = [("Access-Control-Allow-Origin", allowed), ("Vary", "Origin")]
    if preflight:
        headers += [
            ("Access-Control-Allow-Methods", "GET"),
            ("Access-Control-Allow-Headers", "Authorization, Cache-Control, Last-Event-ID"),
            ("Access-Control-Max-Age", "600"),
        ]
    else:
        headers.append(("Access-Control-Expose-Headers", "Streamvisor-Gap"))
    return headers
