"""``RedisCheckpointStore`` against a real redis-server: the CheckpointStore contract, plus
fencing in cluster mode (held streams only, stale tokens rejected, the rest still written)."""

from __future__ import annotations

from typing import Any

import pytest

from streamvisor.checkpoint.store import Checkpoint, CheckpointError
from streamvisor.cluster.checkpoint_store import RedisCheckpointStore, decode_recent, decode_window
from streamvisor.cluster.scripts import ACQUIRE, Keys, ScriptRunner
from tests.support.fences import DictFence

K = Keys("cp:")


def acquire(client: Any, stream: str, member: str) -> int:
    reply = ScriptRunner(client).call(
        ACQUIRE, [K.lease(stream), K.fence(stream), K.ckpt(stream)], [member, 60_000, 0]
    )
    token: int = reply[0]
    return token


def test_plain_save_and_load_round_trip_with_recent_ids_trimmed(rclient: Any) -> None:
    store = RedisCheckpointStore(rclient, K, ["a", "b", "never"], recent_ids=2)
    recent = (("1", "d1"), ("2", "d2"), ("3", "d3"))
    store.save({"a": Checkpoint("3", recent, 10.5), "b": Checkpoint(None, (), 11.0)})
    loaded = store.load()
    assert loaded == {
        "a": Checkpoint("3", (("2", "d2"), ("3", "d3")), 10.5),
        "b": Checkpoint(None, (), 11.0),
    }
    store.save({"a": Checkpoint("4", (), 12.0)})  # other streams keep what they had
    assert store.load()["b"] == Checkpoint(None, (), 11.0)
    store.close()
    store.close()
    with pytest.raises(CheckpointError, match="closed"):
        store.load()


def test_fenced_save_writes_only_held_streams_with_current_tokens(rclient: Any) -> None:
    fence = DictFence("me#1")
    fence.tokens["mine"] = acquire(rclient, "mine", "me#1")
    stale = acquire(rclient, "stale", "me#1")
    fence.tokens["stale"] = stale
    rclient.delete(K.lease("stale"))
    acquire(rclient, "stale", "other#1")  # someone else took it over: token stale + 1
    store = RedisCheckpointStore(rclient, K, ["mine", "stale", "theirs"], fence=fence)
    store.save(
        {
            "mine": Checkpoint("10", (("10", "x"),), 1.0),
            "stale": Checkpoint("99", (), 1.0),
            "theirs": Checkpoint("5", (), 1.0),  # never held: not written at all
        }
    )
    assert rclient.hget(K.ckpt("mine"), "last") == "10"
    assert rclient.hget(K.ckpt("mine"), "owner") == "me#1"
    assert rclient.hget(K.ckpt("stale"), "last") is None
    assert not rclient.exists(K.ckpt("theirs"))
    assert fence.fenced_streams == ["stale"]
    assert store.fenced_writes == {"stale": 1}


def test_streams_a_sink_checkpoints_are_never_written_by_the_store(rclient: Any) -> None:
    fence = DictFence("me#1")
    fence.tokens["s"] = acquire(rclient, "s", "me#1")
    rclient.hset(K.ckpt("s"), mapping={"last": "50", "window": "1"})
    store = RedisCheckpointStore(rclient, K, ["s"], fence=fence, sink_checkpointed={"s"})
    store.save({"s": Checkpoint("40", (), 1.0)})  # older than what the sink committed
    assert rclient.hget(K.ckpt("s"), "last") == "50"


def test_an_unreachable_redis_is_a_checkpoint_error_without_the_password(rclient: Any) -> None:
    import redis

    url = "redis://:s3cretpw@127.0.0.1:1/0"
    client = redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=0.5)
    store = RedisCheckpointStore(client, K, ["a"], url=url)
    with pytest.raises(CheckpointError) as info:
        store.save({"a": Checkpoint("1")})
    assert "s3cretpw" not in str(info.value) and "127.0.0.1:1" in str(info.value)
    with pytest.raises(CheckpointError):
        store.load()
    client.close()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", ()), ("{}", ()), ("[]", ()), ('[["1","a"],["2","b"]]', (("1", "a"), ("2", "b")))],
)
def test_decode_recent(text: str, expected: tuple[tuple[str, str], ...]) -> None:
    assert decode_recent(text) == expected


def test_decode_recent_rejects_other_shapes_and_windows_split_members() -> None:
    with pytest.raises(ValueError):
        decode_recent('{"a": 1}')
    assert decode_window(["1\nab", "x:y\ncd", "no-digest"]) == (("1", "ab"), ("x:y", "cd"))
