"""Build a ``Streamvisor`` from a loaded config: sinks, what they hold, and resume points.

The file sink reads back what it holds after each stream's checkpoint (exactly once across
``kill -9``); ``policy.resume.resume_point`` then decides where each stream resumes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from streamvisor.policy.resume import resume_point
from streamvisor.sinks import build_sink
from streamvisor.sinks.base import Sink

if TYPE_CHECKING:
    from streamvisor.api.facade import Streamvisor
    from streamvisor.config.load import Config

__all__ = ["build"]

S = TypeVar("S", bound="Streamvisor")


def build(
    cls: type[S],
    config: Config,
    *,
    stop_event: threading.Event | None = None,
    wrap_sink: Callable[[Sink], Sink] | None = None,
    **kwargs: Any,
) -> S:
    """``Streamvisor.from_loaded``: the config's streams and sinks, resuming each stream
    where its checkpoint, or what its sinks hold, says.

    Args:
        cls: the class to build (``Streamvisor`` or a subclass).
        config: the validated config.
        stop_event: set when stopping, so sinks that wait (webhook retries) give up.
        wrap_sink: applied to each built sink (cluster mode fences or gates them).
        **kwargs: passed to ``cls()`` (``checkpoints`` is read here first).
    """
    wrap = wrap_sink or (lambda sink: sink)
    built = [(wrap(build_sink(sc, stop_event)), sc) for sc in config.sinks]
    checkpoints = dict(kwargs.pop("checkpoints", None) or {})
    lids = {name: cp.last_event_id for name, cp in checkpoints.items()}
    recovered: list[dict[str, Any] | None] = []
    for sink, sink_config in built:
        recover = getattr(sink, "recover", None)
        held = recover(lids) if recover is not None else None  # the sink skips these
        # A disk buffer may hold events past the file: resume from the checkpoint.
        recovered.append(held if sink_config.buffer.type == "memory" else None)
    for spec in config.streams:
        held = [
            None if r is None else r.get(spec.name)
            for (_, sc), r in zip(built, recovered, strict=True)
            if sc.streams is None or spec.name in sc.streams
        ]
        point = resume_point(checkpoints.get(spec.name), held, spec.dedup_window)
        if point is not None:
            checkpoints[spec.name] = point
    sv = cls(config.streams, checkpoints=checkpoints, **kwargs)
    for sink, sink_config in built:
        sv.add_sink(
            sink,
            streams=sink_config.streams,
            events=sink_config.events,
            buffer=sink_config.buffer,
        )
    return sv
