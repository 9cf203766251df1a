"""Build a built-in sink from its validated ``SinkConfig``. No I/O until the sink writes."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from streamvisor.sinks.base import Sink
from streamvisor.sinks.file import FileSink
from streamvisor.sinks.stdout import StdoutSink
from streamvisor.sinks.webhook import WebhookSink

if TYPE_CHECKING:
    from streamvisor.config.load import SinkConfig


def build_sink(config: SinkConfig, stop_event: threading.Event | None = None) -> Sink:
    """Make the sink ``config`` describes.

    Args:
        config: a validated sink config.
        stop_event: set at shutdown; sinks that wait (webhook retries) stop waiting.
    """
    if config.type == "stdout":
        return StdoutSink(name=config.name)
    if config.type == "file":
        assert config.path is not None
        return FileSink(config.path, config.flush_interval, config.fsync, name=config.name)
    if config.type == "webhook":
        assert config.url is not None
        return WebhookSink(
            config.url,
            name=config.name,
            headers=dict(config.headers),
            timeout=config.timeout,
            max_batch=config.batch_max_events,
            max_wait=config.batch_max_wait,
            rate=config.rate,
            burst=config.burst,
            retry_initial=config.retry_initial,
            retry_max=config.retry_max,
            retry_attempts=config.retry_attempts,
            dead_letter=config.dead_letter,
            stop_event=stop_event,
        )
    if config.type == "redis_streams":
        from streamvisor.sinks.redis_streams import RedisStreamsSink

        assert config.redis_streams is not None
        return RedisStreamsSink(config.redis_streams, name=config.name, stop_event=stop_event)
    raise ValueError(f"unknown sink type {config.type!r}")
