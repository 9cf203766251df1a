"""Which request header values can be sent, and in what form. Pure: no I/O.

HTTP field values are visible ASCII, spaces, tabs and obs-text (RFC 9110 section 5.5);
surrounding spaces and tabs are not part of the value, so a server never reads them
(section 5.5: "a field value does not include leading or trailing whitespace").
``requests`` refuses values with leading whitespace and ``http.client`` encodes ``str``
values as Latin-1, so a value that breaks these rules would fail inside the request,
before anything is sent, on every reconnect. This module finds such values first: the
``Last-Event-ID`` is trimmed, or left out when it still cannot be sent; any other header
is a local problem to report, never retried.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from requests.structures import CaseInsensitiveDict

from streamvisor.policy.redact import redact_url
from streamvisor.upstream.fields import FIELD_CONTROL, OWS, header_problem

__all__ = [
    "header_problem",
    "last_event_id_header",
    "location_problem",
    "redirect_problem",
    "request_headers",
]

_BASE_HEADERS = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}


def last_event_id_header(last_event_id: str | None) -> tuple[str | bytes | None, str | None]:
    """The ``Last-Event-ID`` value to send, and why it is not sent when it is not.

    Leading and trailing spaces and tabs are removed (``id:  7`` leaves the id ``" 7"``;
    the server would read ``7``). Non-ASCII ids are sent as UTF-8 bytes (what a browser
    sends; ``http.client`` would otherwise encode Latin-1).

    Args:
        last_event_id: the stream's Last-Event-ID, or None.

    Returns:
        ``(value, None)`` to send ``value``; ``(None, None)`` when there is nothing to send;
        ``(None, problem)`` when the id holds control characters and cannot be sent.
    """
    if not last_event_id:
        return None, None
    value = last_event_id.strip(OWS)
    if not value:
        return None, None
    if FIELD_CONTROL.search(value):
        return None, "it holds control characters, which cannot be sent in an HTTP header"
    return (value if value.isascii() else value.encode("utf-8")), None


def location_problem(location: str | None) -> str | None:
    """Why a redirect's ``Location`` cannot be followed, or None when it can.

    Absolute targets must be http(s) URLs with a host and a valid port (the WHATWG URL
    parser fails on ``http://``; requests would quietly resolve it against the current URL
    and loop). Relative targets are resolved against the current URL and always usable.

    Args:
        location: the Location header value, or None when the response had none.
    """
    if location is None:
        return "no Location header"
    text = location.strip()
    if not text:
        return "an empty Location"
    try:
        parts = urlsplit(text)
        _ = parts.port  # raises ValueError on a port that is not a number in range
    except ValueError:
        return "an invalid URL"
    if parts.scheme and parts.scheme.lower() not in ("http", "https"):
        return "a URL scheme other than http or https"
    if (parts.scheme or text.startswith("//")) and not parts.hostname:
        return "a URL without a host"
    return None


def redirect_problem(status: str, location: str | None) -> str | None:
    """Why a redirect answer cannot be followed, as one line; None when it can.

    Args:
        status: the answer's status, e.g. ``"HTTP 302 Found"``.
        location: its Location header, or None. A URL in the line is redacted.
    """
    problem = location_problem(location)
    if problem is None:
        return None
    if location is None or not location.strip():
        return f"{status} redirect with {problem}"
    shown = redact_url(location.strip())
    return f"{status} redirect to an unusable Location {shown!r} ({problem})"


def request_headers(
    extra: Mapping[str, str], body_type: str | None, last_event_id: str | None
) -> tuple[dict[str, str | bytes], str | None, str | None]:
    """The headers of one SSE request, and what is wrong with them.

    Args:
        extra: the stream's own headers (they win over ``Accept`` and ``Cache-Control``).
        body_type: the body's Content-Type, used unless ``extra`` sets one.
        last_event_id: the stream's Last-Event-ID, or None.

    Returns:
        ``(headers, problem, id_problem)``: ``problem`` is why one of ``extra`` cannot be
        sent (the request must not be sent then); ``id_problem`` why the Last-Event-ID was
        left out.
    """
    headers = CaseInsensitiveDict[str | bytes](_BASE_HEADERS)
    for name, value in extra.items():
        text = value.strip(OWS) if isinstance(value, str) else value
        problem = header_problem(name, text) if isinstance(text, str) else None
        if problem is not None:
            return {}, problem, None
        headers[name] = text
    if body_type is not None and "Content-Type" not in headers:
        headers["Content-Type"] = body_type
    last_id, id_problem = last_event_id_header(last_event_id)
    if last_id is not None:
        headers["Last-Event-ID"] = last_id
    return dict(headers.items()), None, id_problem
