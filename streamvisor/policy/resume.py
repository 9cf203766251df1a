"""Where a stream resumes after a restart: the checkpoint, or what its sinks already hold. Pure.

The checkpoint holds the Last-Event-ID that every sink taking the stream had written when it
was saved (DESIGN.md: a checkpoint never passes an unwritten event). A sink that can tell what
it holds (the file sink reads its tail back) may hold more: events written after the last
checkpoint and before a crash. When every sink taking the stream can tell, and they agree on
the last id, the stream resumes there, so nothing they hold is fetched again; otherwise it
resumes from the checkpoint and those sinks skip what they hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from streamvisor.checkpoint.store import Checkpoint

__all__ = ["Held", "resume_point"]


@dataclass(slots=True)
class Held:
    """What a file holds of one stream after its checkpoint.

    Attributes:
        last_event_id: the Last-Event-ID of the stream's last line (where to resume).
        ids: ``(id, digest)`` of the events after the checkpoint, oldest first.
        reached_checkpoint: the checkpoint's id was found (the read-back is complete).
    """

    last_event_id: str | None
    ids: list[tuple[str, str]] = field(default_factory=list)
    reached_checkpoint: bool = False


def resume_point(
    checkpoint: Checkpoint | None, held: Sequence[Held | None], window: int
) -> Checkpoint | None:
    """The checkpoint to resume one stream from.

    Args:
        checkpoint: the stored checkpoint (None: none yet).
        held: one entry per sink taking the stream: what it holds after the checkpoint, or
            None when it cannot tell (no read-back, a disk buffer, no line of the stream).
        window: the stream's dedup window size (the seed is cut to it).

    Returns:
        ``checkpoint`` unchanged, or one at the sinks' common last id whose dedup seed adds
        the ids they hold.
    """
    if not held or any(h is None for h in held):
        return checkpoint
    known = [h for h in held if h is not None]
    if len({h.last_event_id for h in known}) != 1:
        return checkpoint
    reached = all(h.reached_checkpoint for h in known)
    if checkpoint is not None and checkpoint.last_event_id is not None and not reached:
        return checkpoint  # the file does not reach back to the checkpoint: trust it
    ids = known[0].ids
    recent = (checkpoint.recent if checkpoint is not None else ()) + tuple(ids)
    if window >= 0:
        recent = recent[-window:] if window else ()
    updated = checkpoint.updated_at if checkpoint is not None else 0.0
    return Checkpoint(known[0].last_event_id, recent, updated)
