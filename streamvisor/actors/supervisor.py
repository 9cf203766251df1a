"""SupervisorActor: owns every stream, restarts them, and is their stable address.

One-for-one supervision per stream: a stream's connection is a short-lived StreamActor
(one per attempt, tagged with a generation); when it exits, ``RestartPolicy`` (pure)
decides between restart-after-delay, fail, and done, and a timer brings the restart. The
supervisor never blocks, never sleeps, and never asks a child. A sweep every second
catches a child that died without reporting (pykka reports nothing when ``on_start`` or a
``BaseException`` kills an actor).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pykka

from streamvisor.actors.entry import Entry, log_restart
from streamvisor.actors.hub import Hub
from streamvisor.actors.inbox import SimpleInbox
from streamvisor.actors.messages import (
    AddStream,
    Close,
    Connected,
    Exited,
    Reconnect,
    RemoveStream,
    RestartDue,
    Snapshot,
    StopStreams,
    Sweep,
)
from streamvisor.actors.scheduler import Schedule, tell_later
from streamvisor.actors.stream import ConnectionFactory, StreamActor, StreamControl
from streamvisor.policy.override import decide
from streamvisor.policy.supervision import Decision, Kind, Outcome, RestartPolicy
from streamvisor.spec import StreamSpec
from streamvisor.states import BreakerState, StreamState

if TYPE_CHECKING:
    from streamvisor.daemon.tracing import AttemptObserver

log = logging.getLogger(__name__)

SWEEP_INTERVAL = 1.0


class SupervisorActor(SimpleInbox, pykka.ThreadingActor):
    """Starts, restarts, reconnects, closes and reports on streams."""

    # A program that forgets ``stop()`` (a ``for`` loop over ``connect()`` left with
    # ``break``) must still be able to exit: ``Streamvisor`` stops itself at exit instead.
    use_daemon_thread = True

    def __init__(
        self,
        hub: Hub,
        schedule: Schedule,
        connect: ConnectionFactory,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        on_state: Callable[[str, StreamState], None] | None = None,
        last_errors: dict[str, str] | None = None,
        observer: AttemptObserver | None = None,
    ) -> None:
        super().__init__()
        self._observer = observer  # tracing; None when off
        self._hub = hub
        self._schedule = schedule
        self._connect = connect
        self._clock = clock
        self._rng = rng or random.Random()
        self._on_state = on_state
        self._last_errors = last_errors if last_errors is not None else {}
        self._entries: dict[str, Entry] = {}
        self._stopping = False

    def on_start(self) -> None:
        self._schedule_sweep()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Exited):
            self._exited(message)
        elif isinstance(message, Connected):
            self._connected(message)
        elif isinstance(message, RestartDue):
            self._restart_due(message)
        elif isinstance(message, AddStream):
            self._add(message.spec, message.last_event_id)
        elif isinstance(message, Reconnect):
            return self._reconnect(message.stream)
        elif isinstance(message, Close):
            return self._close(message.stream, forget=False)
        elif isinstance(message, RemoveStream):
            return self._close(message.stream, forget=True)
        elif isinstance(message, Sweep):
            self._sweep()
        elif isinstance(message, Snapshot):
            return self._snapshot()
        elif isinstance(message, StopStreams):
            return self._stop_all()
        return None

    # -- lifecycle ---------------------------------------------------------------------
    def _add(self, spec: StreamSpec, last_event_id: str | None) -> None:
        if spec.name in self._entries:
            raise ValueError(f"stream {spec.name!r} already exists")
        entry = self._entries[spec.name] = Entry(spec, last_event_id, self._rng)
        if spec.enabled and not self._stopping:
            self._set_state(entry, StreamState.CONNECTING)
            self._spawn(entry)

    def _spawn(self, entry: Entry) -> None:
        entry.gen += 1
        entry.timer = None
        old = entry.control
        entry.control = StreamControl()
        entry.control.bytes = old.bytes
        entry.control.paused_total = old.paused_total
        if self._observer is not None:
            self._observer.attempt_started(entry.spec, entry.gen, old.bytes)
        entry.ref = StreamActor.start(
            entry.spec,
            entry.gen,
            entry.last_event_id,
            entry.control,
            self.actor_ref,
            self._hub,
            self._hub.book(entry.spec.name, entry.spec.dedup_window),
            self._connect,
            self._clock,
        )

    def _connected(self, msg: Connected) -> None:
        entry = self._entries.get(msg.stream)
        if entry is None or msg.gen != entry.gen:
            return
        if self._observer is not None:
            self._observer.attempt_connected(msg.stream, msg.gen)
        entry.connected_since = time.time()
        entry.policy.on_connected()
        log.info(
            "stream %s connected to %s",
            entry.spec.name,
            entry.url,
            extra={"stream": entry.spec.name, "url": entry.url, "gen": msg.gen},
        )
        self._set_state(entry, StreamState.CONNECTED)

    def _exited(self, msg: Exited) -> None:
        entry = self._entries.get(msg.stream)
        if entry is None or msg.gen != entry.gen:
            return  # a replaced or forgotten generation
        entry.ref = None
        entry.connected_since = None
        entry.last_event_id = msg.last_event_id
        if msg.retry_ms is not None:
            entry.retry_ms = msg.retry_ms
        if msg.stopping or self._stopping or entry.state is StreamState.CLOSED:
            self._observe_end(entry, msg, None)
            if entry.state is StreamState.CONNECTING and not self._stopping:
                self._spawn(entry)  # reconnect came while the closed connection wound down
                return
            self._set_state(entry, StreamState.CLOSED)
            return
        outcome = Outcome(
            error=msg.error,
            connected=msg.connected,
            uptime=msg.uptime,
            events=msg.events,
            crashed=msg.crashed,
            requested=msg.requested,
        )
        decision = self._decide(entry, outcome)
        self._observe_end(entry, msg, decision)
        self._apply(entry, decision)

    def _observe_end(self, entry: Entry, msg: Exited, decision: Decision | None) -> None:
        if self._observer is not None:
            self._observer.attempt_ended(
                msg.stream,
                msg.gen,
                error=msg.error,
                events=msg.events,
                wire_bytes=entry.control.bytes,
                decision=decision,
            )

    def _decide(self, entry: Entry, outcome: Outcome) -> Decision:
        handler = entry.spec.handler
        override: bool | None = None
        if handler is not None and not outcome.requested:
            try:
                override = handler.should_retry(outcome.error)
            except Exception:
                log.exception("should_retry hook of stream %s failed", entry.spec.name)
        return decide(entry.policy, outcome, self._clock(), entry.retry_ms, override)

    def _apply(self, entry: Entry, decision: Decision) -> None:
        name = entry.spec.name
        extra = {"stream": name, "url": entry.url, "reason": decision.reason}
        if decision.failure_class is not None:
            entry.failures[decision.failure_class] = (
                entry.failures.get(decision.failure_class, 0) + 1
            )
            entry.last_error = decision.reason
            entry.last_failure = decision.failure_class
            self._last_errors[name] = decision.reason
        if decision.kind is Kind.DONE:
            log.info(
                "stream %s ended by the server: %s",
                name,
                decision.reason,
                extra={**extra, "final": True},
            )
            self._set_state(entry, StreamState.CLOSED)
            return
        if decision.kind is Kind.FAIL:
            log.error("stream %s failed: %s", name, decision.reason, extra={**extra, "final": True})
            self._set_state(entry, StreamState.FAILED)
            return
        entry.restarts += 1
        if entry.policy.breaker is BreakerState.OPEN:
            log.warning(
                "stream %s: circuit breaker open after %d failures (last: %s); "
                "next attempt in %.1fs",
                name,
                entry.policy.consecutive_failures,
                decision.reason,
                decision.delay,
                extra={**extra, "delay": round(decision.delay, 3)},
            )
        else:
            log_restart(name, entry.url, decision)
        self._set_state(entry, StreamState.RECONNECTING)
        if decision.delay <= 0:
            entry.policy.probe_due()
            self._spawn(entry)
            return
        entry.timer = tell_later(
            self._schedule, decision.delay, self.actor_ref, RestartDue(name, entry.gen)
        )

    def _restart_due(self, msg: RestartDue) -> None:
        entry = self._entries.get(msg.stream)
        if (
            entry is None
            or msg.gen != entry.gen
            or entry.ref is not None
            or entry.state is not StreamState.RECONNECTING
            or self._stopping
        ):
            return
        entry.policy.probe_due()
        self._spawn(entry)

    # -- commands ----------------------------------------------------------------------
    def _reconnect(self, name: str) -> bool:
        entry = self._entries.get(name)
        if entry is None or self._stopping:
            return False
        if entry.ref is not None and entry.state is not StreamState.CLOSED:
            entry.control.interrupt("reconnect")
            return True
        if entry.timer is not None:
            entry.timer.cancel()
        # From backoff, failed or closed: a fresh start with a fresh policy.
        entry.policy = RestartPolicy(
            entry.spec.backoff,
            entry.spec.max_restarts,
            entry.spec.breaker,
            entry.spec.max_attempts,
            self._rng,
        )
        self._set_state(entry, StreamState.CONNECTING)
        if entry.ref is None:
            self._spawn(entry)
        # else: closed but still winding down; its Exited (with its last id) spawns the next.
        return True

    def _close(self, name: str, *, forget: bool) -> bool:
        entry = self._entries.get(name)
        if entry is None:
            return False
        if entry.timer is not None:
            entry.timer.cancel()
            entry.timer = None
        entry.control.interrupt("stop")
        if entry.ref is not None:
            _stop_quietly(entry.ref)
        self._set_state(entry, StreamState.CLOSED)
        if forget:
            del self._entries[name]
        return True

    def _stop_all(self) -> list[pykka.ActorRef[Any]]:
        """Interrupt every stream and ask each to stop; return the refs to wait for."""
        self._stopping = True
        refs = []
        for entry in self._entries.values():
            if entry.timer is not None:
                entry.timer.cancel()
            entry.control.interrupt("stop")
            if entry.ref is not None:
                refs.append(entry.ref)
                _stop_quietly(entry.ref)
            if entry.state is not StreamState.FAILED:
                self._set_state(entry, StreamState.CLOSED)
        return refs

    # -- liveness and status -----------------------------------------------------------
    def _schedule_sweep(self) -> None:
        tell_later(self._schedule, SWEEP_INTERVAL, self.actor_ref, Sweep())

    def _sweep(self) -> None:
        if self._stopping:
            return
        for entry in list(self._entries.values()):
            ref = entry.ref
            if ref is not None and not ref.is_alive():
                # Died without an Exited (BaseException, or killed): treat as a crash. Told,
                # not handled here: an Exited the actor sent just before dying is already in
                # the inbox and must win (this one then carries a stale generation).
                self.actor_ref.tell(
                    Exited(
                        entry.spec.name,
                        entry.gen,
                        RuntimeError("stream actor died without reporting"),
                        False,
                        0.0,
                        0,
                        entry.last_event_id,
                        None,
                        crashed=True,
                    )
                )
        self._schedule_sweep()

    def _set_state(self, entry: Entry, state: StreamState) -> None:
        if entry.state is state:
            return  # not a change: on_state hears each change once
        entry.state = state
        if self._on_state is not None:
            try:
                self._on_state(entry.spec.name, state)
            except Exception:
                log.exception("state callback failed")

    def _snapshot(self) -> dict[str, dict[str, Any]]:
        return {name: e.snapshot() for name, e in self._entries.items()}


def _stop_quietly(ref: pykka.ActorRef[Any]) -> None:
    try:
        ref.stop(block=False)
    except pykka.ActorDeadError:
        pass
