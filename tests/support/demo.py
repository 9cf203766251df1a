"""The demo source as a test upstream: ``make_demo`` (a fixture in ``tests/conftest.py``)
starts ``DemoSource``s that are stopped after the test."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from streamvisor.demo.source import DemoSource

HEARTBEAT = 0.5
"""The tests' heartbeat (seconds): short, so a quiet channel never looks like a dead one."""


class MakeDemo(Protocol):
    """``make_demo(channels, **options)``: a started ``DemoSource(channels, **options)``,
    with ``heartbeat`` ``HEARTBEAT`` unless given."""

    def __call__(self, channels: Sequence[str], **options: Any) -> DemoSource: ...
