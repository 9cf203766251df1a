"""Chaos acceptance for cluster mode: ``streamvisor run`` x3 with one config over the demo
source, lease_ttl 1 s. ``kill -9`` one; ``SIGSTOP`` another for twice the lease, then
``SIGCONT``; join a fourth; stop all cleanly. Then, from what Redis and the files hold:

- 0 lost in every sink (ids 1..N per stream, N past what was published before the stop);
- 0 duplicates in the redis_streams sink, and its tokens never decrease per stream (no write
  from a stale owner was accepted);
- failover (kill or stop, to the first entry written by the new owner, both on the Redis
  server's clock) at most lease_ttl + 1 s for every stream;
- balance within one stream of even after each change; no lease left after the clean stop.
"""

from __future__ import annotations

import collections
import datetime
import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from streamvisor.cluster.balance import instance_name
from streamvisor.cluster.scripts import Keys
from streamvisor.demo.source import DemoSource
from tests.support.daemon import DaemonProcess, write_config
from tests.support.demo import MakeDemo
from tests.support.redis_server import RedisServer
from tests.support.wait import wait_until

pytestmark = pytest.mark.timeout(90)

TTL = 1.0
FAILOVER_BOUND_MS = (TTL + 1.0) * 1000
HANDOFF_BOUND_MS = 1000
STREAMS = [f"s{i}" for i in range(9)]
FILE_STREAMS = STREAMS[:4]  # these also go to a file sink; the rest only to Redis
RATE = 25.0
K = Keys("chaos:")
CRASHES = 2  # kill -9 and SIGSTOP
SETTLE = 8.0  # seconds a membership change may take to rebalance (bounded, not slept)
STARTUP = 20.0  # three interpreters starting at once on a busy 2-core machine


@pytest.fixture
def source(make_demo: MakeDemo) -> DemoSource:
    return make_demo(STREAMS, rate=RATE)


def cluster_config(url: str, source: DemoSource) -> dict[str, Any]:
    return {
        "shutdown_timeout": 5,
        "cluster": {
            "redis": url,
            "instance": "${SV_NAME}",
            "lease_ttl": TTL,
            "claim_interval": 0.2,
            "key_prefix": K.prefix,
        },
        "checkpoint": {"store": "redis", "interval": 0.1},
        "defaults": {
            "read_timeout": 5,
            "backoff": {"initial": 0.02, "max": 0.2, "jitter": 0.3, "reset_after": 5},
            "max_restarts": {"count": 0, "within": 60},
            "breaker": {"failures": 0},
        },
        "streams": [{"name": s, "url": source.url(s)} for s in STREAMS],
        "sinks": [
            {
                "name": "redis",
                "type": "redis_streams",
                "redis": url,
                "stream": "sse:{stream}",
                "fields": {"id": "id", "data": "data", "tok": "token", "who": "instance"},
                "batch": {"count": 200, "period": 0.02},
            },
            {
                "name": "archive",
                "type": "file",
                "path": "events-${SV_NAME}.jsonl",
                "streams": FILE_STREAMS,
                "flush_interval": 0,
            },
        ],
    }


class Cluster:
    """The daemons of one test and what Redis says about them."""

    def __init__(self, workdir: Path, config: Path, redis: Any) -> None:
        self.workdir, self.config, self.r = workdir, config, redis
        self.daemons: dict[str, DaemonProcess] = {}

    def start(self, name: str) -> DaemonProcess:
        daemon = DaemonProcess(self.workdir, self.config, env={"SV_NAME": name}, name=name)
        self.daemons[name] = daemon.start()
        return daemon

    def now_ms(self) -> int:
        seconds, micros = self.r.time()
        return int(seconds) * 1000 + int(micros) // 1000

    def owners(self) -> dict[str, str | None]:
        holders = self.r.mget([K.lease(s) for s in STREAMS])
        return {s: (instance_name(h) if h else None) for s, h in zip(STREAMS, holders, strict=True)}

    def tokens(self) -> dict[str, int]:
        return {s: int(self.r.get(K.fence(s)) or 0) for s in STREAMS}

    def balanced(self, names: set[str]) -> bool:
        owners = self.owners()
        if any(owner not in names for owner in owners.values()):
            return False
        loads = collections.Counter(owners.values())
        counts = [loads.get(name, 0) for name in names]
        return max(counts) - min(counts) <= 1

    def wait_balanced(
        self, names: set[str], what: str, source: DemoSource, timeout: float = SETTLE
    ) -> None:
        """Balanced over ``names``, and every stream checkpointed past what was published
        once it was (chaos then strikes a settled cluster, as in production)."""
        if not wait_until(lambda: self.balanced(names), timeout, 0.05):
            pytest.fail(f"not balanced over {sorted(names)} after {what}: {self.owners()}")
        published = {s: source.published(s) for s in STREAMS}

        def checkpointed() -> bool:
            lasts = [self.r.hget(K.ckpt(s), "last") for s in STREAMS]
            return all(
                last is not None and int(last) >= published[s]
                for s, last in zip(STREAMS, lasts, strict=True)
            )

        if not wait_until(checkpointed, SETTLE, 0.05):
            pytest.fail(f"checkpoints did not catch up after {what}")

    def entries(self, stream: str) -> list[tuple[int, int, int]]:
        """(server ms of the XADD, id, token) of every entry of ``stream`` in the sink."""
        return [
            (int(entry_id.split("-")[0]), int(f["id"]), int(f["tok"]))
            for entry_id, f in self.r.xrange(f"sse:{stream}")
        ]

    def failovers(self, at_ms: int, tokens: dict[str, int], streams: list[str]) -> dict[str, int]:
        """Per stream: ms from ``at_ms`` to its first entry with a newer token (-1: none)."""
        result = {}
        for stream in streams:
            later = [ms for ms, _, tok in self.entries(stream) if tok > tokens[stream]]
            result[stream] = later[0] - at_ms if later else -1
        return result

    def wait_failed_over(
        self, at_ms: int, tokens: dict[str, int], streams: list[str]
    ) -> dict[str, int]:
        wait_until(
            lambda: all(v >= 0 for v in self.failovers(at_ms, tokens, streams).values()), 10.0, 0.05
        )
        return self.failovers(at_ms, tokens, streams)

    def handoffs(self, tokens: dict[str, int], streams: list[str]) -> dict[str, int]:
        """Per stream: ms from its release (the old owner's log line) to the new owner's
        first entry (-1: not found)."""
        result = {}
        for stream in streams:
            released = [
                _log_ms(line)
                for daemon in self.daemons.values()
                for line in daemon.stderr().splitlines()
                if line.endswith(f"released stream {stream}")
            ]
            later = [ms for ms, _, tok in self.entries(stream) if tok > tokens[stream]]
            result[stream] = later[0] - max(released) if released and later else -1
        return result


def _log_ms(line: str) -> int:
    """The log line's timestamp (``2026-01-02T03:04:05.678Z``, UTC) in epoch ms."""
    stamp = datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
    return int(stamp.replace(tzinfo=datetime.UTC).timestamp() * 1000)


def file_ids(workdir: Path) -> dict[str, list[int]]:
    ids: dict[str, list[int]] = collections.defaultdict(list)
    for path in workdir.glob("events-*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a line torn by kill -9
            ids[event["stream"]].append(int(event["id"]))
    return ids


def test_three_daemons_share_streams_and_survive_kill_stop_and_join(
    tmp_path: Path, redis_server: RedisServer, redis_url: str, source: DemoSource
) -> None:
    config = write_config(tmp_path / "cluster.yaml", cluster_config(redis_url, source))
    r = redis_server.client()
    cluster = Cluster(tmp_path, config, r)
    stopped: list[DaemonProcess] = []
    report: dict[str, Any] = {}
    try:
        for name in ("a", "b", "c"):
            cluster.start(name)
        cluster.wait_balanced({"a", "b", "c"}, "start", source, STARTUP)
        assert wait_until(lambda: all(r.xlen(f"sse:{s}") for s in STREAMS), 5.0)

        # kill -9 one: its streams move within lease_ttl + 1 s
        victims = [s for s, o in cluster.owners().items() if o == "a"]
        tokens, at = cluster.tokens(), cluster.now_ms()
        cluster.daemons["a"].kill()
        report["kill -9"] = cluster.wait_failed_over(at, tokens, victims)
        cluster.wait_balanced({"b", "c"}, "kill -9 a", source)

        # SIGSTOP another for twice the lease: its streams move; after SIGCONT it must not
        # write with its stale tokens, and it gets its share back
        victims = [s for s, o in cluster.owners().items() if o == "b"]
        tokens, at = cluster.tokens(), cluster.now_ms()
        cluster.daemons["b"].send_signal(signal.SIGSTOP)
        stopped.append(cluster.daemons["b"])
        time.sleep(2 * TTL)  # the scenario itself: a pause of exactly this length
        cluster.daemons["b"].send_signal(signal.SIGCONT)
        stopped.clear()
        report["SIGSTOP 2xttl"] = cluster.wait_failed_over(at, tokens, victims)
        cluster.wait_balanced({"b", "c"}, "SIGCONT b", source)

        # a fourth instance joins: b and c hand streams over (release, then d claims)
        tokens = cluster.tokens()
        cluster.start("d")
        cluster.wait_balanced({"b", "c", "d"}, "join d", source)
        moved = [s for s, o in cluster.owners().items() if o == "d"]
        report["planned handoff"] = cluster.handoffs(tokens, moved)

        # everything published so far reaches the sinks; then a clean stop of all
        published = {s: source.published(s) for s in STREAMS}
        caught_up = lambda: all(  # noqa: E731
            (e := cluster.entries(s)) and e[-1][1] >= published[s] for s in STREAMS
        )
        assert wait_until(caught_up, 10.0, 0.05), "the sinks did not catch up"
        for name in ("b", "c", "d"):
            assert cluster.daemons[name].terminate() == 0, cluster.daemons[name].stderr()[-2000:]
        assert r.keys(K.prefix + "*:lease") == []
        assert r.zcard(K.members) == 0
    finally:
        for daemon in stopped:
            daemon.send_signal(signal.SIGCONT)
        for daemon in cluster.daemons.values():
            daemon.kill()
        r.close()

    for what, times in report.items():
        bound = HANDOFF_BOUND_MS if what == "planned handoff" else FAILOVER_BOUND_MS
        assert times and min(times.values()) >= 0, f"{what}: no new owner's entry {times}"
        assert max(times.values()) <= bound, f"{what}: ms per stream {times}"
    files = file_ids(tmp_path)
    for stream in STREAMS:
        entries = cluster.entries(stream)
        ids = [i for _, i, _ in entries]
        tokens_seen = [tok for _, _, tok in entries]
        assert ids == list(range(1, len(ids) + 1)), f"{stream}: lost or duplicated in Redis"
        assert len(ids) >= published[stream]
        assert tokens_seen == sorted(tokens_seen), f"{stream}: a stale owner's write was accepted"
        if stream in FILE_STREAMS:
            assert set(range(1, published[stream] + 1)) <= set(files[stream]), (
                f"{stream}: lost in files"
            )
    print("ms to the new owner's first entry:", json.dumps(report, sort_keys=True))
    print("file duplicates:", {s: len(files[s]) - len(set(files[s])) for s in FILE_STREAMS})
