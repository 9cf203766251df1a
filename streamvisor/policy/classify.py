"""What a stream failure means for the supervisor: ``classify`` (an ``Action``), the failure
class it is counted under, and ``Retry-After`` parsing. Pure, tested as tables.
"""

from __future__ import annotations

import email.utils
import enum
import math
import time

from streamvisor.errors import (
    ContentTypeError,
    HTTPStatusError,
    RedirectError,
    RequestBuildError,
)

__all__ = ["Action", "FailureClass", "classify", "parse_retry_after"]


class FailureClass(enum.StrEnum):
    """The class a failed attempt is counted under (``failures`` in ``/streams``, the
    ``class`` label of ``streamvisor_failures_total``). A ``str``: it compares and serialises
    as its value."""

    RETRY = "retry"
    RATE_LIMITED = "rate_limited"
    PERMANENT = "permanent"
    CRASH = "crash"


class Action(enum.Enum):
    """What the supervisor does after a failure.

    ``PERMANENT`` means "this error will not go away by retrying: the stream fails". It is
    not Erlang/OTP's ``permanent`` child restart type (a child that is always restarted);
    in OTP terms a stream is a ``transient`` child: restarted unless it ended normally
    (HTTP 204, ``DONE``) or failed for good (``PERMANENT``).
    """

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
