"""``Connection``: one HTTP request/response of one SSE stream attempt, over requests.

The only module that imports requests. It opens the request (headers, auth, body,
Last-Event-ID), validates status and content type, hands out raw body bytes, and turns
every transport exception into a ``StreamError`` (``raise ... from exc``). Rule: error
messages never carry credentials (URLs are redacted, header values are never quoted), and
``interrupt()`` from any thread unblocks a read with ``socket.shutdown``, never
``Response.close()`` (which blocks while another thread reads).
"""

from __future__ import annotations

import contextlib
import http.client
import http.cookiejar
import socket
import threading
import urllib.parse
from collections.abc import Mapping
from typing import Any

import requests
import requests.adapters
import urllib3.exceptions
from requests.structures import CaseInsensitiveDict

from streamvisor.errors import (
    ConnectError,
    ContentTypeError,
    HTTPStatusError,
    ReadTimeoutError,
    StreamError,
    StreamProtocolError,
    parse_retry_after,
)
from streamvisor.spec import StreamSpec

CHUNK_SIZE = 65536
"""Chunk ``read()`` asks for while the stream is not busy."""

BUSY_CHUNK_SIZE = 262144
"""Chunk ``read()`` asks for after a read came back full (a burst is waiting). One read's
events travel to subscribers as one batch, so bigger reads mean fewer thread hops per event
(bench/README.md: a batch subscriber took 8% less CPU per event, with 4x fewer context
switches). Quiet streams keep the smaller buffer: a blocked read holds one, and 256 KiB for
every stream cost 3 MiB more per 1,000 idle streams."""

_TRANSPORT_ERRORS = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
)


_shared: requests.Session | None = None
_shared_lock = threading.Lock()


def shared_session() -> requests.Session:
    """One process-wide session for every stream, with cookies switched off.

    A session per stream costs about 12 KiB; with a thousand streams that is most of the
    memory budget. Cookies are not kept, so streams never see each other's cookies.
    """
    global _shared
    with _shared_lock:
        if _shared is None:
            session = requests.Session()
            session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
            adapter = requests.adapters.HTTPAdapter(pool_connections=16, pool_maxsize=256)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            _shared = session
        return _shared


def cookie_session() -> requests.Session:
    """A session of its own that keeps cookies across attempts, as a browser's
    ``EventSource`` does for its origin (``streamvisor tail``: one stream, one jar).

    The caller closes it.
    """
    return requests.Session()


class Connection:
    """One HTTP request/response of one SSE stream attempt. Not reusable after close.

    Redirects (301, 302, 303, 307, 308) are followed up to ``spec.max_redirects``; as in
    requests (and browsers), a 301/302/303 turns a POST into a GET without a body.

    Typical use: ``open()`` and ``read()`` in a reader thread; ``interrupt()`` from the
    thread that wants it stopped, join the reader, then ``close()``.

    Attributes:
        status: the HTTP status of the final response, or None before ``open()``.
        content_type: the final response's Content-Type header, or None.
    """

    def __init__(
        self,
        spec: StreamSpec,
        last_event_id: str | None = None,
        *,
        session: requests.Session | None = None,
    ) -> None:
        """Prepare the attempt; no I/O happens here.

        Args:
            spec: the stream to connect to.
            last_event_id: sent as ``Last-Event-ID`` when non-empty.
            session: a session to use (and not close); by default a private one is made
                at ``open()`` and closed with the connection.
        """
        self._spec = spec
        self._last_event_id = last_event_id
        self._session = session
        self._own_session = session is None
        self._url = _redact_url(spec.url)
        self._lock = threading.Lock()
        self._response: requests.Response | None = None
        self._opened = False
        self._interrupted = False
        self._busy = False  # the last read came back full: ask for BUSY_CHUNK_SIZE
        self.status: int | None = None
        self.content_type: str | None = None

    @property
    def interrupted(self) -> bool:
        """True once ``interrupt()`` or ``close()`` was called."""
        return self._interrupted

    def open(self) -> None:
        """Send the request and check the response.

        If ``interrupt()`` was called before or during ``open()``, everything is released
        and ``open()`` returns without raising; ``read()`` then returns ``b""``.

        Raises:
            HTTPStatusError: the final status was not 200 (204 means "stop for good").
            ContentTypeError: the content type was not ``text/event-stream``.
            ConnectError: the connection failed (refused, DNS, TLS, reset, invalid URL,
                too many redirects).
            ReadTimeoutError: the response headers did not come within the read timeout.
            RuntimeError: ``open()`` was called twice.
        """
        with self._lock:
            if self._opened:
                raise RuntimeError("Connection.open() may be called only once")
            self._opened = True
            if self._interrupted:
                return
            if self._session is None:
                self._session = requests.Session()
            session = self._session
        try:
            response = self._request(session)
            if response is None:  # interrupted while connecting
                self._release()
                return
            self.status = response.status_code
            self.content_type = response.headers.get("Content-Type")
            if self.status != 200:
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                raise HTTPStatusError(self.status, retry_after, response.reason or "")
            essence = (self.content_type or "").split(";", 1)[0].strip().lower()
            if essence != "text/event-stream":
                raise ContentTypeError(self.content_type)
            # An open stream may live for days: drop what is no longer needed (the
            # session already took the cookies, redirects are done). ~2.5 KiB a stream.
            response.request = None  # type: ignore[assignment]
            response.cookies = None  # type: ignore[assignment]
            response.history = []
        except BaseException as exc:
            self._release()
            if self._interrupted and isinstance(exc, Exception):
                return  # a requested stop is a normal end, not a failure
            raise

    def read(self) -> bytes:
        """Return the next chunk of the body (1 to 65536 bytes, up to 262144 while the
        stream is busy), or ``b""`` at the end.

        Returns ``b""`` at a clean end of the body and after ``interrupt()`` (whatever the
        socket did then).

        Raises:
            ReadTimeoutError: no byte arrived within ``spec.read_timeout``.
            ConnectError: the connection broke (reset, truncated chunked body).
            StreamProtocolError: the body could not be decoded (Content-Encoding).
            RuntimeError: ``open()`` has not succeeded.
        """
        response = self._response
        if self._interrupted:
            return b""
        if response is None or response.raw is None:
            raise RuntimeError("Connection.read() needs a successful open()")
        size = BUSY_CHUNK_SIZE if self._busy else CHUNK_SIZE
        try:
            # read1 hands out whatever has arrived; it decodes gzip/deflate chunk by chunk.
            data = response.raw.read1(size, decode_content=True)
        except Exception as exc:
            if self._interrupted:
                return b""
            error = self._read_error(exc)
            if error is None:
                raise
            raise error from exc
        if data:
            # a full read: more is waiting; a quarter of the small size: quiet again
            self._busy = len(data) >= size or (self._busy and len(data) > CHUNK_SIZE // 4)
        return data or b""

    def interrupt(self) -> None:
        """Unblock a ``read()`` in another thread; it then returns ``b""``. Thread-safe.

        Shuts the socket down (``SHUT_RDWR``) without closing it, so it never blocks. Called
        during ``open()``, it takes effect when the request returns (bounded by the
        timeouts): ``open()`` then releases everything and returns.
        """
        with self._lock:
            self._interrupted = True
            response = self._response
        if response is not None:
            sock = _socket_of(response)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Interrupt, then release the response (and the session if it is ours). Idempotent.

        Best called after the reading thread has left ``read()``: closing the response
        waits until it has.
        """
        self.interrupt()
        self._release()

    def _request(self, session: requests.Session) -> requests.Response | None:
        spec = self._spec
        body, body_type = spec.body_bytes()
        send: dict[str, Any] = {
            "timeout": (spec.connect_timeout, spec.read_timeout),
            "stream": True,
            "verify": spec.verify,
        }
        try:
            headers = self._headers(body_type)
            response = session.request(
                spec.method,
                spec.url,
                headers=headers,
                data=body,
                auth=spec.auth,
                allow_redirects=False,
                **send,
            )
            hops = 0
            while self._keep(response) and response.is_redirect:
                if hops >= spec.max_redirects:
                    raise ConnectError(
                        f"{spec.method} {self._url}: more than {spec.max_redirects} redirects"
                    )
                hops += 1
                # our own limit, and interrupt() sees every intermediate response
                response = next(session.resolve_redirects(response, response.request, **send))
        except (requests.ReadTimeout, urllib3.exceptions.ReadTimeoutError) as exc:
            raise ReadTimeoutError(
                f"{spec.method} {self._url}: no response within {spec.read_timeout:g}s"
            ) from exc
        except _TRANSPORT_ERRORS as exc:
            raise ConnectError(f"{spec.method} {self._url}: {_describe(exc)}") from exc
        return response if self._keep(response) else None

    def _keep(self, response: requests.Response) -> bool:
        """Publish the response for interrupt(); False if interrupt() came first."""
        with self._lock:
            self._response = response
            return not self._interrupted

    def _headers(self, body_type: str | None) -> dict[str, str | bytes]:
        spec = self._spec
        extra: Mapping[str, str] = spec.headers() if callable(spec.headers) else spec.headers
        headers = CaseInsensitiveDict[str | bytes](
            {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        )
        headers.update(extra)
        if body_type is not None and "Content-Type" not in headers:
            headers["Content-Type"] = body_type
        if self._last_event_id:
            lei = self._last_event_id
            # http.client encodes str headers as Latin-1; the id came to us as UTF-8.
            headers["Last-Event-ID"] = lei if lei.isascii() else lei.encode("utf-8")
        return dict(headers.items())

    def _read_error(self, exc: Exception) -> StreamError | None:
        if isinstance(exc, urllib3.exceptions.ReadTimeoutError | TimeoutError):
            return ReadTimeoutError(
                f"{self._url}: no data for {self._spec.read_timeout:g}s (read timeout)"
            )
        if isinstance(exc, urllib3.exceptions.DecodeError):
            return StreamProtocolError(f"{self._url}: cannot decode the response body")
        if isinstance(exc, _TRANSPORT_ERRORS):
            return ConnectError(f"{self._url}: connection broke: {_describe(exc)}")
        return None  # not a transport failure: a bug, let it surface as is

    def _release(self) -> None:
        with self._lock:
            response, self._response = self._response, None
            session = self._session if self._own_session else None
            if self._own_session:
                self._session = None
        for closeable in (response, session):
            if closeable is not None:
                with contextlib.suppress(Exception):
                    closeable.close()


def _socket_of(response: requests.Response) -> socket.socket | None:
    """The socket under a streaming response (private urllib3/http.client attributes)."""
    raw: Any = response.raw
    sock = getattr(getattr(raw, "_connection", None), "sock", None)
    if sock is None:
        # http.client moves the socket into the response for read-until-close bodies.
        fp = getattr(getattr(raw, "_fp", None), "fp", None)
        sock = getattr(getattr(fp, "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


def _describe(exc: BaseException) -> str:
    """A short cause without URLs or header values: an OS error's text, or a type name."""
    todo: list[object] = [exc]
    seen: list[BaseException] = []
    while todo:  # breadth-first through causes, urllib3 reasons and wrapped arguments
        cur = todo.pop(0)
        if not isinstance(cur, BaseException) or any(cur is s for s in seen):
            continue
        seen.append(cur)
        if isinstance(cur, OSError) and cur.strerror:
            return cur.strerror  # e.g. "Connection refused"; never holds a URL
        todo += [cur.__cause__, cur.__context__, getattr(cur, "reason", None), *cur.args]
    if any(isinstance(e, TimeoutError | urllib3.exceptions.TimeoutError) for e in seen):
        return "timed out"
    return type(exc).__name__


def _redact_url(url: str) -> str:
    """``url`` with any userinfo password replaced by ``***``."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{hostport}"))
