"""Build a built-in sink from its validated ``SinkConfig``, through the sink-type registry
(``streamvisor.config.sink_types.SINK_TYPES``: which class, with which arguments). No I/O
until the sink writes."""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING

from streamvisor.config.sink_types import SINK_TYPES
from streamvisor.sinks.base import Sink

if TYPE_CHECKING:
    from streamvisor.config.model import SinkConfig


def build_sink(config: SinkConfig, stop_event: threading.Event | None = None) -> Sink:
    """Make the sink ``config`` describes.

    Args:
        config: a validated sink config.
        stop_event: set at shutdown; sinks that wait (webhook retries) stop waiting.

    Raises:
        ValueError: ``config.type`` is not a registered sink type.
    """
    sink_type = SINK_TYPES.get(config.type)
    if sink_type is None:
        raise ValueError(f"unknown sink type {config.type!r}")
    module, _, name = sink_type.sink.partition(":")
    sink_class = getattr(importlib.import_module(module), name)
    sink: Sink = sink_class(**sink_type.arguments(config, stop_event))
    return sink
