"""streamvisor: supervised Server-Sent-Events streams.

Keeps long-lived SSE streams alive (reconnects, backoff, Last-Event-ID resume), drops
duplicates and delivers every event to subscriber actors, sinks and checkpoints.
"""

from __future__ import annotations

import logging

from streamvisor.actors.messages import EventBatch, SubscriberOverflow
from streamvisor.api.aiterator import AsyncEventStream, aconnect
from streamvisor.api.facade import Streamvisor
from streamvisor.api.iterator import EventStream, StreamHandle, connect
from streamvisor.errors import (
    Action,
    ConfigError,
    ConnectError,
    ContentTypeError,
    HTTPStatusError,
    ReadTimeoutError,
    StreamFailedError,
    StreamProtocolError,
    StreamvisorError,
    classify,
)
from streamvisor.hooks import EventClass, ProtocolHandler
from streamvisor.policy.backoff import BackoffPolicy, RestartLimit
from streamvisor.policy.flow import WhenFull
from streamvisor.spec import BreakerPolicy, StreamSpec
from streamvisor.sse import Decoder, Event
from streamvisor.states import StreamState

__version__ = "0.1.0"

__all__ = [
    "Action",
    "AsyncEventStream",
    "BackoffPolicy",
    "BreakerPolicy",
    "ConfigError",
    "ConnectError",
    "ContentTypeError",
    "Decoder",
    "Event",
    "EventBatch",
    "EventClass",
    "EventStream",
    "HTTPStatusError",
    "ProtocolHandler",
    "ReadTimeoutError",
    "RestartLimit",
    "StreamFailedError",
    "StreamHandle",
    "StreamProtocolError",
    "StreamSpec",
    "StreamState",
    "Streamvisor",
    "StreamvisorError",
    "SubscriberOverflow",
    "WhenFull",
    "__version__",
    "aconnect",
    "classify",
    "connect",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
