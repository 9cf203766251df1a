"""Read a JSONL events file backwards: what it holds after each stream's checkpoint.

Used by the file sink at start so that a restart after ``kill -9`` neither loses nor repeats
events: the stream resumes from the last id the file holds, and events the file already has
are not written again. Reads whole blocks from the end and stops once every stream with a
checkpoint reached its checkpoint id, or after ``max_bytes``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from streamvisor.policy.dedup import digest
from streamvisor.policy.resume import Held

__all__ = ["BLOCK", "Held", "read_back"]

BLOCK = 1 << 20
MAX_READ_BACK = 64 << 20
"""Most bytes read back from the end (64 MiB: over a minute of a fast stream's events)."""


def read_back(
    path: str, checkpoints: Mapping[str, str | None], max_bytes: int = MAX_READ_BACK
) -> dict[str, Held]:
    """Per stream, the file's last Last-Event-ID and the ids it holds after the checkpoint.

    Args:
        path: the JSONL file (a missing file holds nothing).
        checkpoints: per stream, the checkpoint's Last-Event-ID (None or absent: read as far
            as ``max_bytes`` allows).
        max_bytes: most bytes read from the end.

    Returns:
        Held per stream that has at least one line in the part read. Unparseable lines are
        skipped.
    """
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return {}
    held: dict[str, Held] = {}
    done: set[str] = set()
    wanted = {s for s, lid in checkpoints.items() if lid is not None}
    with handle:
        end = handle.seek(0, os.SEEK_END)
        pos, carry, read = end, b"", 0
        while pos > 0 and read < max_bytes and not (wanted and wanted <= done):
            step = min(BLOCK, pos, max_bytes - read)
            pos -= step
            handle.seek(pos)
            block = handle.read(step) + carry
            read += step
            lines = block.split(b"\n")
            carry = lines.pop(0) if pos > 0 else b""
            for raw in reversed(lines):
                _take(raw, checkpoints, held, done)
        if carry and pos == 0:
            _take(carry, checkpoints, held, done)
    for stream, info in held.items():
        info.ids.reverse()
        info.reached_checkpoint = stream in done
    return held


def _take(
    raw: bytes, checkpoints: Mapping[str, str | None], held: dict[str, Held], done: set[str]
) -> None:
    if not raw.strip():
        return
    try:
        obj = json.loads(raw)
    except ValueError:
        return
    if not isinstance(obj, dict):
        return
    stream = obj.get("stream")
    if not isinstance(stream, str) or stream in done:
        return
    info = held.get(stream)
    if info is None:
        lid = obj.get("last_event_id")
        info = held[stream] = Held(lid if isinstance(lid, str) else None)
    event_id = obj.get("id")
    if not isinstance(event_id, str) or not event_id:
        return
    if checkpoints.get(stream) == event_id:
        done.add(stream)
        return
    event = obj.get("event")
    data = obj.get("data")
    info.ids.append((event_id, digest(str(event or "message"), str(data or ""))))
