"""The replay ring: retention by count and by age, O(1) resolution of relay ids, gaps."""

from __future__ import annotations

import pytest

from streamvisor.relay.ring import (
    ReplayRing,
    event_key,
    format_id,
    new_epoch,
    parse_id,
    skip_stored,
)
from streamvisor.sse import Event


def filled(n: int, *, max_events: int = 5, max_age: float = 60.0, at: float = 100.0) -> ReplayRing:
    ring = ReplayRing(max_events, max_age, "ep")
    for _ in range(n):
        seq = ring.last_seq + 1
        assert ring.append(f"f{seq}".encode(), at) == seq
    return ring


def test_ids_round_trip_and_anything_else_is_not_an_id() -> None:
    assert parse_id(format_id("mx3-a", 17)) == ("mx3-a", 17)
    for text in ("", "17", "-17", "ep-", "ep-x1", "ep-\uff11", "ep-" + "9" * 19):
        assert parse_id(text) is None


def test_epochs_are_base36_milliseconds_and_grow_with_time() -> None:
    assert new_epoch(0.0) == "0"
    assert int(new_epoch(1_700_000_000.123), 36) == 1_700_000_000_123
    assert new_epoch(2.0) != new_epoch(1.0)


def test_resume_from_a_retained_id_replays_exactly_what_followed() -> None:
    ring = filled(4)
    resume = ring.since(format_id("ep", 2), 100.0)
    assert resume.gap is None
    assert resume.frames == [b"f3", b"f4"]


def test_resume_from_the_newest_id_replays_nothing_and_is_no_gap() -> None:
    resume = filled(4).since("ep-4", 100.0)
    assert (resume.gap, resume.frames) == (None, [])


def test_count_bound_keeps_the_newest_and_the_id_just_before_them_is_still_exact() -> None:
    ring = filled(8)  # holds 4..8
    assert (ring.first_seq, ring.last_seq, len(ring)) == (4, 8, 5)
    resume = ring.since("ep-3", 100.0)  # the client saw 3: nothing it misses was dropped
    assert resume.gap is None
    assert resume.frames == [b"f4", b"f5", b"f6", b"f7", b"f8"]


def test_an_id_older_than_the_history_gets_an_expired_gap_then_everything_retained() -> None:
    resume = filled(8).since("ep-2", 100.0)
    assert resume.gap is not None
    assert (resume.gap.reason, resume.gap.last_event_id) == ("expired", "ep-2")
    assert resume.gap.oldest_retained == "ep-4"
    assert resume.gap.resume_id == "ep-3"
    assert resume.frames[0] == b"f4" and len(resume.frames) == 5


@pytest.mark.parametrize("asked", ["other-2", "ep-9", "not an id", "ep-"])
def test_ids_never_issued_by_this_history_get_an_unknown_gap(asked: str) -> None:
    resume = filled(3).since(asked, 100.0)
    assert resume.gap is not None and resume.gap.reason == "unknown"
    assert resume.frames == [b"f1", b"f2", b"f3"]


def test_age_bound_drops_old_events_on_the_next_lookup() -> None:
    ring = ReplayRing(10, 5.0, "ep")
    ring.append(b"old", 100.0)
    ring.append(b"new", 104.0)
    resume = ring.since("ep-0", 105.5)
    assert resume.gap is not None and resume.gap.reason == "expired"
    assert resume.frames == [b"new"]
    assert ring.expire(200.0) == 1 and len(ring) == 0


def test_an_empty_history_gives_a_gap_without_oldest_and_a_resume_id_at_the_head() -> None:
    ring = filled(2)
    ring.expire(1000.0)
    resume = ring.since("x", 1000.0)
    assert resume.gap is not None
    assert (resume.gap.oldest_retained, resume.gap.resume_id, resume.frames) == (None, "ep-2", [])
    assert ring.next_id() == "ep-3"


def test_restore_continues_the_sequence_and_keeps_only_a_contiguous_run() -> None:
    ring = ReplayRing(10, 60.0, "ep", last_seq=3)
    ring.restore([(2, 1.0, b"ignored"), (4, 1.0, b"f4"), (5, 1.0, b"f5"), (7, 1.0, b"f7")])
    assert (ring.first_seq, ring.last_seq) == (7, 7)
    assert ring.since("ep-6", 2.0).frames == [b"f7"]
    assert ring.next_id() == "ep-8"


def test_invalid_bounds_are_refused() -> None:
    with pytest.raises(ValueError):
        ReplayRing(0, 1.0, "ep")
    with pytest.raises(ValueError):
        ReplayRing(1, 0.0, "ep")


def test_skip_stored_drops_the_replayed_prefix_and_stops_at_the_first_new_event() -> None:
    old = [Event("s", "1", "tick", "a"), Event("s", "2", "tick", "b")]
    stored = {key for key in map(event_key, old) if key is not None}
    incoming = [*old, Event("s", "3", "tick", "c"), Event("s", "1", "tick", "a")]
    kept, keys = skip_stored(stored, incoming)
    assert [e.id for e in kept] == ["3", "1"]  # after the replay ended, ids pass again
    assert keys == [event_key(e) for e in kept] and stored == set()
    assert skip_stored(set(), [Event("s", None, "m", "x")]) == (
        [Event("s", None, "m", "x")],
        [None],
    )
