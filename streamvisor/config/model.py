"""The frozen values a validated config becomes: ``Config`` and its sections (``SinkConfig``,
``CheckpointConfig``, ``AdminConfig``). Streams become ``StreamSpec`` (``streamvisor.spec``);
the relay, cluster and tracing sections bring their own values.

Pure: values only, no reading and no checking (see ``load``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from streamvisor.cluster.settings import ClusterConfig, RedisStreamsOptions
from streamvisor.config.tracing import TracingConfig
from streamvisor.errors import ConfigError
from streamvisor.policy.flow import BufferSettings
from streamvisor.policy.redact import redact_headers, redact_url
from streamvisor.relay.settings import RelayConfig
from streamvisor.spec import StreamSpec

__all__ = ["AdminConfig", "CheckpointConfig", "Config", "SinkConfig"]


@dataclass(frozen=True, slots=True, repr=False)
class SinkConfig:
    """One built-in sink. Keys that do not apply to its ``type`` keep their defaults.

    Its ``repr`` masks the URL password and secret header values.
    """

    name: str
    type: str
    streams: tuple[str, ...] | None = None
    events: tuple[str, ...] | None = None
    buffer: BufferSettings = field(default_factory=BufferSettings)
    path: str | None = None
    flush_interval: float = 0.0
    fsync: bool = False
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 10.0
    batch_max_events: int = 100
    batch_max_wait: float = 0.5
    rate: float | None = None
    burst: int | None = None
    retry_initial: float = 0.5
    retry_max: float = 30.0
    retry_attempts: int = 8
    dead_letter: str | None = None
    redis_streams: RedisStreamsOptions | None = None

    def __repr__(self) -> str:
        parts = []
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if name == "url" and value is not None:
                value = redact_url(value)
            elif name == "headers":
                value = redact_headers(value)
            parts.append(f"{name}={value!r}")
        return f"SinkConfig({', '.join(parts)})"


@dataclass(frozen=True, slots=True)
class CheckpointConfig:
    """Where the last delivered ids are stored.

    Attributes:
        path: the SQLite file (absolute or config-relative); "" for the Redis store.
        interval: seconds between checkpoint writes.
        store: ``sqlite`` or ``redis`` (cluster mode needs ``redis``).
        redis: the Redis URL of the ``redis`` store (default: ``cluster.redis``).
        recent_ids: dedup ids saved per stream (None: the whole dedup window).
    """

    path: str = ""
    interval: float = 1.0
    store: str = "sqlite"
    redis: str | None = None
    recent_ids: int | None = None


@dataclass(frozen=True, slots=True)
class AdminConfig:
    """The admin HTTP listener (port 0 picks a free port) and its optional bearer token."""

    host: str
    port: int
    token: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Config:
    """A validated configuration.

    Attributes:
        streams: the upstream streams, in file order.
        sinks: the built-in sinks, in file order.
        checkpoint: the checkpoint store, or None.
        admin: the admin listener, or None.
        relay: the relay (``streamvisor.relay``), or None.
        shutdown_timeout: seconds a graceful stop may take.
        tracing: OpenTelemetry tracing settings, or None (tracing off).
        cluster: cluster mode (``streamvisor.cluster``), or None.
        source: the config path as given.
        secrets: secret values found in the file or its environment (for the log Redactor).
        warnings: problems that do not stop the config from working.
    """

    streams: tuple[StreamSpec, ...]
    sinks: tuple[SinkConfig, ...]
    checkpoint: CheckpointConfig | None
    admin: AdminConfig | None
    shutdown_timeout: float = 10.0
    tracing: TracingConfig | None = None
    cluster: ClusterConfig | None = None
    source: str = "<config>"
    secrets: frozenset[str] = frozenset()
    warnings: tuple[ConfigError, ...] = ()
    relay: RelayConfig | None = None
