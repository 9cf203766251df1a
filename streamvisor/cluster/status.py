"""``streamvisor cluster status CONFIG``: each stream's owner and each live instance's load,
read from the cluster's Redis (one pipelined round trip; nothing is written).

``read_status`` does the I/O, ``render`` the text (pure). Exit codes: 0 ok, 1 Redis cannot
be reached, 2 the config is invalid or has no ``cluster:`` section.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from typing import Any

from streamvisor.cluster.balance import instance_name
from streamvisor.cluster.scripts import Keys
from streamvisor.policy.redact import redact_url

__all__ = ["read_status", "render", "run_status"]

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2


def read_status(client: Any, keys: Keys, streams: list[str]) -> dict[str, Any]:
    """The cluster as Redis sees it now.

    Returns:
        ``{"now_ms", "instances": {member: {"expires_in", "streams"}}, "streams": {name:
        {"owner", "token", "lease_expires_in", "checkpoint", "checkpoint_at"}}}``; durations
        in seconds, ``checkpoint_at`` in seconds since the epoch.

    Raises:
        redis.RedisError: Redis cannot be reached.
    """
    pipe = client.pipeline(transaction=False)
    pipe.time()
    pipe.zrange(keys.members, 0, -1, withscores=True)
    for stream in streams:
        pipe.get(keys.lease(stream))
        pipe.pttl(keys.lease(stream))
        pipe.get(keys.fence(stream))
        pipe.hmget(keys.ckpt(stream), "last", "at")
    replies = pipe.execute()
    seconds, micros = replies[0]
    now_ms = seconds * 1000 + micros // 1000
    members = {m: (score - now_ms) / 1000 for m, score in replies[1] if score > now_ms}
    result: dict[str, Any] = {}
    for i, stream in enumerate(streams):
        holder, pttl, fence, (last, at) = replies[2 + 4 * i : 6 + 4 * i]
        result[stream] = {
            "owner": holder,
            "token": int(fence) if fence is not None else None,
            "lease_expires_in": pttl / 1000 if holder is not None and pttl >= 0 else None,
            "checkpoint": last,
            "checkpoint_at": float(at) if at else None,
        }
    loads = Counter(info["owner"] for info in result.values() if info["owner"] is not None)
    instances = {m: {"expires_in": left, "streams": loads.get(m, 0)} for m, left in members.items()}
    return {"now_ms": now_ms, "instances": instances, "streams": result}


def render(status: dict[str, Any], *, url: str) -> str:
    """The status as two aligned tables (instances, then streams)."""
    instances, streams = status["instances"], status["streams"]
    now = status["now_ms"] / 1000
    lines = [
        f"cluster at {redact_url(url)}: {len(instances)} live instances, "
        f"{sum(1 for s in streams.values() if s['owner'])} of {len(streams)} streams owned",
        "",
    ]
    rows: list[tuple[str, ...]] = [("INSTANCE", "MEMBER", "STREAMS", "HEARTBEAT")]
    for member, info in sorted(instances.items()):
        rows.append(
            (instance_name(member), member, str(info["streams"]), f"{info['expires_in']:.1f}s")
        )
    lines += _table(rows)
    orphans = Counter(
        s["owner"] for s in streams.values() if s["owner"] and s["owner"] not in instances
    )
    for member, count in sorted(orphans.items()):
        lines.append(f"(not live: {member} still holds {count} leases until they expire)")
    lines.append("")
    rows = [("STREAM", "OWNER", "TOKEN", "LEASE", "CHECKPOINT", "SAVED")]  # same type
    for name, info in sorted(streams.items()):
        lease = info["lease_expires_in"]
        at = info["checkpoint_at"]
        rows.append(
            (
                name,
                info["owner"] or "-",
                "-" if info["token"] is None else str(info["token"]),
                "-" if lease is None else f"{lease:.1f}s",
                "-" if info["checkpoint"] is None else info["checkpoint"],
                "-" if at is None else f"{max(0.0, now - at):.1f}s ago",
            )
        )
    lines += _table(rows)
    return "\n".join(lines)


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


def run_status(path: str, *, as_json: bool = False) -> int:
    """The ``streamvisor cluster status`` command; returns the exit code."""
    from streamvisor.config.load import ConfigErrors, load_config

    try:
        config = load_config(path)
    except ConfigErrors as exc:
        print(exc.format(), file=sys.stderr)
        return EXIT_CONFIG
    if config.cluster is None:
        print(f"{path}: no 'cluster:' section (cluster status needs one)", file=sys.stderr)
        return EXIT_CONFIG
    import redis

    url = config.cluster.redis
    client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5.0)
    try:
        status = read_status(
            client, Keys(config.cluster.key_prefix), [s.name for s in config.streams]
        )
    except redis.RedisError as exc:
        print(f"streamvisor: cannot reach Redis at {redact_url(url)}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        client.close()
    print(json.dumps(status, indent=2, sort_keys=True) if as_json else render(status, url=url))
    return EXIT_OK
