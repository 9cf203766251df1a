"""The error taxonomy: every exception streamvisor raises, under ``StreamvisorError``.

Pure: no I/O, no threads. ``upstream/connection.py`` turns transport exceptions into these
types (``raise ... from exc``). What a failure means for the supervisor is decided in
``policy/classify.py``; ``classify``, ``Action`` and ``parse_retry_after`` stay importable
from here.
"""

from __future__ import annotations


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


class EventTooLargeError(StreamProtocolError):
    """An event (or one line of it) grew past the decoder's size limit (``max_event_size``).

    Attributes:
        limit: the limit, in bytes.
    """

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


LineTooLongError = EventTooLargeError
"""The earlier name of ``EventTooLargeError`` (kept: it is raised for whole events too)."""

_MOVED = ("Action", "classify", "parse_retry_after")


def __getattr__(name: str) -> object:
    if name in _MOVED:
        from streamvisor.policy import classify as _classify

        return getattr(_classify, name)
    raise AttributeError(f"module 'streamvisor.errors' has no attribute {name!r}")
