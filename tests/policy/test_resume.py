"""Exactly once into a file: reading a JSONL file back from its end (``read_back``), where a
stream resumes (``resume_point``, a table), and the file sink's recovery (torn last line cut
off, held events skipped when they come again)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamvisor.checkpoint.store import Checkpoint
from streamvisor.policy.dedup import digest
from streamvisor.policy.resume import resume_point
from streamvisor.sinks import readback
from streamvisor.sinks.file import FileSink, read_jsonl
from streamvisor.sinks.readback import Held, read_back
from streamvisor.sse import Event


def ev(stream: str, event_id: str | None, data: str | None = None, lid: str | None = "") -> Event:
    return Event(
        stream,
        event_id,
        "message",
        data if data is not None else f"{stream} {event_id}",
        event_id if lid == "" else lid,
        1700000000.0,
    )


def pair(stream: str, event_id: str) -> tuple[str, str]:
    return (event_id, digest("message", f"{stream} {event_id}"))


def write_lines(path: Path, events: list[Event], tail: bytes = b"") -> None:
    path.write_bytes(b"".join(e.to_json().encode() + b"\n" for e in events) + tail)


def series(stream: str, first: int, last: int) -> list[Event]:
    return [ev(stream, str(i)) for i in range(first, last + 1)]


# -- read_back -----------------------------------------------------------------------------


def test_a_missing_file_holds_nothing(tmp_path: Path) -> None:
    assert read_back(str(tmp_path / "none.jsonl"), {"s": "1"}) == {}


def test_an_empty_file_holds_nothing(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_bytes(b"")
    assert read_back(str(path), {}) == {}


def test_read_back_returns_the_ids_after_the_checkpoint_oldest_first(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    write_lines(path, series("s", 1, 6))
    held = read_back(str(path), {"s": "3"})
    assert held == {"s": Held("6", [pair("s", "4"), pair("s", "5"), pair("s", "6")], True)}


def test_a_file_that_ends_at_the_checkpoint_holds_nothing_after_it(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    write_lines(path, series("s", 1, 3))
    assert read_back(str(path), {"s": "3"}) == {"s": Held("3", [], True)}


def test_without_the_checkpoint_id_in_the_file_every_id_is_held_and_it_is_said(
    tmp_path: Path,
) -> None:
    path = tmp_path / "f.jsonl"
    write_lines(path, series("s", 5, 7))
    held = read_back(str(path), {"s": "2"})
    assert held == {"s": Held("7", [pair("s", "5"), pair("s", "6"), pair("s", "7")], False)}
    assert read_back(str(path), {"s": None}) == held
    assert read_back(str(path), {}) == held


def test_streams_are_read_back_apart(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    a, b = series("a", 1, 4), series("b", 1, 3)
    write_lines(path, [a[0], b[0], a[1], b[1], a[2], a[3], b[2]])
    held = read_back(str(path), {"a": "2", "b": "1", "c": "9"})
    assert held == {
        "a": Held("4", [pair("a", "3"), pair("a", "4")], True),
        "b": Held("3", [pair("b", "2"), pair("b", "3")], True),
    }


def test_the_latest_occurrence_of_the_checkpoint_id_is_where_the_read_back_stops(
    tmp_path: Path,
) -> None:
    path = tmp_path / "f.jsonl"
    # the upstream restarted its ids: "2" is in the file twice
    write_lines(path, [*series("s", 1, 3), ev("s", "2", "again"), ev("s", "9")])
    assert read_back(str(path), {"s": "2"}) == {"s": Held("9", [pair("s", "9")], True)}


def test_blank_invalid_and_foreign_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    lines = [
        ev("s", "1").to_json(),
        "",
        "{not json",
        "[1, 2, 3]",
        '{"stream": 7, "id": "x"}',
        ev("s", "2").to_json(),
        "   ",
    ]
    path.write_text("\n".join(lines) + "\n")
    assert read_back(str(path), {"s": "1"}) == {"s": Held("2", [pair("s", "2")], True)}


def test_events_without_an_id_give_the_last_event_id_but_no_held_id(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    write_lines(path, [ev("s", "1"), ev("s", "2"), ev("s", None, "tick", lid="2")])
    assert read_back(str(path), {"s": "1"}) == {"s": Held("2", [pair("s", "2")], True)}


def test_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    write_lines(path, series("s", 1, 3), tail=b'{"stream": "s", "id": "4", "da')
    assert read_back(str(path), {"s": "2"}) == {"s": Held("3", [pair("s", "3")], True)}


@pytest.mark.parametrize("block", [1, 7, 64, 1000])
def test_lines_split_across_read_blocks_are_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    path = tmp_path / "f.jsonl"
    write_lines(path, [*series("s", 1, 20), ev("s", "21", "ünïcödé ✓")])
    expected = read_back(str(path), {"s": "5"})
    monkeypatch.setattr(readback, "BLOCK", block)
    assert read_back(str(path), {"s": "5"}) == expected
    assert [i for i, _ in expected["s"].ids] == [str(i) for i in range(6, 22)]
    assert read_back(str(path), {}) == {
        "s": Held(
            "21",
            [pair("s", str(i)) for i in range(1, 21)] + [("21", digest("message", "ünïcödé ✓"))],
        )
    }


def test_read_back_stops_at_max_bytes_from_the_end(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    events = series("s", 1, 100)
    write_lines(path, events)
    tail = sum(len(e.to_json()) + 1 for e in events[-10:])
    held = read_back(str(path), {"s": "1"}, max_bytes=tail)
    assert held["s"].reached_checkpoint is False
    assert held["s"].last_event_id == "100"
    ids = [i for i, _ in held["s"].ids]
    assert ids == [str(i) for i in range(100 - len(ids) + 1, 101)]  # a contiguous tail
    assert 9 <= len(ids) <= 10


# -- resume_point --------------------------------------------------------------------------

CP = Checkpoint("3", (pair("s", "2"), pair("s", "3")), 1234.0)
HELD = Held("6", [pair("s", "4"), pair("s", "5"), pair("s", "6")], True)
HELD_FAR = Held("6", [pair("s", "5"), pair("s", "6")], False)  # did not reach the checkpoint
OTHER = Held("5", [pair("s", "4"), pair("s", "5")], True)
AFTER = CP.recent + tuple(HELD.ids)

RESUME = [
    # (checkpoint, held per sink, window) -> expected
    ("no sink takes the stream", CP, [], 10, CP),
    ("a sink cannot tell what it holds", CP, [HELD, None], 10, CP),
    ("the sinks disagree on the last id", CP, [HELD, OTHER], 10, CP),
    ("the file did not reach back to the checkpoint", CP, [HELD_FAR], 10, CP),
    ("one sink holds more than the checkpoint", CP, [HELD], 10, Checkpoint("6", AFTER, 1234.0)),
    ("two sinks agree", CP, [HELD, HELD], 10, Checkpoint("6", AFTER, 1234.0)),
    ("the seed is cut to the window", CP, [HELD], 2, Checkpoint("6", AFTER[-2:], 1234.0)),
    ("a zero window seeds nothing", CP, [HELD], 0, Checkpoint("6", (), 1234.0)),
    (
        "no checkpoint yet: the file says",
        None,
        [HELD_FAR],
        10,
        Checkpoint("6", tuple(HELD_FAR.ids), 0.0),
    ),
    ("no checkpoint and no sink", None, [], 10, None),
    ("no checkpoint and a sink that cannot tell", None, [None], 10, None),
    (
        "a checkpoint without an id: the file says",
        Checkpoint(None, (), 5.0),
        [HELD_FAR],
        10,
        Checkpoint("6", tuple(HELD_FAR.ids), 5.0),
    ),
    ("the file ends at the checkpoint", CP, [Held("3", [], True)], 10, CP),
]


@pytest.mark.parametrize(
    ("checkpoint", "held", "window", "expected"),
    [case[1:] for case in RESUME],
    ids=[case[0] for case in RESUME],
)
def test_resume_point(
    checkpoint: Checkpoint | None, held: list[Held | None], window: int, expected: Checkpoint | None
) -> None:
    assert resume_point(checkpoint, held, window) == expected


# -- FileSink recovery ---------------------------------------------------------------------


def test_the_file_sink_cuts_a_torn_last_line_off_when_it_opens(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    write_lines(path, series("s", 1, 2), tail=b'{"stream": "s", "id": "3", "data": "s')
    sink = FileSink(path)
    try:
        assert path.read_bytes().endswith(b"\n")
        sink.write([ev("s", "3")])
    finally:
        sink.close()
    assert [e.id for e in read_jsonl(str(path))] == ["1", "2", "3"]
    assert len(path.read_text().splitlines()) == 3


def test_a_file_holding_only_a_torn_line_is_emptied(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_bytes(b'{"stream": "s", "id": "1"')
    FileSink(path).close()
    assert path.read_bytes() == b""


def test_recover_reports_what_the_file_holds_after_each_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    write_lines(path, [*series("a", 1, 4), *series("b", 1, 2)])
    sink = FileSink(path)
    try:
        held = sink.recover({"a": "2", "b": None})
    finally:
        sink.close()
    assert held == {
        "a": Held("4", [pair("a", "3"), pair("a", "4")], True),
        "b": Held("2", [pair("b", "1"), pair("b", "2")], False),
    }
    assert sink.recovered == held


def test_held_events_that_come_again_are_skipped_once(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    write_lines(path, series("s", 1, 5))
    sink = FileSink(path)
    try:
        sink.recover({"s": "3"})
        # the stream resumed from the checkpoint: 4 and 5 come again, then 6 is new
        sink.write(series("s", 4, 6))
        sink.write([ev("s", "4")])  # a second copy is not the sink's business: written
    finally:
        sink.close()
    assert [e.id for e in read_jsonl(str(path))] == ["1", "2", "3", "4", "5", "6", "4"]
    assert sink.stats["skipped"] == 2
    assert sink.stats["delivered"] == 2


def test_a_held_id_with_new_content_is_written(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    write_lines(path, series("s", 1, 3))
    sink = FileSink(path)
    try:
        sink.recover({"s": "1"})
        sink.write([ev("s", "2", "reused id, new data"), ev("s", "3")])
    finally:
        sink.close()
    assert [(e.id, e.data) for e in read_jsonl(str(path))][-1] == ("2", "reused id, new data")
    assert sink.stats["skipped"] == 1


def test_held_ids_of_one_stream_do_not_skip_another_streams_events(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    write_lines(path, series("a", 1, 2))
    sink = FileSink(path)
    try:
        sink.recover({})
        sink.write([Event("b", "1", "message", "a 1", "1"), ev("a", "1")])
    finally:
        sink.close()
    assert [(e.stream, e.id) for e in read_jsonl(str(path))] == [
        ("a", "1"),
        ("a", "2"),
        ("b", "1"),
    ]


def test_a_restart_after_a_crash_neither_loses_nor_repeats_events(tmp_path: Path) -> None:
    # The run before the crash wrote 1-7; the checkpoint was saved at 4.
    path = tmp_path / "f.jsonl"
    write_lines(path, series("s", 1, 7), tail=b'{"stream": "s", "id": "8"')
    checkpoint = Checkpoint("4", (pair("s", "3"), pair("s", "4")), 10.0)
    sink = FileSink(path)
    try:
        held = sink.recover({"s": checkpoint.last_event_id})
        point = resume_point(checkpoint, [held.get("s")], 4096)
        assert point is not None and point.last_event_id == "7"
        # the upstream resumes after 7; a replay of 5-7 (an upstream that ignores
        # Last-Event-ID) is skipped by the sink
        sink.write(series("s", 5, 10))
    finally:
        sink.close()
    assert [e.id for e in read_jsonl(str(path))] == [str(i) for i in range(1, 11)]
    assert {i for i, _ in point.recent} >= {"3", "4", "5", "6", "7"}
