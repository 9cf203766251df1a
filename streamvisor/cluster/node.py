"""``ClusterNode``: what cluster mode adds to one daemon, behind a few calls.

The daemon builds a node from its config (this connects to Redis and loads the scripts),
builds its ``Streamvisor`` through ``node.build`` (no streams; sinks fenced or gated),
starts it, then ``node.start(sv)``; the coordinator then adds and removes streams through
``Streamvisor.add_stream`` / ``remove_stream``. At shutdown: ``freeze`` (no more moves),
stop streamvisor and write the final checkpoints through ``node.store``, then ``close``
(release every lease, leave the membership).

Which streams a ``redis_streams`` sink checkpoints: those it alone takes, when it writes to
the cluster's Redis. Their checkpoint moves inside the sink's fenced script, so the sink and
the checkpoint can never disagree (exactly once into Redis); other streams' checkpoints are
the daemon's usual "every sink has written up to here", saved fenced.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from streamvisor.checkpoint.store import Checkpoint
from streamvisor.cluster.balance import MEMBER_SEPARATOR
from streamvisor.cluster.checkpoint_store import DEFAULT_RECENT_IDS, RedisCheckpointStore
from streamvisor.cluster.coordinator import Coordinator
from streamvisor.cluster.gate import GatedSink
from streamvisor.cluster.lease import LeaseTiming
from streamvisor.cluster.scripts import Keys, ScriptRunner
from streamvisor.cluster.settings import same_redis
from streamvisor.errors import StreamvisorError
from streamvisor.policy.redact import redact_url
from streamvisor.sinks.base import Sink
from streamvisor.sinks.redis_streams import RedisStreamsSink

if TYPE_CHECKING:
    from streamvisor.api.facade import Streamvisor
    from streamvisor.config.load import Config
    from streamvisor.spec import StreamSpec

__all__ = ["ClusterError", "ClusterNode", "default_instance", "sink_checkpoints"]

log = logging.getLogger(__name__)


class ClusterError(StreamvisorError):
    """Cluster mode cannot start (Redis unreachable or refusing); the message is redacted."""


def default_instance() -> str:
    """``<hostname>-<pid>``: the instance name when the config gives none."""
    return f"{socket.gethostname()}-{os.getpid()}"


def sink_checkpoints(config: Config) -> dict[str, str]:
    """Stream -> name of the ``redis_streams`` sink that alone takes it, on the cluster's
    Redis (that sink's fenced script writes the stream's checkpoint)."""
    assert config.cluster is not None
    result: dict[str, str] = {}
    for spec in config.streams:
        takers = [s for s in config.sinks if s.streams is None or spec.name in s.streams]
        if len(takers) != 1 or takers[0].redis_streams is None:
            continue
        if same_redis(takers[0].redis_streams.redis, config.cluster.redis):
            result[spec.name] = takers[0].name
    return result


class StreamvisorRunner:
    """The coordinator's ``StreamRunner`` over a ``Streamvisor``.

    A stream run here before keeps its position in the hub after ``remove_stream``; until
    it publishes again, that position is older than the checkpoint another instance has
    written since, so it is never saved (``fresh``).
    """

    def __init__(self, specs: Mapping[str, StreamSpec]) -> None:
        self.sv: Streamvisor | None = None
        self.specs = dict(specs)
        self._lock = threading.Lock()
        self._stale: dict[str, str | None] = {}

    def start(self, stream: str, checkpoint: Checkpoint | None) -> None:
        """Add ``stream`` to streamvisor, resuming after the checkpoint's id with its dedup
        ids seeded (the hub keeps the position of an earlier stint: remembered as stale)."""
        assert self.sv is not None
        before = self.sv.positions().get(stream)
        with self._lock:
            if before is not None:
                self._stale[stream] = before[0]
            else:
                self._stale.pop(stream, None)
        self.sv.add_stream(
            self.specs[stream],
            last_event_id=checkpoint.last_event_id if checkpoint is not None else None,
            recent=checkpoint.recent if checkpoint is not None else (),
        )

    def stop(self, stream: str) -> Checkpoint | None:
        """Remove ``stream``; return its position (what every sink wrote), unless stale."""
        assert self.sv is not None
        self.sv.remove_stream(stream)
        position = self.sv.positions().get(stream)
        if position is None:
            return None
        checkpoint = Checkpoint(position[0], position[1], time.time())
        return checkpoint if self.fresh({stream: checkpoint}) else None

    def fresh(self, checkpoints: Mapping[str, Checkpoint]) -> dict[str, Checkpoint]:
        """The checkpoints that are not a stale hub position from an earlier stint."""
        with self._lock:
            result = {}
            for stream, checkpoint in checkpoints.items():
                if stream in self._stale:
                    if self._stale[stream] == checkpoint.last_event_id:
                        continue
                    del self._stale[stream]
                result[stream] = checkpoint
            return result


class _FreshStore:
    """The ``CheckpointStore`` the daemon uses: stale positions filtered out, then fenced."""

    def __init__(self, store: RedisCheckpointStore, runner: StreamvisorRunner) -> None:
        self.inner = store
        self._runner = runner

    def load(self) -> dict[str, Checkpoint]:
        """Every stored checkpoint."""
        return self.inner.load()

    def save(self, checkpoints: Mapping[str, Checkpoint]) -> None:
        """Save the fresh ones (fenced)."""
        fresh = self._runner.fresh(checkpoints)
        if fresh:
            self.inner.save(fresh)

    def close(self) -> None:
        """Close the store."""
        self.inner.close()


class ClusterNode:
    """Cluster mode for one daemon.

    Args:
        config: a config with ``cluster`` and a Redis ``checkpoint`` store.
        client: a ``redis.Redis`` (tests); default: one made from ``cluster.redis``.

    Raises:
        ClusterError: Redis cannot be reached or refuses to load the scripts.
    """

    def __init__(self, config: Config, *, client: Any = None) -> None:
        cluster, checkpoint = config.cluster, config.checkpoint
        assert cluster is not None and checkpoint is not None
        self.config = config
        self.instance = cluster.instance or default_instance()
        self.member = f"{self.instance}{MEMBER_SEPARATOR}{os.getpid()}-{secrets.token_hex(3)}"
        self.timing = LeaseTiming.for_ttl(cluster.lease_ttl)
        self.keys = Keys(cluster.key_prefix)
        if client is None:
            import redis

            wait = max(0.25, cluster.lease_ttl / 4)  # a hung call must not outlast a renewal
            client = redis.Redis.from_url(
                cluster.redis,
                decode_responses=True,
                socket_timeout=wait,
                socket_connect_timeout=wait,
            )
        self.client = client
        streams = [s.name for s in config.streams if s.enabled]
        self.sink_checkpoints = sink_checkpoints(config)
        self.runner = StreamvisorRunner({s.name: s for s in config.streams})
        recent = DEFAULT_RECENT_IDS if checkpoint.recent_ids is None else checkpoint.recent_ids
        self.coordinator = Coordinator(
            client,
            self.keys,
            self.member,
            streams,
            self.runner,
            timing=self.timing,
            claim_interval=cluster.claim_interval,
            max_moves=cluster.max_moves_per_round,
            save=lambda checkpoints: self.store.save(checkpoints),
            sink_windows={
                s: self.keys.sink_window(s, sink) for s, sink in self.sink_checkpoints.items()
            },
            recent_ids=recent,
        )
        redis_store = RedisCheckpointStore(
            client,
            self.keys,
            streams,
            url=cluster.redis,
            fence=self.coordinator.holdings,
            recent_ids=checkpoint.recent_ids,
            sink_checkpointed=self.sink_checkpoints,
        )
        self.store = _FreshStore(redis_store, self.runner)
        self.sinks: list[Sink] = []
        self._url = redact_url(cluster.redis)
        try:
            self.client.ping()
            ScriptRunner(self.client).load()
        except Exception as exc:
            raise ClusterError(f"cluster: cannot use Redis at {self._url}: {exc}") from exc

    # -- wiring ------------------------------------------------------------------------
    def wrap_sink(self, sink: Sink) -> Sink:
        """Fence a ``redis_streams`` sink on the cluster's Redis; gate every other sink."""
        assert self.config.cluster is not None
        if isinstance(sink, RedisStreamsSink) and same_redis(sink.url, self.config.cluster.redis):
            mine = {s for s, name in self.sink_checkpoints.items() if name == sink.name}
            sink.attach(self.coordinator.holdings, self.keys, checkpoints=mine)
            self.sinks.append(sink)
            return sink
        gated = GatedSink(sink, self.coordinator.holdings, timeout=2 * self.timing.ttl)
        self.sinks.append(gated)
        return gated

    def build(self, config: Config, *, stop_event: threading.Event, **kwargs: Any) -> Streamvisor:
        """A ``Streamvisor`` with the config's sinks (fenced or gated) and no streams.

        Args:
            config: the daemon's config.
            stop_event: set at shutdown.
            **kwargs: passed to ``Streamvisor.from_loaded`` (``on_state``, ``observer``).
        """
        from streamvisor.api.facade import Streamvisor

        return Streamvisor.from_loaded(
            dataclasses.replace(config, streams=()),
            stop_event=stop_event,
            wrap_sink=self.wrap_sink,
            **kwargs,
        )

    def start(self, sv: Streamvisor) -> None:
        """Start claiming streams for ``sv`` (already started)."""
        self.runner.sv = sv
        self.coordinator.start()
        log.info("cluster: joined as %s (Redis %s)", self.member, self._url)

    def freeze(self) -> None:
        """Shutdown began: no more claims or releases (leases are still renewed)."""
        self.coordinator.freeze()

    def close(self) -> None:
        """Release every lease, leave the membership, close the Redis client."""
        self.coordinator.close()
        self.client.close()

    def reload(self, old: Mapping[str, StreamSpec], new: Mapping[str, StreamSpec]) -> None:
        """Apply a reloaded stream list: changed streams are handed off and claimed again."""
        changed = [
            n
            for n, spec in new.items()
            if n in old and old[n].settings_key() != spec.settings_key()
        ]
        self.runner.specs = dict(new)
        self.coordinator.update_streams([n for n, s in new.items() if s.enabled], changed)

    # -- status ------------------------------------------------------------------------
    def owned(self) -> list[str]:
        """The streams this instance holds now."""
        return self.coordinator.holdings.streams()

    def ready(self, seen: set[str]) -> bool:
        """One balance round done, and every held stream connected once or ended."""
        return self.coordinator.rounds > 0 and all(s in seen for s in self.owned())

    def status(self) -> dict[str, Any]:
        """The coordinator's status plus the instance name and per-sink guard counters."""
        status = self.coordinator.status()
        status["instance"] = self.instance
        sinks: dict[str, Any] = {}
        for sink in self.sinks:
            if isinstance(sink, GatedSink):
                sinks[sink.name] = {"mode": "gated", "guard_dropped": sink.dropped}
            elif isinstance(sink, RedisStreamsSink):
                sinks[sink.name] = {
                    "mode": "fenced",
                    "written": sink.written,
                    "duplicates_dropped": sink.duplicates,
                    "not_owned_dropped": sink.not_owned,
                }
        status["sinks"] = sinks
        return status

    def annotate(self, snapshot: dict[str, Any]) -> None:
        """Add the cluster's view to a daemon status snapshot (for /streams and /metrics)."""
        status = self.status()
        per_stream = status.pop("streams")
        for name, info in snapshot.get("streams", {}).items():
            info.update(per_stream.get(name, {"owner": None, "token": None}))
        snapshot["cluster"] = {**status, "streams": per_stream}
