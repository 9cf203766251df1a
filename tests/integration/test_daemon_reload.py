"""SIGHUP reloads the running daemon's config: changed streams restart from their last id,
added streams start, removed streams stop, and a broken config changes nothing."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from streamvisor.demo.source import DemoSource
from tests.support.daemon import (
    count_ids,
    daemon_config,
    ids_by_stream,
    running_daemon,
    write_config,
)
from tests.support.demo import MakeDemo
from tests.support.events import sse_block
from tests.support.sse_server import Headers, Hold, Send, SSEServer
from tests.support.wait import wait_until


@pytest.fixture
def source(make_demo: MakeDemo) -> DemoSource:
    return make_demo(("beta", "gamma", "delta"), rate=150.0)


def sse_events(first: int, last: int) -> bytes:
    return b"".join(sse_block(i, f"n{i}", "tick") for i in range(first, last + 1))


def config(tmp_path: Path, streams: list[dict[str, Any]]) -> dict[str, Any]:
    defaults = {"read_timeout": 10, "backoff": {"initial": 0.01, "max": 0.2}}
    return daemon_config(tmp_path, streams, defaults=defaults)


def test_sighup_restarts_a_changed_stream_where_it_left_off_starts_added_and_stops_removed(
    tmp_path: Path, source: DemoSource, sse_server: SSEServer
) -> None:
    sse_server.add_script(Headers(), Send(sse_events(1, 5)), Hold())
    sse_server.add_script(Headers(), Send(sse_events(6, 7)), Hold())
    events = tmp_path / "events.jsonl"
    alpha = {"name": "alpha", "url": sse_server.url("/alpha"), "headers": {"X-Version": "1"}}
    beta = {"name": "beta", "url": source.url("beta")}
    gamma = {"name": "gamma", "url": source.url("gamma")}
    delta = {"name": "delta", "url": source.url("delta")}
    with running_daemon(tmp_path, config(tmp_path, [alpha, beta, delta])) as d:
        d.wait_for(
            lambda: (
                count_ids(events, "alpha") == 5
                and count_ids(events, "beta") >= 20
                and count_ids(events, "delta") >= 20
            ),
            "events of alpha, beta and delta",
        )
        changed = {**alpha, "headers": {"X-Version": "2"}}
        write_config(d.config_path, config(tmp_path, [changed, gamma, delta]))
        d.send_signal(signal.SIGHUP)
        d.wait_for_log("reload: done")

        # The changed stream reconnected with its new settings, resuming after id 5.
        assert sse_server.wait_for_requests(2, timeout=10.0)
        resumed = sse_server.requests[1]
        assert resumed.headers["X-Version"] == "2"
        assert resumed.headers["Last-Event-ID"] == "5"
        d.wait_for(lambda: count_ids(events, "alpha") == 7, "alpha's events 6 and 7")

        # The added stream runs; the removed one is gone and writes nothing more.
        d.wait_for(lambda: "beta" not in d.get_json("/streams")["streams"], "beta removed")
        beta_count = count_ids(events, "beta")
        gamma_then = count_ids(events, "gamma")
        d.wait_for(lambda: count_ids(events, "gamma") >= gamma_then + 30, "30 more gamma events")
        assert count_ids(events, "beta") == beta_count
        assert d.terminate() == 0, d.stderr()

    ids = ids_by_stream(events)
    assert ids["alpha"] == [1, 2, 3, 4, 5, 6, 7]
    for name in ("beta", "gamma", "delta"):
        assert ids[name] == list(range(1, len(ids[name]) + 1)), f"{name}: gaps or repeats"
    assert source.stats["delta"].connections == 1, "an unchanged stream was restarted"
    log = d.stderr()
    assert "reload: stream alpha changed; restarting it from id 5" in log
    assert "reload: stream gamma added" in log
    assert "reload: stream beta removed" in log


def test_sighup_with_a_broken_config_logs_the_error_and_keeps_the_old_config_running(
    tmp_path: Path, source: DemoSource
) -> None:
    events = tmp_path / "events.jsonl"
    beta = {"name": "beta", "url": source.url("beta")}
    with running_daemon(tmp_path, config(tmp_path, [beta])) as d:
        d.wait_for(lambda: count_ids(events, "beta") >= 20, "20 events")
        broken = f"streams:\n  - name: beta\n    url: {source.url('beta')}\n    read_timout: 5\n"
        write_config(d.config_path, broken)
        d.send_signal(signal.SIGHUP)
        d.wait_for_log("reload: config has errors; still running the previous one")
        expected = (
            f"{d.config_path}:4: streams[0].read_timout: unknown key 'read_timout' "
            "(did you mean 'read_timeout'?)"
        )
        d.wait_for(lambda: expected in d.stderr().splitlines(), "the error line on stderr")

        count = count_ids(events, "beta")
        d.wait_for(lambda: count_ids(events, "beta") >= count + 30, "30 more events")
        assert d.alive
        assert d.get_json("/streams")["streams"]["beta"]["state"] == "connected"
        assert d.terminate() == 0, d.stderr()
    assert "Traceback" not in d.stderr()


def test_sighup_says_which_changed_sections_wait_for_a_restart(tmp_path: Path) -> None:
    # Before: a changed shutdown_timeout, relay or tracing section was ignored without a word.
    stream = {"name": "alpha", "url": "http://127.0.0.1:1/never"}
    with running_daemon(tmp_path, config(tmp_path, [stream])) as d:
        d.wait_for_log("streamvisor running")
        write_config(d.config_path, config(tmp_path, [stream]) | {"shutdown_timeout": 3})
        d.send_signal(signal.SIGHUP)
        d.wait_for_log("reload: done")
        assert "reload: shutdown_timeout changes take effect at the next restart" in d.stderr()
        assert d.terminate() == 0, d.stderr()


# The daemon signals itself while it builds its streams and sinks (checkpoints loaded, files
# read back): where a reload or a stop sent as the daemon starts lands.
SIGNAL_WHILE_STARTING = """
import os, signal, sys
from streamvisor.cli.main import main
from streamvisor.daemon import run

build = run.Daemon._build
def signalled_build(self, config, saved):
    os.kill(os.getpid(), getattr(signal, sys.argv[2]))
    return build(self, config, saved)
run.Daemon._build = signalled_build
sys.exit(main(["run", sys.argv[1]]))
"""


@pytest.mark.parametrize("signame", ["SIGHUP", "SIGTERM"])
def test_a_sighup_or_sigterm_while_the_daemon_starts_is_a_reload_or_a_graceful_stop(
    tmp_path: Path, signame: str
) -> None:
    # Before: the handlers came after the build, so SIGHUP's default action ended the
    # starting daemon (killed by the signal, nothing logged), and so did SIGTERM.
    stream = {"name": "alpha", "url": "http://127.0.0.1:1/never"}
    path = write_config(tmp_path / "config.yaml", config(tmp_path, [stream]) | {"admin": None})
    stderr = tmp_path / "stderr"
    with open(stderr, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", SIGNAL_WHILE_STARTING, str(path), signame],
            stdout=subprocess.DEVNULL,
            stderr=err,
            cwd=tmp_path,
        )
    try:
        if signame == "SIGHUP":
            reloaded = lambda: "reload: done" in stderr.read_text()  # noqa: E731
            wait_until(lambda: reloaded() or proc.poll() is not None, 10.0)
            assert reloaded(), f"exit {proc.poll()}: {stderr.read_text()}"
            proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10.0) == 0, stderr.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10.0)
    assert "stopped in" in stderr.read_text()
