"""Checks across sections, once every section is read: warnings about settings that work
but will not do what they seem to (a read timeout shorter than server heartbeats, a restart
limit the backoff can never reach, a stream no sink takes).

Pure: no I/O. Warnings are recorded on the ``Checker``; they never fail the config.
"""

from __future__ import annotations

from collections.abc import Sequence

from streamvisor.config.checker import Checker
from streamvisor.config.model import SinkConfig
from streamvisor.config.streams import StreamEntry
from streamvisor.policy.backoff import max_failures_within

__all__ = ["HEARTBEAT_FLOOR", "warn_streams"]

HEARTBEAT_FLOOR = 5.0
"""Seconds; a shorter ``read_timeout`` is warned about (servers send heartbeats every
15-30 s, so quiet streams would be reconnected needlessly)."""


def warn_streams(
    c: Checker, streams: Sequence[StreamEntry], sinks: Sequence[SinkConfig | None]
) -> None:
    """Warn about each valid stream's read timeout, restart limit and sink coverage."""
    valid_sinks = [sink for sink in sinks if sink is not None]
    for entry in streams:
        spec = entry.spec
        if spec is None:
            continue
        timeout = entry.fields.get("read_timeout")
        if timeout is not None and spec.read_timeout < HEARTBEAT_FLOOR:
            c.warn(
                timeout.line,
                timeout.path,
                f"{spec.read_timeout:g}s is shorter than typical server heartbeats "
                "(15-30 s): quiet streams will be reconnected needlessly",
            )
        limit = entry.fields.get("max_restarts")
        if limit is not None and spec.max_restarts.count > 0:
            count, within = spec.max_restarts.count, spec.max_restarts.within
            fit = max_failures_within(spec.backoff, within)
            if fit <= count:
                c.warn(
                    limit.line,
                    f"{entry.item.path}.max_restarts",
                    f"{count} restarts within {within:g}s cannot be reached by failing "
                    f"connections with this backoff (at most {fit} fit); it only catches "
                    "crash loops and rapid reconnects",
                )
        if (
            spec.enabled
            and valid_sinks
            and not any(sink.streams is None or spec.name in sink.streams for sink in valid_sinks)
        ):
            c.warn(
                entry.item.line,
                entry.item.path,
                f"no sink takes the events of stream {spec.name!r}",
            )
