"""The relay server over real downstream sockets: protocol, resume, gaps, auth, limits.

Events are published straight into ``RelayServer.publish`` (what a stream's listener
does); the tests with a real upstream are in ``test_relay_upstream.py``.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from streamvisor.relay import RelayConfig, RelayServer
from streamvisor.sse import Event
from tests.support.relay import ClientPool, gap_data, running_relay
from tests.support.wait import wait_until


@pytest.fixture
def relay() -> Iterator[RelayServer]:
    with running_relay(RelayConfig(port=0, max_events=5, retry=2.5)) as server:
        yield server


def port_of(server: RelayServer) -> int:
    assert server.address is not None
    return server.address[1]


def publish(server: RelayServer, *data: str, stream: str = "s") -> None:
    server.publish(stream, [Event(stream, None, "message", d) for d in data])


def connected(server: RelayServer, n: int, stream: str = "s") -> bool:
    return wait_until(lambda: server.counters()[stream].clients == n)


def test_every_client_gets_the_sse_head_then_retry_then_each_live_event_once(
    relay: RelayServer, pool: ClientPool
) -> None:
    clients = [pool.get(port_of(relay), "/streams/s") for _ in range(3)]
    assert connected(relay, 3)
    publish(relay, "a", "b")
    publish(relay, "c\nd")
    for client in clients:
        events = client.wait_events(3)
        assert [e.data for e in events] == ["a", "b", "c\nd"]
        assert client.status == 200
        assert client.headers["content-type"] == "text/event-stream"
        assert client.headers["cache-control"] == "no-cache"
        assert client.body.startswith(b"retry: 2500\n\n")
    ids = [e.id for e in clients[0].events]
    assert len(set(ids)) == 3 and ids == [e.id for e in clients[1].events]
    assert relay.counters()["s"].deliveries == 9


def test_without_last_event_id_a_client_starts_live(relay: RelayServer, pool: ClientPool) -> None:
    publish(relay, "old")
    first = pool.get(port_of(relay), "/streams/s")
    assert connected(relay, 1)
    publish(relay, "new")
    assert [e.data for e in first.wait_events(1)] == ["new"]
    assert "streamvisor-gap" not in first.headers


@pytest.mark.parametrize("how", ["header", "query", "both"])
def test_a_resume_replays_exactly_the_missed_events_then_goes_live(
    relay: RelayServer, pool: ClientPool, how: str
) -> None:
    watcher = pool.get(port_of(relay), "/streams/s")
    assert connected(relay, 1)
    publish(relay, "1", "2", "3", "4")
    seen = watcher.wait_events(4)
    resume_from = seen[1].id
    assert resume_from is not None
    headers = {"Last-Event-ID": resume_from} if how != "query" else {}
    # The header wins over the query (a browser reconnects to the same URL with the header).
    target = "/streams/s" + {"header": "", "query": f"?lastEventId={resume_from}"}.get(
        how, "?lastEventId=bogus"
    )
    client = pool.get(port_of(relay), target, headers)
    assert connected(relay, 2)
    publish(relay, "5")
    assert [e.data for e in client.wait_events(3)] == ["3", "4", "5"]
    assert [e.id for e in client.events] == [e.id for e in watcher.wait_events(5)[2:]]
    assert relay.counters()["s"].replayed == 2


def test_an_unknown_id_gets_the_gap_header_and_event_then_everything_retained_then_live(
    relay: RelayServer, pool: ClientPool
) -> None:
    publish(relay, "1", "2")
    client = pool.get(port_of(relay), "/streams/s", {"Last-Event-ID": "upstream-77"})
    assert connected(relay, 1)
    publish(relay, "3")
    gap, *rest = client.wait_events(4)
    assert client.headers["streamvisor-gap"] == "1"
    assert gap_data(gap) == {
        "last_event_id": "upstream-77",
        "oldest_retained": rest[0].id,
        "reason": "unknown",
    }
    assert [e.data for e in rest] == ["1", "2", "3"]
    assert relay.counters()["s"].gaps == 1


def test_an_id_pushed_out_of_the_history_gets_an_expired_gap(
    relay: RelayServer, pool: ClientPool
) -> None:
    watcher = pool.get(port_of(relay), "/streams/s")
    assert connected(relay, 1)
    publish(relay, *"12345678")  # the history holds 5: 4..8
    first_id = watcher.wait_events(8)[0].id
    assert first_id is not None
    client = pool.get(port_of(relay), f"/streams/s?lastEventId={first_id}")
    gap, *rest = client.wait_events(6)
    assert gap_data(gap)["reason"] == "expired"
    assert [e.data for e in rest] == ["4", "5", "6", "7", "8"]
    # The gap event's id resumes right before the oldest retained event: nothing repeats.
    again = pool.get(port_of(relay), "/streams/s", {"Last-Event-ID": gap.id or ""})
    assert [e.data for e in again.wait_events(5)] == ["4", "5", "6", "7", "8"]
    assert "streamvisor-gap" not in again.headers


@pytest.mark.parametrize(
    ("method", "target", "status"),
    [
        ("GET", "/streams/nope", 404),
        ("GET", "/elsewhere", 404),
        ("POST", "/streams/s", 405),
        ("DELETE", "/metrics", 405),
        ("GET", "/health", 200),
        ("HEAD", "/health", 200),
        ("GET", "/metrics", 200),
    ],
)
def test_routes_and_methods_get_their_status(
    relay: RelayServer, pool: ClientPool, method: str, target: str, status: int
) -> None:
    client = pool.get(port_of(relay), target, method=method)
    assert client.wait_closed()
    assert client.status == status
    if status == 405:
        assert "GET" in client.headers["allow"]


def test_a_malformed_request_gets_400_and_is_closed(relay: RelayServer) -> None:
    with socket.create_connection(("127.0.0.1", port_of(relay)), timeout=5) as sock:
        sock.sendall(b"NOT HTTP\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 400 ")


def test_metrics_count_per_stream(relay: RelayServer, pool: ClientPool) -> None:
    client = pool.get(port_of(relay), "/streams/s", {"Last-Event-ID": "nope"})
    assert connected(relay, 1)
    publish(relay, "x")
    client.wait_events(2)
    scrape = pool.get(port_of(relay), "/metrics")
    assert scrape.wait_closed()
    text = scrape.body.decode()
    for line in (
        'streamvisor_relay_clients{stream="s"} 1.0',
        'streamvisor_relay_deliveries_total{stream="s"} 1.0',
        'streamvisor_relay_gaps_total{stream="s"} 1.0',
        'streamvisor_relay_events_total{stream="s"} 1.0',
        'streamvisor_relay_slow_client_cuts_total{stream="s"} 0.0',
    ):
        assert line in text


def test_with_tokens_streams_and_metrics_need_one_and_health_does_not(pool: ClientPool) -> None:
    with running_relay(RelayConfig(port=0, tokens=("t0ken", "other"))) as server:
        port = port_of(server)
        cases = [
            ("/streams/s", {}, 401),
            ("/streams/s", {"Authorization": "Bearer wrong"}, 401),
            ("/streams/s?access_token=wrong", {}, 401),
            ("/metrics", {}, 401),
            ("/health", {}, 200),
            ("/metrics", {"Authorization": "Bearer other"}, 200),
        ]
        for target, headers, status in cases:
            client = pool.get(port, target, headers)
            assert client.wait_closed()
            assert client.status == status, (target, headers)
            if status == 401:
                assert client.headers["www-authenticate"] == "Bearer"
                assert b"t0ken" not in client.body
        by_header = pool.get(port, "/streams/s", {"Authorization": "Bearer t0ken"})
        by_query = pool.get(port, "/streams/s?access_token=t0ken")
        assert connected(server, 2)
        publish(server, "ok")
        assert [e.data for e in by_header.wait_events(1)] == ["ok"]
        assert [e.data for e in by_query.wait_events(1)] == ["ok"]


def test_heartbeat_comments_reach_idle_clients() -> None:
    pool = ClientPool()
    try:
        with running_relay(RelayConfig(port=0, heartbeat=0.05)) as server:
            client = pool.get(port_of(server), "/streams/s")
            assert client.wait(lambda d: d.body.count(b":\n\n") >= 3)
            assert client.events == []
    finally:
        pool.close()


def test_a_stalled_client_is_cut_at_the_byte_bound_while_the_others_get_everything(
    pool: ClientPool,
) -> None:
    config = RelayConfig(port=0, max_buffer_bytes=64 * 1024, max_events=10)
    with running_relay(config) as server:
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(("127.0.0.1", port_of(server)))
        try:
            stalled.sendall(b"GET /streams/s HTTP/1.1\r\nHost: relay\r\n\r\n")
            fast = pool.get(port_of(server), "/streams/s")
            assert connected(server, 2)
            chunk = "x" * 32768
            sent = 0
            while server.counters()["s"].cuts == 0 and sent < 2000:  # ~64 MB at most
                publish(server, *([chunk] * 8))
                sent += 8
                assert fast.wait(lambda d, n=sent: len(d.events) >= n - 64, 10.0)
            assert server.counters()["s"].cuts == 1
            assert connected(server, 1)
            publish(server, "after")
            events = fast.wait_events(sent + 1, 10.0)
            assert len(events) == sent + 1 and events[-1].data == "after"
            assert not fast.closed
        finally:
            stalled.close()


def test_max_lifetime_closes_a_client_which_then_resumes_without_loss(pool: ClientPool) -> None:
    with running_relay(RelayConfig(port=0, max_lifetime=0.2)) as server:
        client = pool.get(port_of(server), "/streams/s")
        assert connected(server, 1)
        publish(server, "1")
        assert client.wait_closed()
        last = client.last_id
        assert last is not None
        publish(server, "2")
        again = pool.get(port_of(server), "/streams/s", {"Last-Event-ID": last})
        assert [e.data for e in again.wait_events(1)] == ["2"]


def test_cors_preflight_and_origin_headers(pool: ClientPool) -> None:
    config = RelayConfig(port=0, allow_origins=("https://app.example",))
    with running_relay(config) as server:
        port = port_of(server)
        pre = pool.get(port, "/streams/s", {"Origin": "https://app.example"}, method="OPTIONS")
        assert pre.wait_closed()
        assert pre.status == 204
        assert "Last-Event-ID" in pre.headers["access-control-allow-headers"]
        ok = pool.get(port, "/streams/s", {"Origin": "https://app.example"})
        other = pool.get(port, "/streams/s", {"Origin": "https://evil.example"})
        assert ok.wait(lambda d: d.status == 200) and other.wait(lambda d: d.status == 200)
        assert ok.headers["access-control-allow-origin"] == "https://app.example"
        assert "Streamvisor-Gap" in ok.headers["access-control-expose-headers"]
        assert "access-control-allow-origin" not in other.headers


def test_an_allowed_origin_can_read_a_refusal(pool: ClientPool) -> None:
    # Before: a 401 (and a 404) had no CORS headers, so a fetch()-based SSE client on an
    # allowed page saw a CORS error instead of "token missing or wrong".
    config = RelayConfig(port=0, allow_origins=("https://app.example",), tokens=("t0ken",))
    with running_relay(config) as server:
        port = port_of(server)
        origin = {"Origin": "https://app.example"}
        cases = [
            ("/streams/s", origin, 401),
            ("/streams/nope?access_token=t0ken", origin, 404),
            ("/streams/s", {"Origin": "https://evil.example"}, 401),
        ]
        for target, headers, status in cases:
            client = pool.get(port, target, headers)
            assert client.wait_closed()
            assert client.status == status, target
            allowed = client.headers.get("access-control-allow-origin")
            assert allowed == ("https://app.example" if headers is origin else None), target
            if status == 401:
                assert client.headers["www-authenticate"] == "Bearer"


def test_stop_closes_every_client_and_a_second_start_is_refused(pool: ClientPool) -> None:
    server = RelayServer(RelayConfig(port=0), ["s"])
    server.start()
    try:
        client = pool.get(port_of(server), "/streams/s")
        assert connected(server, 1)
        with pytest.raises(Exception, match="already started"):
            server.start()
    finally:
        server.stop()
    assert client.wait_closed()
    server.stop()  # idempotent
