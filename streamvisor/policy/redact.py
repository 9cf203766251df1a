"""Redaction of secrets in URLs, headers and free text (log lines, error messages, status).

The one module that decides what is secret. Every error message, log line, status field
(``url``, ``last_error``) and metric goes through it: ``redact_url`` for a URL,
``redact_text`` for free text, ``Redactor`` when known secret values (config secrets, header
values) must be masked too, ``redact_fields`` for a whole status mapping. Rules (README
"Reconnect rules"): URL passwords and lone user names (``https://TOKEN@host``), query and
fragment parameters named like credentials (``access_token``, ``token``, ``api_key``,
``key``, ``secret``, ``password``, ``sig``, ``signature``, ``auth``, ``code``, ``session``,
``credential``...), values of credential headers (``Authorization``, ``Cookie``,
``X-Api-Key``, ...), ``Bearer``/``Basic`` credentials, and known secret values.

Pure: no I/O, and nothing here raises on odd input. Redaction errs on the side of hiding
too much: a header or query parameter whose name merely looks secret is masked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import SplitResult, parse_qsl, quote, unquote, unquote_plus, urlsplit, urlunsplit

__all__ = [
    "MASK",
    "Redactor",
    "is_secret_header",
    "is_secret_name",
    "is_secret_param",
    "redact_fields",
    "redact_headers",
    "redact_text",
    "redact_url",
    "request_secrets",
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
_SECRET_PARAM_PARTS = ("token", "secret", "key", "pass", "sig", "auth", "session", "credential")

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
# ``name=value`` pairs after ``?``, ``&``, ``#``, ``;`` or a blank (query strings in text,
# and the fallback for URLs that ``urlsplit`` rejects). Values of secret names are masked.
# A value ends at a separator, or before punctuation that ends a sentence (``...=abc):``).
_QUERY_PAIR = re.compile(
    r"(^|[?&#;\s])([^=&#\s;?]+)=([^&#\s;()'\"<>]*?)(?=[&#\s;()'\"<>]|[:.,]+(?:\s|$)|$)"
)
# A whole http(s) URL inside text, without trailing sentence punctuation.
_URL = re.compile(r"https?://[^\s'\"<>()]+?(?=[:.,;]*(?:[\s'\"<>()]|$))", re.IGNORECASE)
# ``Name: value`` for credential headers echoed in text; a Bearer/Basic value is left to
# ``_AUTH_SCHEME`` (which keeps the scheme visible). A name right after ``/`` or ``.`` is the
# end of a URL path or host (``GET http://h/v2/tokens: Connection refused``), not a header;
# nor is a name after "stream " or "sink ": our log lines name streams and sinks that way
# ("stream api-token: ..."), and masking there hid whole warnings. Known secret values are
# masked by value (``Redactor``) wherever they appear.
_HEADER_PAIR = re.compile(
    r"(?<![\w\-/.])(?<!\bstream )(?<!\bsink )((?:proxy-)?authorization|set-cookie|cookie|[\w-]*?"
    r"(?:token|secret|api-?key|password|passwd|session|signature|credential)[\w-]*)"
    r"([ \t]*:[ \t]*)(?!(?:bearer|basic)[ \t]|\*\*\*)([^\s'\"][^\r\n'\"]*)",
    re.IGNORECASE,
)
_HEADER_HINTS = (
    "auth",
    "cookie",
    "token",
    "secret",
    "key",
    "pass",
    "session",
    "signature",
    "credential",
)


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


def _redact_fragment(fragment: str) -> str:
    # OAuth implicit flows put tokens in the fragment (``#access_token=...``).
    return _redact_query(fragment) if "=" in fragment else fragment


def redact_url(url: str) -> str:
    """``url`` with its credentials replaced by ``***``.

    ``https://user:pw@host/p?token=abc&page=2#sig=x`` becomes
    ``https://user:***@host/p?token=***&page=2#sig=***``; a lone user name (a token, by
    convention) becomes ``***@``. Never raises: text that is not a URL comes back with the
    same substitutions applied as well as they can be.
    """
    if not isinstance(url, str):
        return MASK
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" not in netloc and ":" in netloc and "@" in url and not _has_valid_port(parts):
            return _redact_cut_password(url, netloc)
        userinfo, at, hostport = netloc.rpartition("@")
        if at:
            user, colon, _password = userinfo.partition(":")
            netloc = f"{user}:{MASK}@{hostport}" if colon else f"{MASK}@{hostport}"
        query = _redact_query(parts.query) if parts.query else parts.query
        fragment = _redact_fragment(parts.fragment)
        return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))
    except ValueError:
        text = _USERINFO.sub(lambda m: f"//{m.group(1)}:{MASK}@", url)
        return _QUERY_PAIR.sub(_redact_query_match, text)


def request_secrets(url: str, headers: Iterable[tuple[str, str]] = ()) -> list[str]:
    """The secrets a request carries, to mask also where they appear bare (a server may echo
    one): the URL password (as written and decoded), secret query values, and the values of
    secret headers with, for ``Scheme credentials``, the credentials alone."""
    found: list[str] = []
    for name, value in headers:
        if is_secret_header(name):
            found.append(value)
            scheme, _, credentials = value.strip().partition(" ")
            if credentials and scheme.isalpha():
                found.append(credentials.strip())
    try:
        parts = urlsplit(url)
        password = parts.password
        query = parse_qsl(parts.query)
    except ValueError:
        return found
    if password:
        found += [password, unquote(password)]
    found += [value for name, value in query if is_secret_param(name)]
    return found


def _has_valid_port(parts: SplitResult) -> bool:
    try:
        parts.port  # noqa: B018 - raises ValueError when the "port" is not a number
    except ValueError:
        return False
    return True


def _redact_cut_password(url: str, netloc: str) -> str:
    # ``http://user:pa/ss@host/``: an unencoded '/', '?' or '#' in the password ended the
    # host early, so the password is a "port" and the rest sits in the path, query or
    # fragment. Mask from the colon to the last '@' (more than the password, if need be).
    start = url.index(netloc) + netloc.index(":") + 1
    end = url.rindex("@")
    return _QUERY_PAIR.sub(_redact_query_match, f"{url[:start]}{MASK}{url[end:]}")


def _redact_header_match(match: re.Match[str]) -> str:
    name, sep, _value = match.groups()
    return f"{name}{sep}{MASK}" if is_secret_header(name) else match.group(0)


def _redact_patterns(text: str) -> str:
    """Credential patterns in free text: URLs, query pairs, headers, Bearer/Basic."""
    if "://" in text:
        text = _URL.sub(lambda m: redact_url(m.group(0)), text)
    if "=" in text:
        text = _QUERY_PAIR.sub(_redact_query_match, text)
    lowered = text.lower()
    if ":" in text and any(hint in lowered for hint in _HEADER_HINTS):
        text = _HEADER_PAIR.sub(_redact_header_match, text)
    if "bearer" in lowered or "basic" in lowered:
        text = _AUTH_SCHEME.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    if "@" in text:
        text = _USERINFO.sub(lambda m: f"//{m.group(1)}:{MASK}@", text)
    return text


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Free text (an error message, a log line) with every credential masked.

    Masks URLs' credentials (as ``redact_url``), ``name=value`` pairs with a secret-looking
    name, ``Name: value`` of credential headers, ``Bearer``/``Basic`` credentials, and
    the given ``secrets`` (values of four characters or more). Never raises.
    """
    if not isinstance(text, str):
        return MASK
    if secrets:
        return Redactor(secrets).scrub(text)
    return _redact_patterns(text)


def redact_fields(value: Any, scrub: Callable[[str], str] = redact_text) -> Any:
    """A copy of a status value (mappings, lists, tuples) with ``scrub`` applied to every
    string in it, keys excepted. Other values are returned as they are; nothing is mutated.
    """
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, Mapping):
        return {k: redact_fields(v, scrub) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_fields(v, scrub) for v in value]
    return value


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
        return _redact_patterns(text)
