"""StreamBook.admit/commit: the per-read fast path agrees with the window's one-by-one rules."""

from __future__ import annotations

import random
import zlib

from streamvisor.actors.book import StreamBook
from streamvisor.policy.dedup import DedupWindow, Verdict, digest, digest_value
from streamvisor.sse import Event


def _ev(eid: str | None, data: str, event: str = "tick") -> Event:
    return Event("s", eid, event, data, eid, 0.0)


def test_a_read_that_repeats_an_id_drops_the_replay_and_keeps_the_reuse() -> None:
    book = StreamBook(16)
    kept, first = book.admit([_ev("1", "a"), _ev("1", "a"), _ev("2", "b"), _ev("2", "c")])
    assert first == 0
    assert [(e.id, e.data) for e in kept] == [("1", "a"), ("2", "b"), ("2", "c")]
    assert (book.dedup_dropped, book.reused) == (0, 0)  # counted when committed
    book.commit()
    assert (book.dedup_dropped, book.reused) == (1, 1)
    assert book.committed.seq == 3
    # the window remembers the newest content of a reused id, at its sequence number
    assert book.recent(3) == (("1", digest("tick", "a")), ("2", digest("tick", "c")))


def test_the_window_stays_bounded_and_ordered_across_committed_reads() -> None:
    book = StreamBook(5)
    for start in range(0, 12, 4):
        kept, _ = book.admit([_ev(str(i), f"d{i}") for i in range(start, start + 4)])
        assert len(kept) == 4
        book.commit()
    assert [i for i, _ in book.recent(12)] == ["7", "8", "9", "10", "11"]
    kept, _ = book.admit([_ev("9", "d9"), _ev("3", "d3")])  # 9 is a replay; 3 was forgotten
    assert [e.id for e in kept] == ["3"]


def test_an_abandoned_read_is_not_remembered_or_counted() -> None:
    book = StreamBook(8)
    book.admit([_ev("1", "a"), _ev("1", "a")])
    book.abandon()
    kept, _ = book.admit([_ev("1", "a")])
    assert [e.id for e in kept] == ["1"]
    assert book.dedup_dropped == 0


def _reference_read(window: DedupWindow, read: list[Event], seq: int) -> list[Event]:
    """The rule, one event at a time: compare with the window as it was before the read and
    with earlier events of the read; then remember the kept ones in order."""
    kept: list[Event] = []
    batch: dict[str, int] = {}
    remember: list[tuple[str, int, int]] = []
    for ev in read:
        if ev.id:
            dig = digest_value(ev.event, ev.data)
            seen = batch.get(ev.id)
            if seen is None:
                seen = window.known(ev.id)
            if seen == dig:
                continue
            batch[ev.id] = dig
            remember.append((ev.id, dig, seq + 1))
        seq += 1
        kept.append(ev)
    for eid, dig, n in remember:
        window.remember(eid, dig, n)
    return kept


def test_admit_matches_the_one_by_one_rule_on_random_reads() -> None:
    rng = random.Random(7)
    book, oracle = StreamBook(6), DedupWindow(6)
    for _ in range(500):
        read = [
            _ev(rng.choice([None, "", *map(str, range(10))]), rng.choice("abc"))
            for _ in range(rng.randint(1, 8))
        ]
        kept, first = book.admit(read)
        book.commit()
        assert kept == _reference_read(oracle, read, first)
        assert book.recent(10**9) == oracle.recent()


def test_digests_stay_the_crc32_hex_that_checkpoints_hold() -> None:
    # the format older checkpoints hold: CRC-32 of the data, seeded with the type's CRC-32
    for event, data in (("message", "hello"), ("tick", "x" * 300), ("t", "\ud800 é")):
        raw = data.encode("utf-8", "surrogatepass")
        expected = format(zlib.crc32(raw, zlib.crc32(event.encode())), "08x")
        assert digest(event, data) == expected
        assert digest_value(event, data) == int(expected, 16)


def test_a_seed_digest_that_is_not_ours_never_matches() -> None:
    window = DedupWindow(4, [("1", "not-hex!"), ("2", digest("tick", "b"))])
    assert window.check("2", "tick", "b") is Verdict.DUPLICATE
    assert window.check("1", "tick", "a") is not Verdict.DUPLICATE


def test_a_reseed_between_admit_and_commit_still_remembers_the_read() -> None:
    book = StreamBook(4)
    kept, _ = book.admit([_ev("1", "a"), _ev("2", "b")])
    assert len(kept) == 2
    book.reseed(4, [("9", digest("tick", "z"))])  # a reload with a checkpoint meanwhile
    book.commit()
    assert [i for i, _ in book.recent(10)] == ["9", "1", "2"]
    assert book.admit([_ev("2", "b")])[0] == []
