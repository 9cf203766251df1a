"""Who may use the admin endpoint's page, feed and commands. Pure: WSGI environ in, bool out.

Rules:
- The token is a bearer token (RFC 6750 section 2.1, ``Authorization: Bearer <token>``),
  compared in constant time (``hmac.compare_digest``). The live feed also takes it as a
  ``token`` query parameter, because a browser's ``EventSource`` cannot send headers (WHATWG
  HTML, "The EventSource interface": the constructor takes only a URL and
  ``withCredentials``). Commands take the header only.
- A browser request from another site is refused (``Origin`` not matching ``Host``, or
  ``Sec-Fetch-Site: cross-site``): without this, any web page the operator opens could POST
  ``/streams/x/close`` to a loopback admin port.
- Without a token, commands also need a ``Host`` that is an IP literal or ``localhost``: a
  DNS-rebinding page (its own name resolving to 127.0.0.1) is then refused too.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["authorized", "bearer_token", "cross_site", "local_host", "query_token"]


def bearer_token(environ: Mapping[str, Any]) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive)."""
    header = str(environ.get("HTTP_AUTHORIZATION", ""))
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def query_token(environ: Mapping[str, Any]) -> str | None:
    """The ``token`` query parameter, or None."""
    for name, value in parse_qsl(str(environ.get("QUERY_STRING", ""))):
        if name == "token" and value:
            return value
    return None


def authorized(environ: Mapping[str, Any], token: str | None, *, allow_query: bool) -> bool:
    """True when no token is configured or the request carries it.

    Args:
        environ: the WSGI environ.
        token: the configured ``admin.token``, or None.
        allow_query: also accept the ``token`` query parameter (the live feed only).
    """
    if token is None:
        return True
    given = bearer_token(environ)
    if given is None and allow_query:
        given = query_token(environ)
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8"))


def cross_site(environ: Mapping[str, Any]) -> bool:
    """True when a browser says the request comes from another site (Fetch metadata,
    ``Origin``). Requests from non-browser clients carry neither header and pass."""
    site = str(environ.get("HTTP_SEC_FETCH_SITE", "")).lower()
    if site in ("cross-site", "same-site"):
        return True
    origin = environ.get("HTTP_ORIGIN")
    if origin is None:
        return False
    try:
        netloc = urlsplit(str(origin)).netloc
    except ValueError:
        return True
    host = str(environ.get("HTTP_HOST", ""))
    return not netloc or netloc.lower() != host.lower()


def local_host(environ: Mapping[str, Any]) -> bool:
    """True when the ``Host`` header names ``localhost`` or an IP literal (no DNS name)."""
    host = str(environ.get("HTTP_HOST", "")).strip()
    if not host:
        return True  # HTTP/1.0 clients may send none; a browser always does
    if host.startswith("["):
        name = host[1:].partition("]")[0]
    else:
        name = host.rpartition(":")[0] if host.count(":") == 1 else host
    if name.lower() == "localhost":
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
