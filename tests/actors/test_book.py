"""StreamBook: dedup with provisional sequence numbers, commit and abandon, counters, and the
dedup pairs a checkpoint may carry (``recent(upto)``)."""

from __future__ import annotations

from streamvisor.actors.book import StreamBook
from streamvisor.policy.dedup import digest
from streamvisor.policy.flow import START, Position
from streamvisor.sse import Event


def ev(event_id: str | None, data: str = "", kind: str = "message") -> Event:
    """An event of stream "s" whose Last-Event-ID is its id (or "" for none)."""
    return Event("s", event_id, kind, data or f"data {event_id}", event_id)


def ids(events: list[Event]) -> list[str | None]:
    return [e.id for e in events]


def pairs(*event_ids: str) -> tuple[tuple[str, str], ...]:
    return tuple((i, digest("message", f"data {i}")) for i in event_ids)


def deliver(book: StreamBook, events: list[Event]) -> list[Event]:
    kept, _ = book.admit(events)
    book.commit()
    return kept


# -- admit and commit ----------------------------------------------------------------------


def test_a_new_book_has_committed_nothing() -> None:
    book = StreamBook()
    assert book.committed == START
    assert (book.events, book.dedup_dropped, book.reused, book.last_at) == (0, 0, 0, None)
    assert book.recent(100) == ()


def test_admitted_events_are_numbered_after_the_committed_ones() -> None:
    book = StreamBook()
    kept, first = book.admit([ev("1"), ev("2"), ev("3")])
    assert (ids(kept), first) == (["1", "2", "3"], 0)
    book.commit()
    kept, first = book.admit([ev("4"), ev("5")])
    assert (ids(kept), first) == (["4", "5"], 3)


def test_admitted_events_count_only_once_committed() -> None:
    book = StreamBook()
    book.admit([ev("1"), ev("2")])
    assert (book.committed, book.events) == (START, 0)
    book.commit()
    assert book.committed == Position(2, "2")
    assert book.events == 2
    assert book.last_at is not None


def test_a_committed_replay_is_dropped_and_counted() -> None:
    book = StreamBook()
    deliver(book, [ev("1"), ev("2"), ev("3")])
    kept, first = book.admit([ev("2"), ev("3"), ev("4")])
    assert (ids(kept), first) == (["4"], 3)
    book.commit()
    assert book.dedup_dropped == 2
    assert book.committed == Position(4, "4")
    assert book.events == 4


def test_a_batch_of_replays_only_commits_nothing() -> None:
    book = StreamBook()
    deliver(book, [ev("1"), ev("2")])
    at = book.last_at
    kept, _ = book.admit([ev("1"), ev("2")])
    book.commit()
    assert kept == []
    assert (book.committed, book.events, book.last_at) == (Position(2, "2"), 2, at)


def test_a_reused_id_with_new_content_is_kept_and_counted() -> None:
    book = StreamBook()
    deliver(book, [ev("1", "old")])
    assert ids(deliver(book, [ev("1", "new")])) == ["1"]
    assert book.reused == 1
    assert deliver(book, [ev("1", "new")]) == []  # its new content is what a replay repeats
    assert ids(deliver(book, [ev("1", "old")])) == ["1"]
    assert (book.reused, book.dedup_dropped) == (2, 1)


def test_a_duplicate_within_one_batch_is_dropped() -> None:
    book = StreamBook()
    kept, _ = book.admit([ev("1"), ev("2"), ev("1"), ev("3"), ev("2")])
    assert ids(kept) == ["1", "2", "3"]
    assert book.dedup_dropped == 0  # counted once the batch is delivered
    book.commit()
    assert book.dedup_dropped == 2


def test_an_abandoned_batch_counts_no_drops_so_its_second_reading_counts_them_once() -> None:
    book = StreamBook()
    book.admit([ev("1"), ev("1")])
    book.abandon()
    assert book.dedup_dropped == 0
    book.admit([ev("1"), ev("1")])
    book.commit()
    assert book.dedup_dropped == 1


def test_a_reused_id_within_one_batch_is_kept_and_counted() -> None:
    book = StreamBook()
    kept, _ = book.admit([ev("1", "a"), ev("1", "b"), ev("1", "b")])
    assert [(e.id, e.data) for e in kept] == [("1", "a"), ("1", "b")]
    book.commit()
    assert (book.reused, book.dedup_dropped) == (1, 1)
    assert deliver(book, [ev("1", "b")]) == []  # the last content is remembered
    assert ids(deliver(book, [ev("1", "a")])) == ["1"]


def test_events_without_an_id_always_pass() -> None:
    book = StreamBook()
    same = [ev(None, "x"), ev(None, "x"), ev("", "x"), ev("", "x")]
    assert len(deliver(book, same)) == 4
    assert len(deliver(book, same)) == 4
    assert book.events == 8
    assert book.dedup_dropped == 0


def test_a_zero_window_disables_dedup() -> None:
    book = StreamBook(size=0)
    deliver(book, [ev("1"), ev("2")])
    assert ids(deliver(book, [ev("1"), ev("2")])) == ["1", "2"]
    assert (book.events, book.dedup_dropped) == (4, 0)
    assert book.recent(100) == ()


def test_the_committed_position_carries_the_last_kept_events_last_event_id() -> None:
    book = StreamBook()
    deliver(book, [ev("1"), Event("s", None, "message", "no id", "1")])
    assert book.committed == Position(2, "1")


# -- abandon -------------------------------------------------------------------------------


def test_an_abandoned_batch_is_not_counted_as_delivered() -> None:
    book = StreamBook()
    deliver(book, [ev("1")])
    book.admit([ev("2"), ev("3")])
    book.abandon()
    assert book.committed == Position(1, "1")
    assert book.events == 1
    book.commit()  # a commit after an abandon has nothing to commit
    assert book.committed == Position(1, "1")


def test_an_abandoned_batch_leaves_the_dedup_window_as_it_was() -> None:
    book = StreamBook()
    deliver(book, [ev("1")])
    book.admit([ev("2"), ev("3")])
    book.abandon()
    # The same events again (the stream resumed from before them): not replays.
    kept, first = book.admit([ev("2"), ev("3")])
    assert (ids(kept), first) == (["2", "3"], 1)
    book.commit()
    assert book.committed == Position(3, "3")
    assert book.recent(3) == pairs("1", "2", "3")


def test_an_abandoned_reuse_leaves_the_old_content_remembered() -> None:
    book = StreamBook()
    deliver(book, [ev("1", "old")])
    book.admit([ev("1", "new")])
    book.abandon()
    assert deliver(book, [ev("1", "old")]) == []  # still a replay of the committed content


# -- seeds and recent ----------------------------------------------------------------------


def test_a_seeded_book_drops_replays_of_the_checkpoints_window() -> None:
    book = StreamBook(seed=pairs("8", "9"))
    kept = deliver(book, [ev("8"), ev("9"), ev("10")])
    assert ids(kept) == ["10"]
    assert book.recent(0) == pairs("8", "9")  # seeds are at sequence 0


def test_reseed_replaces_the_window() -> None:
    book = StreamBook(seed=pairs("1"))
    book.reseed(16, pairs("2"))
    assert ids(deliver(book, [ev("1"), ev("2")])) == ["1"]


def test_recent_is_cut_at_the_given_sequence() -> None:
    book = StreamBook(seed=pairs("0"))
    deliver(book, [ev("1"), ev("2"), ev("3")])
    deliver(book, [ev("4"), ev("5")])
    assert book.recent(0) == pairs("0")
    assert book.recent(3) == pairs("0", "1", "2", "3")
    assert book.recent(5) == pairs("0", "1", "2", "3", "4", "5")


def test_recent_never_holds_admitted_but_uncommitted_ids() -> None:
    book = StreamBook()
    deliver(book, [ev("1")])
    book.admit([ev("2")])
    assert book.recent(10) == pairs("1")


def test_the_window_keeps_only_the_newest_ids() -> None:
    book = StreamBook(size=3)
    deliver(book, [ev(str(i)) for i in range(1, 6)])
    assert book.recent(5) == pairs("3", "4", "5")
    assert ids(deliver(book, [ev("1")])) == ["1"]  # forgotten: delivered again
