"""The ``defaults:`` and ``streams:`` sections: each stream's keys, merged over the defaults,
checked and turned into a ``StreamSpec``; stream names must be unique.

Pure: no I/O. Problems are recorded on the ``Checker`` with their lines, never raised.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from streamvisor.config.checker import Checker, Field
from streamvisor.config.node import INVALID, Invalid, Node, describe
from streamvisor.config.walker import merge_nodes
from streamvisor.policy.backoff import BackoffPolicy, RestartLimit
from streamvisor.spec import MAX_TIMEOUT, BreakerPolicy, StreamSpec

__all__ = ["STREAM_KEYS", "StreamEntry", "read_defaults", "read_streams"]

STREAM_KEYS = (
    "name",
    "url",
    "method",
    "headers",
    "body",
    "connect_timeout",
    "read_timeout",
    "backoff",
    "max_restarts",
    "max_attempts",
    "breaker",
    "dedup_window",
    "max_event_size",
    "max_redirects",
    "verify",
    "enabled",
    "last_event_id",
    "kind",
    "mcp",
)

# Nested sections: key -> (keyword argument, Checker reader, bounds).
_BACKOFF: dict[str, Field] = {
    "initial": ("initial", "number", {"ge": 0}),
    "max": ("max", "number", {"ge": 0}),
    "multiplier": ("multiplier", "number", {"ge": 1}),
    "jitter": ("jitter", "number", {"ge": 0, "le": 1}),
    "reset_after": ("reset_after", "number", {"ge": 0}),
    "max_retry_after": ("max_retry_after", "number", {"ge": 0}),
}
_BACKOFF_ORDER = ("initial", "max", BackoffPolicy().max)
_RESTARTS: dict[str, Field] = {
    "count": ("count", "integer", {"ge": 0}),
    "within": ("within", "number", {"gt": 0}),
}
_BREAKER: dict[str, Field] = {
    "failures": ("failures", "integer", {"ge": 0}),
    "cooldown": ("cooldown", "number", {"ge": 0}),
}


@dataclass(slots=True)
class StreamEntry:
    """One item of ``streams:`` as read.

    Attributes:
        item: the item's node, after merging the defaults into it.
        name: its name, or None when absent or not a non-empty string.
        fields: its known keys.
        spec: the stream, or None when any of its keys is wrong.
    """

    item: Node
    name: str | None
    fields: dict[str, Node]
    spec: StreamSpec | None


def read_defaults(c: Checker, node: Node | None, base_dir: str) -> Node | None:
    """The ``defaults:`` mapping to merge under every stream, or None."""
    if node is None or node.value is None:
        return None
    if isinstance(c.mapping(node, STREAM_KEYS), Invalid):
        return None
    if "name" in node.value:
        name = node.value["name"]
        c.error(name.key_line, name.path, "each stream needs its own name")
    # Check every default once, on its own, so that a bad default is reported even
    # when every stream overrides it.
    _stream_fields(c, node.value, base_dir, partial=True)
    return node


def read_streams(
    c: Checker, root: Node, node: Node | None, defaults: Node | None, base_dir: str
) -> list[StreamEntry]:
    """Every item of ``streams:`` (required, a non-empty list), in file order."""
    if node is None or node.value is None:
        c.error(root.line, "", "missing required key 'streams'")
        return []
    if not node.is_list:
        c.error(node.line, node.path, f"expected a list of streams, got {describe(node)}")
        return []
    if not node.value:
        c.error(node.line, node.path, "must list at least one stream")
    entries = [_stream(c, item, defaults, base_dir) for item in node.value]
    first: dict[str, Node] = {}
    for entry in entries:
        if entry.name is None:
            continue
        name_node = entry.fields["name"]
        if entry.name in first:
            c.error(
                name_node.line,
                name_node.path,
                f"duplicate stream name {entry.name!r} (first at line {first[entry.name].line})",
            )
        else:
            first[entry.name] = name_node
    return entries


def _stream(c: Checker, item: Node, defaults: Node | None, base_dir: str) -> StreamEntry:
    if not item.is_mapping:
        c.error(item.line, item.path, f"expected a stream mapping, got {describe(item)}")
        return StreamEntry(item, None, {}, None)
    if defaults is not None:
        inherited = {k: v for k, v in defaults.value.items() if k != "name"}
        base = Node(inherited, defaults.line, defaults.path, defaults.key_line)
        item = merge_nodes(base, item, whole=("body",))
    fields = c.mapping(item, STREAM_KEYS)
    if isinstance(fields, Invalid):
        return StreamEntry(item, None, {}, None)
    missing = c.require(item, fields, ("name", "url"))
    kwargs = _stream_fields(c, fields, base_dir, partial=False)
    name_node = fields.get("name")
    name = name_node.value if name_node is not None else None
    name = name if isinstance(name, str) and name.strip() else None
    spec = None
    if isinstance(kwargs, dict) and not missing:
        try:
            spec = StreamSpec(**kwargs)
        except ValueError as exc:
            c.error(item.line, item.path, str(exc))
    return StreamEntry(item, name, fields, spec)


def _stream_fields(
    c: Checker, fields: Mapping[str, Node], base_dir: str, *, partial: bool
) -> dict[str, Any] | Invalid:
    """``StreamSpec`` keyword arguments; ``partial`` checks defaults alone."""
    positive = {"gt": 0.0}
    # Defaults alone may be incomplete (initial above the built-in max, fixed by every
    # stream): check their fields, not how they combine.
    order = None if partial else _BACKOFF_ORDER

    def policy(node: Node, cls: Callable[..., Any], fields: Mapping[str, Field]) -> Any:
        values = c.section(node, fields, order=order if cls is BackoffPolicy else None)
        return values if partial else c.build(node, cls, values)

    readers: dict[str, Callable[[Node], Any]] = {
        "name": c.string,
        "url": c.url,
        "method": lambda n: c.choice(n, ("GET", "POST"), upper=True),
        "headers": c.headers,
        "body": c.json_value,
        "connect_timeout": lambda n: c.number(n, **positive, le=MAX_TIMEOUT),
        "read_timeout": lambda n: c.number(n, **positive, le=MAX_TIMEOUT),
        "backoff": lambda n: policy(n, BackoffPolicy, _BACKOFF),
        "max_restarts": lambda n: policy(n, RestartLimit, _RESTARTS),
        "max_attempts": lambda n: None if n.value is None else c.integer(n, ge=1),
        "breaker": lambda n: policy(n, BreakerPolicy, _BREAKER),
        "dedup_window": lambda n: c.integer(n, ge=0),
        "max_event_size": lambda n: c.integer(n, ge=64),
        "max_redirects": lambda n: c.integer(n, ge=0),
        "verify": lambda n: _verify(c, n, base_dir),
        "enabled": c.boolean,
        "last_event_id": lambda n: _last_event_id(c, n),
        "kind": lambda n: c.choice(n, ("sse", "mcp")),
        "mcp": lambda n: _mcp(c, n),
    }
    if partial:
        readers.pop("name")
    kwargs: dict[str, Any] = {}
    ok = True
    for key, child in fields.items():
        if key not in readers:
            continue
        value = readers[key](child)
        if isinstance(value, Invalid):
            ok = False
        else:
            kwargs[key] = value
    return kwargs if ok else INVALID


def _verify(c: Checker, node: Node, base_dir: str) -> bool | str | Invalid:
    value = node.value
    if isinstance(value, bool) or node.broken:
        return INVALID if node.broken else value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if isinstance(value, str) and value.strip():
        return os.path.join(base_dir, value)
    c.error(node.line, node.path, "expected true, false or a CA bundle path")
    return INVALID


def _mcp(c: Checker, node: Node) -> Any:
    """The ``mcp:`` mapping, checked by the MCP package's reader (errors located)."""
    from streamvisor.upstream.mcp.options import read_options

    if node.value is None:
        return None
    if isinstance(c.mapping(node, tuple(node.value or ())), Invalid):
        return INVALID
    plain = c.json_value(node)
    if isinstance(plain, Invalid):
        return INVALID

    def report(key: str, message: str) -> None:
        child = node.value.get(key.split("[")[0].split(".")[0])
        line = child.line if isinstance(child, Node) else node.line
        c.error(line, f"{node.path}.{key}", message)

    options = read_options(plain, report)
    return INVALID if options is None else options


def _last_event_id(c: Checker, node: Node) -> str | Invalid | None:
    if node.value is None:
        return None
    text = c.string(node, empty_ok=True)
    if isinstance(text, str) and re.search(r"[\r\n\x00]", text):
        c.error(node.line, node.path, "must not contain line breaks or NUL")
        return INVALID
    return text
