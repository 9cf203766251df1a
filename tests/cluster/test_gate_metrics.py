"""The write gate in front of sinks Redis cannot fence, the cluster metrics, and the status
table: pure, with a scripted fence and plain dicts."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from prometheus_client import generate_latest
from prometheus_client.registry import CollectorRegistry

from streamvisor.cluster.gate import GatedSink
from streamvisor.cluster.lease import WriteVerdict
from streamvisor.cluster.metrics import ClusterCollector
from streamvisor.cluster.status import render
from streamvisor.sinks.base import SinkError
from streamvisor.sse import Event


class ScriptedFence:
    member = "me#1-aa"

    def __init__(self, verdicts: dict[str, WriteVerdict]) -> None:
        self.verdicts = verdicts
        self.asked: list[tuple[str, float]] = []

    def token(self, stream: str) -> int | None:
        return 1

    def fenced(self, stream: str) -> None:
        raise AssertionError("a gate never reports fencing")

    def wait_writable(self, stream: str, timeout: float) -> WriteVerdict:
        self.asked.append((stream, timeout))
        return self.verdicts[stream]


class ListSink:
    name = "list"
    max_batch = 10
    max_wait = 0.5

    def __init__(self) -> None:
        self.batches: list[list[Event]] = []
        self.closed = self.flushed = False

    def write(self, events: Sequence[Event]) -> None:
        self.batches.append(list(events))

    def flush(self) -> None:
        self.flushed = True

    def close(self) -> None:
        self.closed = True


def events(*streams: str) -> list[Event]:
    return [Event(s, str(i), "message", "d") for i, s in enumerate(streams)]


def test_the_gate_writes_held_streams_and_drops_streams_owned_elsewhere() -> None:
    fence = ScriptedFence({"mine": WriteVerdict.WRITE, "theirs": WriteVerdict.DROP})
    inner = ListSink()
    gate = GatedSink(inner, fence, timeout=2.0)
    gate.write(events("mine", "theirs", "mine", "theirs"))
    assert [[e.stream for e in b] for b in inner.batches] == [["mine", "mine"]]
    assert gate.dropped == 2
    assert fence.asked == [("mine", 2.0), ("theirs", 2.0)]  # once per stream per batch
    gate.write(events("theirs"))
    assert len(inner.batches) == 1  # nothing to write: the inner sink is not called
    assert (gate.name, gate.max_batch, gate.max_wait) == ("list", 10, 0.5)
    gate.flush()
    gate.close()
    assert inner.flushed and inner.closed


def test_an_unconfirmed_lease_past_the_timeout_fails_the_batch_loudly() -> None:
    inner = ListSink()
    gate = GatedSink(inner, ScriptedFence({"s": WriteVerdict.WAIT}), timeout=1.5)
    with pytest.raises(SinkError, match=r"stream s stayed unconfirmed for 1\.5s"):
        gate.write(events("s"))
    assert inner.batches == []


STATUS = {
    "member": "web-1#7-abc",
    "live": 3,
    "quota": 4,
    "owned": 1,
    "streams": {
        "a": {
            "owner": "web-1#7-abc",
            "token": 5,
            "lease_expires_in": 2.5,
            "failovers": 1,
            "handoffs": 2,
            "lost": 0,
            "fenced_writes": 0,
        },
        "b": {
            "owner": None,
            "token": None,
            "lease_expires_in": None,
            "failovers": 0,
            "handoffs": 1,
            "lost": 1,
            "fenced_writes": 3,
        },
    },
    "sinks": {
        "archive": {"mode": "gated", "guard_dropped": 7},
        "redis": {"mode": "fenced", "duplicates_dropped": 4},
    },
}


def test_cluster_metrics_from_a_status() -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ClusterCollector(lambda: STATUS))
    text = generate_latest(registry).decode()
    for line in (
        "streamvisor_cluster_live_instances 3.0",
        "streamvisor_cluster_quota 4.0",
        "streamvisor_cluster_owned_streams 1.0",
        'streamvisor_cluster_token{stream="a"} 5.0',
        'streamvisor_cluster_lease_expires_in_seconds{stream="a"} 2.5',
        'streamvisor_cluster_failovers_total{stream="a"} 1.0',
        'streamvisor_cluster_handoffs_total{stream="b"} 1.0',
        'streamvisor_cluster_lost_total{stream="b"} 1.0',
        'streamvisor_cluster_fenced_writes_total{stream="b"} 3.0',
        'streamvisor_cluster_guard_dropped_total{sink="archive"} 7.0',
        'streamvisor_cluster_sink_duplicates_dropped_total{sink="redis"} 4.0',
    ):
        assert line in text, line
    assert 'streamvisor_cluster_token{stream="b"}' not in text  # not owned: no token series


def test_the_status_table_names_owners_loads_and_leases_left_by_the_dead() -> None:
    status = {
        "now_ms": 1_000_000,
        "instances": {"web-1#7-abc": {"expires_in": 2.5, "streams": 1}},
        "streams": {
            "a": {
                "owner": "web-1#7-abc",
                "token": 5,
                "lease_expires_in": 2.4,
                "checkpoint": "41",
                "checkpoint_at": 999.5,
            },
            "b": {
                "owner": "gone#9-x",
                "token": 2,
                "lease_expires_in": 0.3,
                "checkpoint": None,
                "checkpoint_at": None,
            },
            "c": {
                "owner": None,
                "token": None,
                "lease_expires_in": None,
                "checkpoint": None,
                "checkpoint_at": None,
            },
        },
    }
    text = render(status, url="redis://:secret@h:6379/0")
    lines = text.splitlines()
    assert lines[0] == "cluster at redis://:***@h:6379/0: 1 live instances, 2 of 3 streams owned"
    assert lines[2].split() == ["INSTANCE", "MEMBER", "STREAMS", "HEARTBEAT"]
    assert lines[3].split() == ["web-1", "web-1#7-abc", "1", "2.5s"]
    assert "(not live: gone#9-x still holds 1 leases until they expire)" in lines
    rows = {line.split()[0]: line.split() for line in lines[lines.index("") + 3 :] if line}
    assert rows["a"] == ["a", "web-1#7-abc", "5", "2.4s", "41", "0.5s", "ago"]
    assert rows["c"] == ["c", "-", "-", "-", "-", "-"]
    assert "secret" not in text
