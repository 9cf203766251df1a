"""Wiring: feed a ``Streamvisor``'s deduplicated events into a ``RelayServer``.

``start_relay(config, sv)`` is what the daemon calls; ``attach`` is the one place that
knows how events leave streamvisor for the relay: the relay's ``publish`` is a listener
(``Streamvisor.add_listener``), called in each stream's thread once per read, after dedup,
and it only hands the read over to the relay's loop (it never blocks the stream).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from streamvisor.relay.server import RelayServer
from streamvisor.relay.settings import RelayConfig
from streamvisor.sse import Event

if TYPE_CHECKING:
    from streamvisor.api.facade import Streamvisor
    from streamvisor.relay.history_sqlite import SQLiteHistory

__all__ = ["Feed", "Relay", "attach", "start_relay"]

log = logging.getLogger(__name__)

Publish = Callable[[str, Sequence[Event]], None]


class Feed:
    """How events reach the relay; ``close()`` stops them."""

    def __init__(self, sv: Streamvisor, name: str) -> None:
        self._sv = sv
        self._name = name

    def close(self) -> None:
        """Stop feeding events (idempotent)."""
        self._sv.unsubscribe(self._name)


def attach(sv: Streamvisor, publish: Publish, streams: Sequence[str] | None = None) -> Feed:
    """Send every deduplicated event of ``streams`` (default all) to ``publish``.

    Args:
        sv: the Streamvisor (started or not).
        publish: ``publish(stream, events)``; called once per read, must not block.
        streams: only these streams (default: all).

    Returns:
        A ``Feed`` whose ``close()`` detaches.
    """
    return Feed(sv, sv.add_listener(publish, streams=streams, name="relay"))


class Relay:
    """A started relay and its feed: ``address``, ``server`` and ``stop()``."""

    def __init__(
        self, server: RelayServer, feed: Feed, history: SQLiteHistory | None = None
    ) -> None:
        self.server = server
        self.address = server.address
        self._feed = feed
        self._history = history

    def stop(self, timeout: float = 5.0) -> None:
        """Detach from the streams, close every client and the listener."""
        self._feed.close()
        self.server.stop(timeout)
        if self._history is not None:
            self._history.close(timeout)


def start_relay(config: RelayConfig | None, sv: Streamvisor) -> Relay | None:
    """Start the relay the ``relay:`` config section describes, fed by ``sv``.

    Args:
        config: the section (None: no relay, returns None).
        sv: the Streamvisor whose streams are served (call before or after ``sv.start()``).

    Returns:
        The running relay, or None without a config.

    Raises:
        RelayError: the address cannot be bound.
        HistoryError: the SQLite history cannot be opened.
    """
    if config is None:
        return None
    history = None
    if config.store == "sqlite":
        from streamvisor.relay.history_sqlite import SQLiteHistory

        assert config.path is not None
        history = SQLiteHistory(config.path, config.max_events, config.max_age)
    try:
        names = list(sv.status()["streams"])
        server = RelayServer(config, names, history=history)
        host, port = server.start()
    except BaseException:
        if history is not None:
            history.close()
        raise
    relay = Relay(server, attach(sv, server.publish, config.streams), history)
    shown = f"[{host}]" if ":" in host else host
    log.info("relay listening on http://%s:%d (/streams/<name> /health /metrics)", shown, port)
    return relay
