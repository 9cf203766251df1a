"""FileSink and read_jsonl: the exact JSONL form, appending, torn lines, unicode."""

from __future__ import annotations

import errno
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from streamvisor.sinks import FileSink, SinkError, read_jsonl
from streamvisor.sinks import file as file_module
from streamvisor.sse import Event
from tests.support.events import trades

KEYS = ["stream", "id", "event", "data", "last_event_id", "received_at"]
RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_each_event_becomes_one_json_line_with_exactly_the_contract_keys(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.jsonl"
    sink = FileSink(str(path))
    sink.write([Event("ticker", "7", "trade", "a\nb", "7", 1_700_000_000.25)])
    sink.write([Event("ticker", None, "message", "", None, 0.0)])
    sink.close()
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    first, second = (json.loads(line) for line in lines[:-1])
    assert list(first) == KEYS
    assert first == {
        "stream": "ticker",
        "id": "7",
        "event": "trade",
        "data": "a\nb",
        "last_event_id": "7",
        "received_at": "2023-11-14T22:13:20.250Z",
    }
    assert RFC3339_Z.match(second["received_at"])
    assert second["id"] is None and second["last_event_id"] is None


def test_written_events_are_on_disk_before_close(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    sink = FileSink(str(path), fsync=True)
    sink.write(trades(range(3)))
    assert read_jsonl(str(path)) == trades(range(3))
    sink.close()


def test_a_reopened_file_is_appended_to(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    first = FileSink(str(path))
    first.write(trades(range(2)))
    first.close()
    second = FileSink(str(path))
    second.write(trades(range(3))[2:])
    second.close()
    assert read_jsonl(str(path)) == trades(range(3))


def test_a_file_another_writer_holds_is_refused_until_it_is_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two daemons on one config both appended every event (duplicates), and the second's
    # torn-line repair could cut the first's line in half: the file is locked while open.
    monkeypatch.setattr(file_module, "LOCK_WAIT", 0.1)
    path = tmp_path / "events.jsonl"
    first = FileSink(str(path))
    first.write(trades(range(1)))
    with pytest.raises(SinkError, match="in use by another writer"):
        FileSink(str(path))
    first.close()
    second = FileSink(str(path))
    second.write(trades(range(2))[1:])
    second.close()
    assert read_jsonl(str(path)) == trades(range(2))


def test_a_writer_that_is_still_exiting_is_waited_for(tmp_path: Path) -> None:
    # kill -9, then an immediate restart: the old process may hold the lock a moment longer.
    path = tmp_path / "events.jsonl"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time\n"
            f"f = open({str(path)!r}, 'ab')\n"
            "fcntl.flock(f.fileno(), fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "time.sleep(0.5)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        sink = FileSink(str(path))  # waits up to LOCK_WAIT (2 s) for the holder to exit
        sink.close()
    finally:
        holder.kill()
        holder.wait(5)
        if holder.stdout is not None:
            holder.stdout.close()


def test_a_torn_last_line_is_cut_off_and_the_file_stays_valid_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    good = trades(range(1))[0].to_json()
    path.write_text(good + "\n" + '{"stream":"ticker","id":"1","da', encoding="utf-8")
    sink = FileSink(str(path))
    sink.write(trades(range(3))[1:])
    sink.close()
    text = path.read_text(encoding="utf-8")
    assert '"da\n' not in text and 'ticker","id":"1","da' not in text  # fragment gone
    assert [json.loads(line)["id"] for line in text.splitlines()] == ["0", "1", "2"]
    assert read_jsonl(str(path)) == trades(range(3))


def test_a_line_torn_inside_a_multibyte_character_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes('{"data":"caf\u00e9'.encode()[:-1])
    sink = FileSink(str(path))
    sink.write(trades(range(1)))
    sink.close()
    assert read_jsonl(str(path)) == trades(range(1))


def test_unicode_is_written_as_utf8_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    event = Event("t\u00e9", "\u2603", "\u00fcber", "\U0001f600 \u4e2d\u6587 \u2028", None, 1.0)
    sink = FileSink(str(path))
    sink.write([event])
    sink.close()
    raw = path.read_bytes()
    assert "\U0001f600".encode() in raw  # not \\u escapes
    assert raw.count(b"\n") == 1  # U+2028 does not break the line
    assert read_jsonl(str(path)) == [event]


def test_parent_folders_are_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "events.jsonl"
    sink = FileSink(str(path))
    sink.write(trades(range(1)))
    sink.close()
    assert read_jsonl(str(path)) == trades(range(1))


def test_flush_interval_is_the_drivers_max_wait_and_stats_count(tmp_path: Path) -> None:
    sink = FileSink(str(tmp_path / "e.jsonl"), flush_interval=2.5)
    sink.write(trades(range(4)))
    sink.write([])
    assert (sink.name, sink.max_wait, sink.stats["delivered"]) == ("file", 2.5, 4)
    sink.close()


def test_close_is_idempotent_and_writes_after_close_fail(tmp_path: Path) -> None:
    sink = FileSink(str(tmp_path / "e.jsonl"))
    sink.close()
    sink.close()
    sink.flush()
    with pytest.raises(SinkError, match="after close"):
        sink.write(trades(range(1)))


def test_an_unopenable_path_raises_sink_error_with_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SinkError, match="cannot open") as info:
        FileSink(str(blocker / "e.jsonl"))
    assert str(blocker / "e.jsonl") in str(info.value)


def test_read_jsonl_skips_blank_invalid_and_non_object_lines(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    good = trades(range(2))
    path.write_text(
        "\n".join(["", good[0].to_json(), "not json", "[1, 2]", "42", good[1].to_json(), ""]),
        encoding="utf-8",
    )
    assert read_jsonl(str(path)) == good


def test_read_jsonl_ignores_extra_keys_such_as_dead_letter_errors(tmp_path: Path) -> None:
    path = tmp_path / "dead.jsonl"
    record = trades(range(1))[0].to_dict() | {"error": "HTTP 400"}
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    assert read_jsonl(str(path)) == trades(range(1))


def test_a_file_system_without_locks_is_written_unguarded_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(file_module.fcntl, "flock", no_locks)
    sink = FileSink(str(tmp_path / "out.jsonl"))
    try:
        sink.write(trades([1, 2]))
    finally:
        sink.close()
    assert read_jsonl(str(tmp_path / "out.jsonl")) == trades([1, 2])
    assert "writing without a lock" in caplog.text
