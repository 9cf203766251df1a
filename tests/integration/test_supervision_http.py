"""Supervision end to end: the real ``Connection`` against the scripted server on 127.0.0.1.

Timing assertions use the server's request timestamps (``RecordedRequest.time``); every
wait has a deadline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import pykka
import pytest

from streamvisor.actors.messages import SubscriberOverflow
from streamvisor.api.facade import Streamvisor
from streamvisor.policy.backoff import BackoffPolicy, RestartLimit
from streamvisor.spec import BreakerPolicy, StreamSpec
from streamvisor.sse import Event
from tests.support.actors import BlockerHandle, CollectorHandle
from tests.support.events import send_events, sse_block
from tests.support.sse_server import (
    Close,
    Headers,
    Hold,
    Pause,
    Reset,
    Send,
    SSEServer,
    Status,
    WaitFor,
    redirect,
)
from tests.support.wait import wait_until

pytestmark = pytest.mark.timeout(60)

DEADLINE = 5.0
FAST = BackoffPolicy(initial=0.01, max=0.05, multiplier=2.0, jitter=0.0, reset_after=60.0)
MANY = RestartLimit(count=10_000, within=60.0)

MakeSv = Callable[..., Streamvisor]


def spec(server: SSEServer, path: str = "/events", **kwargs: Any) -> StreamSpec:
    kwargs.setdefault("backoff", FAST)
    kwargs.setdefault("max_restarts", MANY)
    kwargs.setdefault("breaker", BreakerPolicy(failures=0))
    kwargs.setdefault("connect_timeout", 2.0)
    kwargs.setdefault("read_timeout", 5.0)
    return StreamSpec(name=kwargs.pop("name", "s"), url=server.url(path), **kwargs)


def stream_status(sv: Streamvisor, name: str = "s") -> dict[str, Any]:
    return dict(sv.status()["streams"][name])


def wait_state(sv: Streamvisor, state: str, name: str = "s", timeout: float = DEADLINE) -> bool:
    return wait_until(lambda: stream_status(sv, name)["state"] == state, timeout, step=0.01)


def header(server: SSEServer, n: int, name: str) -> str | None:
    value: str | None = server.requests[n].headers.get(name)
    return value


# -- Last-Event-ID ----------------------------------------------------------------------------


def test_a_reconnect_sends_the_last_event_id_of_the_dropped_connection(
    sse_server: SSEServer, make_sv: MakeSv, collector: CollectorHandle
) -> None:
    sse_server.add_script(Headers(), send_events(1, 2), Close())
    sse_server.add_script(Headers(), send_events(3), Hold())
    sv = make_sv([spec(sse_server)])
    sv.subscribe(collector.ref)
    sv.start()

    assert collector.wait_for(3, DEADLINE)
    assert header(sse_server, 0, "Last-Event-ID") is None
    assert header(sse_server, 1, "Last-Event-ID") == "2"
    assert collector.ids() == ["1", "2", "3"]
    assert stream_status(sv)["last_event_id"] == "3"


def test_after_an_id_reset_the_reconnect_carries_no_last_event_id(
    sse_server: SSEServer, make_sv: MakeSv, collector: CollectorHandle
) -> None:
    sse_server.add_script(Headers(), Send(sse_block(1) + b"id:\ndata: after reset\n\n"), Close())
    sse_server.add_script(Headers(), Hold())
    sv = make_sv([spec(sse_server)])
    sv.subscribe(collector.ref)
    sv.start()

    assert sse_server.wait_for_requests(2, DEADLINE)
    assert "Last-Event-ID" not in sse_server.requests[1].headers
    assert collector.wait_for(2, DEADLINE)
    assert [e.data for e in collector.events] == ["d1", "after reset"]


@pytest.mark.parametrize("drop", [Close(), Reset()], ids=["clean close", "tcp reset"])
def test_a_partial_event_cut_by_a_drop_is_discarded_and_the_next_connection_resumes(
    sse_server: SSEServer, make_sv: MakeSv, collector: CollectorHandle, drop: Close | Reset
) -> None:
    sse_server.add_script(Headers(), Send(sse_block(1) + b"id: 2\ndata: hal"), drop)
    sse_server.add_script(Headers(), send_events(2, 3), Hold())
    sv = make_sv([spec(sse_server)])
    sv.subscribe(collector.ref)
    sv.start()

    assert collector.wait_for(3, DEADLINE)
    assert header(sse_server, 1, "Last-Event-ID") == "1"
    assert [(e.id, e.data) for e in collector.events] == [("1", "d1"), ("2", "d2"), ("3", "d3")]
    assert not collector.wait_for(4, 0.1)


# -- server hints and statuses ----------------------------------------------------------------


def test_the_servers_retry_field_sets_the_reconnect_delay(
    sse_server: SSEServer, make_sv: MakeSv
) -> None:
    sse_server.add_script(Headers(), Send(b"retry: 50\n\n" + sse_block(1)), Close())
    sse_server.add_script(Headers(), Hold())
    sv = make_sv([spec(sse_server)])
    sv.start()

    assert sse_server.wait_for_requests(2, DEADLINE)
    gap = sse_server.requests[1].time - sse_server.requests[0].time
    assert 0.05 <= gap < 1.0, gap


def test_http_204_closes_the_stream_after_exactly_one_request(
    sse_server: SSEServer, make_sv: MakeSv
) -> None:
    sse_server.add_script(Status(204))
    sv = make_sv([spec(sse_server)])
    sv.start()

    assert wait_state(sv, "closed")
    assert not sse_server.wait_for_requests(2, 0.3)
    assert len(sse_server.requests) == 1


@pytest.mark.parametrize("status", [401, 404, 410])
def test_a_permanent_status_fails_the_stream_without_a_retry_storm(
    sse_server: SSEServer, make_sv: MakeSv, status: int
) -> None:
    sse_server.add_script(Status(status, body=b"go away"))
    sv = make_sv([spec(sse_server)])
    sv.start()

    assert wait_state(sv, "failed")
    assert not sse_server.wait_for_requests(2, 0.3)
    assert len(sse_server.requests) == 1
    info = stream_status(sv)
    assert str(status) in info["last_error"]
    assert info["failures"]["permanent"] == 1


@pytest.mark.parametrize("status", [503, 429])
def test_retry_after_is_honoured_before_the_next_attempt(
    sse_server: SSEServer, make_sv: MakeSv, collector: CollectorHandle, status: int
) -> None:
    sse_server.add_script(Status(status, {"Retry-After": "1"}))
    sse_server.add_script(Headers(), send_events(1), Hold())
    sv = make_sv([spec(sse_server)])
    sv.subscribe(collector.ref)
    sv.start()

    assert collector.wait_for(1, DEADLINE)
    gap = sse_server.requests[1].time - sse_server.requests[0].time
    assert gap >= 0.99, gap
    info = stream_status(sv)
    assert info["failures"]["rate_limited"] == 1
    assert info["state"] == "connected"


def test_a_wrong_content_type_fails_the_stream(sse_server: SSEServer, make_sv: MakeSv) -> None:
    sse_server.add_script(Headers(content_type="text/html"), Send(b"<html></html>"), Close())
    sv = make_sv([spec(sse_server)])
    sv.start()

    assert wait_state(sv, "failed")
    assert not sse_server.wait_for_requests(2, 0.3)
    assert "text/html" in stream_status(sv)["last_error"]


def test_a_307_redirect_is_followed_to_the_stream(
    sse_server: SSEServer, make_sv: MakeSv, collector: CollectorHandle
) -> None:
    sse_server.add_script(redirect(sse_server.url("/moved"), 307))
    sse_server.add_script(Headers(), send_events(1), Hold())
    sv = make_sv([spec(sse_server)])
    sv.subscribe(collector.ref)
    sv.start()

    assert collector.wait_for(1, DEADLINE)
    assert [r.path for r in sse_server.requests] == ["/events", "/moved"]
    assert wait_state(sv, "connected")


# -- what every attempt sends -----------------------------------------------------------------


def test_a_post_body_is_sent_again_on_every_reconnect(
    sse_server: SSEServer, make_sv: MakeSv
) -> None:
    sse_server.add_script(Headers(), send_events(1), Close())
    sse_server.add_script(Headers(), send_events(2), Close())
    sse_server.add_script(Headers(), Hold())
    sv = make_sv([spec(sse_server, method="POST", body={"topic": "ticks"})])
    sv.start()

    assert sse_server.wait_for_requests(3, DEADLINE)
    requests = sse_server.requests[:3]
    assert [r.method for r in requests] == ["POST"] * 3
    assert [r.body for r in requests] == [b'{"topic":"ticks"}'] * 3
    assert [r.headers.get("Content-Type") for r in requests] == ["application/json"] * 3
    assert [r.headers.get("Last-Event-ID") for r in requests] == [None, "1", "2"]


def test_custom_headers_are_sent_on_every_attempt(sse_server: SSEServer, make_sv: MakeSv) -> None:
    sse_server.add_script(Status(500))
    sse_server.add_script(Headers(), send_events(1), Close())
    sse_server.add_script(Headers(), Hold())
    sv = make_sv([spec(sse_server, headers={"X-Api-Key": "k1", "Accept-Language": "fr"})])
    sv.start()

    assert sse_server.wait_for_requests(3, DEADLINE)
    for request in sse_server.requests[:3]:
        assert request.headers.get("X-Api-Key") == "k1"
        assert request.headers.get("Accept-Language") == "fr"
        assert request.headers.get("Accept") == "text/event-stream"


def test_a_header_callable_gives_each_attempt_a_fresh_token(
    sse_server: SSEServer, make_sv: MakeSv
) -> None:
    issued: list[str] = []
    lock = threading.Lock()

    def fresh_token() -> Mapping[str, str]:
        with lock:
            issued.append(f"token-{len(issued) + 1}")
            return {"Authorization": f"Bearer {issued[-1]}"}

    sse_server.add_script(Status(503))
    sse_server.add_script(Headers(), send_events(1), Close())
    sse_server.add_script(Headers(), Hold())
    sv = make_sv([spec(sse_server, headers=fresh_token)])
    sv.start()

    assert sse_server.wait_for_requests(3, DEADLINE)
    sent = [r.headers.get("Authorization") for r in sse_server.requests[:3]]
    assert sent == ["Bearer token-1", "Bearer token-2", "Bearer token-3"]


# -- liveness ---------------------------------------------------------------------------------


def test_a_silent_server_is_replaced_after_the_read_timeout(
    sse_server: SSEServer, make_sv: MakeSv
) -> None:
    sse_server.add_script(Headers(), send_events(1), Hold())
    sse_server.add_script(Headers(), Hold())
    sv = make_sv([spec(sse_server, read_timeout=0.3)])
    sv.start()

    assert sse_server.wait_for_requests(2, DEADLINE)
    gap = sse_server.requests[1].time - sse_server.requests[0].time
    assert 0.3 <= gap < 2.0, gap
    assert header(sse_server, 1, "Last-Event-ID") == "1"
    assert "timeout" in (stream_status(sv)["last_error"] or "").lower()


def test_comments_every_100_ms_keep_a_stream_with_a_short_read_timeout_alive(
    sse_server: SSEServer, make_sv: MakeSv
) -> None:
    keepalive = [step for _ in range(20) for step in (Pause(0.1), Send(b": keepalive\n"))]
    sse_server.add_script(Headers(), send_events(1), *keepalive, Hold())
    sv = make_sv([spec(sse_server, read_timeout=0.3)])
    sv.start()

    assert wait_state(sv, "connected")
    assert not sse_server.wait_for_requests(2, 1.0)  # no reconnect while comments flow
    assert stream_status(sv)["restarts"] == 0


def test_closing_a_blocked_stream_from_another_thread_ends_it_within_a_second(
    sse_server: SSEServer, make_sv: MakeSv, collector: CollectorHandle
) -> None:
    sse_server.add_script(Headers(), send_events(1), Hold())
    sv = make_sv([spec(sse_server)])
    sv.subscribe(collector.ref)
    sv.start()
    assert collector.wait_for(1, DEADLINE)
    assert sse_server.open_connections == 1

    results: list[bool] = []
    closer = threading.Thread(target=lambda: results.append(sv.close("s")), name="closer")
    started = time.monotonic()
    closer.start()
    closer.join(DEADLINE)
    assert sse_server.wait_for_idle(1.0)  # the server saw the client leave
    elapsed = time.monotonic() - started
    assert elapsed < 1.0, elapsed
    assert results == [True]
    assert wait_state(sv, "closed")
    assert not sse_server.wait_for_requests(2, 0.2)


# -- restart intensity and the breaker --------------------------------------------------------


def test_restart_intensity_trips_when_the_server_always_fails(
    sse_server: SSEServer, make_sv: MakeSv
) -> None:
    sse_server.default = [Status(500)]
    limit = RestartLimit(count=3, within=30)
    sv = make_sv([spec(sse_server, max_restarts=limit)])
    sv.start()

    assert wait_state(sv, "failed")
    assert not sse_server.wait_for_requests(5, 0.3)
    assert len(sse_server.requests) == 4
    info = stream_status(sv)
    assert "restart intensity" in info["last_error"]
    assert info["failures"]["retry"] == 4


def test_the_breaker_opens_after_repeated_failures_and_closes_when_the_server_recovers(
    sse_server: SSEServer, make_sv: MakeSv, collector: CollectorHandle
) -> None:
    for _ in range(3):
        sse_server.add_script(Status(500))
    sse_server.add_script(Headers(), send_events(1), Hold())
    breaker = BreakerPolicy(failures=3, cooldown=0.5)
    sv = make_sv([spec(sse_server, breaker=breaker)])
    sv.subscribe(collector.ref)
    sv.start()

    assert wait_until(lambda: stream_status(sv)["breaker"] == "open", DEADLINE, step=0.01)
    assert collector.wait_for(1, DEADLINE)
    assert wait_state(sv, "connected")
    assert stream_status(sv)["breaker"] == "closed"
    times = [r.time for r in sse_server.requests]
    assert len(times) == 4
    assert times[3] - times[2] >= 0.5  # the cool-down, not the 40 ms backoff
    assert times[2] - times[0] < 0.5


# -- hub: dedup and subscribers ---------------------------------------------------------------


def test_events_replayed_by_the_server_reach_subscribers_once(
    sse_server: SSEServer, make_sv: MakeSv, collector: CollectorHandle
) -> None:
    sse_server.add_script(Headers(), send_events(1, 2, 3), Close())
    sse_server.add_script(Headers(), send_events(2, 3, 4), Hold())  # resends 2 and 3
    sv = make_sv([spec(sse_server)])
    sv.subscribe(collector.ref)
    sv.start()

    assert collector.wait_for(4, DEADLINE)
    assert header(sse_server, 1, "Last-Event-ID") == "3"
    assert not collector.wait_for(5, 0.1)
    assert collector.ids() == ["1", "2", "3", "4"]
    assert stream_status(sv)["dedup_dropped"] == 2


def test_a_slow_subscriber_overflows_its_own_buffer_while_a_fast_one_gets_everything(
    sse_server: SSEServer, make_sv: MakeSv, collector: CollectorHandle, blocker: BlockerHandle
) -> None:
    sse_server.add_script(Headers(), send_events(*range(1, 201)), Hold())
    sv = make_sv([spec(sse_server)])
    sv.subscribe(collector.ref, name="fast")
    sv.subscribe(blocker.ref, name="slow", buffer=10, overflow="drop_oldest")
    sv.start()

    assert collector.wait_for(200, DEADLINE)
    assert collector.ids() == [str(i) for i in range(1, 201)]

    def slow_counts() -> int:
        info = sv.status()["subscribers"]["slow"]
        return int(info["dropped"] + info["delivered"])

    # "fast" is offered each read first: wait until "slow" was offered the last one too.
    assert wait_until(lambda: slow_counts() == 200, DEADLINE)
    slow = sv.status()["subscribers"]["slow"]
    assert slow["dropped"] > 0
    assert slow["queue_depth"] <= 10
    assert slow["dropped"] + slow["delivered"] == 200  # delivered: into its inbox
    assert sv.status()["subscribers"]["fast"]["dropped"] == 0
    assert stream_status(sv)["subscribers"]["slow"]["dropped"] == slow["dropped"]

    blocker.gate.set()
    kept = 200 - slow["dropped"]
    assert blocker.wait_for(kept, DEADLINE)
    ids = [int(e.id or 0) for e in blocker.events]
    assert ids == sorted(ids)
    assert ids[-1] == 200  # drop_oldest keeps the newest


def test_a_slow_subscriber_under_disconnect_is_removed_and_told_while_a_fast_one_gets_everything(
    sse_server: SSEServer, make_sv: MakeSv, collector: CollectorHandle, blocker: BlockerHandle
) -> None:
    sse_server.add_script(Headers(), send_events(*range(1, 201)), Hold())
    sv = make_sv([spec(sse_server)])
    sv.subscribe(collector.ref, name="fast")
    sv.subscribe(blocker.ref, name="slow", buffer=10, when_full="disconnect")
    sv.start()

    assert collector.wait_for(200, DEADLINE)
    assert collector.ids() == [str(i) for i in range(1, 201)]  # the stream went on
    assert wait_until(lambda: sv.status()["subscribers"]["slow"]["removed"], DEADLINE)
    slow = sv.status()["subscribers"]["slow"]
    assert (slow["removed"], slow["policy"]) == ("disconnected", "disconnect")
    assert slow["dropped"] > 0
    assert "slow" not in stream_status(sv)["subscribers"]
    assert sv.status()["subscribers"]["fast"]["removed"] is None

    blocker.gate.set()
    assert wait_until(lambda: blocker.others != [], DEADLINE)
    assert blocker.others == [SubscriberOverflow("slow", slow["dropped"])]
    # what was in its inbox before the overflow still arrives, in order, and nothing after
    ids = [e.id for e in blocker.events]
    assert ids == [str(i) for i in range(1, len(ids) + 1)]
    assert len(ids) == slow["delivered"]


class Raiser(pykka.ThreadingActor):
    """A subscriber that raises on its first event (pykka then stops it)."""

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Event):
            raise RuntimeError("subscriber bug")
        return None


def test_a_subscriber_that_raises_does_not_affect_other_subscribers(
    sse_server: SSEServer, make_sv: MakeSv, collector: CollectorHandle
) -> None:
    raiser_dead = threading.Event()
    sse_server.add_script(
        Headers(), send_events(1), WaitFor(raiser_dead), send_events(2, 3, 4, 5), Hold()
    )
    raiser = Raiser.start()
    sv = make_sv([spec(sse_server)])
    sv.subscribe(raiser, name="raiser")
    sv.subscribe(collector.ref, name="good")
    sv.start()

    assert raiser.actor_stopped.wait(DEADLINE)
    raiser_dead.set()
    assert collector.wait_for(5, DEADLINE)
    assert collector.ids() == ["1", "2", "3", "4", "5"]
    assert wait_until(lambda: sv.status()["subscribers"]["raiser"]["removed"] == "dead", DEADLINE)
    assert stream_status(sv)["state"] == "connected"


# -- resources --------------------------------------------------------------------------------


def test_stop_returns_quickly_while_a_stream_waits_on_a_silent_server(
    sse_server: SSEServer, collector: CollectorHandle
) -> None:
    sse_server.add_script(Headers(), send_events(1), Hold())
    sv = Streamvisor([spec(sse_server, read_timeout=30.0)])
    try:
        sv.subscribe(collector.ref)
        sv.start()
        assert collector.wait_for(1, DEADLINE)
        started = time.monotonic()
    finally:
        sv.stop(timeout=DEADLINE)
    elapsed = time.monotonic() - started
    print(f"stop() with a silent server took {elapsed * 1000:.1f} ms")
    assert elapsed < 1.0
    assert sse_server.wait_for_idle(1.0)


def test_a_hundred_reconnects_leave_no_connection_or_thread_behind(
    sse_server: SSEServer, make_sv: MakeSv
) -> None:
    go = threading.Event()
    sse_server.add_script(Headers(), send_events(1), WaitFor(go), Close())
    for i in range(2, 101):
        # A clean close: an immediate reconnect.
        sse_server.add_script(Headers(), send_events(i), Close())
    sse_server.default = [Headers(), Hold()]
    sv = make_sv([spec(sse_server)])
    sv.start()
    assert wait_state(sv, "connected")
    baseline = threading.active_count()  # one server connection, one stream

    go.set()
    assert sse_server.wait_for_requests(101, 10.0)
    assert sse_server.wait_until(lambda: sse_server.open_connections == 1, DEADLINE)
    assert wait_until(lambda: threading.active_count() == baseline, DEADLINE), (
        threading.active_count(),
        baseline,
    )
    assert header(sse_server, 100, "Last-Event-ID") == "100"
    assert stream_status(sv)["restarts"] == 100
