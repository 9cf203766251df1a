"""Wiring: feed a ``Streamvisor``'s deduplicated events into a ``RelayServer``.

``start_relay(config, sv)`` is what the daemon calls; ``attach`` is the one place that
knows how events leave streamvisor for the relay. With ``Streamvisor.add_listener`` (called
in each stream's thread once per read, after dedup) the relay's ``publish`` is the
listener. Until that exists, a small forwarding actor subscribes instead and publishes what
it receives, coalescing while its inbox is busy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pykka

from streamvisor.relay.server import RelayServer
from streamvisor.relay.settings import RelayConfig
from streamvisor.sse import Event

if TYPE_CHECKING:
    from streamvisor.api import Streamvisor
    from streamvisor.relay.history_sqlite import SQLiteHistory

__all__ = ["Relay", "attach", "start_relay"]

log = logging.getLogger(__name__)

Publish = Callable[[str, Sequence[Event]], None]
_MAX_COALESCE = 1024


class _Forwarder(pykka.ThreadingActor):
    """Subscriber actor that hands events to ``publish`` (until ``add_listener`` lands)."""

    def __init__(self, publish: Publish) -> None:
        super().__init__()
        self._publish = publish
        self._held: list[Event] = []

    def on_receive(self, message: Any) -> None:
        if not isinstance(message, Event):
            self._flush()
            return
        if self._held and self._held[0].stream != message.stream:
            self._flush()
        self._held.append(message)
        if len(self._held) >= _MAX_COALESCE or self.actor_inbox.empty():
            self._flush()

    def on_stop(self) -> None:
        self._flush()

    def _flush(self) -> None:
        held, self._held = self._held, []
        if held:
            self._publish(held[0].stream, held)


class Feed:
    """How events reach the relay; ``close()`` stops them."""

    def __init__(self, close: Callable[[], None]) -> None:
        self._close = close

    def close(self) -> None:
        """Stop feeding events (idempotent)."""
        self._close()


def attach(sv: Streamvisor, publish: Publish, streams: Sequence[str] | None = None) -> Feed:
    """Send every deduplicated event of ``streams`` (default all) to ``publish``.

    Args:
        sv: the Streamvisor (started or not).
        publish: ``publish(stream, events)``; called once per read, must not block.
        streams: only these streams (default: all).

    Returns:
        A ``Feed`` whose ``close()`` detaches.
    """
    add_listener = getattr(sv, "add_listener", None)
    if add_listener is not None:
        name = add_listener(publish, streams=streams)
        remove = getattr(sv, "remove_listener", None)
        return Feed(lambda: remove(name) if remove is not None else None)
    ref = _Forwarder.start(publish)
    name = sv.subscribe(ref, streams=streams, buffer=1_000_000, name="relay")

    def close() -> None:
        try:
            sv.unsubscribe(name)
        except pykka.ActorDeadError:
            pass  # streamvisor has stopped already
        ref.stop(block=True, timeout=5.0)

    return Feed(close)


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
