"""DedupWindow: replays dropped, reused ids kept, bounded memory, checkpoint seeding."""

from __future__ import annotations

from streamvisor.policy.dedup import DedupWindow, Verdict, digest


def test_a_first_seen_id_is_new() -> None:
    assert DedupWindow().check("1", "message", "a") is Verdict.NEW


def test_a_replay_of_the_same_id_and_content_is_a_duplicate() -> None:
    window = DedupWindow()
    window.check("1", "message", "a")
    assert window.check("1", "message", "a") is Verdict.DUPLICATE
    assert window.check("1", "message", "a") is Verdict.DUPLICATE


def test_a_reused_id_with_new_data_is_reported_reused_and_remembered() -> None:
    window = DedupWindow()
    window.check("1", "message", "old")
    assert window.check("1", "message", "new") is Verdict.REUSED
    # The new content is now the one a replay would repeat.
    assert window.check("1", "message", "new") is Verdict.DUPLICATE
    assert window.check("1", "message", "old") is Verdict.REUSED


def test_a_reused_id_with_a_new_event_type_is_reused() -> None:
    window = DedupWindow()
    window.check("1", "trade", "x")
    assert window.check("1", "quote", "x") is Verdict.REUSED


def test_events_without_an_id_always_pass() -> None:
    window = DedupWindow()
    verdicts = [window.check(None, "message", "same") for _ in range(3)]
    assert verdicts == [Verdict.NEW] * 3
    assert len(window) == 0


def test_events_after_an_id_reset_with_an_empty_id_always_pass() -> None:
    # ``id:`` with no value resets the Last-Event-ID: the event carries no usable id, and two
    # such events with equal data are two events, not a replay.
    window = DedupWindow()
    verdicts = [window.check("", "message", "ping") for _ in range(3)]
    assert verdicts == [Verdict.NEW] * 3


def test_a_window_of_size_zero_keeps_nothing() -> None:
    window = DedupWindow(size=0)
    assert [window.check("1", "m", "a") for _ in range(2)] == [Verdict.NEW, Verdict.NEW]
    assert len(window) == 0


def test_the_oldest_id_is_evicted_when_the_window_is_full() -> None:
    window = DedupWindow(size=3)
    for i in range(1, 5):  # 1 2 3 4: "1" falls out
        window.check(str(i), "m", f"d{i}")
    assert len(window) == 3
    assert [i for i, _ in window.recent()] == ["2", "3", "4"]
    assert window.check("1", "m", "d1") is Verdict.NEW  # forgotten: delivered again
    assert window.check("4", "m", "d4") is Verdict.DUPLICATE


def test_a_reused_id_does_not_grow_the_window_or_change_eviction_order() -> None:
    window = DedupWindow(size=2)
    window.check("a", "m", "1")
    window.check("b", "m", "1")
    assert window.check("a", "m", "2") is Verdict.REUSED
    assert len(window) == 2
    window.check("c", "m", "1")  # evicts "a", the oldest by first sight
    assert [i for i, _ in window.recent()] == ["b", "c"]


def test_recent_lists_ids_oldest_first_with_their_digests() -> None:
    window = DedupWindow()
    window.check("1", "tick", "a")
    window.check("2", "tick", "b")
    assert window.recent() == (("1", digest("tick", "a")), ("2", digest("tick", "b")))


def test_recent_upto_leaves_out_ids_remembered_after_that_sequence_number() -> None:
    window = DedupWindow()
    for seq in range(1, 6):
        window.check(str(seq), "m", "x", seq)
    assert [i for i, _ in window.recent(upto=3)] == ["1", "2", "3"]
    assert [i for i, _ in window.recent(upto=0)] == []
    assert [i for i, _ in window.recent()] == ["1", "2", "3", "4", "5"]


def test_recent_upto_uses_the_sequence_of_a_reused_ids_latest_content() -> None:
    window = DedupWindow()
    window.check("1", "m", "old", 1)
    window.check("2", "m", "x", 2)
    window.check("1", "m", "new", 3)
    assert window.recent(upto=2) == (("2", digest("m", "x")),)


def test_a_seeded_window_drops_replays_of_checkpointed_events() -> None:
    seed = (("7", digest("tick", "seven")), ("8", digest("tick", "eight")))
    window = DedupWindow(size=10, seed=seed)
    assert len(window) == 2
    assert window.check("8", "tick", "eight") is Verdict.DUPLICATE
    assert window.check("8", "tick", "other") is Verdict.REUSED
    assert window.check("9", "tick", "nine") is Verdict.NEW


def test_seeded_ids_always_count_as_written_for_recent_upto() -> None:
    window = DedupWindow(seed=[("1", digest("m", "a"))])
    window.check("2", "m", "b", 5)
    assert [i for i, _ in window.recent(upto=0)] == ["1"]


def test_a_seed_larger_than_the_window_keeps_the_newest_ids() -> None:
    seed = [(str(i), digest("m", str(i))) for i in range(10)]
    window = DedupWindow(size=3, seed=seed)
    assert [i for i, _ in window.recent()] == ["7", "8", "9"]


def test_a_window_round_trips_through_recent_and_seed() -> None:
    first = DedupWindow(size=5)
    for i in range(8):
        first.check(str(i), "m", f"d{i}")
    second = DedupWindow(size=5, seed=first.recent())
    assert second.recent() == first.recent()
    assert second.check("7", "m", "d7") is Verdict.DUPLICATE


def test_the_digest_is_stable_and_depends_on_type_and_data() -> None:
    assert digest("tick", "a") == digest("tick", "a")
    assert len({digest("tick", "a"), digest("tock", "a"), digest("tick", "b")}) == 3
    assert digest("message", "\udcff") == digest("message", "\udcff")  # lone surrogates ok
