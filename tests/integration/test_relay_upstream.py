"""The relay fed by a real supervised upstream (the demo source), to real client sockets.

Every event carries its upstream ``seq`` in its JSON data, so each client's events can be
checked for loss and repeats: a client's seqs must be one contiguous run, whatever
happened to its connection or to the upstream's.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from streamvisor.api.facade import Streamvisor
from streamvisor.demo.source import Chaos, DemoSource
from streamvisor.policy.backoff import BackoffPolicy
from streamvisor.relay import RelayConfig, RelayServer, attach
from streamvisor.spec import StreamSpec
from tests.support.relay import ClientPool, Downstream, seqs
from tests.support.wait import wait_until

FLAKY = Chaos(
    clean_close=0.34, reset=0.33, cut_event=0.33, replay=0.5, max_events_per_connection=12
)


class Setup:
    """A demo source -> Streamvisor -> relay chain, and downstream clients."""

    def __init__(self, chaos: Chaos, rate: float, total: int | None) -> None:
        self.source = DemoSource(["t"], rate=rate, total=total, chaos=chaos, heartbeat=0)
        self.source.start()
        spec = StreamSpec(
            name="t",
            url=self.source.url("t"),
            backoff=BackoffPolicy(initial=0.01, max=0.05, jitter=0.0),
        )
        self.sv = Streamvisor([spec])
        self.relay = RelayServer(RelayConfig(port=0), ["t"])
        self.feed = attach(self.sv, self.relay.publish)
        self.port = self.relay.start()[1]
        self.pool = ClientPool()

    def connect(self, last_id: str | None = None) -> Downstream:
        headers = {"Last-Event-ID": last_id} if last_id else {}
        return self.pool.get(self.port, "/streams/t", headers)

    def close(self) -> None:
        try:
            self.sv.stop(timeout=5.0)
            self.feed.close()
        finally:
            self.relay.stop()
            self.pool.close()
            self.source.stop()


@pytest.fixture
def make_setup() -> Iterator[type[Setup]]:
    made: list[Setup] = []

    class Tracked(Setup):
        def __init__(self, chaos: Chaos, rate: float, total: int | None) -> None:
            super().__init__(chaos, rate, total)
            made.append(self)

    try:
        yield Tracked
    finally:
        for setup in made:
            setup.close()


def test_upstream_reconnects_are_invisible_downstream_each_event_once(
    make_setup: type[Setup],
) -> None:
    total = 240
    setup = make_setup(FLAKY, rate=600.0, total=total)
    clients = [setup.connect() for _ in range(5)]
    assert wait_until(lambda: setup.relay.counters()["t"].clients == 5)
    setup.sv.start()
    for client in clients:
        client.wait(lambda d: len(d.events) >= total, 15.0)
        assert seqs(client.events) == list(range(1, total + 1))
        assert not client.closed  # the same connection all along
    stats = setup.source.stats["t"]
    assert stats.connections >= 10, "every upstream connection should have failed"
    assert setup.relay.counters()["t"].events == total


@pytest.mark.parametrize("chaos", [Chaos(), FLAKY], ids=["steady-upstream", "flaky-upstream"])
def test_a_reconnect_storm_loses_nothing_and_repeats_nothing(
    make_setup: type[Setup], chaos: Chaos
) -> None:
    setup = make_setup(chaos, rate=150.0, total=None)
    setup.sv.start()
    clients = [setup.connect() for _ in range(60)]
    received: list[list[int]] = [[] for _ in clients]
    for _storm in range(3):
        assert all(c.wait(lambda d: len(d.events) >= 5, 10.0) for c in clients)
        for i, client in enumerate(clients):  # every client drops at once ...
            client.close()
            received[i] += seqs(client.events)
        relayed = setup.relay.counters()["t"].events
        assert wait_until(lambda n=relayed: setup.relay.counters()["t"].events >= n + 10)
        # ... and comes back with the id it saw last, as EventSource does
        clients = [setup.connect(client.last_id) for client in clients]
    newest = setup.source.published("t")
    for i, client in enumerate(clients):
        assert client.wait(lambda d: bool(d.events) and seqs(d.events)[-1] >= newest, 10.0)
        assert "streamvisor-gap" not in client.headers
        got = received[i] + seqs(client.events)
        assert got == list(range(got[0], got[-1] + 1)), f"client {i} lost or repeated events"
    counters = setup.relay.counters()["t"]
    assert counters.gaps == 0
    assert counters.replayed > 0
