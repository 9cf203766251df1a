"""The Fetch standard's "extract a MIME type" for a Content-Type header. Pure: no I/O.

Servers send Content-Type in many shapes: ``TEXT/Event-Stream``, parameters, several header
lines, or a comma list such as ``application/json, text/event-stream; charset=utf-8``. A
browser's ``EventSource`` decides with the Fetch algorithm: the header's values split at commas
outside quoted strings, each parsed as a MIME type, the **last valid one** wins (``*/*`` is
skipped); parameters and case do not matter. Sources: Fetch "extract a MIME type" and "get,
decode, and split" (https://fetch.spec.whatwg.org/#concept-header-extract-mime-type),
MIME Sniffing "parse a MIME type" (https://mimesniff.spec.whatwg.org/#parse-a-mime-type).
"""

from __future__ import annotations

__all__ = ["extract_mime_essence", "split_header_values"]

_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_HTTP_TAB_OR_SPACE = " \t"
_HTTP_WHITESPACE = " \t\r\n"


def _quoted_string(text: str, position: int) -> tuple[str, int]:
    """Fetch "collect an HTTP quoted string" (extract-value false) from ``text[position]``
    (a ``"``); return the raw quoted text and the position after it."""
    start = position
    position += 1
    end = len(text)
    while position < end:
        char = text[position]
        position += 1
        if char == "\\":
            if position >= end:
                break
            position += 1
        elif char == '"':
            break
    return text[start:position], position


def split_header_values(value: str) -> list[str]:
    """Fetch "get, decode, and split": the values of a combined header, split at commas
    outside quoted strings, each stripped of spaces and tabs.

    Args:
        value: the header value (several header lines already joined with ``", "``).
    """
    values: list[str] = []
    position, end = 0, len(value)
    temporary = ""
    while True:
        start = position
        while position < end and value[position] not in '",':
            position += 1
        temporary += value[start:position]
        if position < end:
            if value[position] == '"':
                quoted, position = _quoted_string(value, position)
                temporary += quoted
                if position < end:
                    continue
            else:
                position += 1  # the comma
        values.append(temporary.strip(_HTTP_TAB_OR_SPACE))
        temporary = ""
        if position >= end:
            return values


def _parse_essence(value: str) -> str | None:
    """MIME Sniffing "parse a MIME type", essence only (``type/subtype``, lower case);
    None on failure. Parameters never make a MIME type invalid, so they are not read."""
    text = value.strip(_HTTP_WHITESPACE)
    kind, slash, rest = text.partition("/")
    if not kind or not slash or not _TOKEN.issuperset(kind):
        return None
    subtype = rest.partition(";")[0].rstrip(_HTTP_WHITESPACE)
    if not subtype or not _TOKEN.issuperset(subtype):
        return None
    return f"{kind}/{subtype}".lower()


def extract_mime_essence(content_type: str | None) -> str | None:
    """Fetch "extract a MIME type", reduced to the essence a client needs to decide.

    Args:
        content_type: the Content-Type header value (several lines joined with ``", "``),
            or None when the response had none.

    Returns:
        The lower-case ``type/subtype`` of the last valid value that is not ``*/*``, or
        None ("failure") when there is none.
    """
    if content_type is None:
        return None
    essence: str | None = None
    for value in split_header_values(content_type):
        parsed = _parse_essence(value)
        if parsed is not None and parsed != "*/*":
            essence = parsed
    return essence
