"""A sink's ``buffer:`` and ``overflow:`` keys: ``buffer: N`` (a memory buffer of N events)
or ``buffer: {type, max_events, max_bytes, when_full, path}``, with ``overflow: POLICY`` as
shorthand for ``when_full``; sizes such as ``256MiB``; and where a disk buffer without a
path lives.

Pure: no I/O (a disk buffer's path is chosen as text; the sink creates the file).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from streamvisor.config.checker import Checker
from streamvisor.config.model import CheckpointConfig, SinkConfig
from streamvisor.config.node import INVALID, Invalid, Node, describe
from streamvisor.policy.flow import (
    DEFAULT_DISK_MAX_BYTES,
    WHEN_FULL_WORDS,
    BufferSettings,
    WhenFull,
)

__all__ = ["BUFFER_KEYS", "buffer_settings", "place_disk_buffer", "read_buffer", "read_size"]

BUFFER_KEYS = ("type", "max_events", "max_bytes", "when_full", "path")
_SIZE = re.compile(r"(\d+)\s*([KMG]i?B|B)?", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 1 << 10}
_UNITS |= {"MIB": 1 << 20, "GIB": 1 << 30}


def read_buffer(c: Checker, node: Node, base_dir: str) -> int | dict[str, Any] | Invalid | None:
    """``buffer: N`` as N, or the keys of ``buffer: {...}`` read (not yet combined)."""
    if node.value is None:
        return None
    if not node.is_mapping:
        return c.integer(node, ge=1)
    entries = c.mapping(node, BUFFER_KEYS)
    if isinstance(entries, Invalid):
        return INVALID
    readers: dict[str, Callable[[Node], Any]] = {
        "type": lambda n: c.choice(n, ("memory", "disk")),
        "max_events": lambda n: c.integer(n, ge=1),
        "max_bytes": lambda n: read_size(c, n),
        "when_full": lambda n: c.choice(n, WHEN_FULL_WORDS),
        "path": lambda n: c.file_path(n, base_dir),
    }
    values = {key: readers[key](child) for key, child in entries.items()}
    if any(isinstance(v, Invalid) for v in values.values()):
        return INVALID
    return values


def read_size(c: Checker, node: Node) -> int | Invalid:
    """A size in bytes: an integer, or a string such as ``256MiB`` or ``1 GB``."""
    if isinstance(node.value, str):
        match = _SIZE.fullmatch(node.value.strip())
        if match is None:
            c.error(
                node.line,
                node.path,
                f"expected a size in bytes (e.g. 268435456 or 256MiB), got {describe(node)}",
            )
            return INVALID
        value = int(match.group(1)) * _UNITS[(match.group(2) or "").upper()]
        if value < 1:
            c.error(node.line, node.path, "must be at least 1 byte")
            return INVALID
        return value
    return c.integer(node, ge=1)


def buffer_settings(
    c: Checker,
    entries: Mapping[str, Node],
    buffer: int | dict[str, Any] | None,
    overflow: str | None,
) -> BufferSettings | Invalid:
    """Fold a sink's ``buffer`` (as ``read_buffer`` gave it) and its ``overflow`` shorthand
    into one ``BufferSettings``; ``entries`` are the sink's keys, to locate problems."""
    values: dict[str, Any] = {}
    if isinstance(buffer, int):
        values["max_events"] = buffer
    elif isinstance(buffer, dict):
        values = dict(buffer)
        node = entries["buffer"]
        if "when_full" in values and overflow is not None:
            c.error(
                entries["overflow"].line,
                entries["overflow"].path,
                "give the policy once: buffer.when_full or overflow, not both",
            )
            return INVALID
        if values.get("type") == "disk":
            values.setdefault("max_events", None)
            values.setdefault("max_bytes", DEFAULT_DISK_MAX_BYTES)
            if (overflow or values.get("when_full")) == "drop_oldest":
                c.error(
                    node.line,
                    f"{node.path}.when_full",
                    "a disk buffer cannot drop_oldest (it never rewrites what it "
                    "stored): use block or drop_newest",
                )
                return INVALID
    if overflow is not None:
        values["when_full"] = overflow
    if "when_full" in values:
        values["when_full"] = WhenFull(values["when_full"])
    try:
        return BufferSettings(**values)
    except ValueError as exc:
        where = entries["buffer"]
        c.error(where.line, where.path, str(exc))
        return INVALID


def place_disk_buffer(
    sink: SinkConfig, checkpoint: CheckpointConfig | None, base_dir: str
) -> SinkConfig:
    """A disk buffer without a path lives next to the checkpoint file (or in the config's
    folder): ``<checkpoint stem>.<sink>.buffer.db``."""
    buffer = sink.buffer
    if buffer.type != "disk" or buffer.path is not None:
        return sink
    if checkpoint is not None and checkpoint.path:
        folder, stem = os.path.split(checkpoint.path)
        stem = os.path.splitext(stem)[0]
    else:
        folder, stem = base_dir, "streamvisor"
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", sink.name)
    path = os.path.join(folder, f"{stem}.{safe}.buffer.db")
    return dataclasses.replace(sink, buffer=dataclasses.replace(buffer, path=path))
