"""Coordinators against a real redis-server, with a recording runner instead of a daemon:
balance, clean handoffs (stop before release), lapsed and fenced leases, and the write gate."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from streamvisor.checkpoint.store import Checkpoint
from streamvisor.cluster.checkpoint_store import RedisCheckpointStore
from streamvisor.cluster.coordinator import Coordinator
from streamvisor.cluster.lease import LeaseTiming, WriteVerdict
from streamvisor.cluster.scripts import Keys
from tests.support.redis_server import RedisServer
from tests.support.wait import wait_until

K = Keys("co:")
STREAMS = [f"s{i}" for i in range(10)]
TTL = 1.0


class Runner:
    """Records starts and stops; at each stop, notes who held the lease in Redis."""

    def __init__(self, client: Any, member: Callable[[], str]) -> None:
        self.client = client
        self.member = member
        self.running: set[str] = set()
        self.started: list[tuple[str, Checkpoint | None]] = []
        self.stops: list[tuple[str, str | None]] = []
        self.lock = threading.Lock()

    def start(self, stream: str, checkpoint: Checkpoint | None) -> None:
        with self.lock:
            assert stream not in self.running, f"{stream} started twice"
            self.running.add(stream)
            self.started.append((stream, checkpoint))

    def stop(self, stream: str) -> Checkpoint | None:
        holder = self.client.get(K.lease(stream))
        with self.lock:
            self.running.discard(stream)
            self.stops.append((stream, holder))
        return Checkpoint(f"{stream}-pos", (("1", "d"),), 5.0)


class Partition:
    """A client wrapper that can make every call fail (a network partition)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.cut = False

    def __getattr__(self, name: str) -> Any:
        if self.cut:
            import redis

            raise redis.ConnectionError("partitioned (test)")
        return getattr(self._client, name)

    def pipeline(self, *args: Any, **kwargs: Any) -> Any:
        if self.cut:
            import redis

            raise redis.ConnectionError("partitioned (test)")
        return self._client.pipeline(*args, **kwargs)


@pytest.fixture
def make(
    redis_server: RedisServer, redis_url: str
) -> Iterator[Callable[..., tuple[Coordinator, Runner]]]:
    made: list[Coordinator] = []
    clients: list[Any] = []

    def build(
        name: str, *, client: Any = None, save: Callable[[Any], None] | None = None
    ) -> tuple[Coordinator, Runner]:
        raw = redis_server.client(socket_timeout=0.5)
        clients.append(raw)
        member = f"{name}#1-{len(made)}"
        runner = Runner(redis_server.client(), lambda: member)
        clients.append(runner.client)
        coordinator = Coordinator(
            client if client is not None else raw,
            K,
            member,
            STREAMS,
            runner,
            timing=LeaseTiming.for_ttl(TTL),
            claim_interval=0.1,
            max_moves=16,
            save=save,
        )
        made.append(coordinator)
        coordinator.start()
        return coordinator, runner

    try:
        yield build
    finally:
        for coordinator in made:
            with contextlib.suppress(Exception):
                coordinator.close()
        for client in clients:
            client.close()


def loads(*runners: Runner) -> list[int]:
    return [len(r.running) for r in runners]


def test_two_instances_split_the_streams_and_each_stream_runs_once(make: Any, rclient: Any) -> None:
    a, ra = make("a")
    b, rb = make("b")
    assert wait_until(lambda: loads(ra, rb) == [5, 5], 5.0), loads(ra, rb)
    assert ra.running.isdisjoint(rb.running)
    holders = {s: rclient.get(K.lease(s)) for s in STREAMS}
    assert {h for h in holders.values()} == {a.member, b.member}
    assert all(rclient.pttl(K.lease(s)) > 0 for s in STREAMS)
    assert a.status()["live"] == 2 and a.status()["quota"] == 5


def test_a_clean_stop_stops_saves_then_releases_and_the_other_takes_over(
    make: Any, rclient: Any
) -> None:
    saved: list[Any] = []
    stores: list[RedisCheckpointStore] = []

    def save(checkpoints: Any) -> None:
        saved.append(checkpoints)
        stores[0].save(checkpoints)

    a, ra = make("a", save=save)
    stores.append(RedisCheckpointStore(rclient, K, STREAMS, fence=a.holdings))
    b, rb = make("b")
    assert wait_until(lambda: loads(ra, rb) == [5, 5], 5.0)
    mine = set(ra.running)
    a.freeze()
    a.close()
    # every stream was stopped while its lease was still ours, and saved before the release
    assert {s for s, holder in ra.stops} == mine
    assert all(holder == a.member for _, holder in ra.stops)
    assert set(saved[-1]) == mine
    assert rclient.zscore(K.members, a.member) is None
    assert wait_until(lambda: len(rb.running) == 10, 2.0)
    taken = b.status()["streams"]
    assert all(taken[s]["handoffs"] == 1 and taken[s]["failovers"] == 0 for s in mine)
    resumed = {s: cp for s, cp in rb.started if s in mine}
    assert {s: cp.last_event_id if cp else None for s, cp in resumed.items()} == {
        s: f"{s}-pos" for s in mine
    }
    assert all(cp is not None and cp.recent == (("1", "d"),) for cp in resumed.values())


def test_a_partitioned_instance_stops_its_streams_and_the_other_fails_over(
    make: Any, redis_server: RedisServer
) -> None:
    partition = Partition(redis_server.client(socket_timeout=0.5))
    a, ra = make("a", client=partition)
    b, rb = make("b")
    assert wait_until(lambda: loads(ra, rb) == [5, 5], 5.0)
    victim = sorted(ra.running)[0]
    assert a.holdings.wait_writable(victim, 0.1) is WriteVerdict.WRITE
    partition.cut = True
    # the gate says WAIT, then DROP once the local deadline passed; never WRITE meanwhile
    assert wait_until(lambda: a.holdings.wait_writable(victim, 0.01) is WriteVerdict.DROP, 2 * TTL)
    assert wait_until(lambda: not ra.running, 2 * TTL)
    assert wait_until(lambda: len(rb.running) == 10, TTL + 2.0)
    took = b.status()["streams"]
    assert all(took[s]["failovers"] == 1 for s, _ in ra.started)
    assert a.holdings.status()[victim]["lost"] == 1
    partition.cut = False  # healed: it rejoins and gets its share back
    assert wait_until(lambda: loads(ra, rb) == [5, 5], 5.0), loads(ra, rb)


def test_a_fenced_write_stops_the_stream_without_releasing_it(make: Any, rclient: Any) -> None:
    a, ra = make("a")
    assert wait_until(lambda: len(ra.running) == 10, 5.0)
    a.freeze()  # no re-claim in this test
    a.holdings.fenced("s3")
    assert wait_until(lambda: "s3" not in ra.running, 2.0)
    assert rclient.get(K.lease("s3")) == a.member  # not released: it was not ours to release
    assert a.holdings.token("s3") is None
    assert a.holdings.status()["s3"]["fenced_writes"] == 1


def test_a_reload_releases_removed_streams_and_restarts_changed_ones(
    make: Any, rclient: Any
) -> None:
    a, ra = make("a")
    assert wait_until(lambda: len(ra.running) == 10, 5.0)
    a.update_streams(STREAMS[:8], restart=["s0"])
    assert wait_until(
        lambda: ra.running == set(STREAMS[:8]) and [s for s, _ in ra.started].count("s0") == 2, 3.0
    )
    assert rclient.get(K.lease("s9")) is None
