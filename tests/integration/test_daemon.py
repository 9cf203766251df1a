"""``streamvisor run`` as a real subprocess against a local flaky source: SIGTERM, kill -9 and
restart, the admin endpoint, and the shutdown grace with a receiver that never answers."""

from __future__ import annotations

import collections
import re
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from streamvisor.checkpoint import SQLiteCheckpointStore
from streamvisor.demo.source import Chaos, DemoSource
from tests.support.daemon import (
    count_ids,
    daemon_config,
    ids_by_stream,
    running_daemon,
)
from tests.support.demo import MakeDemo
from tests.support.sse_server import Headers, Hold, Send, SSEServer, WaitFor
from tests.support.webhooks import WebhookReceiver

CHANNELS = ("alpha", "beta")
# About three connections in four end badly, and half of the resumes replay old events.
FLAKY = Chaos(
    clean_close=0.25, reset=0.25, cut_event=0.25, replay=0.5, max_events_per_connection=30
)


@pytest.fixture
def source(make_demo: MakeDemo) -> DemoSource:
    return make_demo(CHANNELS, rate=150.0, chaos=FLAKY, seed=11)


def stream_entry(url: str, name: str) -> dict[str, Any]:
    return {"name": name, "url": url}


def demo_streams(source: DemoSource) -> list[dict[str, Any]]:
    return [stream_entry(source.url(c), c) for c in CHANNELS]


def load_checkpoints(path: Path) -> dict[str, int]:
    store = SQLiteCheckpointStore(str(path))
    try:
        return {s: int(cp.last_event_id or 0) for s, cp in store.load().items()}
    finally:
        store.close()


def test_sigterm_exits_0_with_every_received_event_in_the_file_and_the_checkpoint_written(
    tmp_path: Path, source: DemoSource
) -> None:
    events = tmp_path / "events.jsonl"
    config = daemon_config(tmp_path, demo_streams(source), shutdown_timeout=5)
    with running_daemon(tmp_path, config) as d:
        d.wait_for(
            lambda: all(count_ids(events, c) >= 150 for c in CHANNELS), "150 events per stream"
        )
        seen = {c: int((d.stream_info(c) or {}).get("last_event_id") or 0) for c in CHANNELS}
        code = d.terminate()
    assert code == 0, d.stderr()
    ids = ids_by_stream(events)
    checkpoints = load_checkpoints(tmp_path / "checkpoints.db")
    for channel in CHANNELS:
        got = ids[channel]
        assert got == list(range(1, len(got) + 1)), f"{channel}: gaps, repeats or disorder"
        assert len(got) >= seen[channel] >= 150, f"{channel}: received events missing"
        assert checkpoints[channel] == got[-1], f"{channel}: final checkpoint is not the last id"
    faults = sum(s.clean_closes + s.resets + s.cut_events for s in source.stats.values())
    assert faults > 0, "the source never broke a connection: nothing was tested"
    assert "Traceback" not in d.stderr()
    assert "stopped in" in d.stderr()


def test_kill_9_then_restart_leaves_no_id_missing_and_repeats_only_the_unsaved_tail(
    tmp_path: Path, source: DemoSource
) -> None:
    events = tmp_path / "events.jsonl"
    config = daemon_config(tmp_path, demo_streams(source), shutdown_timeout=5)
    with running_daemon(tmp_path, config, name="first") as first:
        first.wait_for(
            lambda: all(count_ids(events, c) >= 200 for c in CHANNELS), "200 events per stream"
        )
        first.wait_for(
            lambda: all((first.stream_info(c) or {}).get("checkpoint_id") for c in CHANNELS),
            "a checkpoint of every stream",
        )
        first.kill()  # SIGKILL: no shutdown, no final checkpoint
        published = {c: source.published(c) for c in CHANNELS}
    assert first.proc is not None and first.proc.returncode == -signal.SIGKILL
    saved = load_checkpoints(tmp_path / "checkpoints.db")
    assert all(saved[c] > 0 for c in CHANNELS)

    config = daemon_config(tmp_path, demo_streams(source), shutdown_timeout=5)
    with running_daemon(tmp_path, config, name="second") as second:
        second.wait_for(
            lambda: all(
                set(range(1, published[c] + 1)) <= set(ids_by_stream(events).get(c, []))
                for c in CHANNELS
            ),
            "every event published before the kill",
            timeout=15.0,
        )
        assert second.terminate() == 0, second.stderr()

    ids = ids_by_stream(events)
    for channel in CHANNELS:
        got = ids[channel]
        top = max(got)
        assert set(got) == set(range(1, top + 1)), f"{channel}: ids missing after the restart"
        assert top >= published[channel]
        repeated = sorted(i for i, n in collections.Counter(got).items() if n > 1)
        assert all(i > saved[channel] for i in repeated), (
            f"{channel}: ids at or before the checkpoint ({saved[channel]}) were delivered "
            f"again: {repeated}"
        )
    assert "Traceback" not in first.stderr() + second.stderr()


def test_admin_endpoint_reports_health_readiness_streams_and_metrics_of_the_running_daemon(
    tmp_path: Path, sse_server: SSEServer
) -> None:
    upstream_may_answer = threading.Event()
    sse_server.add_script(
        WaitFor(upstream_may_answer, timeout=20.0),
        Headers(),
        Send(b"id: 1\nevent: tick\ndata: one\n\nid: 2\nevent: tick\ndata: two\n\n"),
        Hold(),
    )
    streams = [{"name": "feed", "url": sse_server.url("/events"), "read_timeout": 30}]
    try:
        with running_daemon(tmp_path, daemon_config(tmp_path, streams, shutdown_timeout=5)) as d:
            assert d.get("/health") == (200, '{"status": "ok"}')
            assert sse_server.wait_for_requests(1, timeout=10.0)
            status, body = d.get("/ready")
            assert (status, body) == (503, '{"ready": false}')

            upstream_may_answer.set()
            d.wait_for(lambda: d.get("/ready")[0] == 200, "/ready to answer 200")
            d.wait_for(lambda: (d.stream_info("feed") or {}).get("events") == 2, "two events")
            info = d.get_json("/streams")["streams"]["feed"]
            assert info["state"] == "connected"
            assert info["last_event_id"] == "2"
            assert info["restarts"] == 0
            assert info["breaker"] == "closed"
            assert set(info["subscribers"]) == {"archive"}
            status, metrics = d.get("/metrics")
            assert status == 200
            assert re.search(r'^streamvisor_events_total\{stream="feed"\} 2\.0$', metrics, re.M)
            assert d.terminate() == 0
    finally:
        upstream_may_answer.set()


def test_sigterm_exits_0_within_shutdown_timeout_while_the_webhook_receiver_hangs(
    tmp_path: Path, source: DemoSource
) -> None:
    receiver = WebhookReceiver(then="hang").start()
    events, dead = tmp_path / "events.jsonl", tmp_path / "dead.jsonl"
    grace = 3.0
    config = daemon_config(tmp_path, demo_streams(source)[:1], shutdown_timeout=grace)
    config["sinks"].append(
        {
            "name": "hook",
            "type": "webhook",
            "url": receiver.url,
            "timeout": 1,  # below the grace: the request in flight gets dead-lettered too
            "batch": {"max_events": 10, "max_wait": 0.05},
            "retry": {"initial": 0.05, "max": 0.2, "attempts": 8},
            "dead_letter": str(dead),
        }
    )
    try:
        with running_daemon(tmp_path, config) as d:
            d.wait_for(lambda: count_ids(events, "alpha") >= 100, "100 archived events")
            d.wait_for(receiver.got_request.is_set, "a webhook request in flight")
            started = time.monotonic()
            code = d.terminate(timeout=grace + 10)
            took = time.monotonic() - started
    finally:
        receiver.stop()
    assert code == 0, d.stderr()
    assert took < grace + 1.0, f"SIGTERM took {took:.2f}s with shutdown_timeout {grace}s"
    archived = ids_by_stream(events)["alpha"]
    dead_lettered = ids_by_stream(dead).get("alpha", [])
    assert sorted(dead_lettered) == archived, "events neither delivered nor dead-lettered"


def test_the_same_stop_signal_delivered_twice_at_once_is_one_graceful_stop(
    tmp_path: Path, source: DemoSource
) -> None:
    events = tmp_path / "events.jsonl"
    config = daemon_config(tmp_path, demo_streams(source)[:1], shutdown_timeout=5)
    with running_daemon(tmp_path, config) as d:
        d.wait_for(lambda: count_ids(events, "alpha") >= 20, "20 events")
        # GNU timeout signals the child, then its whole group: two SIGTERMs at once.
        d.send_signal(signal.SIGTERM)
        d.send_signal(signal.SIGTERM)
        code = d.wait(15.0)
    assert code == 0, d.stderr()
    assert "stopped in" in d.stderr()


def test_a_daemon_whose_stdout_reader_leaves_stops_gracefully_like_a_unix_filter(
    tmp_path: Path, source: DemoSource
) -> None:
    import subprocess
    import sys

    import yaml

    config = {
        "streams": demo_streams(source)[:1],
        "sinks": [{"name": "out", "type": "stdout"}],
        "checkpoint": {"path": str(tmp_path / "checkpoints.db")},
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamvisor", "run", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]  # `| head -3`
        proc.stdout.close()
        code = proc.wait(timeout=20)
        stderr = proc.stderr.read().decode() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert all(line.startswith(b"{") for line in lines)
    assert code == 0, stderr
    assert "its destination is gone" in stderr
    assert "Traceback" not in stderr
    assert load_checkpoints(tmp_path / "checkpoints.db")["alpha"] >= 3
