"""Built-in sinks: stdout, JSONL file and webhook, all behind the ``Sink`` protocol."""

from __future__ import annotations

from streamvisor.sinks.base import Sink, SinkError
from streamvisor.sinks.factory import build_sink
from streamvisor.sinks.file import FileSink, read_jsonl
from streamvisor.sinks.stdout import StdoutSink
from streamvisor.sinks.webhook import WebhookSink

__all__ = [
    "FileSink",
    "Sink",
    "SinkError",
    "StdoutSink",
    "WebhookSink",
    "build_sink",
    "read_jsonl",
]
