"""``connect()`` / ``aconnect()`` / ``Streamvisor.events()`` against real loopback servers.

Order, dedup across a reconnect, close() from another thread, 204 ends, 404 raises, a slow
loop pauses the upstream and loses nothing, and no thread is left after the ``with``.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import streamvisor
from streamvisor.policy.backoff import BackoffPolicy
from tests.support.burst_server import BurstServer
from tests.support.events import send_events
from tests.support.sse_server import Close, Headers, Hold, SSEServer, Status
from tests.support.wait import wait_until

DEADLINE = 30.0
FAST = BackoffPolicy(initial=0.01, max=0.05, jitter=0.0)


def _stream_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t is not threading.main_thread()]


def test_events_come_in_order_and_replays_after_a_reconnect_come_once(
    sse_server: SSEServer,
) -> None:
    sse_server.add_script(Headers(), send_events(1, 2, 3), Close())
    sse_server.add_script(Headers(), send_events(2, 3, 4, 5), Hold())  # replays 2 and 3
    got: list[str | None] = []
    with streamvisor.connect(sse_server.url("/events"), backoff=FAST) as stream:
        for event in stream:
            got.append(event.id)
            if len(got) == 5:
                break
        assert stream.handle is not None
        assert stream.handle.name == "/events"
        assert stream.handle.last_event_id == "5"
        handle = stream.handle
        assert wait_until(lambda: handle.state is streamvisor.StreamState.CONNECTED, DEADLINE)
    assert got == ["1", "2", "3", "4", "5"]
    assert sse_server.requests[1].headers.get("Last-Event-ID") == "3"


def test_close_from_another_thread_ends_a_blocked_loop_within_a_second(
    sse_server: SSEServer,
) -> None:
    sse_server.add_script(Headers(), send_events(1), Hold())
    ended_at: list[float] = []
    with streamvisor.connect(sse_server.url("/events")) as stream:
        assert stream.handle is not None
        handle = stream.handle
        first = next(stream)
        closed_at = time.monotonic()
        threading.Timer(0.1, handle.close).start()
        rest = list(stream)  # blocks on a silent server until close()
        ended_at.append(time.monotonic())
    assert first.id == "1"
    assert rest == []
    assert ended_at[0] - closed_at < 1.1
    assert handle.state is streamvisor.StreamState.CLOSED


def test_http_204_ends_the_iteration_after_every_event(sse_server: SSEServer) -> None:
    sse_server.add_script(Headers(), send_events(1, 2), Close())
    sse_server.add_script(Status(204))
    with streamvisor.connect(sse_server.url("/events"), backoff=FAST) as stream:
        ids = [event.id for event in stream]
    assert ids == ["1", "2"]


def test_a_permanent_failure_raises_a_typed_error_with_the_redacted_reason(
    sse_server: SSEServer,
) -> None:
    sse_server.add_script(Status(404))
    url = sse_server.url("/events").replace("http://", "http://user:hunter2@")
    with streamvisor.connect(url) as stream, pytest.raises(streamvisor.StreamFailedError) as err:
        list(stream)
    assert "404" in str(err.value)
    assert "hunter2" not in str(err.value)
    assert isinstance(err.value, streamvisor.StreamvisorError)


def test_a_loop_that_sleeps_pauses_the_upstream_and_loses_nothing() -> None:
    total = 60_000
    with BurstServer(total) as server:
        with streamvisor.connect(server.url, buffer=500) as stream:
            first = next(stream)
            # The loop does not read: the reader pauses and TCP stops the server.
            assert stream.handle is not None
            assert wait_until(lambda: stream.handle.status().get("paused_on"), DEADLINE)
            sent = server.sent
            assert not wait_until(lambda: server.sent > sent + 10_000, 0.5)
            assert server.sent < total
            ids = [int(first.id or 0)]
            for event in stream:
                ids.append(int(event.id or 0))
                if len(ids) == total:
                    break
        assert server.sent == total
    assert ids == list(range(1, total + 1))
    assert wait_until(lambda: _stream_threads() == [], 5.0), _stream_threads()


def test_events_of_a_running_streamvisor_can_be_iterated_as_one_more_subscriber(
    sse_server: SSEServer,
) -> None:
    sse_server.add_script(Headers(), send_events(1, 2, 3), Hold())
    spec = streamvisor.StreamSpec(name="s", url=sse_server.url("/events"))
    with streamvisor.Streamvisor([spec]) as sv:
        stream = sv.events(streams=["s"])
        ids = []
        for event in stream:
            ids.append(event.id)
            if len(ids) == 3:
                break
        stream.close()
        assert sv.status()["streams"]["s"]["state"] == "connected"  # still running
    assert ids == ["1", "2", "3"]


def test_aconnect_iterates_under_asyncio_run_and_pauses_the_upstream_when_the_loop_lags() -> None:
    total = 40_000

    async def main(server: BurstServer) -> list[int]:
        ids: list[int] = []
        async with streamvisor.aconnect(server.url, buffer=500) as stream:
            async for event in stream:
                ids.append(int(event.id or 0))
                if len(ids) == 1:
                    # The loop stays responsive while the reader waits for room.
                    for _ in range(20):
                        await asyncio.sleep(0.01)
                    assert stream.handle is not None
                    status = await asyncio.to_thread(stream.handle.status)
                    assert status.get("paused_on")
                    assert server.sent < total
                if len(ids) == total:
                    stream.handle.close()
        return ids

    with BurstServer(total) as server:
        ids = asyncio.run(asyncio.wait_for(main(server), DEADLINE))
    assert ids == list(range(1, total + 1))
    assert wait_until(lambda: _stream_threads() == [], 5.0), _stream_threads()


def test_aconnect_raises_the_typed_error_on_a_permanent_failure(sse_server: SSEServer) -> None:
    sse_server.add_script(Status(403))

    async def main() -> None:
        async with streamvisor.aconnect(sse_server.url("/events")) as stream:
            async for _ in stream:
                pass

    with pytest.raises(streamvisor.StreamFailedError, match="403"):
        asyncio.run(asyncio.wait_for(main(), DEADLINE))


@pytest.mark.parametrize(
    "body",
    [
        "for e in streamvisor.connect(URL):\n    break\n",
        "streamvisor.Streamvisor([streamvisor.StreamSpec(name='s', url=URL)]).start()\n",
    ],
    ids=["for-break-without-with", "start-without-stop"],
)
def test_a_program_that_forgets_to_stop_still_exits(body: str) -> None:
    import subprocess
    import sys
    from pathlib import Path

    with BurstServer(100_000) as server:  # a stream that stays open and busy
        code = f"import streamvisor\nURL = {server.url!r}\n{body}print('done', flush=True)\n"
        result = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=Path(__file__).resolve().parents[2],
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done"
    assert "Traceback" not in result.stderr


def test_iterating_a_stream_the_streamvisor_does_not_run_is_refused_not_a_hang(
    sse_server: SSEServer, caplog: pytest.LogCaptureFixture
) -> None:
    spec = streamvisor.StreamSpec(name="a", url=sse_server.url("/events"))
    sv = streamvisor.Streamvisor([spec])
    with pytest.raises(ValueError, match="unknown stream\\(s\\) 'typo' \\(known: a\\)"):
        sv.events(streams=["typo"])
    sv.add_listener(lambda stream, events: None, streams=["typo"])
    assert "takes unknown stream(s) 'typo' (known: a)" in caplog.text


@pytest.mark.parametrize("buffer", [0, -5])
def test_a_buffer_below_one_is_refused(buffer: int) -> None:
    with pytest.raises(ValueError, match="buffer must be >= 1"):
        streamvisor.connect("http://127.0.0.1:9/events", buffer=buffer)
    with pytest.raises(ValueError, match="buffer must be >= 1"):
        streamvisor.aconnect("http://127.0.0.1:9/events", buffer=buffer)


@pytest.mark.parametrize("started", [True, False])
def test_start_after_stop_is_refused_not_a_silent_no_op_or_an_unstoppable_stream(
    sse_server: SSEServer, started: bool
) -> None:
    # Before: start() after stop() did nothing (events() then ended at once), and stop()
    # before start() let start() connect a stream that no later stop() would stop.
    sse_server.add_script(Headers(), send_events(1), Hold())
    spec = streamvisor.StreamSpec(name="s", url=sse_server.url("/events"), backoff=FAST)
    sv = streamvisor.Streamvisor([spec])
    if started:
        sv.start()
        assert sse_server.wait_for_requests(1, DEADLINE)
    sv.stop(timeout=5.0)
    with pytest.raises(RuntimeError, match="cannot be started again"):
        sv.start()
    time.sleep(0.1)
    assert len(sse_server.requests) == (1 if started else 0)
    assert not [n for n in _stream_threads() if n.startswith(("StreamActor", "Supervisor"))]


@pytest.mark.parametrize("delay", [0.0, 0.001, 0.05])
def test_aconnect_cancelled_while_it_starts_leaves_no_stream_running(
    sse_server: SSEServer, delay: float
) -> None:
    # Before: a cancel during ``async with aconnect(...)``'s start (a task's cancel(), an
    # asyncio.wait_for timeout) skipped __aexit__ while the start went on in its executor
    # thread: the stream ran on, connected, with nobody to stop it.
    for _ in range(3):
        sse_server.add_script(Headers(), send_events(1), Hold())

    async def consume() -> None:
        async with streamvisor.aconnect(sse_server.url("/events"), backoff=FAST) as stream:
            async for _ in stream:
                pass

    async def main() -> None:
        task = asyncio.create_task(consume())
        await asyncio.sleep(delay)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(main(), DEADLINE))

    def running() -> list[str]:
        return [n for n in _stream_threads() if n.startswith(("StreamActor", "Supervisor"))]

    assert wait_until(lambda: running() == [], 5.0), running()


def test_stop_ends_an_iteration_over_the_streamvisor_and_a_stopped_one_iterates_nothing(
    sse_server: SSEServer,
) -> None:
    # Before: ``for event in sv.events()`` went on waiting for ever once another thread
    # stopped the Streamvisor, and ``sv.events()`` on a stopped one blocked at once.
    sse_server.add_script(Headers(), send_events(1, 2), Hold())
    spec = streamvisor.StreamSpec(name="a", url=sse_server.url("/events"), backoff=FAST)
    sv = streamvisor.Streamvisor([spec])
    events = sv.events()  # before start(): it sees every event
    sv.start()
    got: list[str | None] = []
    done = threading.Event()

    def loop() -> None:
        for event in events:
            got.append(event.id)
            if len(got) == 2:
                threading.Thread(target=sv.stop, args=(5.0,)).start()
        done.set()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    assert done.wait(DEADLINE), "the loop did not end at stop()"
    assert got == ["1", "2"]
    assert list(sv.events()) == []
