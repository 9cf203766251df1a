"""BodyReader asks for big chunks while a burst is waiting and a small one when idle."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from streamvisor.upstream.body import (
    BUSY_CHUNK_SIZE,
    CHUNK_SIZE,
    QUIET_BELOW,
    QUIET_CHUNK_SIZE,
    BodyReader,
    next_read_size,
)

BIG, MID, SMALL = BUSY_CHUNK_SIZE, CHUNK_SIZE, QUIET_CHUNK_SIZE


class _Raw:
    """A response body that returns the planned number of bytes per read (at most asked)."""

    def __init__(self, plan: list[int]) -> None:
        self.plan = plan
        self.asked: list[int] = []

    def read1(self, amt: int, decode_content: bool = True) -> bytes:
        self.asked.append(amt)
        return b"x" * min(self.plan.pop(0), amt) if self.plan else b""


def _connection(raw: _Raw) -> BodyReader:
    response = SimpleNamespace(raw=raw, headers={})  # not chunked: urllib3's read1
    return BodyReader(response)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("asked", "got", "next_size"),
    [
        (SMALL, SMALL, BIG),  # full: a burst is waiting
        (MID, MID, BIG),
        (BIG, BIG, BIG),
        (BIG, MID // 4 + 1, BIG),  # still a lot per read: stay big
        (BIG, MID // 4, MID),  # the burst is over
        (BIG, QUIET_BELOW - 1, SMALL),
        (MID, 300, MID),  # events trickle in
        (MID, QUIET_BELOW, MID),
        (MID, QUIET_BELOW - 1, SMALL),  # a heartbeat: idle
        (SMALL, 10, SMALL),
        (SMALL, 600, MID),
    ],
)
def test_next_read_size(asked: int, got: int, next_size: int) -> None:
    assert next_read_size(asked, got) == next_size


def test_a_full_read_makes_the_next_one_bigger_until_the_stream_is_quiet() -> None:
    raw = _Raw([100, SMALL, BIG, BIG, MID, 1000, 100, 100])
    conn = _connection(raw)
    sizes = [len(conn.read()) for _ in range(8)]
    assert sizes == [100, SMALL, BIG, BIG, MID, 1000, 100, 100]
    assert raw.asked == [SMALL, SMALL, BIG, BIG, BIG, BIG, MID, SMALL]


def test_an_idle_stream_keeps_asking_for_the_quiet_chunk() -> None:
    raw = _Raw([10, 20, QUIET_BELOW - 1, 5])
    conn = _connection(raw)
    while conn.read():
        pass
    assert set(raw.asked) == {SMALL}
