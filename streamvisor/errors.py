"""The error taxonomy and ``classify()``: what a stream failure means for the supervisor.

Pure: no I/O, no threads. ``connection.py`` turns transport exceptions into these types
(``raise ... from exc``); the supervisor only ever asks ``classify(error)``.
"""

from __future__ import annotations

import email.utils
import enum
import math
import time


class StreamvisorError(Exception):
    """Root of every error streamvisor raises."""


class ConfigError(StreamvisorError):
    """A problem in a configuration file or in arguments that come from one.

    Attributes:
        file: the config file's path, or None.
        line: 1-based line number, or None when unknown.
        path: dotted key path such as ``streams[0].url`` ("" for the whole file).
        message: what is wrong, already redacted.
    """

    def __init__(
        self, message: str, *, file: str | None = None, line: int | None = None, path: str = ""
    ) -> None:
        self.file = file
        self.line = line
        self.path = path
        self.message = message
        super().__init__(self.format())

    def format(self) -> str:
        """Return ``FILE:LINE: path: message`` (parts that are unknown are left out)."""
        where = ""
        if self.file is not None:
            where = f"{self.file}:{self.line}: " if self.line is not None else f"{self.file}: "
        key = f"{self.path}: " if self.path else ""
        return f"{where}{key}{self.message}"


class StreamError(StreamvisorError):
    """A failure of one upstream connection attempt.

    Attributes:
        cause: the short real cause ("Connection refused"), without URL; "" when the
            message alone says it. Failures with different causes are different kinds.
    """

    def __init__(self, message: str = "", cause: str = "") -> None:
        self.cause = cause
        super().__init__(message)


class HTTPStatusError(StreamError):
    """The server answered with a status other than 200.

    Attributes:
        status: the HTTP status code.
        retry_after: seconds from a ``Retry-After`` header, or None.
    """

    def __init__(self, status: int, retry_after: float | None = None, reason: str = "") -> None:
        self.status = status
        self.retry_after = retry_after
        text = f"HTTP {status}" + (f" {reason}" if reason else "")
        if retry_after is not None:
            text += f" (Retry-After {retry_after:g}s)"
        super().__init__(text)


class ContentTypeError(StreamError):
    """The response was not ``text/event-stream``."""

    def __init__(self, content_type: str | None) -> None:
        self.content_type = content_type
        super().__init__(f"expected content-type text/event-stream, got {content_type!r}")


class StreamProtocolError(StreamError):
    """The byte stream broke the protocol or a safety limit (e.g. a line over the size cap)."""


class LineTooLongError(StreamProtocolError):
    """A line or event grew past the decoder's size limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(
            f"an event or line larger than max_event_size ({limit} bytes); raise "
            "max_event_size (tail: --max-event-size) to accept it"
        )


class ReadTimeoutError(StreamError):
    """No byte (not even a comment) arrived within the read timeout: the connection is dead."""


class ConnectError(StreamError):
    """The connection could not be made, or broke (reset, refused, DNS, TLS)."""


class RequestBuildError(StreamError):
    """The request could not be built here, before anything was sent (a header value that
    HTTP cannot carry, an invalid URL). A local mistake: retrying cannot fix it."""


class RedirectError(StreamError):
    """A redirect that cannot be followed: no usable ``Location``, or too many redirects
    (a loop). Retrying gets the same answer."""


class EndOfStreamError(StreamError):
    """The server closed the response cleanly. Browsers reconnect; so do we."""

    def __init__(self, message: str = "server closed the stream") -> None:
        super().__init__(message)


class StreamFailedError(StreamvisorError):
    """A stream failed for good (a permanent error, retries exhausted): raised by iterators.

    Attributes:
        stream: the stream's name.
        reason: why, redacted (no credentials).
    """

    def __init__(self, stream: str, reason: str) -> None:
        self.stream = stream
        self.reason = reason
        super().__init__(f"stream {stream} failed: {reason}")


class Action(enum.Enum):
    """What the supervisor does after a failure."""

    RETRY = "retry"  # reconnect after the backoff delay
    RATE_LIMITED = "rate_limited"  # reconnect after max(Retry-After, backoff)
    PERMANENT = "permanent"  # give up: the stream fails
    DONE = "done"  # the server ended the stream for good (HTTP 204): stop, not an error


def classify(error: BaseException | None) -> Action:
    """Map a stream failure to what the supervisor should do.

    Args:
        error: the failure; None means the server closed the stream cleanly.

    Returns:
        DONE for HTTP 204; PERMANENT for 4xx other than 408/429, a 3xx that was not
        followed, a wrong content type, a redirect that cannot be followed and a request
        that cannot be built; RATE_LIMITED for 429/503 with a Retry-After; RETRY for
        everything else that a reconnect can fix (other 5xx, 408, 429 without
        Retry-After, network errors, EOF, read timeouts, protocol errors).
    """
    if isinstance(error, HTTPStatusError):
        status = error.status
        if status == 204:
            return Action.DONE
        if status in (429, 503) and error.retry_after is not None:
            return Action.RATE_LIMITED
        if 400 <= status < 500 and status not in (408, 429):
            return Action.PERMANENT
        if status < 400 and status != 200:
            # 2xx other than 200/204 has no stream, and a 3xx here was not followable
            # (no usable Location): retrying will not help.
            return Action.PERMANENT
        return Action.RETRY
    if isinstance(error, ContentTypeError | RequestBuildError | RedirectError):
        return Action.PERMANENT
    return Action.RETRY


_MAX_RETRY_AFTER = 24 * 3600.0


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Parse a ``Retry-After`` header (delta-seconds or an HTTP date) into seconds.

    Garbage, negative values and absurd dates are ignored (None), never fatal. The result is
    capped at one day so a broken server cannot park a stream for ever.

    Args:
        value: the header's value, or None.
        now: the current wall-clock time (``time.time()`` when None), for HTTP dates.
    """
    if value is None:
        return None
    text = value.strip()
    # Both forms are ASCII. Checking first keeps str.isdigit()/float() from accepting other
    # scripts' digits (and float() from Python's "1_0"); float() has no digit limit to raise on.
    if not text or not text.isascii() or "_" in text:
        return None
    if text.isdigit():
        return min(float(text), _MAX_RETRY_AFTER)
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isnan(seconds):
        if seconds < 0 or math.isinf(seconds):
            return None
        return min(seconds, _MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None or when.tzinfo is None:
        return None
    delta = when.timestamp() - (time.time() if now is None else now)
    return min(max(delta, 0.0), _MAX_RETRY_AFTER)
