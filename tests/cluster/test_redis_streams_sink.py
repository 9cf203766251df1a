"""The ``redis_streams`` sink against a real redis-server (plain and fenced writes), and its
IDMP path against a fake client (CI's Redis 7.0 has no IDMP)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from streamvisor.cluster.scripts import ACQUIRE, Keys, ScriptRunner
from streamvisor.cluster.settings import RedisStreamsOptions
from streamvisor.sinks.base import SinkError
from streamvisor.sinks.redis_streams import RedisStreamsSink
from streamvisor.sse import Event
from tests.cluster.support import DictFence

K = Keys("rs:")
FIELDS = (("id", "id"), ("data", "data"), ("stream", "stream"), ("tok", "token"))


def ev(stream: str, n: int, data: str | None = None, event: str = "message") -> Event:
    return Event(stream, str(n), event, data or f"d{n}", str(n), 1_700_000_000.0)


def options(url: str, **kw: Any) -> RedisStreamsOptions:
    return RedisStreamsOptions(redis=url, **{"fields": FIELDS, **kw})


class CountingClient:
    """Wraps a redis client and counts round trips (direct commands and pipeline runs)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.round_trips = 0

    def pipeline(self, *args: Any, **kwargs: Any) -> Any:
        pipe = self._client.pipeline(*args, **kwargs)
        execute = pipe.execute

        def counted(*a: Any, **k: Any) -> Any:
            self.round_trips += 1
            return execute(*a, **k)

        pipe.execute = counted
        return pipe

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if callable(attr):

            def counted(*a: Any, **k: Any) -> Any:
                self.round_trips += 1
                return attr(*a, **k)

            return counted
        return attr


def acquire(client: Any, stream: str, member: str) -> int:
    reply = ScriptRunner(client).call(
        ACQUIRE, [K.lease(stream), K.fence(stream), K.ckpt(stream)], [member, 60_000, 0]
    )
    token: int = reply[0]
    return token


def ids(client: Any, key: str) -> list[int]:
    return [int(fields["id"]) for _, fields in client.xrange(key)]


def test_plain_writes_take_one_round_trip_per_batch_and_map_fields(
    rclient: Any, redis_url: str
) -> None:
    counting = CountingClient(rclient)
    sink = RedisStreamsSink(options(redis_url, maxlen=0), name="out", client=counting)
    sink.write([ev("a", 1), ev("b", 1), ev("a", 2, "x" * 200)])
    before = counting.round_trips
    sink.write([ev("a", n) for n in range(3, 503)])
    assert counting.round_trips - before == 1
    entries = rclient.xrange("sse:a")
    assert [e[1]["id"] for e in entries[:2]] == ["1", "2"] and len(entries) == 502
    assert entries[1][1] == {"id": "2", "data": "x" * 200, "stream": "a", "tok": ""}
    assert rclient.xlen("sse:b") == 1
    assert sink.written == 503


def test_the_key_template_can_split_by_event_type_and_maxlen_trims(
    rclient: Any, redis_url: str
) -> None:
    sink = RedisStreamsSink(
        options(redis_url, stream="s:{stream}:{event}", maxlen=100), client=rclient
    )
    sink.write([ev("a", n, event="trade" if n % 2 else "quote") for n in range(1, 2001)])
    assert 100 <= rclient.xlen("s:a:trade") < 1000
    assert 100 <= rclient.xlen("s:a:quote") < 1000


def test_fenced_writes_are_exactly_once_across_a_failover_and_reject_the_stale_owner(
    rclient: Any, redis_url: str
) -> None:
    old_owner, new_owner = DictFence("a#1-x"), DictFence("b#1-y")
    old = RedisStreamsSink(options(redis_url), name="out", client=rclient)
    old.attach(old_owner, K, checkpoints={"s"})
    old_owner.tokens["s"] = acquire(rclient, "s", old_owner.member)
    old.write([ev("s", n) for n in range(1, 51)])
    assert rclient.hget(K.ckpt("s"), "last") == "50"  # the sink committed the checkpoint

    # The old owner pauses; its lease lapses and the new owner takes the stream over.
    rclient.delete(K.lease("s"))
    new_owner.tokens["s"] = acquire(rclient, "s", new_owner.member)
    new = RedisStreamsSink(options(redis_url), name="out", client=rclient)
    new.attach(new_owner, K, checkpoints={"s"})
    new.write([ev("s", n) for n in range(46, 101)])  # the upstream replays 46..50
    old.write([ev("s", n) for n in range(51, 61)])  # the paused owner wakes up and writes

    assert ids(rclient, "sse:s") == list(range(1, 101))
    tokens = [int(fields["tok"]) for _, fields in rclient.xrange("sse:s")]
    assert tokens == sorted(tokens) and set(tokens) == {1, 2}
    assert new.duplicates == 5
    assert old.fenced_writes == {"s": 1} and old_owner.fenced_streams == ["s"]
    assert rclient.hget(K.ckpt("s"), "last") == "100"
    assert rclient.hget(K.ckpt("s"), "owner") == new_owner.member


def test_streams_not_held_are_not_written_and_shared_streams_leave_the_checkpoint(
    rclient: Any, redis_url: str
) -> None:
    fence = DictFence()
    sink = RedisStreamsSink(options(redis_url), name="out", client=rclient)
    sink.attach(fence, K, checkpoints=())  # other sinks take these streams too
    fence.tokens["held"] = acquire(rclient, "held", fence.member)
    sink.write([ev("held", 1), ev("gone", 1), ev("held", 2)])
    assert ids(rclient, "sse:held") == [1, 2]
    assert not rclient.exists("sse:gone")
    assert sink.not_owned == 1
    assert rclient.hget(K.ckpt("held"), "last") is None


def test_big_batches_are_chunked_but_still_one_round_trip(rclient: Any, redis_url: str) -> None:
    fence = DictFence()
    counting = CountingClient(rclient)
    sink = RedisStreamsSink(options(redis_url, dedup_window=5000), name="o", client=counting)
    sink.attach(fence, K, checkpoints={"s"})
    fence.tokens["s"] = acquire(rclient, "s", fence.member)
    counting.round_trips = 0
    sink.write([ev("s", n) for n in range(1, 2001)])
    assert counting.round_trips == 1
    assert ids(rclient, "sse:s") == list(range(1, 2001))
    assert rclient.hget(K.ckpt("s"), "last") == "2000"


def test_an_unreachable_redis_is_retried_then_a_sink_error_without_the_password() -> None:
    stop = threading.Event()
    url = "redis://:pw-s3cret@127.0.0.1:1/0"
    sink = RedisStreamsSink(options(url), name="out", stop_event=stop)
    stop.set()  # no waiting between attempts in this test
    with pytest.raises(SinkError) as info:
        sink.write([ev("a", 1)])
    assert "pw-s3cret" not in str(info.value) and "127.0.0.1:1" in str(info.value)
    sink.close()


class FakeRedis:
    """Records XADDs sent through pipelines; reports a chosen server version."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.commands: list[tuple[Any, ...]] = []

    def info(self, section: str) -> dict[str, str]:
        return {"redis_version": self.version}

    def pipeline(self, transaction: bool = False) -> Any:
        fake = self

        class Pipe:
            def execute_command(self, *args: Any) -> None:
                fake.commands.append(args)

            def execute(self) -> list[Any]:
                return []

        return Pipe()

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("version", "idmp"), [("8.6.0", True), ("9.0.1-rc1", True), ("8.4.2", False), ("7.0.15", False)]
)
def test_idmp_is_used_from_redis_8_6_for_events_with_ids(version: str, idmp: bool) -> None:
    fake = FakeRedis(version)
    sink = RedisStreamsSink(options("redis://h", maxlen=10), client=fake)
    no_id = Event("a", None, "message", "no id", "7", 0.0)
    sink.write([ev("a", 7, "seven"), no_id])
    first, second = fake.commands
    if idmp:
        assert first[:5] == ("XADD", "sse:a", "IDMP", "a", first[4])
        assert first[4].startswith("7\n")
    else:
        assert "IDMP" not in first
    assert "IDMP" not in second
    assert first[-9:-8] == ("*",) and first[-8:] == (
        "id",
        "7",
        "data",
        "seven",
        "stream",
        "a",
        "tok",
        "",
    )
    assert first[-12:-9] == ("MAXLEN", "~", 10)
