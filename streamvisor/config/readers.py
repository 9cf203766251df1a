"""Readers of single config values: number, integer, boolean, string, choice, string list,
URL, headers, address, file path. Each checks one ``Node`` and returns the typed value, or
records a located error and returns ``INVALID`` (it never raises), so that one pass reports
every problem. A URL's password and secret header values are collected as secrets.

Pure: no I/O (a path is resolved as text, never looked up).
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from urllib.parse import parse_qsl, unquote, urlsplit

from streamvisor.config.node import INVALID, Invalid, Node, describe, quote
from streamvisor.policy.redact import MASK, is_secret_header, is_secret_param, redact_url
from streamvisor.upstream.fields import HEADER_NAME, OWS, header_value_problem, url_problem

__all__ = ["ValueReaders", "either"]

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


# The config's numbers are seconds (timeouts, intervals, delays), rates and factors: none
# makes sense past this (31 years), and a thread or socket cannot wait much longer (its
# deadline would overflow time_t), so a bigger value is an error here, not a crash later.
MAX_NUMBER = 1e9


class ValueReaders(ABC):
    """The single-value readers of ``Checker``; a subclass records what they report."""

    __slots__ = ()

    @abstractmethod
    def error(self, line: int | None, path: str, message: str) -> None:
        """Record a problem at ``line`` and key ``path``."""

    @abstractmethod
    def add_secret(self, value: str) -> None:
        """Remember ``value`` as a secret, to be masked in every message."""

    def number(
        self,
        node: Node,
        *,
        gt: float | None = None,
        ge: float | None = None,
        le: float | None = None,
    ) -> float | Invalid:
        """A finite number (ints and numeric strings accepted; bools are not numbers), at
        most ``le`` or else ``MAX_NUMBER``."""
        if node.broken:
            return INVALID
        value = node.value
        number: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                number = None
        if number is None:
            self.error(node.line, node.path, f"expected a number, got {describe(node)}")
            return INVALID
        if not math.isfinite(number):
            self.error(node.line, node.path, f"expected a finite number, got {describe(node)}")
            return INVALID
        if le is None and number > MAX_NUMBER:
            return self._range(node, number, le=MAX_NUMBER)
        return self._range(node, number, gt=gt, ge=ge, le=le)

    def integer(
        self, node: Node, *, ge: float | None = None, le: float | None = None
    ) -> int | Invalid:
        """A whole number (integer strings accepted)."""
        if node.broken:
            return INVALID
        value = node.value
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str):
            try:
                number = int(value.strip())
            except ValueError:
                number = None
        if number is None:
            self.error(node.line, node.path, f"expected an integer, got {describe(node)}")
            return INVALID
        checked = self._range(node, number, ge=ge, le=le)
        return INVALID if isinstance(checked, Invalid) else number

    def _range(
        self,
        node: Node,
        number: float,
        *,
        gt: float | None = None,
        ge: float | None = None,
        le: float | None = None,
    ) -> float | Invalid:
        shown = describe(node) if node.secret else f"{number:g}"
        low_ok = (gt is None or number > gt) and (ge is None or number >= ge)
        high_ok = le is None or number <= le
        if low_ok and high_ok:
            return number
        if le is not None and ge is not None:
            message = f"must be between {ge:g} and {le:g}, got {shown}"
        elif not high_ok:
            message = f"must be at most {le:g}, got {shown}"
        elif gt is not None:
            message = f"must be greater than {gt:g}, got {shown}"
        else:
            message = f"must be at least {ge:g}, got {shown}"
        self.error(node.line, node.path, message)
        return INVALID

    def boolean(self, node: Node) -> bool | Invalid:
        """true/false (and the strings true/false/yes/no/on/off/1/0, from env values)."""
        if node.broken:
            return INVALID
        value = node.value
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        self.error(node.line, node.path, f"expected true or false, got {describe(node)}")
        return INVALID

    def string(self, node: Node, *, empty_ok: bool = False) -> str | Invalid:
        """A string; a plain number or date is taken as its source text."""
        if node.broken:
            return INVALID
        value = node.value
        if isinstance(value, str):
            text = value
        elif value is not None and not node.is_mapping and not node.is_list:
            text = node.raw if node.raw is not None else str(value)
        else:
            self.error(node.line, node.path, f"expected a string, got {describe(node)}")
            return INVALID
        if not text.strip() and not empty_ok:
            self.error(node.line, node.path, "must not be empty")
            return INVALID
        return text

    def choice(self, node: Node, options: Sequence[str], *, upper: bool = False) -> str | Invalid:
        """One of ``options`` (compared case-insensitively when ``upper``)."""
        text = self.string(node)
        if isinstance(text, Invalid):
            return INVALID
        wanted = text.strip().upper() if upper else text.strip()
        if wanted in options:
            return wanted
        hint = difflib.get_close_matches(wanted, options, n=1, cutoff=0.6)
        extra = f" (did you mean {hint[0]!r}?)" if hint else ""
        self.error(node.line, node.path, f"expected {either(options)}, got {describe(node)}{extra}")
        return INVALID

    def string_list(self, node: Node) -> list[tuple[str, Node]] | Invalid:
        """A non-empty list of non-empty strings (a single string is a list of one)."""
        if node.broken:
            return INVALID
        items = node.value if node.is_list else [node]
        if node.is_list and not items:
            self.error(node.line, node.path, "must not be empty (leave the key out for all)")
            return INVALID
        result: list[tuple[str, Node]] = []
        ok = True
        for item in items:
            text = self.string(item)
            if isinstance(text, Invalid):
                ok = False
            else:
                result.append((text, item))
        return result if ok else INVALID

    def file_path(self, node: Node, base_dir: str) -> str | Invalid:
        """A file path; a relative one is taken relative to ``base_dir`` (the config's folder)."""
        text = self.string(node)
        return text if isinstance(text, Invalid) else os.path.join(base_dir, text)

    def url(self, node: Node) -> str | Invalid:
        """An http(s) URL with a host (``upstream.fields.url_problem``, the rule the command
        line applies too); its password and secret query values become secrets."""
        text = self.string(node)
        if isinstance(text, Invalid):
            return INVALID
        text = text.strip()
        try:
            parts = urlsplit(text)
            password = parts.password
            query = parse_qsl(parts.query, keep_blank_values=False)
        except ValueError:
            password, query = None, []
        if password:
            self.add_secret(password)
            self.add_secret(unquote(password))
        for name, value in query:
            if is_secret_param(name):
                self.add_secret(value)
        problem = url_problem(text, shown=_shown_url(node, text))
        if problem is not None:
            self.error(node.line, node.path, problem)
            return INVALID
        return text

    def headers(self, node: Node) -> dict[str, str] | Invalid:
        """A mapping of header name to string value that a request can carry
        (``upstream.fields``). Values are never shown in messages."""
        if node.broken:
            return INVALID
        if not node.is_mapping:
            self.error(node.line, node.path, f"expected a mapping, got {describe(node)}")
            return INVALID
        result: dict[str, str] = {}
        ok = True
        for name, child in node.value.items():
            if not HEADER_NAME.fullmatch(name):
                self.error(child.key_line, child.path, f"{name!r} is not a valid header name")
                ok = False
                continue
            value = child.value
            if child.broken:
                ok = False
                continue
            if isinstance(value, str):
                text = value
            elif value is None or child.is_mapping or child.is_list:
                kind = "null" if value is None else "a mapping" if child.is_mapping else "a list"
                self.error(child.line, child.path, f"expected a string value, got {kind}")
                ok = False
                continue
            else:
                text = child.raw if child.raw is not None else str(value)
            # Checked as sent: surrounding spaces and tabs are not part of the value.
            problem = header_value_problem(text.strip(OWS))
            if problem is not None:
                self.error(child.line, child.path, f"header value {problem}")
                ok = False
                continue
            if is_secret_header(name):
                self.add_secret(text)
                scheme, _, credentials = text.strip().partition(" ")
                if credentials and scheme.isalpha():
                    self.add_secret(credentials.strip())
            result[name] = text
        return result if ok else INVALID

    def address(self, node: Node) -> tuple[str, int] | Invalid:
        """``HOST:PORT`` or ``[IPv6]:PORT`` (port 0 to 65535)."""
        text = self.string(node)
        if isinstance(text, Invalid):
            return INVALID
        parsed = _parse_address(text.strip())
        if isinstance(parsed, str):
            self.error(node.line, node.path, parsed)
            return INVALID
        return parsed


def either(options: Sequence[str]) -> str:
    """``'a'``, ``'a' or 'b'``, ``'a', 'b' or 'c'``."""
    quoted = [repr(option) for option in options]
    if len(quoted) == 1:
        return quoted[0]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _shown_url(node: Node, text: str) -> str:
    return repr(MASK) if node.secret else quote(redact_url(text))


def _parse_address(text: str) -> tuple[str, int] | str:
    bad = f"expected HOST:PORT such as 127.0.0.1:9108 or [::1]:9108, got {text!r}"
    if text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
        if not sep:
            return bad
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return f"{host!r} is not an IPv6 address"
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host:
            return bad
        if ":" in host:
            return f"an IPv6 address needs brackets, as in [::1]:9108; got {text!r}"
        if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?", host):
            return f"{host!r} is not a valid host name or address"
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        return f"port must be a number from 0 to 65535, got {port_text!r}"
    return host, int(port_text)
