"""Redaction of secrets in URLs, headers and free text (log lines, error messages).

Pure: no I/O, and nothing here raises on odd input. Redaction errs on the side of hiding
too much: a header or query parameter whose name merely looks secret is masked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

__all__ = [
    "MASK",
    "Redactor",
    "is_secret_header",
    "is_secret_name",
    "is_secret_param",
    "redact_headers",
    "redact_url",
]

MASK = "***"

_SECRET_PARAMS = frozenset(
    {
        "token",
        "access_token",
        "key",
        "api_key",
        "apikey",
        "secret",
        "password",
        "passwd",
        "signature",
        "sig",
        "auth",
        "code",
    }
)
_SECRET_PARAM_PARTS = ("token", "secret", "key", "pass", "sig", "auth")

_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"}
)
_SECRET_HEADER_PARTS = ("token", "secret", "key", "password", "auth", "session", "signature")

_SECRET_NAME_PARTS = ("TOKEN", "KEY", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH")

_MIN_SECRET_LENGTH = 4

# ``Bearer <token>`` / ``Basic <base64>`` anywhere in text (headers echoed in logs).
_AUTH_SCHEME = re.compile(r"\b(Bearer|Basic)([ \t]+)[A-Za-z0-9\-._~+/]+=*", re.IGNORECASE)
# ``//user:password@`` inside any URL-looking text.
_USERINFO = re.compile(r"//([^/\s:@]*):([^/\s@]+)@")
# Fallback for URLs that ``urlsplit`` rejects: ``name=value`` pairs after ``?`` or ``&``.
_QUERY_PAIR = re.compile(r"([?&;])([^=&#\s;]*)=([^&#\s;]*)")


def is_secret_param(name: str) -> bool:
    """Whether a URL query parameter named ``name`` probably carries a secret."""
    lowered = name.lower()
    return lowered in _SECRET_PARAMS or any(part in lowered for part in _SECRET_PARAM_PARTS)


def is_secret_header(name: str) -> bool:
    """Whether an HTTP header named ``name`` carries a secret (case-insensitive)."""
    lowered = name.lower()
    return lowered in _SECRET_HEADERS or any(part in lowered for part in _SECRET_HEADER_PARTS)


def is_secret_name(name: str) -> bool:
    """Whether an environment variable named ``name`` probably holds a secret."""
    upper = name.upper()
    return any(part in upper for part in _SECRET_NAME_PARTS)


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``headers`` with the values of secret headers replaced by ``***``."""
    return {name: MASK if is_secret_header(name) else value for name, value in headers.items()}


def _redact_query(query: str) -> str:
    parts = []
    for pair in query.split("&"):
        name, sep, _value = pair.partition("=")
        if sep and is_secret_param(unquote_plus(name)):
            parts.append(f"{name}={MASK}")
        else:
            parts.append(pair)
    return "&".join(parts)


def _redact_query_match(match: re.Match[str]) -> str:
    sep, name, _value = match.groups()
    if is_secret_param(unquote_plus(name)):
        return f"{sep}{name}={MASK}"
    return match.group(0)


def redact_url(url: str) -> str:
    """``url`` with its password and secret-looking query values replaced by ``***``.

    ``https://user:pw@host/p?token=abc&page=2`` becomes
    ``https://user:***@host/p?token=***&page=2``. Never raises: text that is not a URL comes
    back with the same substitutions applied as well as they can be.
    """
    if not isinstance(url, str):
        return MASK
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        userinfo, at, hostport = netloc.rpartition("@")
        if at:
            user, colon, _password = userinfo.partition(":")
            if colon:
                netloc = f"{user}:{MASK}@{hostport}"
        query = _redact_query(parts.query) if parts.query else parts.query
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        text = _USERINFO.sub(lambda m: f"//{m.group(1)}:{MASK}@", url)
        return _QUERY_PAIR.sub(_redact_query_match, text)


class Redactor:
    """Scrubs known secret values and generic credential patterns out of text.

    Secrets shorter than four characters are ignored: masking every ``"ab"`` in a log line
    hides more than it protects.
    """

    __slots__ = ("_pattern", "_secrets")

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for secret in secrets:
            self.add(secret)

    def add(self, value: str) -> None:
        """Remember ``value`` (and its URL-encoded form) as a secret to scrub."""
        if not isinstance(value, str) or len(value) < _MIN_SECRET_LENGTH:
            return
        added = False
        for form in (value, quote(value, safe="")):
            if form not in self._secrets:
                self._secrets.add(form)
                added = True
        if added:
            self._pattern = None

    @property
    def secrets(self) -> frozenset[str]:
        """The secret strings scrubbed (including URL-encoded forms)."""
        return frozenset(self._secrets)

    def _compiled(self) -> re.Pattern[str] | None:
        if self._pattern is None and self._secrets:
            # Longest first, so that a secret containing another is masked whole.
            ordered = sorted(self._secrets, key=lambda s: (-len(s), s))
            self._pattern = re.compile("|".join(re.escape(s) for s in ordered))
        return self._pattern

    def scrub(self, text: str) -> str:
        """``text`` with every known secret and credential pattern replaced by ``***``."""
        pattern = self._compiled()
        if pattern is not None:
            text = pattern.sub(MASK, text)
        lowered = text.lower()
        if "bearer" in lowered or "basic" in lowered:
            text = _AUTH_SCHEME.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
        if "@" in text:
            text = _USERINFO.sub(lambda m: f"//{m.group(1)}:{MASK}@", text)
        return text
