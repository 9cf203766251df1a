"""The located value: one YAML value with its line and key path, as the walker makes it and
the readers take it, and how a value is shown in messages (secrets masked, long text cut).

Pure: no I/O.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any, Final

from streamvisor.policy.redact import MASK

__all__ = ["INVALID", "Invalid", "Node", "describe", "join_path", "quote"]


class Invalid:
    """Marker for a value that failed validation (the error is already recorded)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Final = Invalid()


@dataclass(slots=True)
class Node:
    """One value from the YAML document, with where it came from.

    Attributes:
        value: a scalar (str, int, float, bool, None, date), ``dict[str, Node]`` or
            ``list[Node]``.
        line: 1-based line of the value.
        path: dotted key path where it was written (``defaults.backoff.max``).
        key_line: line of the key that holds it (the value's line for list items).
        raw: a scalar's source text.
        secret: the value contains a secret (from a secret-named environment variable).
        broken: interpolation failed; the error is recorded, readers stay silent.
    """

    value: Any
    line: int
    path: str
    key_line: int
    raw: str | None = None
    secret: bool = False
    broken: bool = False

    @property
    def is_mapping(self) -> bool:
        return isinstance(self.value, dict)

    @property
    def is_list(self) -> bool:
        return isinstance(self.value, list)


def join_path(path: str, key: str) -> str:
    """The key path of ``key`` inside ``path`` (``defaults`` + ``backoff``)."""
    return f"{path}.{key}" if path else key


def quote(text: str, limit: int = 60) -> str:
    """``repr(text)``, cut to ``limit`` characters with ``...``."""
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return repr(text)


def describe(node: Node) -> str:
    """How a value is shown in messages (secrets masked, long strings cut)."""
    value = node.value
    if node.secret:
        return repr(MASK)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, _dt.date):
        return f"a date ({node.raw})"
    return str(value)
