"""The Lua scripts against a real redis-server: exclusive leases, monotonic tokens, renewals
that only touch our own leases, releases that never free someone else's, and fenced writes
that reject a stale token and write nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from streamvisor.cluster.scripts import (
    ACQUIRE,
    RELEASE,
    RENEW,
    SAVE,
    SURVEY,
    Keys,
    ScriptRunner,
)
from streamvisor.cluster.sink_scripts import SINK_WRITE, XADD_BATCH
from tests.support.wait import wait_until

K = Keys("t:")
TTL_MS = 60_000


def acquire(run: ScriptRunner, stream: str, member: str, ttl_ms: int = TTL_MS) -> Any:
    return run.call(
        ACQUIRE, [K.lease(stream), K.fence(stream), K.ckpt(stream)], [member, ttl_ms, 8]
    )


def sink_write(
    run: ScriptRunner,
    stream: str,
    token: int,
    events: list[tuple[str, str]],
    *,
    checkpoint: bool = False,
    window: int = 100,
    maxlen: int = 0,
) -> list[int]:
    """Write (id, data) events with fields id/data/tok; dedup member = id + '\\n' + data."""
    rows = [[f"{i}\n{d}" if i else "", i, d, str(token)] for i, d in events]
    part = [token, int(checkpoint), 1.5, events[-1][0], rows]
    args: list[Any] = [window, maxlen, "m1", json.dumps(["id", "data", "tok"]), json.dumps([part])]
    keys = [K.fence(stream), K.sink_window(stream, "r"), f"out:{stream}", K.ckpt(stream)]
    result: list[int] = run.call(SINK_WRITE, keys, args)
    return result


def test_acquire_is_exclusive_and_tokens_only_grow(rclient: Any) -> None:
    run = ScriptRunner(rclient)
    first = acquire(run, "s", "a#1")
    assert first[:3] == [1, "new", 0]
    assert acquire(run, "s", "b#1") is None  # held: nobody else gets it
    assert acquire(run, "s", "a#1") is None  # not even its holder, twice
    assert run.call(RELEASE, [K.lease("s"), K.ckpt("s")], ["a#1"]) == [1]
    second = acquire(run, "s", "b#1")
    assert second[0] == 2 and second[1] == "handoff"  # released cleanly: a handoff
    rclient.delete(K.lease("s"))  # as if b's lease expired (b died)
    third = acquire(run, "s", "c#1")
    assert third[0] == 3 and third[1] == "failover"


def test_acquire_returns_the_checkpoint_and_the_sink_window_tail(rclient: Any) -> None:
    run = ScriptRunner(rclient)
    rclient.hset(K.ckpt("s"), mapping={"last": "41", "recent": '[["41","d"]]', "window": "0"})
    rclient.zadd(K.sink_window("s", "r"), {"40\nx": 1, "41\ny": 2, "42\nz": 3})
    keys = [K.lease("s"), K.fence("s"), K.ckpt("s"), K.sink_window("s", "r")]
    token, kind, has_last, last, recent, window, tail = run.call(ACQUIRE, keys, ["a#1", TTL_MS, 2])
    assert (token, kind, has_last, last, window) == (1, "new", 1, "41", "0")
    assert json.loads(recent) == [["41", "d"]]
    assert tail == ["41\ny", "42\nz"]  # the newest two, oldest first


def test_renew_extends_only_our_own_leases_and_the_heartbeat(rclient: Any) -> None:
    run = ScriptRunner(rclient)
    acquire(run, "mine", "a#1", ttl_ms=200)
    acquire(run, "theirs", "b#1", ttl_ms=200)
    reply = run.call(
        RENEW, [K.members, K.lease("mine"), K.lease("theirs"), K.lease("x")], ["a#1", 5000]
    )
    now, flags = reply[0], reply[1:]
    assert flags == [1, 0, 0]
    assert rclient.pttl(K.lease("mine")) > 1000
    assert rclient.pttl(K.lease("theirs")) <= 200
    assert rclient.get(K.lease("theirs")) == "b#1"
    assert abs(rclient.zscore(K.members, "a#1") - (now + 5000)) < 5


def test_survey_prunes_expired_members_and_reports_holders(rclient: Any) -> None:
    run = ScriptRunner(rclient)
    run.call(RENEW, [K.members], ["a#1", 60_000])
    run.call(RENEW, [K.members], ["dead#1", 30])
    acquire(run, "s1", "a#1")
    assert wait_until(lambda: len(run.call(SURVEY, [K.members], [])[1]) == 2, 5.0)
    now, live, owners = run.call(SURVEY, [K.members, K.lease("s1"), K.lease("s2")], [])
    assert live[0] == "a#1" and int(live[1]) > now
    assert owners == ["a#1", ""]
    assert rclient.zscore(K.members, "dead#1") is None


def test_release_never_frees_a_lease_held_by_someone_else(rclient: Any) -> None:
    run = ScriptRunner(rclient)
    acquire(run, "s", "b#1")
    assert run.call(RELEASE, [K.lease("s"), K.ckpt("s")], ["a#1"]) == [0]
    assert rclient.get(K.lease("s")) == "b#1"
    assert rclient.hget(K.ckpt("s"), "released") == "0"


def test_save_with_a_stale_token_is_fenced_and_writes_nothing(rclient: Any) -> None:
    run = ScriptRunner(rclient)
    old = acquire(run, "s", "a#1")[0]
    rclient.delete(K.lease("s"))  # a's lease lapsed while it was paused
    new = acquire(run, "s", "b#1")[0]
    keys = [K.fence("s"), K.ckpt("s")]
    assert run.call(SAVE, keys, ["b#1", new, 1, "100", "[]", 2.0]) == []
    assert run.call(SAVE, keys, ["a#1", old, 1, "90", "[]", 3.0]) == [1]  # the late write
    ckpt = rclient.hgetall(K.ckpt("s"))
    assert (ckpt["last"], ckpt["owner"], ckpt["token"], ckpt["window"]) == ("100", "b#1", "2", "0")


def test_save_checks_each_stream_on_its_own_in_one_call(rclient: Any) -> None:
    run = ScriptRunner(rclient)
    a = acquire(run, "a", "m#1")[0]
    acquire(run, "b", "m#1")
    keys = [K.fence("a"), K.ckpt("a"), K.fence("b"), K.ckpt("b")]
    args = ["m#1", a, 1, "7", "[]", 1.0, 999, 1, "8", "[]", 1.0]
    assert run.call(SAVE, keys, args) == [2]
    assert rclient.hget(K.ckpt("a"), "last") == "7"
    assert rclient.hget(K.ckpt("b"), "last") is None
    assert run.call(SAVE, keys[:2], ["m#1", a, 0, "", "[]", 2.0]) == []  # no last id: cleared
    assert rclient.hget(K.ckpt("a"), "last") is None


def test_sink_write_drops_replays_keeps_reused_ids_and_trims_its_window(rclient: Any) -> None:
    run = ScriptRunner(rclient)
    token = acquire(run, "s", "a#1")[0]
    assert sink_write(run, "s", token, [("1", "x"), ("2", "y"), ("", "no id")]) == [1, 3, 0]
    # a replay after a failover: 1 and 2 again; "2" with other content is a reused id
    assert sink_write(run, "s", token, [("1", "x"), ("2", "y2"), ("3", "z"), ("", "no id")]) == [
        1,
        3,
        1,
    ]
    entries = rclient.xrange("out:s")
    assert [e[1]["id"] for e in entries] == ["1", "2", "", "2", "3", ""]
    assert all(e[1]["tok"] == str(token) for e in entries)
    assert sink_write(run, "s", token, [(str(i), "w") for i in range(10, 20)], window=4)[1] == 10
    assert rclient.zcard(K.sink_window("s", "r")) == 4


def test_sink_write_with_a_stale_token_adds_nothing(rclient: Any) -> None:
    run = ScriptRunner(rclient)
    old = acquire(run, "s", "a#1")[0]
    rclient.delete(K.lease("s"))
    new = acquire(run, "s", "b#1")[0]
    assert sink_write(run, "s", new, [("1", "x")], checkpoint=True) == [1, 1, 0]
    assert sink_write(run, "s", old, [("2", "late")], checkpoint=True) == [-1, 0, 0]
    assert [e[1]["data"] for e in rclient.xrange("out:s")] == ["x"]
    ckpt = rclient.hgetall(K.ckpt("s"))
    assert (ckpt["last"], ckpt["token"], ckpt["window"]) == ("1", str(new), "1")


def test_one_sink_write_serves_several_streams_and_fences_each_on_its_own(rclient: Any) -> None:
    run = ScriptRunner(rclient)
    a = acquire(run, "a", "m#1")[0]
    acquire(run, "b", "m#1")
    keys = [
        k for s in ("a", "b") for k in (K.fence(s), K.sink_window(s, "r"), f"out:{s}", K.ckpt(s))
    ]
    parts = [
        [a, 1, 2.5, "7", [["7\nx", "7", "x"]]],
        [99, 1, 2.5, "8", [["8\ny", "8", "y"]]],  # stale token
        [a, 0, 2.5, False, [["7\nx", "7", "x"], ["", "", "z"]]],  # a replay, an id-less event
    ]
    keys += keys[:4]
    args = [10, 0, "m#1", json.dumps(["id", "data"]), json.dumps(parts)]
    assert run.call(SINK_WRITE, keys, args) == [1, 1, 0, -1, 0, 0, 1, 1, 1]
    assert [e[1]["data"] for e in rclient.xrange("out:a")] == ["x", "z"]
    assert not rclient.exists("out:b")
    assert rclient.hget(K.ckpt("a"), "last") == "7" and rclient.hget(K.ckpt("b"), "last") is None


def test_sink_write_trims_the_target_stream_approximately(rclient: Any) -> None:
    run = ScriptRunner(rclient)
    token = acquire(run, "s", "a#1")[0]
    for start in range(0, 3000, 500):
        events = [(str(i), "d") for i in range(start, start + 500)]
        sink_write(run, "s", token, events, maxlen=1000, window=10)
    length = rclient.xlen("out:s")
    assert 1000 <= length < 3000  # MAXLEN ~ trims whole macro nodes only


def test_a_flushed_script_cache_is_reloaded_for_single_and_pipelined_calls(rclient: Any) -> None:
    run = ScriptRunner(rclient)
    run.load()
    rclient.script_flush()
    assert acquire(run, "s", "a#1")[0] == 1
    rclient.script_flush()
    results = run.call_many([(RENEW, [K.members, K.lease("s")], ["a#1", 1000])] * 2)
    assert [r[1:] for r in results] == [[1], [1]]


def test_sink_write_carries_any_text_through_its_json_argument(rclient: Any) -> None:
    run = ScriptRunner(rclient)
    token = acquire(run, "s", "a#1")[0]
    odd = 'quotes " and \\ backslash, \u00e9t\u00e9, \u2603, tab\t, nul\x00, emoji \U0001f600'
    assert sink_write(run, "s", token, [("1", odd), ("2", "")]) == [1, 2, 0]
    assert [e[1]["data"] for e in rclient.xrange("out:s")] == [odd, ""]


def test_xadd_batch_appends_and_sends_idmp_only_when_told(rclient: Any) -> None:
    run = ScriptRunner(rclient)
    rows = [["p", "1\nd", "1", "x"], ["", "", "", "y"]]
    args = [0, 0, json.dumps(["id", "data"]), json.dumps(rows)]
    assert run.call(XADD_BATCH, ["plain"], args) == 2
    assert [e[1] for e in rclient.xrange("plain")] == [
        {"id": "1", "data": "x"},
        {"id": "", "data": "y"},
    ]
    # Redis 7.0 has no IDMP: the server refusing the keyword shows the script sends it (the
    # 8.6 path itself is untested here; see the sink's docs)
    version = tuple(int(x) for x in rclient.info("server")["redis_version"].split(".")[:2])
    if version < (8, 6):
        with pytest.raises(redis.ResponseError):
            run.call(XADD_BATCH, ["plain"], [0, 1, json.dumps(["id", "data"]), json.dumps(rows)])
