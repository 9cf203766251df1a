"""``Coordinator``: the lease thread. It renews, balances, claims and releases this
instance's streams and tells a ``StreamRunner`` which streams to run.

One loop, one thread: expire (a lease whose local deadline passed is dropped and its
stream stopped), renew (every ``ttl/3``, all leases and the membership heartbeat in one
``RENEW`` call), balance (every ``claim_interval``: one ``SURVEY``, then the pure
``balance.plan``; releases first, then pipelined ``ACQUIRE`` calls). Decisions live in
``balance`` and ``lease``, shared state in ``holdings``; this module does the I/O and keeps
the ordering rules:

- stop a stream *before* releasing its lease (and save its checkpoint in between), never the
  other way round;
- a lease found lost (renewal refused, deadline passed, or a write fenced) is dropped at
  once, so the gate and the store refuse that stream's writes, and its stream is stopped
  without a release (the lease is not ours);
- a clean stop (``freeze``, then ``close``) releases every lease and leaves the membership,
  so the others take over within one claim interval (research note §2: 0.24-0.38 s).

The runner is only called from the coordinator's thread (and from ``close``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from streamvisor.checkpoint.store import Checkpoint
from streamvisor.cluster.balance import plan
from streamvisor.cluster.checkpoint_store import parse_grant
from streamvisor.cluster.fence import StreamRunner
from streamvisor.cluster.holdings import Holdings
from streamvisor.cluster.lease import LeaseTiming
from streamvisor.cluster.scripts import ACQUIRE, RELEASE, RENEW, SURVEY, Call, Keys, ScriptRunner
from streamvisor.errors import StreamvisorError

__all__ = ["Coordinator"]

log = logging.getLogger(__name__)

_CLAIM_ATTEMPTS = 3  # pipelined ACQUIRE rounds per balance round when others win races


class Coordinator:
    """Claims, renews and releases leases; runs the streams it holds through ``runner``.

    Args:
        client: a ``redis.Redis`` (``decode_responses=True``; a socket timeout below the
            renewal period keeps a hung Redis from stalling the loop).
        keys: key names.
        member: this process's member id (``<instance>#<pid>-<nonce>``).
        streams: the streams the cluster runs.
        runner: starts and stops streams.
        timing: lease timing.
        claim_interval: seconds between balance rounds.
        max_moves: at most this many claims and releases per round.
        save: writes checkpoints (fenced) before a release; None: nothing is saved.
        sink_windows: per stream, the dedup window of the sink that checkpoints it (read
            at acquire as the dedup seed).
        recent_ids: dedup ids to read from such a window.
        clock: monotonic seconds.

    Attributes:
        holdings: the leases held (the ``Fence`` writers use).
    """

    def __init__(
        self,
        client: Any,
        keys: Keys,
        member: str,
        streams: Sequence[str],
        runner: StreamRunner,
        *,
        timing: LeaseTiming,
        claim_interval: float,
        max_moves: int,
        save: Callable[[Mapping[str, Checkpoint]], None] | None = None,
        sink_windows: Mapping[str, str] | None = None,
        recent_ids: int = 128,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.member = member
        self._wake = threading.Event()
        self.holdings = Holdings(member, timing, clock, self._wake.set)
        self._runs = ScriptRunner(client)
        self._keys = keys
        self._streams = list(streams)
        self._runner = runner
        self._timing = timing
        self._claim_interval = claim_interval
        self._max_moves = max_moves
        self._save = save
        self._windows = dict(sink_windows or {})
        self._recent_ids = recent_ids
        self._clock = clock
        self._lock = threading.Lock()
        self._restart: set[str] = set()  # changed by a reload: hand off, claim again
        self._stopping = threading.Event()
        self._frozen = False
        self._thread: threading.Thread | None = None
        self._outage = False
        self.live = 0
        self.quota = 0
        self.rounds = 0

    # -- lifecycle (any thread) ----------------------------------------------------------
    def start(self) -> None:
        """Start the loop thread (scripts missing in Redis are loaded on first use)."""
        self._thread = threading.Thread(target=self._loop, name="cluster-coordinator", daemon=True)
        self._thread.start()

    def freeze(self) -> None:
        """Stop claiming and releasing (shutdown has begun); keep renewing."""
        self._frozen = True
        self._wake.set()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the loop, stop every stream still held, release every lease and leave."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        try:
            self._handoff(self.holdings.streams())
            self._runs.client.zrem(self._keys.members, self.member)
        except Exception as exc:  # Redis gone: the leases expire by themselves
            log.warning("cluster: could not release leases at stop: %s", exc)

    def update_streams(self, streams: Sequence[str], restart: Iterable[str] = ()) -> None:
        """A new stream list (reload): held streams no longer listed are released, and held
        streams in ``restart`` are handed off so they restart with their new settings."""
        with self._lock:
            self._streams = list(streams)
            self._restart.update(restart)
        self._wake.set()

    def status(self) -> dict[str, Any]:
        """This member, the live count and quota seen last round, and per-stream state."""
        streams = self.holdings.status()
        owned = sum(1 for info in streams.values() if info["owner"] is not None)
        return {
            "member": self.member,
            "live": self.live,
            "quota": self.quota,
            "owned": owned,
            "streams": streams,
        }

    # -- the loop ----------------------------------------------------------------------
    def _loop(self) -> None:
        now = self._clock()
        next_renew = now
        next_claim = now + self._claim_interval  # let peers started with us register first
        while not self._stopping.is_set():
            now = self._clock()
            try:
                self._expire(now)
                if now >= next_renew:
                    sent_at = self._renew()
                    every = self._timing.renew_every
                    next_renew = now + min(every, 0.2) if sent_at is None else sent_at + every
                if not self._frozen and (now >= next_claim or self._restart):
                    next_claim = now + self._claim_interval
                    self._balance()
            except Exception as exc:  # the loop must outlive any one failed round
                self._report_outage(exc)
            earliest = self.holdings.next_deadline()
            wake = min(next_renew, next_claim, earliest if earliest is not None else next_renew)
            self._wake.wait(max(0.0, wake - self._clock()))
            self._wake.clear()

    def _expire(self, now: float) -> None:
        lapsed, fenced = self.holdings.lapse(now)
        for stream in lapsed:
            log.warning(
                "cluster: lease on stream %s lapsed (no renewal confirmed within %gs); stopping it",
                stream,
                self._timing.ttl,
                extra={"stream": stream},
            )
        for stream in [*lapsed, *fenced]:
            self._stop_stream(stream)

    def _renew(self) -> float | None:
        streams = self.holdings.streams()
        keys = [self._keys.members, *(self._keys.lease(s) for s in streams)]
        sent_at = self._clock()
        try:
            reply = self._runs.call(RENEW, keys, [self.member, self._timing.ttl_ms])
        except Exception as exc:
            self._report_outage(exc)
            return None
        self._report_outage(None)
        flags = reply[1:]
        confirmed = [s for s, flag in zip(streams, flags, strict=True) if flag]
        refused = [s for s, flag in zip(streams, flags, strict=True) if not flag]
        for stream in self.holdings.confirm(confirmed, refused, sent_at):
            log.warning("cluster: lease on stream %s was lost; stopping it", stream)
            self._stop_stream(stream)
        return sent_at

    def _balance(self) -> None:
        with self._lock:
            streams = list(self._streams)
            held = set(self.holdings.streams())
            restart, self._restart = self._restart & held, set()
        gone = sorted((held - set(streams)) | restart)
        if gone:
            self._handoff(gone)
            held -= set(gone)
        keys = [self._keys.members, *(self._keys.lease(s) for s in streams)]
        _, flat, holders = self._runs.call(SURVEY, keys, [])
        self.rounds += 1
        owners: dict[str, str | None] = {}
        for stream, holder in zip(streams, holders, strict=True):
            if stream in held:
                owners[stream] = self.member
            elif holder == self.member:  # our lapsed lease, not yet expired in Redis
                owners[stream] = holder + "(lapsed)"
            else:
                owners[stream] = holder or None
        step = plan(streams, owners, self.member, flat[0::2], self._max_moves)
        self.live, self.quota = step.live, step.quota
        if step.release:
            self._handoff(list(step.release))
        if step.want:
            self._claim(list(step.claim), step.want)

    def _claim(self, candidates: list[str], want: int) -> None:
        won = 0
        for _ in range(_CLAIM_ATTEMPTS):
            batch, candidates = candidates[: want - won], candidates[want - won :]
            if not batch:
                return
            calls: list[Call] = []
            for stream in batch:
                keys = [self._keys.lease(stream), self._keys.fence(stream), self._keys.ckpt(stream)]
                if stream in self._windows:
                    keys.append(self._windows[stream])
                calls.append((ACQUIRE, keys, [self.member, self._timing.ttl_ms, self._recent_ids]))
            sent_at = self._clock()
            results = self._runs.call_many(calls)
            for stream, reply in zip(batch, results, strict=True):
                if reply is None or isinstance(reply, Exception):
                    continue  # another instance was faster
                won += 1
                self._granted(stream, reply, sent_at)
            if won >= want:
                return

    def _granted(self, stream: str, reply: list[Any], sent_at: float) -> None:
        token, kind, checkpoint = parse_grant(reply)
        last = checkpoint.last_event_id if checkpoint is not None else None
        self.holdings.grant(stream, token, sent_at, kind)
        log.info(
            "cluster: acquired stream %s (token %d, %s%s)",
            stream,
            token,
            kind,
            f", resuming after id {last!r}" if last is not None else "",
            extra={"stream": stream},
        )
        try:
            self._runner.start(stream, checkpoint)
        except Exception:
            log.exception("cluster: could not start stream %s; releasing it", stream)
            self._handoff([stream], stop=False)

    def _handoff(self, streams: list[str], *, stop: bool = True) -> None:
        """Stop, save, forget, release: in that order."""
        if not streams:
            return
        checkpoints: dict[str, Checkpoint] = {}
        for stream in streams:
            checkpoint = self._stop_stream(stream) if stop else None
            if checkpoint is not None:
                checkpoints[stream] = checkpoint
        if checkpoints and self._save is not None:
            try:
                self._save(checkpoints)
            except StreamvisorError as exc:
                log.error("cluster: final checkpoints before release failed: %s", exc)
        self.holdings.release(streams)
        keys = [k for s in streams for k in (self._keys.lease(s), self._keys.ckpt(s))]
        released = self._runs.call(RELEASE, keys, [self.member])
        for stream, flag in zip(streams, released, strict=True):
            if flag:
                self.holdings.released(stream)
                log.info("cluster: released stream %s", stream, extra={"stream": stream})

    def _stop_stream(self, stream: str) -> Checkpoint | None:
        try:
            return self._runner.stop(stream)
        except Exception:
            log.exception("cluster: stopping stream %s failed", stream)
            return None

    def _report_outage(self, exc: Exception | None) -> None:
        if exc is None:
            if self._outage:
                log.info("cluster: Redis answers again")
            self._outage = False
            return
        level = logging.DEBUG if self._outage else logging.WARNING
        log.log(level, "cluster: Redis call failed: %s", exc)
        self._outage = True
