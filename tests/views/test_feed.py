"""The live feed's pieces without sockets: SSE encoding, the shared frame, the slots."""

from __future__ import annotations

import json
import threading
from typing import Any

from streamvisor.sse import Decoder
from streamvisor.views.feed import (
    RETRY_MS,
    FeedSlots,
    FrameCache,
    encode_comment,
    encode_event,
    feed,
)


def decode(data: bytes) -> list[tuple[str, str]]:
    decoder = Decoder()
    return [(e.event, e.data) for e in decoder.feed(data)]


def test_an_encoded_event_decodes_to_the_same_type_and_data() -> None:
    for data in ["{}", "two\nlines", "crlf\r\nend", "", "unicode ✓"]:
        expected = data.replace("\r\n", "\n")
        assert decode(encode_event("status", data)) == [("status", expected)]
    assert decode(encode_event(None, "x")) == [("message", "x")]


def test_a_comment_is_ignored_by_a_decoder() -> None:
    assert decode(encode_comment("heartbeat") + encode_event("status", "1")) == [("status", "1")]


class Counter:
    def __init__(self) -> None:
        self.calls = 0
        self.error: Exception | None = None

    def status(self) -> dict[str, Any]:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return {"streams": {"a": {"state": "connected", "n": self.calls}}}


def test_the_frame_is_built_once_per_ttl_and_carries_time_and_log() -> None:
    counter = Counter()
    cache = FrameCache(counter.status, lambda: [{"msg": "w"}], ttl=60.0, clock=lambda: 123.5)
    first = cache.frame()
    assert cache.frame() is first
    assert counter.calls == 1
    [(event, data)] = decode(first)
    assert event == "status"
    assert json.loads(data) == {
        "streams": {"a": {"state": "connected", "n": 1}},
        "time": 123.5,
        "log": [{"msg": "w"}],
    }
    fresh = FrameCache(counter.status, ttl=0.0)
    fresh.frame()
    fresh.frame()
    assert counter.calls == 3


def test_a_failing_snapshot_gives_an_unavailable_frame_naming_only_the_error_type() -> None:
    counter = Counter()
    counter.error = TimeoutError("asked with token=abc")
    [(event, data)] = decode(FrameCache(counter.status).frame())
    assert (event, json.loads(data)) == ("unavailable", {"reason": "TimeoutError"})


def test_slots_are_limited_and_given_back() -> None:
    slots = FeedSlots(2)
    assert slots.acquire() and slots.acquire()
    assert not slots.acquire()
    slots.release()
    assert slots.open == 1
    assert slots.acquire()


def test_a_feed_starts_with_retry_sends_frames_and_ends_when_closing_is_set() -> None:
    counter = Counter()
    slots = FeedSlots(1)
    assert slots.acquire()
    closing = threading.Event()
    body = feed(FrameCache(counter.status, ttl=0.0), slots, closing, interval=0.001)
    frames = iter(body)
    head = next(frames)
    assert head.startswith(f"retry: {RETRY_MS}\n".encode())
    assert decode(next(frames))[0][0] == "status"
    assert decode(next(frames))[0][0] == "status"
    closing.set()
    assert list(frames) == []
    body.close()
    body.close()  # idempotent: the slot is given back once
    assert slots.open == 0


def test_a_heartbeat_comment_follows_frames_when_it_is_due() -> None:
    closing = threading.Event()
    body = feed(FrameCache(Counter().status, ttl=0.0), FeedSlots(1), closing, heartbeat=0.0)
    frames = iter(body)
    next(frames)
    next(frames)
    assert next(frames) == encode_comment("heartbeat")
    closing.set()
    body.close()
