"""Lossless flow control in the daemon: a fast upstream into a file sink, ``kill -9`` at random
moments (checkpoints never pass an unwritten event; the file is exactly-once), and a disk
buffer that holds events while its receiver is down, across ``kill -9``."""

from __future__ import annotations

import json
import random
import signal
from pathlib import Path
from typing import Any

from streamvisor.checkpoint import SQLiteCheckpointStore
from tests.support.burst_server import BurstServer
from tests.support.daemon import DaemonProcess, running_daemon
from tests.support.webhooks import WebhookReceiver

DEADLINE = 90.0


def _config(tmp_path: Path, url: str, **sink: Any) -> dict[str, Any]:
    """One stream, one file sink, a checkpoint: nothing else set (the README's defaults)."""
    return {
        "streams": [{"name": "s", "url": url}],
        "sinks": [
            {"name": "archive", "type": "file", "path": str(tmp_path / "events.jsonl"), **sink}
        ],
        "checkpoint": {"path": str(tmp_path / "checkpoints.db")},
    }


def _lines(path: Path) -> int:
    if not path.exists():
        return 0
    with open(path, "rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))


def _ids(path: Path) -> list[int]:
    """Ids in file order; a last line torn by ``kill -9`` (no newline yet) is left out."""
    with open(path, "rb") as handle:
        return [int(json.loads(line)["id"]) for line in handle if line.endswith(b"\n")]


def _checkpoint(tmp_path: Path) -> str | None:
    store = SQLiteCheckpointStore(tmp_path / "checkpoints.db")
    try:
        saved = store.load().get("s")
    finally:
        store.close()
    return saved.last_event_id if saved is not None else None


def test_a_file_sink_slower_than_its_upstream_writes_every_event_and_checkpoints_the_last(
    tmp_path: Path,
) -> None:
    total = 300_000
    out = tmp_path / "events.jsonl"
    with (
        BurstServer(total) as server,
        running_daemon(tmp_path, _config(tmp_path, server.url)) as daemon,
    ):
        daemon.wait_for(lambda: _lines(out) >= total, "every event in the file", DEADLINE)
        assert daemon.terminate() == 0
    assert _ids(out) == list(range(1, total + 1))
    assert _checkpoint(tmp_path) == str(total)
    assert "dropped" not in daemon.stderr()


def test_kill_9_at_random_moments_loses_nothing_and_writes_nothing_twice(tmp_path: Path) -> None:
    total = 200_000
    out = tmp_path / "events.jsonl"
    rng = random.Random(8)
    config = _config(tmp_path, "")
    with BurstServer(total) as server:
        config["streams"][0]["url"] = server.url
        for round_ in range(3):
            daemon = DaemonProcess(tmp_path, config, name=f"run{round_}").start()
            try:
                start = _lines(out)
                target = start + rng.randrange(5_000, 40_000)
                daemon.wait_for(lambda t=target: _lines(out) >= t, "progress", DEADLINE)
                assert daemon.proc is not None
                daemon.proc.send_signal(signal.SIGKILL)
                daemon.proc.wait(10)
            finally:
                daemon.kill()
            written = _ids(out)
            checkpoint = _checkpoint(tmp_path)
            # The checkpoint never passes an event the sink has not written.
            assert checkpoint is None or int(checkpoint) <= max(written)
        with running_daemon(tmp_path, config, name="final") as daemon:
            daemon.wait_for(lambda: _lines(out) >= total, "every event", DEADLINE)
            assert daemon.terminate() == 0
        assert len(server.requests) == 4
        assert all(r is not None for r in server.requests[1:])  # every restart resumed
    ids = _ids(out)
    assert sorted(ids) == list(range(1, total + 1))  # nothing lost
    assert len(ids) == total  # nothing written twice: exactly once into the file


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_a_disk_buffer_holds_events_while_the_receiver_is_down_and_across_kill_9(
    tmp_path: Path,
) -> None:
    total = 60_000
    receiver = WebhookReceiver(then=(503, {})).start()  # down
    config: dict[str, Any] = {
        "streams": [{"name": "s", "url": ""}],
        "sinks": [
            {
                "name": "hook",
                "type": "webhook",
                "url": receiver.url,
                "batch": {"max_events": 500, "max_wait": 0.05},
                "retry": {"initial": 0.01, "max": 0.02, "attempts": 1},
                "buffer": {"type": "disk", "max_bytes": "512MiB"},
            }
        ],
        "checkpoint": {"path": str(tmp_path / "checkpoints.db"), "interval": 0.2},
    }
    try:
        with BurstServer(total) as server:
            config["streams"][0]["url"] = server.url
            daemon = DaemonProcess(tmp_path, config, name="down").start()
            try:
                # The receiver is down, yet the stream is not paused: the disk takes it all.
                daemon.wait_for(lambda: server.sent >= 10_000, "10k events", DEADLINE)
                assert daemon.proc is not None
                rss_early = _rss_kib(daemon.proc.pid)
                daemon.wait_for(lambda: server.sent >= total, "all events sent", DEADLINE)
                daemon.wait_for(
                    lambda: _checkpoint(tmp_path) == str(total), "checkpoint at the end", DEADLINE
                )
                grown = (_rss_kib(daemon.proc.pid) - rss_early) / 1024
                assert grown < 20, f"daemon RSS grew {grown:.1f} MiB while buffering on disk"
                assert receiver.accepted_ids("s") == []
                daemon.proc.send_signal(signal.SIGKILL)
                daemon.proc.wait(10)
            finally:
                daemon.kill()
            buffer_file = tmp_path / "checkpoints.hook.buffer.db"
            assert buffer_file.exists()
            receiver.then = (200, {})  # the receiver is back
            with running_daemon(tmp_path, config, name="back") as daemon:
                daemon.wait_for(
                    lambda: len(set(receiver.accepted_ids("s"))) >= total,
                    "every buffered event delivered",
                    DEADLINE,
                )
                assert daemon.terminate() == 0
            assert server.requests[-1] == str(total)  # resumed after what the disk held
    finally:
        receiver.stop()
    accepted = receiver.accepted_ids("s")
    assert sorted(set(accepted)) == list(range(1, total + 1))
    assert len(accepted) - total <= 500  # at-least-once: at most one batch again
