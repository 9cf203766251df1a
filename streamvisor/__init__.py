"""streamvisor: supervised Server-Sent-Events streams.

Keeps long-lived SSE streams alive (reconnects, backoff, Last-Event-ID resume), drops
duplicates and delivers every event to subscriber actors, sinks and checkpoints.

The public names load lazily (PEP 562): ``import streamvisor.sse`` (the decoder) imports
neither pykka nor requests; ``streamvisor.Streamvisor`` and ``streamvisor.connect`` bring
the actor system in when first used.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streamvisor.actors.messages import EventBatch, SubscriberOverflow
    from streamvisor.api.aiterator import AsyncEventStream, aconnect
    from streamvisor.api.facade import Streamvisor
    from streamvisor.api.iterator import EventStream, StreamHandle, connect
    from streamvisor.checkpoint.store import CheckpointError
    from streamvisor.errors import (
        ConfigError,
        ConnectError,
        ContentTypeError,
        EventTooLargeError,
        HTTPStatusError,
        ReadTimeoutError,
        StreamFailedError,
        StreamProtocolError,
        StreamvisorError,
    )
    from streamvisor.hooks import EventClass, ProtocolHandler
    from streamvisor.policy.backoff import BackoffPolicy, RestartLimit
    from streamvisor.policy.classify import Action, classify
    from streamvisor.policy.flow import BufferSettings, WhenFull
    from streamvisor.sinks.base import Sink, SinkError
    from streamvisor.spec import BreakerPolicy, StreamSpec
    from streamvisor.sse import Decoder, Event
    from streamvisor.states import StreamState
    from streamvisor.status import Status, StreamStatus, SubscriberStatus

__version__ = "0.1.0"

_WHERE = {
    "Action": "streamvisor.policy.classify",
    "AsyncEventStream": "streamvisor.api.aiterator",
    "BackoffPolicy": "streamvisor.policy.backoff",
    "BreakerPolicy": "streamvisor.spec",
    "BufferSettings": "streamvisor.policy.flow",
    "CheckpointError": "streamvisor.checkpoint.store",
    "ConfigError": "streamvisor.errors",
    "ConnectError": "streamvisor.errors",
    "ContentTypeError": "streamvisor.errors",
    "Decoder": "streamvisor.sse",
    "Event": "streamvisor.sse",
    "EventBatch": "streamvisor.actors.messages",
    "EventClass": "streamvisor.hooks",
    "EventStream": "streamvisor.api.iterator",
    "EventTooLargeError": "streamvisor.errors",
    "HTTPStatusError": "streamvisor.errors",
    "ProtocolHandler": "streamvisor.hooks",
    "ReadTimeoutError": "streamvisor.errors",
    "RestartLimit": "streamvisor.policy.backoff",
    "Sink": "streamvisor.sinks.base",
    "SinkError": "streamvisor.sinks.base",
    "Status": "streamvisor.status",
    "StreamFailedError": "streamvisor.errors",
    "StreamHandle": "streamvisor.api.iterator",
    "StreamProtocolError": "streamvisor.errors",
    "StreamSpec": "streamvisor.spec",
    "StreamState": "streamvisor.states",
    "StreamStatus": "streamvisor.status",
    "Streamvisor": "streamvisor.api.facade",
    "StreamvisorError": "streamvisor.errors",
    "SubscriberOverflow": "streamvisor.actors.messages",
    "SubscriberStatus": "streamvisor.status",
    "WhenFull": "streamvisor.policy.flow",
    "aconnect": "streamvisor.api.aiterator",
    "classify": "streamvisor.policy.classify",
    "connect": "streamvisor.api.iterator",
}

__all__ = [
    "Action",
    "AsyncEventStream",
    "BackoffPolicy",
    "BreakerPolicy",
    "BufferSettings",
    "CheckpointError",
    "ConfigError",
    "ConnectError",
    "ContentTypeError",
    "Decoder",
    "Event",
    "EventBatch",
    "EventClass",
    "EventStream",
    "EventTooLargeError",
    "HTTPStatusError",
    "ProtocolHandler",
    "ReadTimeoutError",
    "RestartLimit",
    "Sink",
    "SinkError",
    "Status",
    "StreamFailedError",
    "StreamHandle",
    "StreamProtocolError",
    "StreamSpec",
    "StreamState",
    "StreamStatus",
    "Streamvisor",
    "StreamvisorError",
    "SubscriberOverflow",
    "SubscriberStatus",
    "WhenFull",
    "__version__",
    "aconnect",
    "classify",
    "connect",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'streamvisor' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])


logging.getLogger(__name__).addHandler(logging.NullHandler())
