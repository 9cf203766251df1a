"""``SQLiteCheckpointStore``: reopening, WAL, threads, corruption and foreign files (a
``CheckpointError`` naming the file), and saves that survive ``kill -9``."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from streamvisor.checkpoint import Checkpoint, CheckpointError, SQLiteCheckpointStore
from streamvisor.errors import StreamvisorError

TICKER = Checkpoint("41", (("40", "d40"), ("41", "d41")), 1_700_000_000.5)
NEWS = Checkpoint(None, (), 1_700_000_001.0)


def test_sqlite_checkpoints_survive_close_and_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "cp.db")
    first = SQLiteCheckpointStore(path)
    first.save({"ticker": TICKER, "news": NEWS})
    first.close()
    second = SQLiteCheckpointStore(path)
    try:
        assert second.load() == {"ticker": TICKER, "news": NEWS}
    finally:
        second.close()


def test_sqlite_store_creates_parent_folders_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "cp.db"
    store = SQLiteCheckpointStore(path)
    store.save({"ticker": TICKER})
    store.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(1,)]
        (recent,) = conn.execute("SELECT recent FROM checkpoints").fetchone()
        assert recent == '[["40","d40"],["41","d41"]]'
    finally:
        conn.close()


def test_sqlite_store_serves_two_threads_one_after_the_other(tmp_path: Path) -> None:
    store = SQLiteCheckpointStore(str(tmp_path / "cp.db"))
    results: list[object] = []

    def use(name: str) -> None:
        try:
            store.save({name: Checkpoint(name)})
            results.append(sorted(store.load()))
        except Exception as exc:  # reported to the test thread
            results.append(exc)

    for name in ("one", "two"):
        worker = threading.Thread(target=use, args=(name,))
        worker.start()
        worker.join(timeout=10)
        assert not worker.is_alive()
    store.close()
    assert results == [["one"], ["one", "two"]]


def test_sqlite_store_serves_overlapping_threads_without_errors(tmp_path: Path) -> None:
    store = SQLiteCheckpointStore(str(tmp_path / "cp.db"))
    errors: list[BaseException] = []

    def hammer(name: str) -> None:
        try:
            for i in range(50):
                store.save({name: Checkpoint(str(i))})
                store.load()
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=hammer, args=(n,)) for n in ("a", "b")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
        assert not worker.is_alive()
    assert errors == []
    assert store.load() == {"a": Checkpoint("49"), "b": Checkpoint("49")}
    store.close()


def test_a_file_that_is_not_a_database_raises_checkpoint_error_with_the_path(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cp.db"
    path.write_bytes(b"this is not sqlite at all, just some text\n" * 200)
    with pytest.raises(CheckpointError) as info:
        SQLiteCheckpointStore(str(path))
    assert str(path) in str(info.value)
    assert info.value.path == str(path)
    assert isinstance(info.value, StreamvisorError)


def test_a_truncated_database_raises_checkpoint_error(tmp_path: Path) -> None:
    path = tmp_path / "cp.db"
    store = SQLiteCheckpointStore(str(path))
    store.save({f"s{i}": TICKER for i in range(500)})
    store.close()
    data = path.read_bytes()
    path.write_bytes(data[:100] + b"\xff" * 200 + data[300:])
    with pytest.raises(CheckpointError) as info:
        broken = SQLiteCheckpointStore(str(path))
        try:
            broken.load()
        finally:
            broken.close()
    assert str(path) in str(info.value)


def test_a_malformed_dedup_window_raises_checkpoint_error(tmp_path: Path) -> None:
    path = tmp_path / "cp.db"
    SQLiteCheckpointStore(str(path)).close()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("INSERT INTO checkpoints VALUES ('x', '1', '{not json', 0)")
    conn.close()
    store = SQLiteCheckpointStore(str(path))
    try:
        with pytest.raises(CheckpointError, match="'x'"):
            store.load()
    finally:
        store.close()


def test_a_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cp.db"
    SQLiteCheckpointStore(str(path)).close()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE schema_version SET version = 99")
    conn.close()
    with pytest.raises(CheckpointError, match="newer"):
        SQLiteCheckpointStore(str(path))


def test_an_unwritable_folder_raises_checkpoint_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CheckpointError) as info:
        SQLiteCheckpointStore(str(blocker / "cp.db"))
    assert str(blocker / "cp.db") in str(info.value)


_KILL_SCRIPT = """
import os, signal, sys
from streamvisor.checkpoint import Checkpoint, SQLiteCheckpointStore
store = SQLiteCheckpointStore(sys.argv[1])
for i in range(20):
    store.save({"ticker": Checkpoint(str(i), (("a", "b"),), float(i))})
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_committed_saves_survive_kill_9(tmp_path: Path) -> None:
    path = str(tmp_path / "cp.db")
    proc = subprocess.run(
        [sys.executable, "-c", _KILL_SCRIPT, path], timeout=60, capture_output=True
    )
    assert proc.returncode == -9, proc.stderr
    assert os.path.exists(path + "-wal")  # never checkpointed into the main file
    store = SQLiteCheckpointStore(path)
    try:
        assert store.load() == {"ticker": Checkpoint("19", (("a", "b"),), 19.0)}
    finally:
        store.close()
