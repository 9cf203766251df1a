"""``ActorSystem``: starts, asks and stops streamvisor's own actors for the API facade.

The timer thread, the supervisor and one actor per built-in sink live here, so the facade
(``streamvisor.api``) never touches pykka. Rules: only ``tell`` between actors; ``ask`` only
from outside, always with a timeout; stop in order (streams, then sinks, then the timer);
never ``ActorRegistry.stop_all()``: the user's actors are theirs.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pykka

from streamvisor.actors.hub import Hub
from streamvisor.actors.messages import AddStream, Drain, StopStreams
from streamvisor.actors.scheduler import Scheduler
from streamvisor.actors.sink import SinkActor
from streamvisor.actors.stream import ConnectionFactory
from streamvisor.actors.supervisor import SupervisorActor
from streamvisor.buffers import SinkBuffer
from streamvisor.sinks.base import Sink
from streamvisor.spec import StreamSpec
from streamvisor.states import StreamState

if TYPE_CHECKING:
    from streamvisor.daemon.tracing import AttemptObserver

__all__ = ["ASK_TIMEOUT", "ActorSystem"]

log = logging.getLogger("streamvisor.api")

ASK_TIMEOUT = 5.0
"""Seconds an ask from outside the actor system may take."""


class ActorSystem:
    """The scheduler, the supervisor and the sink actors of one ``Streamvisor``."""

    def __init__(self) -> None:
        self.scheduler = Scheduler()
        self._supervisor: pykka.ActorRef[Any] | None = None
        self._sinks: dict[str, pykka.ActorRef[Any]] = {}

    @property
    def started(self) -> bool:
        """True once the supervisor runs."""
        return self._supervisor is not None

    def start(
        self,
        hub: Hub,
        connect: ConnectionFactory,
        *,
        rng: random.Random | None,
        on_state: Callable[[str, StreamState], None],
        last_errors: dict[str, str],
        observer: AttemptObserver | None,
    ) -> None:
        """Start the timer thread and the supervisor."""
        self.scheduler.start()
        self._supervisor = SupervisorActor.start(
            hub,
            self.scheduler.call_later,
            connect,
            rng=rng,
            on_state=on_state,
            last_errors=last_errors,
            observer=observer,
        )

    def add_stream(self, spec: StreamSpec, last_event_id: str | None) -> None:
        """Tell the supervisor to run ``spec`` from ``last_event_id``."""
        assert self._supervisor is not None
        self._supervisor.tell(AddStream(spec, last_event_id))

    def ask(self, message: Any, default: Any = False) -> Any:
        """Ask the supervisor (with ``ASK_TIMEOUT``); ``default`` when it is not running.

        Raises:
            pykka.Timeout: no answer in time.
        """
        if self._supervisor is None:
            return default
        try:
            return self._supervisor.ask(message, block=True, timeout=ASK_TIMEOUT)
        except pykka.ActorDeadError:
            return default

    def start_sink(
        self,
        sink: Sink,
        buffer: SinkBuffer,
        on_closed: Callable[[str], None] | None = None,
    ) -> None:
        """Start the actor that drains ``buffer`` into ``sink``, and wire its wake-up (before
        any stream can put into the buffer). ``on_closed(name)`` is called once when the
        sink's destination is gone for good (``SinkClosedError``)."""
        ref = SinkActor.start(sink, buffer, self.scheduler.call_later, on_closed)
        self._sinks[sink.name] = ref

        def wake() -> None:
            try:
                ref.tell(Drain())
            except pykka.ActorDeadError:
                pass

        buffer.on_ready = wake

    def stop(self, deadline: float, timeout: float) -> None:
        """Stop the streams, then the sinks (they write what their buffers hold), each
        within what is left until ``deadline`` (monotonic seconds)."""
        supervisor = self._supervisor
        if supervisor is not None:
            try:
                refs: list[Any] = supervisor.ask(
                    StopStreams(), block=True, timeout=_remaining(deadline)
                )
                for ref in refs:
                    ref.actor_stopped.wait(_remaining(deadline))
                supervisor.stop(block=True, timeout=_remaining(deadline))
            except (pykka.Timeout, pykka.ActorDeadError):
                log.warning("streams did not stop within %.1fs", timeout)
        for name, ref in self._sinks.items():
            try:
                ref.stop(block=True, timeout=_remaining(deadline))
            except pykka.Timeout:
                log.warning("sink %s did not finish writing within the deadline", name)
            except pykka.ActorDeadError:
                pass

    def stop_timer(self) -> None:
        """Stop the timer thread (last: stopping actors may still schedule)."""
        self.scheduler.stop()


def _remaining(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.01)
