"""The webhook sink: POSTs batches of events as a JSON array, with retries and a dead letter.

Rules: a batch is either accepted by the receiver (2xx) or appended to the dead-letter file
(each Event's JSON plus an ``"error"`` key); with no dead-letter file, ``SinkError`` is raised.
5xx, 408, 429 (``Retry-After`` is a floor) and network errors are retried with exponential
backoff and jitter; other statuses (3xx included: redirects are not followed) are
dead-lettered at once. Every wait (rate limit, retry)
is ``stop_event.wait``: once stopping, the sink never waits, a batch gets at most one more
attempt, and a failure dead-letters every later batch unsent so shutdown stays bounded.
Logs carry the URL redacted by ``streamvisor.policy.redact`` and never a header value.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import requests
from requests.structures import CaseInsensitiveDict

from streamvisor.policy.backoff import BackoffPolicy, next_delay
from streamvisor.policy.classify import parse_retry_after
from streamvisor.policy.ratelimit import TokenBucket
from streamvisor.policy.redact import redact_url
from streamvisor.sinks.base import SinkError
from streamvisor.sinks.file import open_jsonl_for_append
from streamvisor.sse import Event
from streamvisor.upstream.causes import describe_cause

__all__ = ["WebhookSink"]

log = logging.getLogger(__name__)

_RETRY_STATUSES = frozenset({408, 429})
# Errors no retry can fix: the request itself is wrong.
_PERMANENT_ERRORS = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidHeader,
)


class _Outcome(NamedTuple):
    ok: bool
    retry: bool
    reason: str  # short and redacted: goes to logs and dead-letter lines
    retry_after: float | None = None


class WebhookSink:
    """POSTs each batch of events to a URL as a JSON array of Event dicts.

    Args:
        url: the receiver; userinfo in it is sent as Basic auth by requests, never logged.
        name: the sink's name.
        headers: extra request headers (values are never logged).
        timeout: seconds for connect and for each read of one request.
        max_batch: most events per request (a larger ``write`` is split).
        max_wait: seconds the driver may hold events before ``write``.
        rate: requests per second (token bucket), None for no limit.
        burst: bucket size; ``max(1, rate)`` when None.
        retry_initial: first retry delay, seconds.
        retry_max: cap on the retry delay, seconds (a ``Retry-After`` may exceed it).
        retry_attempts: retries after the first attempt before dead-lettering.
        dead_letter: JSONL file for batches given up on; None raises ``SinkError`` instead.
        session: a ``requests.Session`` to use (not closed by ``close``); a pooled one is
            made when None.
        stop_event: set it to stop waiting (shutdown); a private event when None.
        sleep: ``sleep(seconds) -> bool`` waits and returns True when interrupted by a stop;
            ``stop_event.wait`` when None. Tests inject a fake one.
        clock: monotonic clock for the rate limit.
        rng: random source for the jitter (seed it in tests).
    """

    def __init__(
        self,
        url: str,
        *,
        name: str = "webhook",
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        max_batch: int = 100,
        max_wait: float = 0.5,
        rate: float | None = None,
        burst: float | None = None,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
        retry_attempts: int = 8,
        dead_letter: str | os.PathLike[str] | None = None,
        session: requests.Session | None = None,
        stop_event: threading.Event | None = None,
        sleep: Callable[[float], bool] | None = None,
        clock: Callable[[], float] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"batch.max_events must be >= 1, got {max_batch!r}")
        if retry_attempts < 0:
            raise ValueError(f"retry.attempts must be >= 0, got {retry_attempts!r}")
        self.url = url
        self.name = name
        self.timeout = timeout
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.retry_attempts = retry_attempts
        self.dead_letter = None if dead_letter is None else os.fspath(dead_letter)
        self.policy = BackoffPolicy(initial=retry_initial, max=retry_max)
        self.stop_event = stop_event if stop_event is not None else threading.Event()
        self.stats: dict[str, int] = {
            "delivered": 0,
            "requests": 0,
            "retried": 0,
            "dead_lettered": 0,
            "failed": 0,
        }
        self.display_url = redact_url(url)
        self._headers: CaseInsensitiveDict[str] = CaseInsensitiveDict(headers or {})
        self._headers["Content-Type"] = "application/json"
        self._owns_session = session is None
        self._session = requests.Session() if session is None else session
        self._sleep = sleep if sleep is not None else self.stop_event.wait
        self._rng = rng if rng is not None else random.Random()
        self._bucket: TokenBucket | None = None
        if rate is not None:
            bucket_size = burst if burst is not None else max(1.0, float(rate))
            if clock is None:
                self._bucket = TokenBucket(rate, bucket_size)
            else:
                self._bucket = TokenBucket(rate, bucket_size, clock)
        self._closed = False
        # Set once a delivery failed while stopping: later batches are dead-lettered without
        # an attempt, so a hanging receiver costs one request timeout, not one per batch.
        self._abandoned = False

    def write(self, events: Sequence[Event]) -> None:
        """Deliver the events in batches of ``max_batch``, or dead-letter them.

        Raises:
            SinkError: a batch could be neither delivered nor dead-lettered.
        """
        if self._closed:
            raise SinkError(f"sink {self.name}: write after close")
        for start in range(0, len(events), self.max_batch):
            batch = events[start : start + self.max_batch]
            if self._abandoned and self.stop_event.is_set():
                self._dead_letter(batch, "not sent: stopping after a failed delivery")
            else:
                self._abandoned = self._deliver(batch)

    def flush(self) -> None:
        """Nothing is buffered here: ``write`` returns only once the batch is settled."""

    def close(self) -> None:
        """Close the session if this sink made it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._owns_session:
            self._session.close()

    def _deliver(self, batch: Sequence[Event]) -> bool:
        """Send one batch until accepted or dead-lettered; True when stopping cut it short."""
        body = json.dumps(
            [event.to_dict() for event in batch], ensure_ascii=False, separators=(",", ":")
        ).encode("utf-8")
        failures = 0
        while True:
            if self._bucket is not None:
                # Interrupted or not, the batch still gets its attempt: no more waiting.
                self._wait(self._bucket.reserve())
            outcome = self._attempt(body)
            if outcome.ok:
                self.stats["delivered"] += len(batch)
                return False
            if not outcome.retry:
                self._dead_letter(batch, outcome.reason)
                return False
            if failures >= self.retry_attempts:
                self._dead_letter(
                    batch, f"{outcome.reason} (gave up after {failures + 1} attempts)"
                )
                return False
            if self.stop_event.is_set():
                self._dead_letter(batch, f"{outcome.reason} (stopping)")
                return True
            delay = next_delay(self.policy, failures, self._rng, retry_after=outcome.retry_after)
            failures += 1
            self.stats["retried"] += 1
            # WARNING at attempts 1, 2, 4, 8, ... (as for streams), INFO for the others.
            loud = failures & (failures - 1) == 0
            log.log(
                logging.WARNING if loud else logging.INFO,
                "sink %s: POST %s failed (%s); retry %d of %d in %.2fs",
                self.name,
                self.display_url,
                outcome.reason,
                failures,
                self.retry_attempts,
                delay,
            )
            if self._wait(delay):
                self._dead_letter(batch, f"{outcome.reason} (stopping)")
                return True

    def _wait(self, delay: float) -> bool:
        """Wait up to ``delay`` seconds unless stopping; True when stopping."""
        if self.stop_event.is_set():
            return True
        if delay <= 0:
            return False
        return bool(self._sleep(delay)) or self.stop_event.is_set()

    def _attempt(self, body: bytes) -> _Outcome:
        self.stats["requests"] += 1
        try:
            # A redirected POST turns into a GET elsewhere: a 3xx is a failure, not a success.
            response = self._session.post(
                self.url,
                data=body,
                headers=self._headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except _PERMANENT_ERRORS as exc:
            return _Outcome(False, False, f"invalid request: {type(exc).__name__}")
        except requests.RequestException as exc:
            # The exception text may quote the URL with its query: keep the type only.
            # The cause without the exception text (which may quote the URL with its query).
            return _Outcome(False, True, f"network error: {describe_cause(exc)}")
        with response:
            status = response.status_code
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if 200 <= status < 300:
            return _Outcome(True, False, "")
        retry = status >= 500 or status in _RETRY_STATUSES
        return _Outcome(False, retry, f"HTTP {status}", retry_after if retry else None)

    def _dead_letter(self, batch: Sequence[Event], reason: str) -> None:
        if self.dead_letter is None:
            self.stats["failed"] += len(batch)
            raise SinkError(
                f"sink {self.name}: {len(batch)} events not delivered to {self.display_url}: "
                f"{reason}; no dead_letter file configured"
            )
        lines = []
        for event in batch:
            record = event.to_dict()
            record["error"] = reason
            lines.append(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
        try:
            with open_jsonl_for_append(self.dead_letter) as handle:
                handle.write("".join(lines).encode("utf-8"))
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            self.stats["failed"] += len(batch)
            raise SinkError(
                f"sink {self.name}: {len(batch)} events neither delivered ({reason}) nor "
                f"dead-lettered to {self.dead_letter}: {exc}"
            ) from None
        self.stats["dead_lettered"] += len(batch)
        log.error(
            "sink %s: %d events dead-lettered to %s: %s",
            self.name,
            len(batch),
            self.dead_letter,
            reason,
        )
