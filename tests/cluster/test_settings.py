"""The ``cluster:`` section, the Redis checkpoint store and the ``redis_streams`` sink keys:
good files become the right values; each bad one reports exactly its problem with its line."""

from __future__ import annotations

import pytest

from streamvisor.cluster.settings import DEFAULT_FIELDS, ClusterConfig, RedisStreamsOptions
from streamvisor.config.load import CheckpointConfig
from tests.support import config as cfg
from tests.support.config import STREAM

CLUSTER = """\
cluster:
  redis: redis://127.0.0.1:6379/0
checkpoint:
  store: redis
"""


def test_a_full_cluster_config_becomes_these_values() -> None:
    config = cfg.parse(
        STREAM
        + """\
cluster:
  redis: redis://:${REDIS_PASSWORD}@127.0.0.1:6379/2
  instance: web-1
  lease_ttl: 5
  claim_interval: 0.25
  key_prefix: "sv:"
  max_moves_per_round: 4
checkpoint:
  store: redis
  recent_ids: 32
  interval: 0.5
sinks:
  - name: to-redis
    type: redis_streams
    redis: redis://127.0.0.1:6379/3
    stream: "sse:{stream}:{event}"
    fields: {payload: data, id: id, tok: token}
    maxlen: 100000
    batch: {count: 200, period: 0.02}
    dedup_window: 500
""",
        environ={"REDIS_PASSWORD": "hunter22"},
    )
    assert config.cluster == ClusterConfig(
        redis="redis://:hunter22@127.0.0.1:6379/2",
        instance="web-1",
        lease_ttl=5.0,
        claim_interval=0.25,
        key_prefix="sv:",
        max_moves_per_round=4,
    )
    assert config.checkpoint == CheckpointConfig(
        path="",
        interval=0.5,
        store="redis",
        redis="redis://:hunter22@127.0.0.1:6379/2",  # defaults to cluster.redis
        recent_ids=32,
    )
    sink = config.sinks[0]
    assert sink.redis_streams == RedisStreamsOptions(
        redis="redis://127.0.0.1:6379/3",
        stream="sse:{stream}:{event}",
        fields=(("payload", "data"), ("id", "id"), ("tok", "token")),
        maxlen=100000,
        batch_count=200,
        batch_period=0.02,
        dedup_window=500,
    )
    assert (sink.batch_max_events, sink.batch_max_wait) == (200, 0.02)
    assert "hunter22" in config.secrets
    assert "hunter22" not in repr(config.cluster) and "hunter22" not in repr(sink)


def test_defaults_of_the_cluster_and_the_sink() -> None:
    config = cfg.parse(
        STREAM + CLUSTER + "sinks:\n  - {name: r, type: redis_streams, redis: 'redis://h'}\n"
    )
    assert config.cluster == ClusterConfig(redis="redis://127.0.0.1:6379/0")
    assert config.cluster.lease_ttl == 3.0 and config.cluster.claim_interval == 0.5
    assert config.cluster.key_prefix == "streamvisor:" and config.cluster.instance is None
    options = config.sinks[0].redis_streams
    assert options is not None
    assert (options.stream, options.fields, options.maxlen) == ("sse:{stream}", DEFAULT_FIELDS, 0)


def test_the_redis_store_works_without_cluster_mode_given_a_url() -> None:
    config = cfg.parse(STREAM + "checkpoint: {store: redis, redis: 'redis://127.0.0.1:1'}\n")
    assert config.cluster is None
    assert config.checkpoint is not None and config.checkpoint.redis == "redis://127.0.0.1:1"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            STREAM + "cluster:\n  redis: redis://127.0.0.1:6379\n",
            "c.yaml:4: cluster: cluster mode needs a shared checkpoint: "
            "add 'checkpoint: {store: redis}'",
            id="cluster-without-checkpoint",
        ),
        pytest.param(
            STREAM + "cluster:\n  redis: redis://127.0.0.1:6379\ncheckpoint:\n  path: x.db\n",
            "c.yaml:4: cluster: cluster mode needs a shared checkpoint: "
            "add 'checkpoint: {store: redis}'",
            id="cluster-with-sqlite",
        ),
        pytest.param(
            STREAM + "checkpoint:\n  store: redis\n",
            "c.yaml:5: checkpoint: the redis store needs a Redis URL: "
            "add 'redis: redis://HOST:PORT'",
            id="redis-store-without-url",
        ),
        pytest.param(
            STREAM + "checkpoint:\n  store: redis\n  path: x.db\n  redis: redis://h\n",
            "c.yaml:6: checkpoint.path: 'path' does not apply to the redis store",
            id="path-with-redis-store",
        ),
        pytest.param(
            STREAM + CLUSTER + "  redis: redis://127.0.0.1:6380/0\n",
            "c.yaml:8: checkpoint.redis: in cluster mode the checkpoint store must be the "
            "cluster's Redis (the fencing tokens live there); leave it out",
            id="checkpoint-on-another-redis",
        ),
        pytest.param(
            STREAM + "checkpoint:\n  store: mongo\n  path: x.db\n",
            "c.yaml:5: checkpoint.store: expected 'sqlite' or 'redis', got 'mongo'",
            id="unknown-store",
        ),
        pytest.param(
            STREAM + CLUSTER.replace("127.0.0.1:6379/0", "127.0.0.1:6379/0\n  lease_ttl: 0.5"),
            "c.yaml:6: cluster.lease_ttl: must be at least 1, got 0.5",
            id="lease-too-short",
        ),
        pytest.param(
            STREAM + CLUSTER.replace("6379/0", "6379/0\n  lease_ttl: 2\n  claim_interval: 1.5"),
            "c.yaml:7: cluster.claim_interval: must be at most half of lease_ttl (1s), got 1.5",
            id="claim-interval-too-long",
        ),
        pytest.param(
            STREAM + CLUSTER.replace("redis://127.0.0.1:6379/0", "http://127.0.0.1:6379"),
            "c.yaml:5: cluster.redis: expected a redis://, rediss:// or unix:// URL, "
            "got 'http://127.0.0.1:6379'",
            id="not-a-redis-url",
        ),
        pytest.param(
            STREAM + CLUSTER.replace("redis://127.0.0.1:6379/0", "redis://:pw@h:99999"),
            "c.yaml:5: cluster.redis: not a valid Redis URL: 'redis://:***@h:99999'",
            id="bad-port-and-password-masked",
        ),
        pytest.param(
            STREAM + CLUSTER + "  recent_ids: -1\n",
            "c.yaml:8: checkpoint.recent_ids: must be at least 0, got -1",
            id="negative-recent-ids",
        ),
        pytest.param(
            STREAM + CLUSTER.replace("6379/0", "6379/0\n  max_moves: 3"),
            "c.yaml:6: cluster.max_moves: unknown key 'max_moves' "
            "(did you mean 'max_moves_per_round'?)",
            id="unknown-cluster-key",
        ),
        pytest.param(
            STREAM + "sinks:\n  - {name: r, type: redis_streams}\n",
            "c.yaml:5: sinks[0]: missing required key 'redis'",
            id="sink-without-redis",
        ),
        pytest.param(
            STREAM + "sinks:\n  - {name: r, type: redis_streams, redis: 'redis://h',"
            " stream: 'sse:{name}'}\n",
            "c.yaml:5: sinks[0].stream: unknown placeholder {name} (expected {stream} or {event})",
            id="sink-unknown-placeholder",
        ),
        pytest.param(
            STREAM + "sinks:\n  - {name: r, type: redis_streams, redis: 'redis://h',"
            " fields: {d: body}}\n",
            "c.yaml:5: sinks[0].fields.d: expected 'stream', 'id', 'event', 'data', "
            "'last_event_id', 'received_at', 'token' or 'instance', got 'body'",
            id="sink-unknown-field-source",
        ),
        pytest.param(
            STREAM + "sinks:\n  - {name: r, type: redis_streams, redis: 'redis://h',"
            " batch: {max_events: 5}}\n",
            "c.yaml:5: sinks[0].batch.max_events: unknown key 'max_events' "
            "(expected 'count' or 'period')",
            id="sink-webhook-batch-keys",
        ),
        pytest.param(
            STREAM + CLUSTER + "sinks:\n  - {name: f, type: file, path: x, "
            "buffer: {type: disk, path: b.db}}\n",
            "c.yaml:9: sinks[0].buffer.type: disk buffers are not supported in cluster mode "
            "(buffered events would be stranded here when their stream moves); use a memory "
            "buffer",
            id="disk-buffer-in-cluster-mode",
        ),
        pytest.param(
            STREAM + "sinks:\n  - {name: r, type: file, path: x, maxlen: 5}\n",
            "c.yaml:5: sinks[0].maxlen: 'maxlen' does not apply to a file sink",
            id="redis-key-on-a-file-sink",
        ),
        pytest.param(
            STREAM + "sinks:\n  - {name: r, type: redis_streams, redis: 'redis://h', maxlen: -5}\n",
            "c.yaml:5: sinks[0].maxlen: must be at least 0, got -5",
            id="negative-maxlen",
        ),
    ],
)
def test_a_bad_cluster_config_reports_exactly_this_problem(text: str, expected: str) -> None:
    assert cfg.errors(text, source="c.yaml") == [expected]


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1", True),
        ("redis://:pw@LOCALHOST:6379/0", "redis://localhost:6379/", True),
        ("redis://h:6379/1", "redis://h:6379/0", False),
        ("redis://h:6380", "redis://h:6379", False),
        ("rediss://h", "redis://h", False),
        ("unix:///tmp/r.sock?db=1", "unix:///tmp/r.sock?db=1", True),
        ("redis://h:99999", "redis://h:99999", False),
    ],
)
def test_same_redis(a: str, b: str, same: bool) -> None:
    from streamvisor.cluster.settings import same_redis

    assert same_redis(a, b) is same


@pytest.mark.parametrize(
    "section",
    [
        "cluster: {redis: 'redis://127.0.0.1:6399/0'}\ncheckpoint: {store: redis}\n",
        "sinks:\n  - {name: r, type: redis_streams, redis: 'redis://127.0.0.1:6399/0'}\n",
    ],
    ids=["cluster", "redis_streams-sink"],
)
def test_without_the_redis_client_check_names_the_extra_to_install(
    section: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "redis" else real(name, *a)
    )
    found = cfg.errors(STREAM + section)
    assert found, "a config needing redis-py must not pass check without it"
    assert all("pip install 'streamvisor[cluster]'" in e for e in found), found
