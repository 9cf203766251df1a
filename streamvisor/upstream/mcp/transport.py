"""HTTP exchanges of an MCP client over requests: POST a message, read a JSON or SSE
answer, DELETE a session. I/O only; what a status means is decided in ``session.py``.

Rules: every POST says ``Accept: application/json, text/event-stream`` (2025-03-26
transports, "Sending Messages to the Server": the client MUST accept both); the stream's
headers (a callable is called per request, for fresh tokens) and ``auth`` go on every
request; error texts carry the redacted URL and never a header value; an SSE answer can be
interrupted from another thread (``socket.shutdown``, as ``Connection`` does).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
from collections.abc import Mapping
from typing import Any

import requests
import urllib3.exceptions
from requests.structures import CaseInsensitiveDict

from streamvisor.errors import ConnectError, ReadTimeoutError, StreamProtocolError
from streamvisor.policy.redact import redact_url
from streamvisor.spec import StreamSpec
from streamvisor.sse import Decoder, Event
from streamvisor.upstream.body import BodyReader
from streamvisor.upstream.causes import describe_cause as _describe
from streamvisor.upstream.chunked import ChunkedError
from streamvisor.upstream.mcp.jsonrpc import dumps, parse_messages
from streamvisor.upstream.watch import socket_of as _socket_of

__all__ = ["ACCEPT_BOTH", "Reply", "SseBody", "delete", "post", "request_headers"]

ACCEPT_BOTH = "application/json, text/event-stream"
_ERROR_BODY_LIMIT = 4096
_TRANSPORT_ERRORS = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
)


def request_headers(spec: StreamSpec, extra: Mapping[str, str]) -> dict[str, str]:
    """The stream's own headers (called per request when callable) plus ``extra``."""
    base: Mapping[str, str] = spec.headers() if callable(spec.headers) else spec.headers
    headers = CaseInsensitiveDict[str](base)
    headers.update(extra)
    return dict(headers.items())


class SseBody:
    """An SSE response body being read: ``read()`` returns decoded events, ``[]`` at the
    end (``ended`` is then True). ``interrupt()`` from any thread ends a blocked read.
    Bytes come through ``BodyReader``, as for ``kind: sse`` (chunked bodies in bulk, 1 KiB
    reads while idle)."""

    def __init__(self, response: requests.Response, url: str, last_event_id: str | None) -> None:
        self._response = response
        self._body = BodyReader(response)
        self._url = url
        self._lock = threading.Lock()
        self._interrupted = False
        self.decoder = Decoder(last_event_id=last_event_id)
        self.ended = False
        self.received = 0  # bytes of the body

    def read(self) -> list[Event]:
        """The events completed by the next chunk; ``[]`` when the body ended.

        Raises:
            ReadTimeoutError: no byte within the read timeout.
            ConnectError: the connection broke.
        """
        while not self.ended:
            if self._interrupted:
                self.ended = True
                break
            try:
                chunk = self._body.read()
            except ChunkedError as exc:
                raise ConnectError(
                    f"{self._url}: connection broke: invalid chunked body: {exc}"
                ) from exc
            except Exception as exc:
                if self._interrupted:
                    self.ended = True
                    break
                raise _read_error(exc, self._url) from exc
            if not chunk:
                if self._body.truncated and not self._interrupted:
                    raise ConnectError(
                        f"{self._url}: connection broke: the chunked body ended before its "
                        "last chunk"
                    )
                self.ended = True
                self.decoder.end()
                break
            self.received += len(chunk)
            events = self.decoder.feed(chunk)
            if events:
                return events
        return []

    def interrupt(self) -> None:
        """Wake a blocked ``read()`` (it then returns ``[]``). Thread-safe."""
        with self._lock:
            self._interrupted = True
        sock = _socket_of(self._response)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.interrupt()
        with contextlib.suppress(Exception):
            self._response.close()


class Reply:
    """The answer to one POST.

    Attributes:
        status: the HTTP status.
        headers: the response headers.
        messages: the JSON-RPC messages of a JSON body (None otherwise).
        body: an SSE body to read (None unless ``text/event-stream`` with status 200).
        error_text: a short, redacted description of a non-2xx answer.
        reason: the HTTP reason phrase ("Not Found"), or "".
    """

    def __init__(
        self,
        status: int,
        headers: Mapping[str, str],
        messages: list[dict[str, Any]] | None = None,
        body: SseBody | None = None,
        error_text: str = "",
        reason: str = "",
    ) -> None:
        self.status = status
        self.headers = headers
        self.messages = messages
        self.body = body
        self.error_text = error_text
        self.reason = reason

    def json_error(self) -> dict[str, Any] | None:
        """The JSON-RPC ``error`` member of an error body, if the server sent one."""
        for msg in self.messages or ():
            error = msg.get("error")
            if isinstance(error, dict):
                return error
        return None


def post(
    http: requests.Session,
    spec: StreamSpec,
    url: str,
    message: Mapping[str, Any],
    headers: Mapping[str, str],
    *,
    read_timeout: float | None = None,
    last_event_id: str | None = None,
) -> Reply:
    """POST one JSON-RPC message; read a JSON body at once, hand an SSE body back open.

    Raises:
        ConnectError: the request failed (refused, reset, DNS, TLS).
        ReadTimeoutError: no response within the read timeout.
    """
    sent = {"Accept": ACCEPT_BOTH, "Content-Type": "application/json", **headers}
    data = dumps(message).encode("utf-8")
    return _exchange(http, spec, "POST", url, sent, data, read_timeout, last_event_id)


def get_stream(
    http: requests.Session,
    spec: StreamSpec,
    url: str,
    headers: Mapping[str, str],
    last_event_id: str | None,
    *,
    read_timeout: float | None = None,
) -> Reply:
    """GET an SSE stream (a call's resume: GET + Last-Event-ID, 2025-11-25 "Resumability").

    Raises:
        ConnectError, ReadTimeoutError: as ``post``.
    """
    sent = {"Accept": "text/event-stream", **headers}
    if last_event_id:
        sent["Last-Event-ID"] = last_event_id
    return _exchange(http, spec, "GET", url, sent, None, read_timeout, last_event_id)


def delete(
    http: requests.Session, spec: StreamSpec, url: str, headers: Mapping[str, str], timeout: float
) -> int | None:
    """DELETE the session (2025-03-26 "Session Management"); the status, or None when the
    request failed (a stop must not hang or raise on a dead server)."""
    try:
        response = http.delete(
            url,
            headers=dict(headers),
            auth=spec.auth,
            timeout=(min(spec.connect_timeout, timeout), timeout),
            verify=spec.verify,
            allow_redirects=False,
        )
    except _TRANSPORT_ERRORS:
        return None
    with contextlib.suppress(Exception):
        response.close()
    return response.status_code


def _exchange(
    http: requests.Session,
    spec: StreamSpec,
    method: str,
    url: str,
    headers: dict[str, str],
    data: bytes | None,
    read_timeout: float | None,
    last_event_id: str | None,
) -> Reply:
    shown = redact_url(url)
    timeout = (
        spec.connect_timeout,
        read_timeout if read_timeout is not None else spec.read_timeout,
    )
    try:
        response = http.request(
            method,
            url,
            headers=headers,
            data=data,
            auth=spec.auth,
            timeout=timeout,
            verify=spec.verify,
            stream=True,
            allow_redirects=False,
        )
    except (requests.ReadTimeout, urllib3.exceptions.ReadTimeoutError) as exc:
        raise ReadTimeoutError(f"{method} {shown}: no response within {timeout[1]:.3g}s") from exc
    except _TRANSPORT_ERRORS as exc:
        raise ConnectError(f"{method} {shown}: {_describe(exc)}") from exc
    status = response.status_code
    essence = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if status == 200 and essence == "text/event-stream":
        return Reply(status, response.headers, body=SseBody(response, shown, last_event_id))
    try:
        raw = response.raw.read(_ERROR_BODY_LIMIT if status >= 300 else None, decode_content=True)
    except Exception as exc:
        response.close()
        raise _read_error(exc, shown) from exc
    response.close()
    text = raw.decode("utf-8", "replace") if raw else ""
    messages = parse_messages(text) if text and "json" in essence else None
    error_text = ""
    if status >= 300:
        error_text = f"{method} {shown}: HTTP {status} {response.reason or ''}".rstrip()
    elif status == 200 and messages is None:
        got = f"a body that is not JSON-RPC ({essence})" if "json" in essence else essence
        raise StreamProtocolError(
            f"{method} {shown}: expected a JSON-RPC answer, got {got or 'no content type'}"
        )
    reason = response.reason or ""
    return Reply(status, response.headers, messages, error_text=error_text, reason=reason)


def _read_error(exc: Exception, shown: str) -> Exception:
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError | TimeoutError):
        return ReadTimeoutError(f"{shown}: no data within the read timeout")
    if isinstance(exc, _TRANSPORT_ERRORS):
        return ConnectError(f"{shown}: connection broke: {_describe(exc)}")
    return exc


def loads_object(text: str) -> dict[str, Any] | None:
    """A JSON object, or None."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
