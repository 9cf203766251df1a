"""The ``redis_streams`` sink against a real redis-server (plain and fenced writes), and its
IDMP path against a fake client (CI's Redis 7.0 has no IDMP)."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from streamvisor.cluster.scripts import ACQUIRE, Keys, ScriptRunner
from streamvisor.cluster.settings import RedisStreamsOptions
from streamvisor.cluster.sink_scripts import SINK_WRITE
from streamvisor.sinks.base import SinkError
from streamvisor.sinks.redis_streams import RedisStreamsSink
from streamvisor.sse import Event
from tests.support.events import event
from tests.support.fences import DictFence

K = Keys("rs:")
FIELDS = (("id", "id"), ("data", "data"), ("stream", "stream"), ("tok", "token"))


def options(url: str, **kw: Any) -> RedisStreamsOptions:
    return RedisStreamsOptions(redis=url, **{"fields": FIELDS, **kw})


def evalsha_calls(client: Any) -> int:
    """How many EVALSHA commands the server has run (INFO commandstats)."""
    stats = client.info("commandstats").get("cmdstat_evalsha", {})
    return int(stats.get("calls", 0))


def acquire(client: Any, stream: str, member: str) -> int:
    reply = ScriptRunner(client).call(
        ACQUIRE, [K.lease(stream), K.fence(stream), K.ckpt(stream)], [member, 60_000, 0]
    )
    token: int = reply[0]
    return token


def ids(client: Any, key: str) -> list[int]:
    return [int(fields["id"]) for _, fields in client.xrange(key)]


def test_plain_writes_take_one_command_per_chunk_and_map_fields(
    rclient: Any, redis_url: str
) -> None:
    sink = RedisStreamsSink(options(redis_url, maxlen=0), name="out", client=rclient)
    sink.write([event("a", 1), event("b", 1), event("a", 2, data="x" * 200)])
    before = evalsha_calls(rclient)
    sink.write([event("a", n) for n in range(3, 503)])
    assert evalsha_calls(rclient) - before == 1  # 500 events, one command
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
    sink.write([event("a", n, kind="trade" if n % 2 else "quote") for n in range(1, 2001)])
    assert 100 <= rclient.xlen("s:a:trade") < 1000
    assert 100 <= rclient.xlen("s:a:quote") < 1000


def test_fenced_writes_are_exactly_once_across_a_failover_and_reject_the_stale_owner(
    rclient: Any, redis_url: str
) -> None:
    old_owner, new_owner = DictFence("a#1-x"), DictFence("b#1-y")
    old = RedisStreamsSink(options(redis_url), name="out", client=rclient)
    old.attach(old_owner, K, checkpoints={"s"})
    old_owner.tokens["s"] = acquire(rclient, "s", old_owner.member)
    old.write([event("s", n) for n in range(1, 51)])
    assert rclient.hget(K.ckpt("s"), "last") == "50"  # the sink committed the checkpoint

    # The old owner pauses; its lease lapses and the new owner takes the stream over.
    rclient.delete(K.lease("s"))
    new_owner.tokens["s"] = acquire(rclient, "s", new_owner.member)
    new = RedisStreamsSink(options(redis_url), name="out", client=rclient)
    new.attach(new_owner, K, checkpoints={"s"})
    new.write([event("s", n) for n in range(46, 101)])  # the upstream replays 46..50
    old.write([event("s", n) for n in range(51, 61)])  # the paused owner wakes up and writes

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
    sink.write([event("held", 1), event("gone", 1), event("held", 2)])
    assert ids(rclient, "sse:held") == [1, 2]
    assert not rclient.exists("sse:gone")
    assert sink.not_owned == 1
    assert rclient.hget(K.ckpt("held"), "last") is None


def test_big_batches_go_in_chunks_of_500_events_over_many_streams(
    rclient: Any, redis_url: str
) -> None:
    fence = DictFence()
    sink = RedisStreamsSink(options(redis_url, dedup_window=5000), name="o", client=rclient)
    sink.attach(fence, K, checkpoints={"s", "t"})
    fence.tokens["s"] = acquire(rclient, "s", fence.member)
    fence.tokens["t"] = acquire(rclient, "t", fence.member)
    ScriptRunner(rclient).load([SINK_WRITE])  # else the first call's NOSCRIPT counts too
    before = evalsha_calls(rclient)
    sink.write([event("s" if n % 10 else "t", n) for n in range(1, 2001)])
    assert evalsha_calls(rclient) - before == 4
    assert rclient.hget(K.ckpt("t"), "last") == "2000"
    sink.write([event("s", n) for n in range(1, 2001)])
    replayed_and_new = [n for n in range(1, 2001) if n % 10] + list(range(10, 2001, 10))
    assert ids(rclient, "sse:s") == replayed_and_new  # only the ids s had not written yet
    assert rclient.hget(K.ckpt("s"), "last") == "2000"


def test_an_unreachable_redis_is_retried_then_a_sink_error_without_the_password() -> None:
    stop = threading.Event()
    url = "redis://:pw-s3cret@127.0.0.1:1/0"
    sink = RedisStreamsSink(options(url), name="out", stop_event=stop)
    stop.set()  # no waiting between attempts in this test
    with pytest.raises(SinkError) as info:
        sink.write([event("a", 1)])
    assert "pw-s3cret" not in str(info.value) and "127.0.0.1:1" in str(info.value)
    sink.close()


class FakeRedis:
    """Records the commands sent on its one connection; reports a chosen server version."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.calls: list[tuple[Any, ...]] = []
        self.connection_pool = self

    def info(self, section: str) -> dict[str, str]:
        return {"redis_version": self.version}

    def get_connection(self) -> Any:
        return self

    def release(self, connection: Any) -> None:
        pass

    def send_command(self, *args: Any) -> None:
        self.calls.append(args)

    def read_response(self) -> int:
        return 2

    def disconnect(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("version", "idmp"),
    [("8.6.0", 1), ("9.0.1-rc1", 1), ("8.4.2", 0), ("7.0.15", 0)],
)
def test_idmp_is_asked_for_from_redis_8_6_with_the_stream_and_id_digest(
    version: str, idmp: int
) -> None:
    fake = FakeRedis(version)
    sink = RedisStreamsSink(options("redis://h", maxlen=10), client=fake)
    no_id = Event("a", None, "message", "no id", "7", 0.0)
    sink.write([event("a", 7, data="seven"), no_id])
    ((command, _sha, nkeys, key, maxlen, flag, fields, rows),) = fake.calls
    assert command == "EVALSHA"
    assert (nkeys, key, maxlen, flag) == (1, "sse:a", 10, idmp)
    assert json.loads(fields) == ["id", "data", "stream", "tok"]
    first, second = json.loads(rows)
    assert first[0] == "a" and first[1].startswith("7\n") and first[2:] == ["7", "seven", "a", ""]
    assert second[:2] == ["", ""]  # no id: never idempotent
