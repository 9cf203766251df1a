"""The built-in sink types: one ``SinkType`` subclass per ``type:`` value, which knows the
keys only that type takes, how they are read into ``SinkConfig`` fields, which class
implements the sink and the keyword arguments it is built with. ``SINK_TYPES`` is the
registry that ``config.sinks`` reads through and ``streamvisor.sinks.factory.build_sink``
builds through. A new sink type is its ``Sink`` module plus one class here, added to
``SINK_TYPES``.

Pure: no I/O. The sink class is named, not imported (the config layer imports no sink,
ARCHITECTURE.md's layer table): the factory, in the sinks layer, imports it.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

from streamvisor.cluster.settings import REDIS_SINK_KEYS, RedisStreamsOptions, read_redis_sink
from streamvisor.config.checker import Checker, Field
from streamvisor.config.model import SinkConfig
from streamvisor.config.node import INVALID, Invalid, Node

if TYPE_CHECKING:
    import threading

__all__ = [
    "SINK_TYPES",
    "FileSinkType",
    "RedisStreamsSinkType",
    "SinkType",
    "StdoutSinkType",
    "WebhookSinkType",
    "read_keys",
]

Reader = Callable[[Node], Any]


class SinkType(ABC):
    """One kind of built-in sink: its own keys, how they are read, how the sink is built.

    Attributes:
        name: the ``type:`` value.
        sink: the ``Sink`` class, as ``module:Class``.
        keys: the keys only this type takes (besides those every sink has).
        required: which of ``keys`` must be given.
    """

    name: ClassVar[str]
    sink: ClassVar[str]
    keys: ClassVar[tuple[str, ...]] = ()
    required: ClassVar[tuple[str, ...]] = ()

    def read(
        self, c: Checker, entries: Mapping[str, Node], base_dir: str
    ) -> dict[str, Any] | Invalid:
        """``SinkConfig`` keyword arguments from ``entries`` (this type's keys only, read
        even when a common key is wrong); problems are recorded on ``c`` and make the
        result ``INVALID``."""
        return {}

    @abstractmethod
    def arguments(self, config: SinkConfig, stop_event: threading.Event | None) -> dict[str, Any]:
        """The keyword arguments that build the ``sink`` class ``config`` (of this type)
        describes; ``stop_event`` is set at shutdown and ends the sink's waits."""


class StdoutSinkType(SinkType):
    """``type: stdout``: each event as a JSON line on standard output."""

    name = "stdout"
    sink = "streamvisor.sinks.stdout:StdoutSink"

    def arguments(self, config: SinkConfig, stop_event: threading.Event | None) -> dict[str, Any]:
        return {"name": config.name}


class FileSinkType(SinkType):
    """``type: file``: events appended to a JSONL file."""

    name = "file"
    sink = "streamvisor.sinks.file:FileSink"
    keys = ("path", "flush_interval", "fsync")
    required = ("path",)

    def read(
        self, c: Checker, entries: Mapping[str, Node], base_dir: str
    ) -> dict[str, Any] | Invalid:
        return read_keys(
            entries,
            {
                "path": lambda n: c.file_path(n, base_dir),
                "flush_interval": lambda n: c.number(n, ge=0),
                "fsync": c.boolean,
            },
        )

    def arguments(self, config: SinkConfig, stop_event: threading.Event | None) -> dict[str, Any]:
        return {
            "path": config.path,
            "flush_interval": config.flush_interval,
            "fsync": config.fsync,
            "name": config.name,
        }


_BATCH: dict[str, Field] = {
    "max_events": ("batch_max_events", "integer", {"ge": 1}),
    "max_wait": ("batch_max_wait", "number", {"ge": 0}),
}
_RATE: dict[str, Field] = {
    # At least one request per 11.6 days: a slower rate's wait would overflow a thread's wait.
    "rate": ("rate", "number", {"ge": 1e-6}),
    "burst": ("burst", "integer", {"ge": 1}),
}
_RETRY: dict[str, Field] = {
    "initial": ("retry_initial", "number", {"ge": 0}),
    "max": ("retry_max", "number", {"ge": 0}),
    "attempts": ("retry_attempts", "integer", {"ge": 1}),
}


class WebhookSinkType(SinkType):
    """``type: webhook``: batches POSTed as JSON arrays, rate-limited and retried."""

    name = "webhook"
    sink = "streamvisor.sinks.webhook:WebhookSink"
    keys = ("url", "headers", "timeout", "batch", "rate_limit", "retry", "dead_letter")
    required = ("url",)

    def read(
        self, c: Checker, entries: Mapping[str, Node], base_dir: str
    ) -> dict[str, Any] | Invalid:
        kwargs = read_keys(
            entries,
            {
                "url": c.url,
                "headers": c.headers,
                "timeout": lambda n: c.number(n, gt=0),
                "batch": lambda n: c.section(n, _BATCH),
                "rate_limit": lambda n: _rate_limit(c, n),
                "retry": lambda n: c.section(n, _RETRY, order=("initial", "max", 30.0)),
                "dead_letter": lambda n: c.file_path(n, base_dir),
            },
            spread=("batch", "rate_limit", "retry"),
        )
        if isinstance(kwargs, dict) and kwargs.get("rate") is not None:
            kwargs.setdefault("burst", max(1, math.ceil(kwargs["rate"])))
        return kwargs

    def arguments(self, config: SinkConfig, stop_event: threading.Event | None) -> dict[str, Any]:
        return {
            "url": config.url,
            "name": config.name,
            "headers": dict(config.headers),
            "timeout": config.timeout,
            "max_batch": config.batch_max_events,
            "max_wait": config.batch_max_wait,
            "rate": config.rate,
            "burst": config.burst,
            "retry_initial": config.retry_initial,
            "retry_max": config.retry_max,
            "retry_attempts": config.retry_attempts,
            "dead_letter": config.dead_letter,
            "stop_event": stop_event,
        }


class RedisStreamsSinkType(SinkType):
    """``type: redis_streams``: each event an entry of a Redis stream (cluster mode's sink;
    its keys are read by ``streamvisor.cluster.settings``)."""

    name = "redis_streams"
    sink = "streamvisor.sinks.redis_streams:RedisStreamsSink"
    keys = REDIS_SINK_KEYS
    required = ("redis",)

    def read(
        self, c: Checker, entries: Mapping[str, Node], base_dir: str
    ) -> dict[str, Any] | Invalid:
        redis = entries.get("redis")
        if redis is None or redis.value is None:
            return INVALID  # reported as missing; read_redis_sink needs it
        options = read_redis_sink(c, entries)
        if not isinstance(options, RedisStreamsOptions):
            return INVALID
        return {
            "redis_streams": options,
            "batch_max_events": options.batch_count,
            "batch_max_wait": options.batch_period,
        }

    def arguments(self, config: SinkConfig, stop_event: threading.Event | None) -> dict[str, Any]:
        return {"options": config.redis_streams, "name": config.name, "stop_event": stop_event}


SINK_TYPES: Mapping[str, SinkType] = MappingProxyType(
    {
        kind.name: kind
        for kind in (StdoutSinkType(), FileSinkType(), WebhookSinkType(), RedisStreamsSinkType())
    }
)
"""Every built-in sink type by its ``type:`` value."""


def read_keys(
    entries: Mapping[str, Node], readers: Mapping[str, Reader], *, spread: Sequence[str] = ()
) -> dict[str, Any] | Invalid:
    """``{key: reader(node)}`` without null results, or ``INVALID`` if any reader failed;
    a ``spread`` key's mapping result is merged in instead of kept under its key."""
    kwargs: dict[str, Any] = {}
    ok = True
    for key, child in entries.items():
        value = readers[key](child)
        if isinstance(value, Invalid):
            ok = False
        elif isinstance(value, dict) and key in spread:
            kwargs.update(value)
        elif value is not None:
            kwargs[key] = value
    return kwargs if ok else INVALID


def _rate_limit(c: Checker, node: Node) -> dict[str, Any] | Invalid | None:
    if node.value is None:
        return None
    values = c.section(node, _RATE)
    if isinstance(values, dict) and "rate" not in values:
        c.error(node.line, node.path, "missing required key 'rate'")
        return INVALID
    return values
