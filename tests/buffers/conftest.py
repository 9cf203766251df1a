"""Fixtures of the sink-buffer tests: ``make_buffer`` builds either buffer (parametrized)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from streamvisor.buffers import DiskBuffer, MemoryBuffer, SinkBuffer
from streamvisor.policy.flow import BufferSettings, WhenFull
from tests.support.buffers import Drops, MakeBuffer, record


@pytest.fixture
def drops() -> Drops:
    return []


@pytest.fixture(params=["memory", "disk"])
def make_buffer(
    request: pytest.FixtureRequest, tmp_path: Path, drops: Drops
) -> Iterator[MakeBuffer]:
    """Build buffers of the parametrized type; ``on_drop`` appends to ``drops``."""
    made: list[SinkBuffer] = []

    def make(
        max_events: int | None = 10,
        max_bytes: int | None = None,
        when_full: WhenFull = WhenFull.BLOCK,
        on_ready: Callable[[], None] | None = None,
    ) -> SinkBuffer:
        settings = BufferSettings(
            type=request.param, max_events=max_events, max_bytes=max_bytes, when_full=when_full
        )
        buffer: SinkBuffer
        if request.param == "disk":
            path = tmp_path / f"buffer{len(made)}.db"
            buffer = DiskBuffer(path, settings, on_ready=on_ready, on_drop=record(drops))
        else:
            buffer = MemoryBuffer(settings, on_ready=on_ready, on_drop=record(drops))
        made.append(buffer)
        return buffer

    try:
        yield make
    finally:
        for buffer in made:
            buffer.close()
