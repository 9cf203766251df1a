"""The ``sinks:`` section: the keys every sink has (``name``, ``type``, ``streams``,
``events``, ``buffer``, ``overflow``), read here, and the rest handed to the sink's type
(``config.sink_types``); sink names must be unique and ``streams:`` filters must name
configured streams.

Pure: no I/O. Problems are recorded on the ``Checker`` with their lines, never raised.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from streamvisor.config.buffers import buffer_settings, read_buffer
from streamvisor.config.checker import Checker
from streamvisor.config.model import SinkConfig
from streamvisor.config.node import INVALID, Invalid, Node, describe
from streamvisor.config.readers import either
from streamvisor.config.sink_types import SINK_TYPES, read_keys
from streamvisor.policy.flow import WHEN_FULL_WORDS

__all__ = ["SINK_COMMON_KEYS", "read_sinks"]

SINK_COMMON_KEYS = ("name", "type", "streams", "events", "buffer", "overflow")


def read_sinks(
    c: Checker, node: Node | None, known: Sequence[str], base_dir: str
) -> list[SinkConfig | None]:
    """Every item of ``sinks:`` (None for a wrong one), in file order; names must be unique
    and ``streams:`` filters must name ``known`` streams."""
    if node is None or node.value is None:
        return []
    if not node.is_list:
        c.error(node.line, node.path, f"expected a list of sinks, got {describe(node)}")
        return []
    sinks: list[SinkConfig | None] = []
    first: dict[str, int] = {}
    for item in node.value:
        sink, name_node = _sink(c, item, known, base_dir)
        sinks.append(sink)
        if name_node is None or not isinstance(name_node.value, str):
            continue
        name = name_node.value
        if name in first:
            c.error(
                name_node.line,
                name_node.path,
                f"duplicate sink name {name!r} (first at line {first[name]})",
            )
        else:
            first[name] = name_node.line
    return sinks


def _sink(
    c: Checker, item: Node, known: Sequence[str], base_dir: str
) -> tuple[SinkConfig | None, Node | None]:
    if not item.is_mapping:
        c.error(item.line, item.path, f"expected a sink mapping, got {describe(item)}")
        return None, None
    type_node = item.value.get("type")
    has_type = type_node is not None and type_node.value is not None
    kind = c.string(type_node) if type_node is not None and has_type else INVALID
    if isinstance(kind, str) and kind not in SINK_TYPES:
        assert type_node is not None
        expected = "expected " + either(tuple(SINK_TYPES))
        c.error(type_node.line, type_node.path, f"unknown sink type {kind!r} ({expected})")
        kind = INVALID
    sink_type = SINK_TYPES[kind] if isinstance(kind, str) else None
    all_type_keys = tuple(key for each in SINK_TYPES.values() for key in each.keys)
    if sink_type is not None:
        allowed = SINK_COMMON_KEYS + sink_type.keys
        misplaced = {k: f"{k!r} does not apply to a {kind} sink" for k in all_type_keys}
    else:
        allowed, misplaced = SINK_COMMON_KEYS + all_type_keys, {}
    entries = c.mapping(item, allowed, misplaced=misplaced)
    if isinstance(entries, Invalid):
        return None, None
    required = ("name", "type", *(sink_type.required if sink_type is not None else ()))
    ok = not c.require(item, entries, required) and sink_type is not None
    common = read_keys(
        {k: v for k, v in entries.items() if k in SINK_COMMON_KEYS and k != "type"},
        {
            "name": c.string,
            "streams": lambda n: _stream_names(c, n, known),
            "events": lambda n: _events(c, n),
            "buffer": lambda n: read_buffer(c, n, base_dir),
            "overflow": lambda n: c.choice(n, WHEN_FULL_WORDS),
        },
    )
    ok = ok and not isinstance(common, Invalid)
    kwargs = dict(common) if isinstance(common, dict) else {}
    # Without a valid type, every type's keys are still checked, each by the first type
    # that takes it (``batch`` is a webhook's and a redis_streams sink's).
    owners = [sink_type] if sink_type is not None else list(SINK_TYPES.values())
    claimed: set[str] = set(SINK_COMMON_KEYS)
    for owner in owners:
        own = {k: v for k, v in entries.items() if k in owner.keys and k not in claimed}
        claimed.update(owner.keys)
        values = owner.read(c, own, base_dir)
        if isinstance(values, Invalid):
            ok = False
        else:
            kwargs.update(values)
    if ok:
        settings = buffer_settings(
            c, entries, kwargs.pop("buffer", None), kwargs.pop("overflow", None)
        )
        if isinstance(settings, Invalid):
            ok = False
        else:
            kwargs["buffer"] = settings
    if not ok or sink_type is None:
        return None, entries.get("name")
    return SinkConfig(type=sink_type.name, **kwargs), entries.get("name")


def _stream_names(c: Checker, node: Node, known: Sequence[str]) -> tuple[str, ...] | Invalid:
    items = c.string_list(node)
    if isinstance(items, Invalid):
        return INVALID
    for name, child in items:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            c.error(child.line, child.path, f"unknown stream {name!r}{hint}")
    return tuple(name for name, _ in items)


def _events(c: Checker, node: Node) -> tuple[str, ...] | Invalid:
    items = c.string_list(node)
    return items if isinstance(items, Invalid) else tuple(name for name, _ in items)
