"""Connection.read asks for bigger chunks while a burst is waiting, and small ones again after."""

from __future__ import annotations

from types import SimpleNamespace

from streamvisor.spec import StreamSpec
from streamvisor.upstream.connection import BUSY_CHUNK_SIZE, CHUNK_SIZE, Connection


class _Raw:
    """A response body that returns the planned number of bytes per read (at most asked)."""

    def __init__(self, plan: list[int]) -> None:
        self.plan = plan
        self.asked: list[int] = []

    def read1(self, amt: int, decode_content: bool = True) -> bytes:
        self.asked.append(amt)
        return b"x" * min(self.plan.pop(0), amt) if self.plan else b""


def _connection(raw: _Raw) -> Connection:
    conn = Connection(StreamSpec(name="s", url="http://127.0.0.1:1/"))
    conn._response = SimpleNamespace(raw=raw)  # type: ignore[assignment]
    return conn


def test_a_full_read_makes_the_next_one_bigger_until_the_stream_is_quiet() -> None:
    big = BUSY_CHUNK_SIZE
    raw = _Raw([100, CHUNK_SIZE, big, big, CHUNK_SIZE, 100, 100])
    conn = _connection(raw)
    sizes = [len(conn.read()) for _ in range(7)]
    assert sizes == [100, CHUNK_SIZE, big, big, CHUNK_SIZE, 100, 100]
    assert raw.asked == [CHUNK_SIZE, CHUNK_SIZE, big, big, big, big, CHUNK_SIZE]


def test_a_quiet_stream_keeps_asking_for_the_small_chunk() -> None:
    raw = _Raw([10, 2000, 100, CHUNK_SIZE - 1])
    conn = _connection(raw)
    while conn.read():
        pass
    assert set(raw.asked) == {CHUNK_SIZE}
