"""Redis CPU spent on lease upkeep: 1,000 streams held by one and by three coordinators.

    python bench/cluster_leases.py [--streams 1000] [--seconds 20]

Starts its own redis-server (loopback, no persistence; stopped by PID at the end), then runs
real ``Coordinator`` threads with the default timing (lease_ttl 3 s: one RENEW call per second
with every lease and the heartbeat; claim_interval 0.5 s: one SURVEY of every lease key per
round) and a runner that starts nothing. Once every stream is held, redis-server's user +
system CPU is read from /proc/PID/stat over ``--seconds`` of steady state and reported as a
percentage of one core, against an idle server measured the same way in the same run. The
claim cap is raised to the stream count so the setup takes seconds; it does not change the
steady state (no moves). Target (issue 12): at most 2 % of one Redis core for 1,000 streams.
"""

from __future__ import annotations

import argparse
import time

from benchlib import ensure_repo_on_path, machine_note, table
from redis_server import RedisServer

ensure_repo_on_path()

from streamvisor.checkpoint.store import Checkpoint  # noqa: E402
from streamvisor.cluster.coordinator import Coordinator  # noqa: E402
from streamvisor.cluster.lease import LeaseTiming  # noqa: E402
from streamvisor.cluster.scripts import Keys  # noqa: E402


class NoStreams:
    """A runner that runs nothing (only the leases are measured)."""

    def start(self, stream: str, checkpoint: Checkpoint | None) -> None:
        pass

    def stop(self, stream: str) -> Checkpoint | None:
        return None


def steady_cpu(server: RedisServer, seconds: float) -> float:
    """Percent of one core redis-server used over ``seconds``."""
    before, started = server.cpu_seconds(), time.monotonic()
    time.sleep(seconds)  # a benchmark's measuring window, not a wait for a condition
    return (server.cpu_seconds() - before) / (time.monotonic() - started) * 100


def run(server: RedisServer, instances: int, streams: list[str], seconds: float) -> float:
    clients = [server.client(socket_timeout=2.0) for _ in range(instances)]
    coordinators = [
        Coordinator(
            client,
            Keys(f"bench{instances}:"),
            f"node{i}#1-{instances}",
            streams,
            NoStreams(),
            timing=LeaseTiming.for_ttl(3.0),
            claim_interval=0.5,
            max_moves=len(streams),
        )
        for i, client in enumerate(clients)
    ]
    try:
        for coordinator in coordinators:
            coordinator.start()
        deadline = time.monotonic() + 60
        while sum(len(c.holdings.streams()) for c in coordinators) < len(streams):
            if time.monotonic() > deadline:
                raise SystemExit("the coordinators did not take every stream within 60 s")
            time.sleep(0.1)
        time.sleep(2.0)  # let the startup rebalancing settle before measuring
        return steady_cpu(server, seconds)
    finally:
        for coordinator in coordinators:
            coordinator.close()
        for client in clients:
            client.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    streams = [f"stream-{i}" for i in range(args.streams)]
    rows = []
    with RedisServer() as server:
        idle = steady_cpu(server, args.seconds)
        rows.append(("idle redis-server", f"{idle:.2f}", "-", "-"))
        for instances in (1, 3):
            used = run(server, instances, streams, args.seconds)
            upkeep = max(0.0, used - idle)
            renewals = args.streams / 1.0  # every lease renewed once per ttl/3 = 1 s
            per_lease = upkeep / 100 / (renewals + instances * args.streams * 2) * 1e6
            rows.append(
                (
                    f"{instances} instance(s), {args.streams} streams",
                    f"{used:.2f}",
                    f"{upkeep:.2f}",
                    f"{per_lease:.2f}",
                )
            )
    print(f"lease_ttl 3 s, claim_interval 0.5 s, {args.seconds:g} s windows; {machine_note()}")
    print(
        table(
            ["scenario", "redis CPU % of a core", "upkeep % (minus idle)", "µs per key touched"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
