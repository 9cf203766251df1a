"""Flow control values and decisions: policies, buffer settings, overflow plans, write
progress and the drop-warning rate limit. Pure: tables of scenario -> decision, a fake clock."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamvisor.policy.flow import (
    DEFAULT_DISK_MAX_BYTES,
    DEFAULT_MAX_EVENTS,
    START,
    WHEN_FULL_WORDS,
    BufferSettings,
    DropLog,
    Position,
    WhenFull,
    WriteProgress,
    plan_overflow,
)

BLOCK = WhenFull.BLOCK
NEWEST = WhenFull.DROP_NEWEST
OLDEST = WhenFull.DROP_OLDEST
DISCONNECT = WhenFull.DISCONNECT


# -- WhenFull ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "policy"),
    [
        ("block", BLOCK),
        ("drop_newest", NEWEST),
        ("drop_oldest", OLDEST),
        ("disconnect", DISCONNECT),
    ],
)
def test_when_full_parses_each_config_word(word: str, policy: WhenFull) -> None:
    assert WhenFull.parse(word) is policy


def test_when_full_parse_returns_a_policy_it_is_given_unchanged() -> None:
    for policy in WhenFull:
        assert WhenFull.parse(policy) is policy


@pytest.mark.parametrize("word", ["Block", "drop", "", "drop-newest", "overflow"])
def test_an_unknown_when_full_word_is_a_value_error_naming_every_choice(word: str) -> None:
    with pytest.raises(ValueError) as info:
        WhenFull.parse(word)
    message = str(info.value)
    assert repr(word) in message
    for choice in WHEN_FULL_WORDS:
        assert choice in message
    assert info.value.__cause__ is None  # one clear line, not a chained enum error


def test_only_block_is_a_policy_that_loses_nothing() -> None:
    assert [p for p in WhenFull if not p.drops] == [BLOCK]


# -- BufferSettings ----------------------------------------------------------------------------


def test_default_buffer_settings_are_a_blocking_memory_buffer_of_ten_thousand_events() -> None:
    settings = BufferSettings()
    assert (settings.type, settings.max_events, settings.max_bytes) == (
        "memory",
        DEFAULT_MAX_EVENTS,
        None,
    )
    assert settings.when_full is BLOCK
    assert settings.path is None


def test_a_when_full_word_is_parsed_into_the_policy() -> None:
    settings = BufferSettings(when_full="drop_oldest")  # type: ignore[arg-type]
    assert settings.when_full is OLDEST


def test_buffer_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        BufferSettings().max_events = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"type": "redis"}, "memory or disk"),
        ({"max_events": 0}, "max_events must be >= 1"),
        ({"max_events": -5}, "max_events must be >= 1"),
        ({"max_bytes": 0}, "max_bytes must be >= 1"),
        ({"max_events": None}, "needs max_events or max_bytes"),
        ({"type": "disk", "max_events": None}, "needs max_events or max_bytes"),
        ({"when_full": "sometimes"}, "when_full must be one of"),
    ],
)
def test_invalid_buffer_settings_are_a_value_error(
    kwargs: dict[str, object], fragment: str
) -> None:
    with pytest.raises(ValueError, match=fragment):
        BufferSettings(**kwargs)  # type: ignore[arg-type]


def test_a_memory_buffer_may_be_bounded_by_bytes_alone() -> None:
    settings = BufferSettings(max_events=None, max_bytes=1024)
    assert (settings.max_events, settings.max_bytes) == (None, 1024)


def test_the_disk_shorthand_is_bounded_by_bytes_only() -> None:
    settings = BufferSettings.disk()
    assert (settings.type, settings.max_events, settings.max_bytes) == (
        "disk",
        None,
        DEFAULT_DISK_MAX_BYTES,
    )
    assert settings.when_full is BLOCK
    custom = BufferSettings.disk(4096, when_full=NEWEST, path="/tmp/x.db")
    assert (custom.max_bytes, custom.when_full, custom.path) == (4096, NEWEST, "/tmp/x.db")


# -- plan_overflow ----------------------------------------------------------------------------
# (room, n, held, policy) -> (accept, evict, wait, disconnect)

PLANS = [
    # Room for the whole batch: every policy takes it.
    (5, 3, 5, BLOCK, (3, 0, False, False)),
    (5, 3, 5, NEWEST, (3, 0, False, False)),
    (5, 3, 5, OLDEST, (3, 0, False, False)),
    (5, 3, 5, DISCONNECT, (3, 0, False, False)),
    # An exact fit is a fit.
    (3, 3, 7, BLOCK, (3, 0, False, False)),
    (3, 3, 7, DISCONNECT, (3, 0, False, False)),
    # Not enough room.
    (2, 5, 8, BLOCK, (0, 0, True, False)),  # waits for room for the whole batch
    (2, 5, 8, NEWEST, (2, 0, False, False)),  # keeps the first two, drops three
    (2, 5, 8, OLDEST, (5, 3, False, False)),  # evicts three old ones, keeps all new
    (2, 5, 8, DISCONNECT, (0, 0, False, True)),
    # A full buffer.
    (0, 4, 10, BLOCK, (0, 0, True, False)),
    (0, 4, 10, NEWEST, (0, 0, False, False)),
    (0, 4, 10, OLDEST, (4, 4, False, False)),
    (0, 4, 10, DISCONNECT, (0, 0, False, True)),
    # drop_oldest cannot evict more than the buffer holds: the batch's oldest go too.
    (0, 4, 2, OLDEST, (2, 2, False, False)),
    (1, 6, 2, OLDEST, (3, 2, False, False)),
    # An empty buffer takes a whole batch larger than itself under block (a read can be
    # larger than the buffer); the drop policies still keep the bound.
    (4, 10, 0, BLOCK, (10, 0, False, False)),
    (4, 10, 0, NEWEST, (4, 0, False, False)),
    (4, 10, 0, OLDEST, (4, 0, False, False)),
    # Room below zero (a byte bound was passed): block waits, drops treat it as no room.
    (-3, 1, 2, BLOCK, (0, 0, True, False)),
    (-3, 4, 2, NEWEST, (0, 0, False, False)),
    (-3, 1, 2, DISCONNECT, (0, 0, False, True)),
    # Nothing offered: nothing to do.
    (0, 0, 10, BLOCK, (0, 0, False, False)),
    (0, 0, 10, DISCONNECT, (0, 0, False, False)),
]


@pytest.mark.parametrize(("room", "n", "held", "policy", "expected"), PLANS)
def test_plan_overflow_decides_per_policy(
    room: int, n: int, held: int, policy: WhenFull, expected: tuple[int, int, bool, bool]
) -> None:
    plan = plan_overflow(room, n, policy, held)
    assert (plan.accept, plan.evict, plan.wait, plan.disconnect) == expected


@given(
    room=st.integers(-50, 50),
    n=st.integers(0, 50),
    held=st.integers(0, 50),
    policy=st.sampled_from(list(WhenFull)),
)
def test_plan_overflow_never_loses_under_block_and_never_overfills_under_a_drop_policy(
    room: int, n: int, held: int, policy: WhenFull
) -> None:
    plan = plan_overflow(room, n, policy, held)
    assert 0 <= plan.accept <= n
    assert 0 <= plan.evict <= held
    fits = n <= room
    if fits:
        assert plan == (n, 0, False, False)
    elif policy is BLOCK:
        # all or nothing: take the batch whole (empty buffer) or wait, never drop
        assert (plan.accept, plan.evict, plan.disconnect) == (
            (n, 0, False) if not held else (0, 0, False)
        )
        assert plan.wait is bool(held)
    elif policy is DISCONNECT:
        assert plan == (0, 0, False, True)
    else:
        assert not plan.wait and not plan.disconnect
        # the buffer never grows past its bound
        assert plan.accept - plan.evict <= max(room, 0)
        if policy is NEWEST:
            assert plan.evict == 0
            assert plan.accept == min(n, max(room, 0))
        else:  # as few drops as the bound allows: evict old ones before refusing new ones
            assert plan.accept == min(n, max(room, 0) + held)
            assert plan.evict == min(held, n - max(room, 0))


# -- WriteProgress -----------------------------------------------------------------------------

P0, P3, P5, P9 = START, Position(3, "c"), Position(5, "e"), Position(9, "i")


def test_write_progress_holds_back_nothing_before_anything_is_handed_over() -> None:
    progress = WriteProgress()
    assert progress.holds_back("s") is None
    assert progress.outstanding("s") == 0


def test_handed_events_hold_the_stream_at_the_position_before_them() -> None:
    progress = WriteProgress()
    progress.handed("s", 3, P0)
    assert progress.holds_back("s") == P0
    assert progress.outstanding("s") == 3


def test_a_second_hand_over_keeps_the_floor_of_the_first_unwritten_events() -> None:
    progress = WriteProgress()
    progress.handed("s", 3, P0)
    progress.handed("s", 2, P3)
    assert progress.holds_back("s") == P0
    assert progress.outstanding("s") == 5


def test_writing_the_first_chunk_moves_the_floor_to_its_last_event() -> None:
    progress = WriteProgress()
    progress.handed("s", 3, P0)
    progress.handed("s", 2, P3)
    progress.written("s", 3, P3)
    assert progress.holds_back("s") == P3
    progress.written("s", 2, P5)
    assert progress.holds_back("s") is None
    assert progress.outstanding("s") == 0


def test_after_everything_is_written_a_new_hand_over_sets_a_new_floor() -> None:
    progress = WriteProgress()
    progress.handed("s", 3, P0)
    progress.written("s", 3, P3)
    progress.handed("s", 2, P5)
    assert progress.holds_back("s") == P5


def test_an_empty_hand_over_holds_nothing_back() -> None:
    progress = WriteProgress()
    progress.handed("s", 0, P3)
    progress.handed("s", -2, P3)
    assert progress.holds_back("s") is None


def test_events_dropped_from_the_middle_are_done_but_keep_the_floor() -> None:
    progress = WriteProgress()
    progress.handed("s", 3, P0)
    progress.handed("s", 4, P3)
    progress.discount("s", 2)
    assert progress.outstanding("s") == 5
    assert progress.holds_back("s") == P0
    progress.discount("s", 5)
    assert progress.holds_back("s") is None


def test_writing_or_discounting_more_than_outstanding_never_goes_below_zero() -> None:
    progress = WriteProgress()
    progress.handed("s", 2, P0)
    progress.written("s", 5, P5)
    assert progress.outstanding("s") == 0
    progress.discount("s", 3)
    assert progress.outstanding("s") == 0
    assert progress.holds_back("s") is None


def test_streams_are_tracked_apart() -> None:
    progress = WriteProgress()
    progress.handed("a", 3, P0)
    progress.handed("b", 1, P5)
    progress.written("a", 3, P3)
    assert progress.holds_back("a") is None
    assert progress.holds_back("b") == P5
    assert progress.holds_back("c") is None


# -- DropLog -----------------------------------------------------------------------------------


def test_the_first_drop_is_reported_at_once() -> None:
    assert DropLog(10.0).add(3, now=100.0) == 3


def test_drops_within_the_interval_stay_quiet_and_are_reported_together_later() -> None:
    log = DropLog(10.0)
    reports = [
        log.add(1, now=100.0),  # first: reported
        log.add(2, now=101.0),
        log.add(4, now=109.9),
        log.add(8, now=110.0),  # the interval is over: everything since the last line
        log.add(1, now=111.0),
        log.add(1, now=125.0),
    ]
    assert reports == [1, 0, 0, 14, 0, 2]


def test_every_dropped_event_is_reported_exactly_once_over_time() -> None:
    log = DropLog(5.0)
    added = reported = 0
    for step in range(200):
        count = step % 7
        added += count
        reported += log.add(count, now=step * 0.37)
    reported += log.add(0, now=1e9)  # a late line flushes the rest
    assert reported == added


def test_an_interval_of_zero_reports_every_drop() -> None:
    log = DropLog(0.0)
    assert [log.add(n, now=1.0) for n in (1, 2, 3)] == [1, 2, 3]
