"""The subscriber methods of ``Streamvisor``: actors, listeners, sinks and iterators.

A mixin so the facade stays one job per module: this part registers outlets with the hub
(and starts a sink's actor and buffer); ``facade`` runs streams and answers status.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from streamvisor.actors.actor_outlet import ActorOutlet
from streamvisor.actors.hub import Hub
from streamvisor.actors.outlets import ListenerOutlet, SinkOutlet
from streamvisor.actors.system import ActorSystem
from streamvisor.buffers import DiskBuffer, MemoryBuffer, SinkBuffer
from streamvisor.policy.flow import BufferSettings, WhenFull
from streamvisor.sse import Event

if TYPE_CHECKING:
    import pykka

    from streamvisor.api.iterator import EventStream
    from streamvisor.sinks.base import Sink

__all__ = ["SubscriberMethods"]

log = logging.getLogger("streamvisor.api")


class SubscriberMethods:
    """``subscribe``, ``add_listener``, ``add_sink``, ``events``, ``unsubscribe``."""

    _hub: Hub
    _actors: ActorSystem
    _names: itertools.count[int]
    _buffers: dict[str, SinkBuffer]
    _sink_objects: dict[str, Sink]
    _specs: dict[str, Any]
    _on_sink_closed: Callable[[str], None] | None

    def _known(self, streams: Sequence[str] | None, what: str) -> None:
        """Warn about stream names this streamvisor does not run (yet): a typo would
        otherwise receive nothing, silently. (``add_stream`` may add them later.)"""
        unknown = sorted(set(streams or ()) - set(self._specs))
        if unknown:
            log.warning(
                "%s takes unknown stream(s) %s (known: %s)",
                what,
                ", ".join(map(repr, unknown)),
                ", ".join(sorted(self._specs)) or "none",
            )

    def subscribe(
        self,
        ref: pykka.ActorRef[Any],
        *,
        streams: Sequence[str] | None = None,
        events: Sequence[str] | None = None,
        buffer: int = 10000,
        when_full: str | WhenFull = "block",
        overflow: str | None = None,
        batch: bool = False,
        name: str | None = None,
    ) -> str:
        """Deliver events to a pykka actor: one ``Event`` per message, or with ``batch=True``
        one ``EventBatch`` (the events of one read of one stream) per message.

        Args:
            ref: the subscriber actor.
            streams: only these streams (default: all).
            events: only these event types (default: all).
            buffer: most of our events waiting in its inbox.
            when_full: ``block`` (default: the streams it takes pause until it catches up,
                nothing is lost), ``drop_newest``, ``drop_oldest`` or ``disconnect`` (it is
                told ``SubscriberOverflow`` and removed). Drops are counted in ``status()``
                and logged at WARNING.
            overflow: older name of ``when_full`` (wins when given).
            batch: deliver ``EventBatch`` messages (for throughput).
            name: a name for status output (default: generated).

        Returns:
            The subscriber's name (for ``unsubscribe``).

        Raises:
            ValueError: an unknown policy, a buffer below 1, or a name in use.
        """
        policy = WhenFull.parse(overflow if overflow is not None else when_full)
        if buffer < 1:
            raise ValueError(f"buffer must be >= 1, got {buffer}")
        name = name or f"subscriber-{next(self._names)}"
        self._known(streams, f"subscriber {name}")
        self._hub.add(
            ActorOutlet(name, ref, _names(streams), _names(events), policy, buffer, batch)
        )
        return name

    def add_listener(
        self,
        callback: Callable[[str, Sequence[Event]], None],
        *,
        streams: Sequence[str] | None = None,
        events: Sequence[str] | None = None,
        name: str | None = None,
    ) -> str:
        """Call ``callback(stream, events)`` in each stream's thread, once per read, with
        the read's new events (deduplicated and filtered).

        The callback must be quick and must not block (it holds up the stream); it is for
        adapters that hand events on (the relay's event loop, an iterator's queue). An
        exception in it is logged and counted, never raised into the stream.

        Returns:
            The listener's name (for ``unsubscribe``).
        """
        name = name or f"listener-{next(self._names)}"
        self._known(streams, f"listener {name}")
        self._hub.add(ListenerOutlet(name, callback, _names(streams), _names(events)))
        return name

    def add_sink(
        self,
        sink: Sink,
        *,
        streams: Sequence[str] | None = None,
        events: Sequence[str] | None = None,
        buffer: int | BufferSettings = 10000,
        when_full: str | WhenFull = "block",
        overflow: str | None = None,
    ) -> str:
        """Run a built-in sink (stdout, file, webhook, ...) behind its own buffer.

        Args:
            sink: the sink.
            streams: only these streams (default: all).
            events: only these event types (default: all).
            buffer: a ``BufferSettings`` (memory or disk), or a memory buffer's size in
                events (then ``when_full``/``overflow`` give its policy).
            when_full: the policy of an ``int`` buffer (default ``block``).
            overflow: older name of ``when_full``.

        Raises:
            ValueError: a disk buffer without a path, or a bad policy or size.
            CheckpointError: the disk buffer's file cannot be opened.
        """
        if isinstance(buffer, BufferSettings):
            settings = buffer
        else:
            policy = WhenFull.parse(overflow if overflow is not None else when_full)
            settings = BufferSettings(max_events=buffer, when_full=policy)
        name = sink.name
        outlet_box: list[SinkOutlet] = []

        def on_drop(stream: str, count: int) -> None:
            outlet_box[0].count_drops(stream, count)

        store: SinkBuffer
        if settings.type == "disk":
            if settings.path is None:
                raise ValueError(f"sink {name}: a disk buffer needs a path")
            store = DiskBuffer(settings.path, settings, on_drop=on_drop)
        else:
            store = MemoryBuffer(settings, on_drop=on_drop)
        outlet = SinkOutlet(name, store, _names(streams), _names(events))
        outlet_box.append(outlet)
        self._actors.start_sink(
            sink, store, self._on_sink_closed
        )  # wakes are wired before any stream can put
        self._buffers[name] = store
        self._sink_objects[name] = sink
        self._hub.add(outlet)
        return name

    def events(
        self,
        *,
        streams: Sequence[str] | None = None,
        events: Sequence[str] | None = None,
        buffer: int = 10_000,
        name: str | None = None,
        _owned: bool = False,
    ) -> EventStream:
        """Iterate the events of this (running) streamvisor as one more subscriber.

        Lossless like every subscriber: when the loop falls behind by ``buffer`` events the
        streams pause. Iteration ends when every stream it watches has ended for good (or
        at ``close()``); with one stream, ``handle`` controls it and a failure raises
        ``StreamFailedError``.

        Args:
            streams: only these streams (default: all).
            events: only these event types (default: all).
            buffer: most events queued for the loop.
            name: the subscriber's name (default: generated).
        """
        from streamvisor.api.facade import Streamvisor
        from streamvisor.api.iterator import attach

        assert isinstance(self, Streamvisor)
        unknown = sorted(set(streams or ()) - set(self._specs))
        if unknown:  # an iterator over nothing would block for ever
            known = ", ".join(sorted(self._specs)) or "none"
            raise ValueError(f"unknown stream(s) {', '.join(map(repr, unknown))} (known: {known})")
        name = name or f"iterator-{next(self._names)}"
        return attach(self, streams, events, buffer, name, owned=_owned)

    def unsubscribe(self, name: str) -> None:
        """Stop delivering to a subscriber or listener (a stream waiting for it goes on)."""
        self._hub.remove(name)


def _names(names: Sequence[str] | None) -> frozenset[str] | None:
    return frozenset(names) if names is not None else None
