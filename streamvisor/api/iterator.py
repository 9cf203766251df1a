"""Plain iterators over supervised streams: ``connect()`` and ``Streamvisor.events()``.

The shape is the SSE-transport one of a **Handle** (thread-safe control: ``close()``,
``reconnect()``, ``state``, ``last_event_id``, ``status()``) and a **Stream** (the events), so
that moving from sseclient-py or launchdarkly-eventsource is a two-line change::

    with streamvisor.connect("http://127.0.0.1:8000/events/ticker") as stream:
        for event in stream:
            print(event.id, event.data)

Lossless: the stream's reader hands whole reads to a bounded queue (``buffer`` events); when
the loop falls behind and the queue is full, the reader pauses (flow control, as everywhere
in streamvisor) and TCP slows the upstream. Reconnects are invisible to the loop.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from types import GeneratorType, TracebackType
from typing import TYPE_CHECKING, Any, cast

from streamvisor.actors.outlets import Outlet
from streamvisor.buffers.memory import WAIT_SLICE
from streamvisor.errors import StreamFailedError
from streamvisor.policy.flow import PauseControl, Position, WhenFull
from streamvisor.spec import StreamSpec
from streamvisor.sse import Event
from streamvisor.states import StreamState

if TYPE_CHECKING:
    from streamvisor.api.facade import Streamvisor

__all__ = ["EventStream", "StreamHandle", "connect", "default_name"]

DEFAULT_BUFFER = 10_000
_END = object()


def default_name(url: str) -> str:
    """A stream name from a URL: its path (``/events/ticker``), or ``stream``."""
    try:
        path = urllib.parse.urlsplit(url).path
    except ValueError:
        path = ""
    return path or "stream"


class QueueOutlet(Outlet):
    """An outlet that queues whole reads for a consumer thread; blocks when full.

    ``get()`` hands the consumer one read's events at a time; ``finish()`` ends the queue
    (after what it holds, or at once with ``drop``).
    """

    kind = "iterator"

    def __init__(
        self,
        name: str,
        streams: frozenset[str] | None,
        events: frozenset[str] | None,
        capacity: int = DEFAULT_BUFFER,
    ) -> None:
        super().__init__(name, streams, events, WhenFull.BLOCK)
        self.capacity = max(1, capacity)
        self._cond = threading.Condition(threading.Lock())
        self._batches: deque[Sequence[Event]] = deque()
        self._held = 0
        self._ended = False
        self._error: BaseException | None = None

    def offer(
        self,
        stream: str,
        events: Sequence[Event],
        last: Position,
        before: Position,
        control: PauseControl,
    ) -> bool:
        n = len(events)
        with self._cond:
            if self._held and self._held + n > self.capacity and not self._ended:
                control.pause(self.name)
                try:
                    while self._held and self._held + n > self.capacity and not self._ended:
                        if control.abandoned():
                            return False
                        self._cond.wait(WAIT_SLICE)
                finally:
                    control.resume()
            if self._ended:
                return True  # nobody reads any more: the batch goes nowhere
            self._batches.append(events)
            self._held += n
            self.delivered += n
            self._cond.notify_all()
        return True

    def depth(self) -> int:
        return self._held

    def get(self, timeout: float | None = None) -> Sequence[Event] | None:
        """The next read's events; None at the end.

        Raises:
            StreamFailedError: the stream failed for good (after what was queued).
            TimeoutError: nothing arrived within ``timeout`` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._batches:
                if self._ended:
                    if self._error is not None:
                        raise self._error
                    return None
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError("no event within the timeout")
                self._cond.wait(left if left is not None else 1.0)
            batch = self._batches.popleft()
            self._held -= len(batch)
            self._cond.notify_all()
            return batch

    def finish(self, error: BaseException | None = None, *, drop: bool = False) -> None:
        """End the queue: the consumer gets what is queued (unless ``drop``), then the end
        (or ``error``). Idempotent: the first ending wins."""
        with self._cond:
            if self._ended:
                return
            self._ended = True
            self._error = error
            if drop:
                self._batches.clear()
                self._held = 0
            self._cond.notify_all()


class StreamHandle:
    """Thread-safe control of one iterated stream; safe from any thread or asyncio task.

    Attributes:
        name: the stream's name.
    """

    def __init__(self, sv: Streamvisor, name: str, on_close: Callable[[], None]) -> None:
        self._sv = sv
        self.name = name
        self._on_close = on_close
        self._state = StreamState.DISCONNECTED

    @property
    def state(self) -> StreamState:
        """The stream's state (``StreamState``), updated on every change."""
        return self._state

    @property
    def last_event_id(self) -> str | None:
        """The Last-Event-ID of the last event handed to the loop's queue."""
        return self._sv.last_event_id(self.name)

    def close(self) -> None:
        """End the stream for good; the iteration ends (what was queued is dropped)."""
        self._on_close()
        self._sv.close(self.name)

    def reconnect(self) -> bool:
        """Drop the connection and reconnect now, resuming from the last id."""
        return self._sv.reconnect(self.name)

    def status(self) -> dict[str, Any]:
        """The stream's entry of ``Streamvisor.status()`` (a dict, redacted)."""
        stream = self._sv.status().streams.get(self.name)
        return stream.to_dict() if stream is not None else {}

    def _set_state(self, state: StreamState) -> None:
        self._state = state


class EventStream:
    """The events of one supervised stream (or of a running ``Streamvisor``), in order.

    Iterate it; use it as a context manager to stop what it started on exit. Iteration ends
    when the stream is closed (``handle.close()``, HTTP 204); a permanent failure raises
    ``StreamFailedError`` (a ``StreamvisorError``) carrying the redacted reason.
    """

    def __init__(
        self,
        sv: Streamvisor,
        outlet: QueueOutlet,
        handle: StreamHandle | None,
        *,
        owned: bool,
    ) -> None:
        self._sv = sv
        self._outlet = outlet
        self.handle = handle
        self._owned = owned
        self._current: Iterator[Event] = iter(())  # the read being handed out
        self._events = self._generator()

    def _generator(self) -> GeneratorType[Event, None, None]:
        return cast("GeneratorType[Event, None, None]", self._iterate())

    def _iterate(self) -> Generator[Event, None, None]:
        # A generator: ``for`` resumes it without a Python-level ``__next__`` call per event
        # (24 ns an event less, 0.080 -> 0.056 µs: bench/iterators.py --only handoff).
        # The position lives in ``self._current``, so a generator ended by an exception (the
        # failure, a KeyboardInterrupt) loses nothing: the next one goes on from there.
        get = self._outlet.get
        while True:
            yield from self._current
            batch = get()
            if batch is None:
                return
            self._current = iter(batch)

    def __iter__(self) -> Iterator[Event]:
        events = self._events
        if events.gi_frame is None:  # ended (or raised): a failure raises again, as get() does
            events = self._events = self._generator()
        return events

    def __next__(self) -> Event:
        return next(self.__iter__())

    def close(self) -> None:
        """Stop iterating: unsubscribe, and stop the stream if ``connect()`` started it."""
        self._outlet.finish(drop=True)
        self._sv.unsubscribe(self._outlet.name)
        if self._owned:
            self._sv.stop(timeout=5.0)

    def __enter__(self) -> EventStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def connect(url: str, *, buffer: int = DEFAULT_BUFFER, **options: Any) -> EventStream:
    """Open a supervised stream and iterate its events.

    Args:
        url: the SSE endpoint.
        buffer: most events queued for the loop before the reader pauses.
        **options: ``StreamSpec`` keyword arguments (``name`` defaults to the URL's path;
            ``headers``, ``method``, ``body``, ``auth``, timeouts, ``backoff``, ...).

    Returns:
        An ``EventStream`` (already started); use it in a ``with`` block.

    Raises:
        ValueError: an invalid option (as ``StreamSpec`` raises it).
    """
    from streamvisor.api.facade import Streamvisor

    if buffer < 1:
        raise ValueError(f"buffer must be >= 1, got {buffer}")
    spec = StreamSpec(name=options.pop("name", None) or default_name(url), url=url, **options)
    sv = Streamvisor([spec])
    return sv.events(streams=[spec.name], buffer=buffer, _owned=True)


def attach(
    sv: Streamvisor,
    streams: Sequence[str] | None,
    events: Sequence[str] | None,
    buffer: int,
    name: str,
    *,
    owned: bool,
) -> EventStream:
    """An ``EventStream`` over ``sv`` (``Streamvisor.events`` and ``connect`` call this).

    Raises:
        ValueError: ``buffer`` below 1.
    """
    if buffer < 1:
        raise ValueError(f"buffer must be >= 1, got {buffer}")
    only = frozenset(streams) if streams is not None else None
    outlet = QueueOutlet(name, only, frozenset(events) if events is not None else None, buffer)
    handle: StreamHandle | None = None
    watched = set(only) if only is not None else None
    ended: set[str] = set()
    if only is not None and len(only) == 1:
        handle = StreamHandle(sv, next(iter(only)), lambda: outlet.finish(drop=True))

    def on_state(stream: str, state: StreamState) -> None:
        if watched is not None and stream not in watched:
            return
        if handle is not None and stream == handle.name:
            handle._set_state(state)
        if watched is None or state not in (StreamState.CLOSED, StreamState.FAILED):
            return
        ended.add(stream)
        if state is StreamState.FAILED:
            outlet.finish(StreamFailedError(stream, sv.last_error(stream) or "failed"))
        elif ended >= watched:
            outlet.finish()

    sv.add_state_listener(on_state)
    sv._hub.add(outlet)
    if sv._stopped:  # checked after add: stop() ends the outlets it finds in the hub
        outlet.finish()
    stream = EventStream(sv, outlet, handle, owned=owned)
    if owned:
        sv.start()
    return stream
