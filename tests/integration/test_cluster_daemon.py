"""``streamvisor run`` in cluster mode as a subprocess (admin /streams and /metrics, SIGHUP,
clean stop), ``streamvisor cluster status``, and clear errors when Redis is unreachable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from streamvisor.cli.main import main
from streamvisor.cluster.scripts import Keys
from streamvisor.config.load import load_config
from streamvisor.daemon.run import Daemon
from streamvisor.demo.source import DemoSource
from tests.support.daemon import ADMIN, running_daemon, write_config
from tests.support.demo import MakeDemo
from tests.support.redis_server import RedisServer

K = Keys("solo:")
STREAMS = ("alpha", "beta", "gamma")


@pytest.fixture
def source(make_demo: MakeDemo) -> DemoSource:
    return make_demo(STREAMS, rate=50.0)


def config(url: str, source: DemoSource, streams: tuple[str, ...]) -> dict[str, Any]:
    return {
        "shutdown_timeout": 5,
        "cluster": {
            "redis": url,
            "instance": "solo",
            "lease_ttl": 1,
            "claim_interval": 0.1,
            "key_prefix": K.prefix,
        },
        "checkpoint": {"store": "redis", "interval": 0.1},
        "defaults": {"backoff": {"initial": 0.02, "max": 0.2}},
        "streams": [{"name": s, "url": source.url(s)} for s in streams],
        "sinks": [{"name": "redis", "type": "redis_streams", "redis": url}],
        "admin": ADMIN,
    }


def test_one_daemon_in_cluster_mode_shows_leases_reloads_and_releases_at_stop(
    tmp_path: Path,
    redis_server: RedisServer,
    redis_url: str,
    rclient: Any,
    source: DemoSource,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write_config(tmp_path / "c.yaml", config(redis_url, source, STREAMS))
    with running_daemon(tmp_path, path) as daemon:

        def owned() -> dict[str, Any]:
            body = daemon.get_json("/streams")
            return {n: i for n, i in body["streams"].items() if i.get("owner")}

        daemon.wait_for(lambda: len(owned()) == 3, "three owned streams")
        daemon.wait_for(lambda: daemon.get("/ready")[0] == 200, "ready")
        body = daemon.get_json("/streams")
        info = body["streams"]["alpha"]
        assert info["owner"].startswith("solo#") and info["token"] == 1
        assert 0 < info["lease_expires_in"] <= 1.0
        assert body["cluster"]["live"] == 1 and body["cluster"]["owned"] == 3
        metrics = daemon.get("/metrics")[1]
        assert "streamvisor_cluster_owned_streams 3.0" in metrics
        assert 'streamvisor_cluster_token{stream="alpha"} 1.0' in metrics

        assert main(["cluster", "status", str(path)]) == 0
        out = capsys.readouterr().out
        assert "1 live instances, 3 of 3 streams owned" in out
        assert main(["cluster", "status", "--json", str(path)]) == 0
        status = json.loads(capsys.readouterr().out)
        assert {s["owner"] for s in status["streams"].values()} == {info["owner"]}

        write_config(path, config(redis_url, source, STREAMS[:2]))  # gamma removed
        daemon.send_signal(1)  # SIGHUP
        daemon.wait_for(lambda: rclient.get(K.lease("gamma")) is None, "gamma released")
        daemon.wait_for(lambda: set(owned()) == {"alpha", "beta"}, "gamma gone")
        assert daemon.terminate() == 0
    assert rclient.keys(K.prefix + "*:lease") == []
    assert rclient.zcard(K.members) == 0
    assert int(rclient.hget(K.ckpt("alpha"), "last")) > 0  # the sink committed checkpoints


def test_run_with_an_unreachable_redis_fails_with_one_line_and_no_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "redis://:hunter2pw@127.0.0.1:1/0"
    path = write_config(
        tmp_path / "c.yaml",
        {
            "cluster": {"redis": url},
            "checkpoint": {"store": "redis"},
            "streams": [{"name": "a", "url": "http://127.0.0.1:1/x"}],
        },
    )
    daemon = Daemon(load_config(path), str(path))  # in-process, logging left as it is
    assert daemon.run(install_signals=False) == 1
    err = capsys.readouterr().err
    assert "cannot use Redis at redis://:***@127.0.0.1:1/0" in err
    assert "hunter2pw" not in err and "Traceback" not in err
    assert main(["cluster", "status", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot reach Redis" in err[0] and "hunter2pw" not in err[0]


def test_cluster_status_needs_a_cluster_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path / "c.yaml", {"streams": [{"name": "a", "url": "http://h/x"}]})
    assert main(["cluster", "status", str(path)]) == 2
    assert "no 'cluster:' section" in capsys.readouterr().err
    broken = write_config(
        tmp_path / "bad.yaml",
        {"cluster": {"redis": "redis://h"}, "streams": [{"name": "a", "url": "http://h/x"}]},
    )
    assert main(["check", str(broken)]) == 2
    assert "cluster mode needs a shared checkpoint" in capsys.readouterr().err
    assert main(["cluster", "status", str(broken)]) == 2
