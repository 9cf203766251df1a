"""The real cause of a failed HTTP attempt, in a few words a person can act on.

``requests`` wraps a refused connection three levels deep and names it "ConnectionError";
a person wants "Connection refused", "got more than 1000 headers" or "timed out". This
walks the exception's causes and picks the most specific text. No I/O; the text never
holds a URL or a header value (URL-bearing texts go through ``streamvisor.policy.redact``).
"""

from __future__ import annotations

import http.client

import urllib3.exceptions

from streamvisor.policy.redact import redact_text

__all__ = ["describe_cause", "describe_local"]

# Texts for local (request-building) failures, by exception type name: the exceptions' own
# texts may quote header values or URLs.
_LOCAL_TEXT = {
    "InvalidHeader": "a header that HTTP cannot carry",
    "InvalidURL": "an invalid URL",
    "LocationParseError": "an invalid URL",
    "LocationValueError": "an invalid URL",
    "MissingSchema": "a URL without http:// or https://",
    "InvalidSchema": "a URL scheme other than http or https",
    "URLRequired": "no URL",
    "InvalidJSONError": "a body that cannot be sent as JSON",
    "UnicodeEncodeError": "text that cannot be encoded for HTTP",
    "UnicodeError": "a host name that cannot be encoded (IDNA)",
}


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and everything it wraps, breadth-first (causes, urllib3 reasons, args)."""
    todo: list[object] = [exc]
    seen: list[BaseException] = []
    while todo:
        cur = todo.pop(0)
        if not isinstance(cur, BaseException) or any(cur is s for s in seen):
            continue
        seen.append(cur)
        todo += [cur.__cause__, cur.__context__, getattr(cur, "reason", None), *cur.args]
    return seen


def describe_cause(exc: BaseException) -> str:
    """A short cause without URLs or header values.

    In order of preference: an OS error's text ("Connection refused", "Name or service not
    known", a TLS verification message); an ``http.client`` protocol error's text ("got
    more than 1000 headers", "Remote end closed connection without response"); "timed
    out"; a plain ``OSError``'s message (a missing CA bundle); the outermost exception's
    type name. A failure of the proxy (``HTTP_PROXY`` and friends) starts "the proxy
    failed: ", so nobody hunts for a fault in the server.
    """
    chain = _chain(exc)
    text = _specific(chain)
    if any(isinstance(cur, urllib3.exceptions.ProxyError) for cur in chain):
        # The proxy (HTTP(S)_PROXY, ALL_PROXY) failed, not the server: say so.
        return f"the proxy failed: {text}" if text else "the proxy failed"
    return text or type(exc).__name__


def _specific(chain: list[BaseException]) -> str | None:
    for cur in chain:
        if isinstance(cur, OSError) and cur.strerror:
            return cur.strerror  # e.g. "Connection refused"; never holds a URL
    for cur in chain:
        if isinstance(cur, http.client.HTTPException) and str(cur):
            return redact_text(_http_client_text(cur))
    if any(isinstance(e, TimeoutError | urllib3.exceptions.TimeoutError) for e in chain):
        return "timed out"
    for cur in chain:
        # A plain OSError with a message, e.g. requests' "Could not find a suitable TLS CA
        # certificate bundle, invalid path: ..." (a wrong ``verify`` path).
        if type(cur) is OSError and cur.args and isinstance(cur.args[0], str) and cur.args[0]:
            return redact_text(cur.args[0])
    return None


def _http_client_text(exc: http.client.HTTPException) -> str:
    text = str(exc)
    if text.startswith("got more than") and text.endswith("headers"):
        # http.client's limit on response header lines (see connection.MAX_RESPONSE_HEADERS)
        return f"the response has too many header lines ({text})"
    if isinstance(exc, http.client.LineTooLong):
        return f"a response header line is too long ({text})"
    return text


def describe_local(exc: BaseException) -> str:
    """What was wrong with a request that could not be built, without quoting values."""
    for cur in _chain(exc):
        text = _LOCAL_TEXT.get(type(cur).__name__)
        if text is not None:
            return text
    return type(exc).__name__
