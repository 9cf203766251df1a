"""``Connection``: one HTTP request/response of one SSE stream attempt, over requests.

The only module that imports requests. It opens the request (headers, auth, body,
Last-Event-ID), validates status and content type, hands out raw body bytes, and turns
every transport exception into a ``StreamError`` (``raise ... from exc``). Rule: error
messages never carry credentials (URLs are redacted, header values are never quoted), and
``interrupt()`` from any thread unblocks a read with ``socket.shutdown``, never
``Response.close()`` (which blocks while another thread reads). A request that cannot be
built (a header HTTP cannot carry) fails as ``RequestBuildError`` before anything is sent,
and a redirect that cannot be followed as ``RedirectError``: neither is worth a retry.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import requests
import urllib3.exceptions

from streamvisor.errors import (
    ConnectError,
    ContentTypeError,
    HTTPStatusError,
    ReadTimeoutError,
    RedirectError,
    RequestBuildError,
    StreamError,
    StreamProtocolError,
)
from streamvisor.policy.classify import parse_retry_after
from streamvisor.policy.redact import redact_text, redact_url
from streamvisor.spec import StreamSpec
from streamvisor.upstream.auth import AuthHookError, GuardedAuth
from streamvisor.upstream.body import BodyReader
from streamvisor.upstream.causes import describe_cause, describe_local
from streamvisor.upstream.chunked import ChunkedError
from streamvisor.upstream.headers import redirect_problem, request_headers
from streamvisor.upstream.mime import extract_mime_essence
from streamvisor.upstream.watch import Waiter, shut, socket_of, watched_session

if TYPE_CHECKING:
    from streamvisor.upstream.connector import StreamMemory

log = logging.getLogger(__name__)

MAX_RESPONSE_HEADERS = 1000
"""Most response header lines accepted. ``http.client`` refuses more than 100
(``http.client._MAXHEADERS``), and CDNs and debug proxies send more; Node.js's client allows
2000 (``maxHeadersCount``). Each line stays capped at 64 KiB by http.client. http.client
reads this limit from a module global, so raising it is process-wide: it is only ever
raised, never lowered, when this module is imported. Past it the failure names the cause
("the response has too many header lines")."""

if getattr(http.client, "_MAXHEADERS", 0) < MAX_RESPONSE_HEADERS:
    http.client._MAXHEADERS = MAX_RESPONSE_HEADERS  # type: ignore[attr-defined]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Failures of building (or addressing) the request here, before a byte is sent. Mostly
# ValueErrors: requests' InvalidURL/InvalidHeader/MissingSchema, urllib3's LocationParseError,
# http.client's header checks, UnicodeEncodeError of a header.
_LOCAL_ERRORS = (
    ValueError,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidJSONError,
    requests.exceptions.URLRequired,
)
_TRANSPORT_ERRORS = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
)


class Connection:
    """One HTTP request/response of one SSE stream attempt. Not reusable after close.

    Redirects (301, 302, 303, 307, 308) are followed up to ``spec.max_redirects``; as in
    requests (and browsers), a 301/302/303 turns a POST into a GET without a body. Cookies
    come from and go to the stream's jar in ``memory`` (cookies set by a redirect count).

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
        memory: StreamMemory | None = None,
    ) -> None:
        """Prepare the attempt; no I/O happens here.

        Args:
            spec: the stream to connect to.
            last_event_id: sent as ``Last-Event-ID`` when non-empty (without surrounding
                whitespace; left out, with a WARNING, when it holds control characters).
            session: a session to use (and not close); by default a private one is made
                at ``open()`` and closed with the connection.
            memory: the stream's cookie jar and reported problems, kept across attempts
                (``HTTPConnector``); without it, cookies last one attempt.
        """
        self._spec = spec
        self._last_event_id = last_event_id
        self._memory = memory
        self._session = session
        self._own_session = session is None
        self._url = redact_url(spec.url)
        self._lock = threading.Lock()
        self._response: requests.Response | None = None
        self._opened = False
        self._interrupted = False
        self._body: BodyReader | None = None
        self._waiter = Waiter()  # open() waiting for the response
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
            ContentTypeError: the content type was not ``text/event-stream`` (read as the
                Fetch standard's "extract a MIME type": the last valid value of a list).
            ConnectError: the connection failed (refused, DNS, TLS, reset, a response
                beyond http.client's limits).
            RedirectError: a redirect without a usable Location, or more than
                ``spec.max_redirects`` redirects.
            RequestBuildError: the request could not be built (a header value HTTP cannot
                carry, an invalid URL); nothing was sent.
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
                self._session = watched_session()
            session = self._session
        try:
            with self._waiter.watch():  # interrupt() can stop a wait for the headers
                response = self._request(session)
            if response is None:  # interrupted while connecting
                self._release()
                return
            self.status = response.status_code
            self.content_type = response.headers.get("Content-Type")
            if self.status != 200:
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                raise HTTPStatusError(self.status, retry_after, response.reason or "")
            if extract_mime_essence(self.content_type) != "text/event-stream":
                raise ContentTypeError(self.content_type)
            # An open stream may live for days: drop what is no longer needed (the
            # session already took the cookies, redirects are done). ~2.5 KiB a stream.
            response.request = None  # type: ignore[assignment]
            response.cookies = None  # type: ignore[assignment]
            response.history = []
            self._body = BodyReader(response)
        except BaseException as exc:
            self._release()
            if self._interrupted and isinstance(exc, Exception):
                return  # a requested stop is a normal end, not a failure
            raise

    def read(self) -> bytes:
        """Return the next body bytes (``BodyReader.read``), or b"".

        Returns ``b""`` at a clean end of the body and after ``interrupt()`` (whatever the
        socket did then).

        Raises:
            ReadTimeoutError: no byte arrived within ``spec.read_timeout``.
            ConnectError: the connection broke (reset, truncated chunked body).
            StreamProtocolError: the body could not be decoded (Content-Encoding).
            RuntimeError: ``open()`` has not succeeded.
        """
        body = self._body
        if self._interrupted:
            return b""
        if body is None or self._response is None:
            raise RuntimeError("Connection.read() needs a successful open()")
        try:
            data = body.read()
        except ChunkedError as exc:
            cause = f"invalid chunked body: {exc}"
            raise ConnectError(f"{self._url}: connection broke: {cause}", cause) from exc
        except Exception as exc:
            if self._interrupted:
                return b""
            error = self._read_error(exc)
            if error is None:
                raise
            raise error from exc
        if not data and body.truncated and not self._interrupted:
            cause = "the chunked body ended before its last chunk"
            raise ConnectError(f"{self._url}: connection broke: {cause}", cause)
        return data

    def interrupt(self) -> None:
        """Unblock a ``read()`` in another thread; it then returns ``b""``. Thread-safe.

        Shuts the socket down (``SHUT_RDWR``) without closing it, so it never blocks. During
        ``open()`` it wakes a wait for the response too (``upstream/watch.py``; a proxied
        request waits for its timeouts): ``open()`` then releases everything and returns.
        """
        with self._lock:
            self._interrupted = True
            response = self._response
        self._waiter.stop()
        if response is not None:
            shut(socket_of(response))

    def close(self) -> None:
        """Interrupt, then release the response (and the session if it is ours). Idempotent.

        Best called after the reading thread has left ``read()``: closing the response
        waits until it has.
        """
        self.interrupt()
        self._release()

    def _request(self, session: requests.Session) -> requests.Response | None:
        spec = self._spec
        where = f"{spec.method} {self._url}"
        send: dict[str, Any] = {
            "timeout": (spec.connect_timeout, spec.read_timeout),
            "stream": True,
            "verify": spec.verify,
        }
        jar = self._memory.cookie_jar(spec.name) if self._memory is not None else None
        try:
            body, body_type = spec.body_bytes()
        except (TypeError, ValueError) as exc:
            raise RequestBuildError(
                f"{where}: cannot build the request: a body that cannot be sent as JSON"
            ) from exc
        headers = self._headers(body_type)  # a header callable's own errors stay its own
        auth = GuardedAuth(spec.auth) if callable(spec.auth) else spec.auth
        try:
            response = session.request(
                spec.method,
                spec.url,
                headers=headers,
                data=body,
                auth=auth,
                cookies=jar,
                allow_redirects=False,
                **send,
            )
        except (requests.ReadTimeout, urllib3.exceptions.ReadTimeoutError) as exc:
            raise ReadTimeoutError(f"{where}: no response within {spec.read_timeout:g}s") from exc
        except AuthHookError as exc:
            raised = exc.__cause__
            if isinstance(raised, _TRANSPORT_ERRORS):
                text = f"the auth hook failed: {describe_cause(raised)}"
                raise ConnectError(f"{where}: {text}", text) from raised
            assert raised is not None
            raise raised from None  # a bug in the hook: a crash, as it always was
        except _LOCAL_ERRORS as exc:
            raise RequestBuildError(
                f"{where}: cannot build the request: {describe_local(exc)}"
            ) from exc
        except _TRANSPORT_ERRORS as exc:
            cause = describe_cause(exc)
            raise ConnectError(f"{where}: {cause}", cause) from exc
        hops = 0
        while self._keep(response) and response.status_code in _REDIRECTS:
            if self._memory is not None:
                self._memory.remember_cookies(spec.name, response)
            location = response.headers.get("Location")
            status = f"HTTP {response.status_code} {response.reason or ''}".rstrip()
            problem = redirect_problem(status, location)
            if problem is not None or location is None:
                raise RedirectError(f"{where}: {problem}")
            if hops >= spec.max_redirects:
                raise RedirectError(
                    f"{where}: more than {spec.max_redirects} redirects (a redirect loop?); "
                    f"the last one went to {redact_url(location)}"
                )
            hops += 1
            response = self._follow(session, response, location, send)
        if self._keep(response):
            if self._memory is not None:
                self._memory.remember_cookies(spec.name, response)
            return response
        return None

    def _follow(
        self,
        session: requests.Session,
        response: requests.Response,
        location: str,
        send: dict[str, Any],
    ) -> requests.Response:
        """One redirect hop; our own loop, so that interrupt() sees every response."""
        where = f"{self._spec.method} {self._url}"
        try:
            hop: requests.Response = next(
                session.resolve_redirects(response, response.request, **send)
            )
            return hop
        except (requests.ReadTimeout, urllib3.exceptions.ReadTimeoutError) as exc:
            raise ReadTimeoutError(
                f"{where}: no response within {self._spec.read_timeout:g}s after a redirect"
            ) from exc
        except (*_LOCAL_ERRORS, StopIteration) as exc:
            raise RedirectError(
                f"{where}: HTTP {response.status_code} redirect to an unusable Location "
                f"{redact_url(location)!r} ({describe_local(exc)})"
            ) from exc
        except _TRANSPORT_ERRORS as exc:
            cause = describe_cause(exc)
            raise ConnectError(f"{where}: after a redirect: {cause}", cause) from exc

    def _keep(self, response: requests.Response) -> bool:
        """Publish the response for interrupt(); False if interrupt() came first."""
        with self._lock:
            self._response = response
            return not self._interrupted

    def _headers(self, body_type: str | None) -> dict[str, str | bytes]:
        spec = self._spec
        extra: Mapping[str, str] = spec.headers() if callable(spec.headers) else spec.headers
        headers, problem, id_problem = request_headers(extra, body_type, self._last_event_id)
        if problem is not None:
            raise RequestBuildError(
                f"{spec.method} {self._url}: cannot build the request: {redact_text(problem)}"
            )
        if id_problem is not None:
            self._report_unsendable_id(id_problem)
        return headers

    def _report_unsendable_id(self, problem: str) -> None:
        name, last_id = self._spec.name, self._last_event_id or ""
        if self._memory is not None and not self._memory.first_report(name, f"id:{last_id}"):
            return
        shown = repr(last_id if len(last_id) <= 64 else last_id[:64] + "...")
        log.warning(
            "stream %s: not sending Last-Event-ID %s: %s; the server decides where to resume",
            name,
            shown,
            problem,
            extra={"stream": name},
        )

    def _read_error(self, exc: Exception) -> StreamError | None:
        if isinstance(exc, urllib3.exceptions.ReadTimeoutError | TimeoutError):
            return ReadTimeoutError(
                f"{self._url}: no data for {self._spec.read_timeout:g}s (read timeout)"
            )
        if isinstance(exc, urllib3.exceptions.DecodeError):
            return StreamProtocolError(f"{self._url}: cannot decode the response body")
        if isinstance(exc, _TRANSPORT_ERRORS):
            cause = describe_cause(exc)
            return ConnectError(f"{self._url}: connection broke: {cause}", cause)
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
