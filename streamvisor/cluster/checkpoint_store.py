"""``RedisCheckpointStore``: the ``CheckpointStore`` protocol on Redis, fenced in cluster mode.

Per stream one hash (``Keys.ckpt``) holds the last delivered id and the dedup ids to seed
(the same two things the SQLite store keeps), plus who wrote them with which token. In
cluster mode every ``save`` is one ``SAVE`` script that compares each stream's token with its
fence key before writing it, so a paused owner's late checkpoint is rejected by Redis itself
(research note §1.3); streams we hold no lease on are not written at all. Streams whose
checkpoint a ``redis_streams`` sink writes inside its own fenced script are skipped here, so
the daemon's periodic save never moves such a checkpoint back.

Rules: a save is one script call (atomic in Redis); a fenced stream is reported to the
``Fence`` and the others are still written; Redis errors become ``CheckpointError`` with the
URL redacted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from streamvisor.checkpoint.store import Checkpoint, CheckpointError
from streamvisor.cluster.fence import Fence
from streamvisor.cluster.scripts import SAVE, Keys, ScriptRunner
from streamvisor.policy.redact import redact_url

__all__ = ["RedisCheckpointStore", "decode_recent", "decode_window", "parse_grant"]

log = logging.getLogger(__name__)

DEFAULT_RECENT_IDS = 128
"""Dedup ids saved per stream when the config does not say (covers typical replays)."""


def decode_recent(text: str) -> tuple[tuple[str, str], ...]:
    """The ``recent`` field: a JSON list of ``[id, digest]`` pairs ('' or ``{}`` is empty).

    Raises:
        ValueError: the text is not such a list.
    """
    if not text:
        return ()
    raw = json.loads(text)
    if raw == {}:  # Lua's cjson encodes an empty table as an object
        return ()
    if not isinstance(raw, list) or not all(isinstance(p, list) and len(p) == 2 for p in raw):
        raise ValueError("expected a list of [id, digest] pairs")
    return tuple((str(p[0]), str(p[1])) for p in raw)


def decode_window(members: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """A sink window's ``id\\n<digest>`` members as (id, digest) pairs, oldest first."""
    pairs = []
    for member in members:
        event_id, sep, dig = member.partition("\n")
        if sep:
            pairs.append((event_id, dig))
    return tuple(pairs)


def parse_grant(reply: Sequence[Any]) -> tuple[int, str, Checkpoint | None]:
    """An ``ACQUIRE`` reply as (token, 'new' | 'handoff' | 'failover', checkpoint or None).

    The dedup seed comes from the sink window when a ``redis_streams`` sink wrote the
    checkpoint, else from the ``recent`` field; a malformed one is logged and left out.
    """
    token, kind, has_last, last, recent_text, window_flag, tail = reply
    try:
        recent = decode_window(tail) if window_flag == "1" else decode_recent(recent_text)
    except ValueError:
        log.warning("a stored dedup window is malformed; resuming without it")
        recent = ()
    if not has_last and not recent:
        return int(token), str(kind), None
    return int(token), str(kind), Checkpoint(str(last) if has_last else None, recent)


def encode_recent(recent: Sequence[tuple[str, str]], keep: int | None) -> str:
    """The ``recent`` field for ``recent`` pairs, keeping the newest ``keep`` (None: all)."""
    if keep is not None:
        recent = recent[len(recent) - keep :] if keep else ()
    return json.dumps([list(pair) for pair in recent], separators=(",", ":"))


class RedisCheckpointStore:
    """A ``CheckpointStore`` in Redis hashes.

    Args:
        client: a ``redis.Redis`` with ``decode_responses=True``.
        keys: the key names.
        streams: the streams ``load`` reads.
        url: the Redis URL, for error messages (redacted).
        fence: the lease holder (cluster mode): saves are fenced and limited to held
            streams. None: plain writes (one daemon).
        recent_ids: dedup ids saved per stream (None: ``DEFAULT_RECENT_IDS``).
        sink_checkpointed: streams whose checkpoint a ``redis_streams`` sink writes.
    """

    def __init__(
        self,
        client: Any,
        keys: Keys,
        streams: Sequence[str],
        *,
        url: str = "",
        fence: Fence | None = None,
        recent_ids: int | None = None,
        sink_checkpointed: Collection[str] = (),
    ) -> None:
        self._client = client
        self._keys = keys
        self._streams = list(streams)
        self._url = redact_url(url) if url else "redis"
        self._fence = fence
        self._keep = DEFAULT_RECENT_IDS if recent_ids is None else recent_ids
        self._skip = frozenset(sink_checkpointed)
        self._runner = ScriptRunner(client)
        self._closed = False
        self.fenced_writes: dict[str, int] = {}

    def load(self) -> dict[str, Checkpoint]:
        """Every configured stream's stored checkpoint (streams never saved are absent).

        Raises:
            CheckpointError: Redis cannot be reached or a hash is malformed.
        """
        self._check_open()
        from redis.exceptions import RedisError

        try:
            pipe = self._client.pipeline(transaction=False)
            for stream in self._streams:
                pipe.hmget(self._keys.ckpt(stream), "last", "recent", "at")
            rows = pipe.execute()
        except RedisError as exc:
            raise CheckpointError(self._url, f"cannot read checkpoints: {exc}") from exc
        result: dict[str, Checkpoint] = {}
        for stream, (last, recent, at) in zip(self._streams, rows, strict=True):
            if last is None and recent is None:
                continue
            try:
                pairs = decode_recent(recent or "")
                stamp = float(at) if at else 0.0
            except ValueError as exc:
                raise CheckpointError(self._url, f"stream {stream!r}: malformed: {exc}") from exc
            result[stream] = Checkpoint(last, pairs, stamp)
        return result

    def save(self, checkpoints: Mapping[str, Checkpoint]) -> None:
        """Write the given streams' checkpoints in one atomic script call.

        In cluster mode only streams we hold a lease on are written, each only if its token
        is still the newest; a stale one is counted in ``fenced_writes`` and reported to the
        fence, and the rest are written.

        Raises:
            CheckpointError: Redis cannot be reached; nothing of this save was written.
        """
        self._check_open()
        from redis.exceptions import RedisError

        rows = [(s, cp) for s, cp in checkpoints.items() if s not in self._skip]
        if not rows:
            return
        try:
            if self._fence is None:
                self._save_plain(rows)
            else:
                self._save_fenced(rows, self._fence)
        except RedisError as exc:
            raise CheckpointError(self._url, f"cannot write checkpoints: {exc}") from exc

    def _save_plain(self, rows: list[tuple[str, Checkpoint]]) -> None:
        pipe = self._client.pipeline(transaction=True)
        for stream, cp in rows:
            key = self._keys.ckpt(stream)
            if cp.last_event_id is None:
                pipe.hdel(key, "last")
            else:
                pipe.hset(key, "last", cp.last_event_id)
            recent = encode_recent(cp.recent, self._keep)
            pipe.hset(key, mapping={"recent": recent, "at": cp.updated_at, "window": "0"})
        pipe.execute()

    def _save_fenced(self, rows: list[tuple[str, Checkpoint]], fence: Fence) -> None:
        keys: list[str] = []
        args: list[Any] = [fence.member]
        held: list[str] = []
        for stream, cp in rows:
            token = fence.token(stream)
            if token is None:
                continue  # not ours (any more): its owner writes it
            held.append(stream)
            keys += [self._keys.fence(stream), self._keys.ckpt(stream)]
            has_last = cp.last_event_id is not None
            recent = encode_recent(cp.recent, self._keep)
            args += [token, int(has_last), cp.last_event_id or "", recent, cp.updated_at]
        if not held:
            return
        fenced: list[int] = self._runner.call(SAVE, keys, args)
        for index in fenced:
            stream = held[index - 1]
            self.fenced_writes[stream] = self.fenced_writes.get(stream, 0) + 1
            log.warning(
                "checkpoint of stream %s rejected: another instance holds a newer lease",
                stream,
                extra={"stream": stream},
            )
            fence.fenced(stream)

    def close(self) -> None:
        """Mark the store closed (the client belongs to the caller). Idempotent."""
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise CheckpointError(self._url, "checkpoint store is closed")
