"""Server-sent events, sans I/O: the incremental ``Decoder`` (WHATWG "interpreting an event
stream") and the ``Event`` value with its JSON Lines form. ``streamvisor.sse.Decoder`` and
``streamvisor.sse.Event`` are public import paths.

Rule of this package: no I/O, no threads, no network library; importing it imports neither
pykka nor requests.
"""

from streamvisor.sse.decoder import DEFAULT_MAX_SIZE, Decoder
from streamvisor.sse.event import Event, format_timestamp, to_jsonl

__all__ = ["DEFAULT_MAX_SIZE", "Decoder", "Event", "format_timestamp", "to_jsonl"]
