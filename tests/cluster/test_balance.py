"""The claim plan (bounded-load rendezvous) as tables, and a simulated cluster converging."""

from __future__ import annotations

import math

import pytest

from streamvisor.cluster.balance import instance_name, plan, quotas, weight

STREAMS = [f"s{i:02d}" for i in range(10)]


def owners_of(assignment: dict[str, list[str]]) -> dict[str, str | None]:
    owners: dict[str, str | None] = dict.fromkeys(STREAMS)
    for member, streams in assignment.items():
        for stream in streams:
            owners[stream] = member
    return owners


@pytest.mark.parametrize(
    ("loads", "total", "expected"),
    [
        ({"a": 0}, 10, {"a": 10}),
        ({"a": 0, "b": 0}, 10, {"a": 5, "b": 5}),
        # the ceil slots go to those holding most: no move needed for 4/3/3
        ({"a": 3, "b": 4, "c": 3}, 10, {"b": 4, "a": 3, "c": 3}),
        # ties broken by member id
        ({"b": 0, "a": 0, "c": 0}, 10, {"a": 4, "b": 3, "c": 3}),
        ({"a": 10, "b": 0, "c": 0, "d": 0}, 10, {"a": 3, "b": 3, "c": 2, "d": 2}),
        ({"a": 0, "b": 0, "c": 0}, 2, {"a": 1, "b": 1, "c": 0}),
        ({"a": 5}, 0, {"a": 0}),
    ],
)
def test_quotas_are_floor_or_ceil_with_ceil_slots_to_the_fullest(
    loads: dict[str, int], total: int, expected: dict[str, int]
) -> None:
    assert quotas(loads, total) == expected


def test_quotas_without_live_members_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one"):
        quotas({}, 3)


@pytest.mark.parametrize(
    ("case", "assignment", "me", "live", "max_moves", "releases", "want"),
    [
        ("alone claims everything up to max_moves", {}, "a#1", ["a#1"], 16, 0, 10),
        ("max_moves caps claims", {}, "a#1", ["a#1"], 4, 0, 4),
        ("two new members split the work", {}, "a#1", ["a#1", "b#1"], 16, 0, 5),
        (
            "at quota: nothing to do",
            {"a#1": STREAMS[:5], "b#1": STREAMS[5:]},
            "a#1",
            ["a#1", "b#1"],
            16,
            0,
            0,
        ),
        (
            "a joiner makes the holder release the excess",
            {"a#1": STREAMS},
            "a#1",
            ["a#1", "b#1"],
            16,
            5,
            0,
        ),
        ("releases capped by max_moves", {"a#1": STREAMS}, "a#1", ["a#1", "b#1", "c#1"], 2, 2, 0),
        ("the joiner waits for free streams", {"a#1": STREAMS}, "b#1", ["a#1", "b#1"], 16, 0, 5),
        (
            "a dead holder's streams count as taken until its leases expire",
            {"a#1": STREAMS[:5], "x#9": STREAMS[5:]},
            "a#1",
            ["a#1"],
            16,
            0,
            5,
        ),
        (
            "holding the most keeps a ceil slot (4/3/3 stays)",
            {"a#1": STREAMS[:4], "b#1": STREAMS[4:7], "c#1": STREAMS[7:]},
            "a#1",
            ["a#1", "b#1", "c#1"],
            16,
            0,
            0,
        ),
        (
            "one above the ceil releases one",
            {"a#1": STREAMS[:5], "b#1": STREAMS[5:8], "c#1": STREAMS[8:]},
            "a#1",
            ["a#1", "b#1", "c#1"],
            16,
            1,
            0,
        ),
        (
            "me counts as live even if the survey missed my heartbeat",
            {"b#1": STREAMS[:5]},
            "a#1",
            ["b#1"],
            16,
            0,
            5,
        ),
    ],
)
def test_plan_table(
    case: str,
    assignment: dict[str, list[str]],
    me: str,
    live: list[str],
    max_moves: int,
    releases: int,
    want: int,
) -> None:
    owners = owners_of(assignment)
    result = plan(STREAMS, owners, me, live, max_moves)
    assert len(result.release) == releases, case
    assert result.want == want, case
    assert set(result.release) <= set(assignment.get(me, [])), case
    assert all(owners[s] is None for s in result.claim), case
    assert not (result.release and result.claim), case


def test_release_gives_up_the_streams_with_the_lowest_weight_for_this_instance() -> None:
    result = plan(STREAMS, owners_of({"a#1": STREAMS}), "a#1", ["a#1", "b#1"], 16)
    kept = [s for s in STREAMS if s not in result.release]
    assert min(weight(s, "a") for s in kept) > max(weight(s, "a") for s in result.release)


def test_claim_order_is_rendezvous_and_survives_a_restart_under_the_same_name() -> None:
    first = plan(STREAMS, {}, "a#100-aaaa", ["a#100-aaaa", "b#1"], 16)
    again = plan(STREAMS, {}, "a#200-bbbb", ["a#200-bbbb", "b#1"], 16)
    assert first.claim[: first.want] == again.claim[: again.want]
    other = plan(STREAMS, {}, "b#1", ["a#100-aaaa", "b#1"], 16)
    assert first.claim[: first.want] != other.claim[: other.want]


def test_instance_name_strips_the_process_suffix() -> None:
    assert instance_name("web-1#123-ab12") == "web-1"
    assert instance_name("a#b#123-ab") == "a#b"
    assert instance_name("plain") == "plain"


def simulate(
    streams: list[str], members: list[str], held: dict[str, str], max_moves: int
) -> dict[str, str]:
    """Rounds of every member planning on the same survey, claims served first come first,
    until nothing changes; returns stream -> member."""
    held = dict(held)
    for _ in range(10 + 3 * len(streams) // max_moves):
        before = dict(held)
        for me in members:
            owners: dict[str, str | None] = {s: held.get(s) for s in streams}
            step = plan(streams, owners, me, members, max_moves)
            for stream in step.release:
                del held[stream]
            for stream in step.claim[: step.want]:
                held.setdefault(stream, me)
            if step.want:  # holding more is transient (a joiner); claiming past it never is
                cap = math.ceil(len(streams) / len(members))
                assert sum(1 for m in held.values() if m == me) <= cap
        if held == before:
            return held
    raise AssertionError("the plan did not converge")


@pytest.mark.parametrize(
    ("n_streams", "events"),
    [
        (50, ["join a", "join b", "join c", "kill a", "stop b", "join b2", "join d"]),
        (10, ["join a", "join b", "join c", "join d"]),
        (7, ["join a", "join b", "join c", "kill c", "join e", "join f", "join g", "join h"]),
        (1000, ["join a", "join b", "kill a", "join c", "join d"]),
    ],
)
def test_a_simulated_cluster_ends_within_one_of_even_after_every_change(
    n_streams: int, events: list[str]
) -> None:
    streams = [f"stream-{i}" for i in range(n_streams)]
    members: list[str] = []
    held: dict[str, str] = {}
    for event in events:
        verb, name = event.split()
        member = f"{name}#1"
        if verb == "join":
            members.append(member)
        else:  # kill or a clean stop: its leases go (expired or released)
            members.remove(member)
            held = {s: m for s, m in held.items() if m != member}
        held = simulate(streams, members, held, 16)
        loads = [sum(1 for m in held.values() if m == member) for member in members]
        assert len(held) == n_streams, event
        assert max(loads) - min(loads) <= 1, (event, loads)
