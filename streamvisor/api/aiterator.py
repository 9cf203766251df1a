"""``aconnect()``: the iterator of ``streamvisor.api.iterator`` for asyncio code.

The reader stays a thread (the supervised stream); events cross into the event loop once per
read with ``loop.call_soon_threadsafe``, and the loop never waits on the reader: taking a
batch only releases room under a lock the reader holds for microseconds. When the loop falls
behind by ``buffer`` events the reader pauses (flow control). Starting and stopping the
stream run in the loop's default executor, so ``async with`` never blocks the loop either.
Works under ``asyncio.run`` and with uvloop (nothing here is specific to one loop).

    async with streamvisor.aconnect(url) as stream:
        async for event in stream:
            ...
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Iterator, Sequence
from types import AsyncGeneratorType, TracebackType
from typing import TYPE_CHECKING, Any, cast

from streamvisor.actors.outlets import Outlet
from streamvisor.api.iterator import DEFAULT_BUFFER, StreamHandle, default_name
from streamvisor.buffers.memory import WAIT_SLICE
from streamvisor.errors import StreamFailedError
from streamvisor.policy.flow import PauseControl, Position, WhenFull
from streamvisor.spec import StreamSpec
from streamvisor.sse import Event
from streamvisor.states import StreamState

if TYPE_CHECKING:
    from streamvisor.api.facade import Streamvisor

__all__ = ["AsyncEventStream", "aconnect"]


class LoopOutlet(Outlet):
    """An outlet that hands whole reads to an asyncio loop; the reader blocks when full."""

    kind = "async iterator"

    def __init__(
        self,
        name: str,
        streams: frozenset[str] | None,
        events: frozenset[str] | None,
        capacity: int,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        super().__init__(name, streams, events, WhenFull.BLOCK)
        self.capacity = max(1, capacity)
        self._loop = loop
        self._cond = threading.Condition(threading.Lock())
        self._held = 0  # events sent to the loop and not yet taken (reader's view)
        self._closed = False
        # Loop side (touched only in the loop's thread):
        self._batches: deque[Sequence[Event]] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._ended = False
        self._error: BaseException | None = None

    # -- the reader's side -------------------------------------------------------------
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
            if self._held and self._held + n > self.capacity and not self._closed:
                control.pause(self.name)
                try:
                    while self._held and self._held + n > self.capacity and not self._closed:
                        if control.abandoned():
                            return False
                        self._cond.wait(WAIT_SLICE)
                finally:
                    control.resume()
            if self._closed:
                return True
            self._held += n
        if not self._call(self._push, events):
            return True
        self.delivered += n
        return True

    def depth(self) -> int:
        return self._held

    def _call(self, fn: Any, *args: Any) -> bool:
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed: nobody reads any more
            with self._cond:
                self._closed = True
                self._cond.notify_all()
            return False
        return True

    def finish(self, error: BaseException | None = None, *, drop: bool = False) -> None:
        """End the iteration (from any thread): after what is queued, or at once."""
        if drop:
            with self._cond:
                self._closed = True
                self._cond.notify_all()
        self._call(self._finish, error, drop)

    # -- the loop's side ---------------------------------------------------------------
    def _push(self, events: Sequence[Event]) -> None:
        if self._ended and not self._batches and self._error is None and self._closed:
            return
        self._batches.append(events)
        self._wake()

    def _finish(self, error: BaseException | None, drop: bool) -> None:
        if self._ended:
            return
        self._ended = True
        self._error = error
        if drop:
            self._batches.clear()
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Sequence[Event] | None:
        """The next read's events; None at the end.

        Raises:
            StreamFailedError: the stream failed for good (after what was queued).
        """
        while not self._batches:
            if self._ended:
                if self._error is not None:
                    raise self._error
                return None
            self._waiter = self._loop.create_future()
            await self._waiter
        batch = self._batches.popleft()
        with self._cond:  # held for microseconds by the reader: never a real wait
            self._held -= len(batch)
            self._cond.notify_all()
        return batch


class AsyncEventStream:
    """The events of one supervised stream for ``async for``; an async context manager.

    Attributes:
        handle: thread-safe control (``close()``, ``reconnect()``, ``state``,
            ``last_event_id``, ``status()``); ``status()`` asks the supervisor, so call it
            from a thread (``asyncio.to_thread``) in latency-sensitive code.
    """

    def __init__(self, spec: StreamSpec, buffer: int) -> None:
        self._spec = spec
        self._buffer = buffer
        self._sv: Streamvisor | None = None
        self._outlet: LoopOutlet | None = None
        self.handle: StreamHandle | None = None
        self._current: Iterator[Event] = iter(())  # the read being handed out
        self._events: AsyncGeneratorType[Event, None] | None = None

    async def __aenter__(self) -> AsyncEventStream:
        from streamvisor.api.facade import Streamvisor

        loop = asyncio.get_running_loop()
        spec = self._spec
        sv = self._sv = Streamvisor([spec])
        outlet = self._outlet = LoopOutlet(
            f"aiterator-{spec.name}", frozenset([spec.name]), None, self._buffer, loop
        )
        handle = self.handle = StreamHandle(sv, spec.name, lambda: outlet.finish(drop=True))

        def on_state(stream: str, state: StreamState) -> None:
            handle._set_state(state)
            if state is StreamState.FAILED:
                outlet.finish(StreamFailedError(stream, sv.last_error(stream) or "failed"))
            elif state is StreamState.CLOSED:
                outlet.finish()

        sv.add_state_listener(on_state)
        sv._hub.add(outlet)
        # A cancel (a task's cancel(), asyncio.wait_for's timeout) while starting skips
        # __aexit__, but the start goes on in its thread: whoever comes second stops it,
        # or the stream would run on with nobody to stop it.
        lock = threading.Lock()
        phase = ["starting"]

        def start() -> None:
            try:
                sv.start()
            finally:
                with lock:
                    abandoned = phase[0] == "abandoned"
                    phase[0] = "started"
            if abandoned:
                sv.stop(5.0)

        try:
            await loop.run_in_executor(None, start)
        except BaseException:
            with lock:
                started = phase[0] == "started"
                phase[0] = "abandoned"
            outlet.finish(drop=True)
            self._sv = None
            if started:
                loop.run_in_executor(None, sv.stop, 5.0)  # not awaited: we are cancelled
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the stream (in an executor thread) and end the iteration."""
        if self._outlet is not None:
            self._outlet.finish(drop=True)
        sv, self._sv = self._sv, None
        if sv is not None:
            await asyncio.get_running_loop().run_in_executor(None, sv.stop, 5.0)

    async def _iterate(self) -> AsyncGenerator[Event, None]:
        # An async generator: ``async for`` resumes it without a coroutine per event (the
        # hand-off: 15-20 ns an event less, 0.178 -> 0.160 µs: bench/iterators.py). The
        # position lives in ``self._current``, so a generator ended by an exception (a
        # cancelled wait, the failure) loses nothing: the next one goes on from there.
        if self._outlet is None:
            raise RuntimeError("use 'async with aconnect(...)' before iterating")
        get = self._outlet.get
        while True:
            for event in self._current:
                yield event
            batch = await get()
            if batch is None:
                return
            self._current = iter(batch)

    def __aiter__(self) -> AsyncIterator[Event]:
        events = self._events
        if events is None or events.ag_frame is None:  # ended, raised or was cancelled
            events = self._events = cast("AsyncGeneratorType[Event, None]", self._iterate())
        return events

    def __anext__(self) -> Awaitable[Event]:
        return self.__aiter__().__anext__()


def aconnect(url: str, *, buffer: int = DEFAULT_BUFFER, **options: Any) -> AsyncEventStream:
    """A supervised stream for asyncio: ``async with aconnect(url) as stream``.

    Args:
        url: the SSE endpoint.
        buffer: most events queued for the loop before the reader pauses.
        **options: ``StreamSpec`` keyword arguments (``name`` defaults to the URL's path).

    Raises:
        ValueError: an invalid option (as ``StreamSpec`` raises it).
    """
    if buffer < 1:
        raise ValueError(f"buffer must be >= 1, got {buffer}")
    spec = StreamSpec(name=options.pop("name", None) or default_name(url), url=url, **options)
    return AsyncEventStream(spec, buffer)
