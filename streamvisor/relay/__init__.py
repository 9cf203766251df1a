"""The relay: re-serve supervised streams to many downstream SSE clients, with replay.

One asyncio loop thread serves ``/streams/<name>`` (plus ``/health`` and ``/metrics``);
each stream's events are encoded once, kept in a replay ring bounded by count and age,
and written to every client. See ``server.py`` for the design and its measurements.

Heavy modules load on first use, so that the config loader can import ``RelayConfig``
without the server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streamvisor.relay.settings import RelayConfig

if TYPE_CHECKING:
    from streamvisor.relay.feed import Relay, attach, start_relay
    from streamvisor.relay.server import RelayError, RelayServer

__all__ = ["Relay", "RelayConfig", "RelayError", "RelayServer", "attach", "start_relay"]

_LAZY = {
    "Relay": "streamvisor.relay.feed",
    "attach": "streamvisor.relay.feed",
    "start_relay": "streamvisor.relay.feed",
    "RelayError": "streamvisor.relay.server",
    "RelayServer": "streamvisor.relay.server",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
