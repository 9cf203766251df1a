"""``DiskBuffer``: no drop_oldest, no hold-back, and persistence across close, ``kill -9``
and a damaged or foreign file (a ``CheckpointError`` naming it)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from streamvisor.buffers import DiskBuffer
from streamvisor.checkpoint.store import CheckpointError
from streamvisor.policy.flow import BufferSettings, WhenFull
from tests.support.buffers import Drops, drain, put, record, taken_ids
from tests.support.events import make_events
from tests.support.flow import DEADLINE, FakeControl, Spawner

pytestmark = pytest.mark.timeout(60)


# -- drop policies and floors ------------------------------------------------------------


def test_a_disk_buffer_told_to_drop_oldest_drops_the_newest_instead(
    tmp_path: Path, drops: Drops
) -> None:
    # Rows on disk are never rewritten (config refuses drop_oldest for a disk buffer).
    settings = BufferSettings(type="disk", max_events=3, when_full=WhenFull.DROP_OLDEST)
    buffer = DiskBuffer(tmp_path / "b.db", settings, on_drop=record(drops))
    try:
        put(buffer, "s", range(1, 3))
        put(buffer, "s", range(3, 6))
        assert drops == [("s", 2)]
        assert drain(buffer) == ["1", "2", "3"]
    finally:
        buffer.close()


def test_a_disk_buffer_never_holds_a_stream_back(tmp_path: Path) -> None:
    buffer = DiskBuffer(tmp_path / "b.db", BufferSettings.disk())
    try:
        put(buffer, "s", range(1, 4))
        assert buffer.holds_back("s") is None  # a put is durable when it returns
    finally:
        buffer.close()


# -- persistence -------------------------------------------------------------------------


def test_a_reopened_disk_buffer_holds_what_was_not_acknowledged_in_order(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "b.db"  # parent folders are created
    buffer = DiskBuffer(path, BufferSettings.disk())
    put(buffer, "a", range(1, 4))
    put(buffer, "b", range(1, 3))
    put(buffer, "a", range(4, 6))
    put(buffer, "b", range(3, 4))
    buffer.ack(buffer.take(3))  # a1-a3 written
    taken = buffer.take(2)  # b1-b2 taken, not acknowledged: delivered again
    assert taken_ids(taken) == ["1", "2"]
    buffer.close()
    buffer.close()  # idempotent

    woken: list[int] = []
    again = DiskBuffer(path, BufferSettings.disk(), on_ready=lambda: woken.append(1))
    try:
        assert again.pending() == 5
        assert again.depth()[0] == 5
        chunks = again.take(100)
        assert [(c.stream, [e.id for e in c.events]) for c in chunks] == [
            ("b", ["1", "2"]),
            ("a", ["4", "5"]),
            ("b", ["3"]),
        ]
        assert chunks[1].events == make_events("a", range(4, 6))
        again.ack(chunks)
        put(again, "a", range(6, 7))  # appended after what was there
        assert woken == [1]
    finally:
        again.close()
    last = DiskBuffer(path, BufferSettings.disk())
    try:
        assert drain(last) == ["6"]
    finally:
        last.close()


def test_a_reopened_disk_buffer_counts_its_rows_against_the_bound(
    tmp_path: Path, spawn: Spawner
) -> None:
    path = tmp_path / "b.db"
    settings = BufferSettings(type="disk", max_events=3)
    buffer = DiskBuffer(path, settings)
    put(buffer, "s", range(1, 4))
    buffer.close()
    again = DiskBuffer(path, settings)
    try:
        control = FakeControl()
        job = spawn(lambda: put(again, "s", range(4, 5), control), control)
        assert control.paused.wait(DEADLINE)
        again.ack(again.take(10))
        assert job.result() is True
    finally:
        again.close()


_CRASH_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from streamvisor.buffers import DiskBuffer
    from streamvisor.policy.flow import BufferSettings, Position
    from tests.support.events import make_events
    from tests.support.flow import FakeControl

    buffer = DiskBuffer(sys.argv[1], BufferSettings.disk())
    for first in range(1, 200, 10):
        events = make_events("s", range(first, first + 10))
        buffer.put("s", events, Position(first + 9, str(first + 9)), Position(0, None),
                   FakeControl())
    buffer.ack(buffer.take(25))  # whole chunks: the first 2 (20 events) were written
    buffer.take(10)  # taken and never acknowledged: delivered again
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_a_disk_buffer_survives_kill_9_with_every_unacknowledged_row(tmp_path: Path) -> None:
    path = str(tmp_path / "b.db")
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-c", _CRASH_SCRIPT, path],
        timeout=60,
        capture_output=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert proc.returncode == -9, proc.stderr
    buffer = DiskBuffer(path, BufferSettings.disk())
    try:
        assert drain(buffer) == [str(i) for i in range(21, 201)]
    finally:
        buffer.close()


def test_a_file_that_is_not_a_database_is_a_checkpoint_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    path.write_bytes(b"not sqlite, just text\n" * 300)
    with pytest.raises(CheckpointError) as info:
        DiskBuffer(path, BufferSettings.disk())
    assert info.value.path == str(path)
    assert str(path) in str(info.value)


def test_a_database_with_damaged_pages_is_a_checkpoint_error(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    buffer = DiskBuffer(path, BufferSettings.disk())
    for first in range(1, 2000, 20):
        put(buffer, "s", range(first, first + 20))
    buffer.close()
    _checkpoint_wal(path)
    data = bytearray(path.read_bytes())
    assert len(data) > 8192
    data[4096:8192] = b"\xa5" * 4096  # the table's pages, not the file header
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError) as info:
        broken = DiskBuffer(path, BufferSettings.disk())
        try:
            drain(broken)
        finally:
            broken.close()
    assert info.value.path == str(path)


def test_a_buffer_table_of_another_shape_is_a_checkpoint_error(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE chunks (name TEXT)")
    conn.close()
    with pytest.raises(CheckpointError):
        DiskBuffer(path, BufferSettings.disk())


def test_an_unwritable_folder_is_a_checkpoint_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CheckpointError) as info:
        DiskBuffer(blocker / "b.db", BufferSettings.disk())
    assert str(blocker / "b.db") in str(info.value)


def _checkpoint_wal(path: Path) -> None:
    """Move the WAL's pages into the main file (so damage to it is damage to the data)."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
