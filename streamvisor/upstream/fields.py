"""Which request URLs and header fields can be sent: the one set of rules that the config
checker, the command line and the connection share, so that a value ``check`` and the
command line accept is one a request can carry. Pure: no I/O.

URLs: absolute ``http://`` or ``https://`` with a host and a port from 0 to 65535. No control
characters anywhere (RFC 3986 section 2 has none; ``requests`` would percent-encode them in
a path but refuses them in a host), and no space in the host (urllib3 refuses a host that
holds one, ``util/url.py`` ``_HOST_INVALID_CHAR_RE``; WHATWG URL lists both as forbidden host
code points).

Header fields: the name is a token and the value visible ASCII, spaces, tabs and obs-text
(RFC 9110 sections 5.1, 5.5 and 5.6.2). ``http.client`` encodes ``str`` values as Latin-1,
so a value outside Latin-1 cannot be sent either.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from streamvisor.policy.redact import redact_url

__all__ = [
    "FIELD_CONTROL",
    "HEADER_NAME",
    "OWS",
    "header_problem",
    "header_value_problem",
    "url_problem",
]

HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
"""An RFC 9110 section 5.6.2 token: what a header name may hold."""

OWS = " \t"
"""Optional whitespace around a field value: not part of the value (RFC 9110 section 5.5)."""

FIELD_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
"""C0 controls except HTAB, and DEL: never in a field value (RFC 9110 section 5.5: neither
field-vchar, SP nor HTAB)."""

_URL_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def url_problem(text: str, *, shown: str | None = None) -> str | None:
    """Why ``text`` is not a URL a stream's request can be sent to, or None when it is.

    Args:
        text: the URL, surrounding whitespace already removed.
        shown: how the message shows the URL; by default quoted, with its password and
            credential query values masked (``redact_url``).

    Returns:
        One line such as ``URL has no host: 'http://'``, or None.
    """
    if shown is None:
        shown = repr(redact_url(text))
    if _URL_CONTROL.search(text):
        return f"not a valid URL (it holds control characters): {shown}"
    try:
        parts = urlsplit(text)
        host = parts.hostname
        _ = parts.port  # raises ValueError on a port that is not a number from 0 to 65535
    except ValueError:
        return f"not a valid URL: {shown}"
    if parts.scheme.lower() not in ("http", "https"):
        return f"expected an http:// or https:// URL, got {shown}"
    if not host:
        return f"URL has no host: {shown}"
    if " " in host:
        return f"not a valid URL (a space in the host): {shown}"
    return None


def header_value_problem(value: str) -> str | None:
    """Why a header value cannot be sent, or None when it can; it never quotes the value.

    Args:
        value: the value as it will be sent (surrounding spaces and tabs already removed).

    Returns:
        ``holds control characters``, ``is not Latin-1 text`` or ``starts with whitespace``
        (to follow "the value of header NAME"), or None.
    """
    if FIELD_CONTROL.search(value):
        return "holds control characters"
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return "is not Latin-1 text"
    if value[:1].isspace():
        return "starts with whitespace"
    return None


def header_problem(name: str, value: str) -> str | None:
    """Why the request header ``name: value`` cannot be sent, or None when it can.

    The message names the header but never quotes its value (it may be a credential).

    Args:
        name: the header name (an RFC 9110 token).
        value: the value as it will be sent (surrounding spaces and tabs already removed).
    """
    if not HEADER_NAME.fullmatch(name):
        return "not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only)"
    problem = header_value_problem(value)
    return None if problem is None else f"the value of header {name} {problem}"
