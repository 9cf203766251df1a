"""WebhookSink against a scripted local receiver (real sockets) and `responses` (statuses).

The receiver (``tests/support/webhooks.py``) binds 127.0.0.1 port 0, plays one planned answer
per request (status with headers, connection reset, no answer) and records what it accepted.
Waits in the sink go through an injected fake sleep unless the test is about real
interruption.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from streamvisor.policy.redact import redact_url
from streamvisor.sinks import SinkError, WebhookSink, read_jsonl
from streamvisor.sse import Event
from tests.support.clock import ManualClock
from tests.support.events import trades
from tests.support.webhooks import MakeReceiver, WebhookReceiver

URL = "http://hook.test/ingest"


@pytest.fixture
def receiver(make_receiver: MakeReceiver) -> WebhookReceiver:
    return make_receiver()


def _ids(batches: list[list[dict[str, Any]]]) -> list[str]:
    return [record["id"] for batch in batches for record in batch]


# -- real receiver -----------------------------------------------------------------------------


def test_every_event_is_accepted_exactly_once_or_dead_lettered(
    receiver: WebhookReceiver, tmp_path: Path
) -> None:
    receiver.plan.extend(
        [
            (200, {}),  # batch 1
            (500, {}),  # batch 2 ...
            (429, {"Retry-After": "0"}),
            (200, {}),
            "reset",  # batch 3 ...
            (200, {}),
            "hang",  # batch 4 ...
            (200, {}),
            (400, {}),  # batch 5: dead at once
            (500, {}),  # batch 6: retries exhausted
            (500, {}),
            (503, {}),
            (200, {}),  # batch 7; batch 8 gets the default 200
        ]
    )
    dead = tmp_path / "dead" / "hook.jsonl"
    fake = ManualClock()
    sink = WebhookSink(
        receiver.url,
        max_batch=4,
        timeout=0.5,
        retry_attempts=2,
        dead_letter=str(dead),
        sleep=fake.sleep,
        clock=fake,
        rng=random.Random(7),
    )
    events = trades(range(30))
    sink.write(events[:15])
    sink.write(events[15:])
    sink.close()

    accepted = _ids(receiver.accepted)
    dead_ids = [event.id for event in read_jsonl(str(dead))]
    everything = sorted(accepted + dead_ids, key=lambda i: int(i or "-1"))
    assert everything == [e.id for e in events]  # each exactly once
    assert dead_ids == [str(i) for i in range(15, 23)]  # batches 5 and 6
    assert all(len(batch) <= 4 for batch in receiver.accepted)
    assert receiver.accepted[0] == [e.to_dict() for e in events[:4]]
    errors = [json.loads(line)["error"] for line in dead.read_text().splitlines()]
    assert errors == ["HTTP 400"] * 4 + ["HTTP 503 (gave up after 3 attempts)"] * 4
    assert len(fake.sleeps) == 6
    assert sink.stats == {
        "delivered": 22,
        "requests": 14,
        "retried": 6,
        "dead_lettered": 8,
        "failed": 0,
    }


def test_setting_stop_event_during_a_retry_wait_dead_letters_everything_quickly(
    receiver: WebhookReceiver, tmp_path: Path
) -> None:
    receiver.plan.extend([(500, {})] * 10)
    dead = tmp_path / "dead.jsonl"
    stop = threading.Event()
    sink = WebhookSink(
        receiver.url,
        max_batch=2,
        retry_initial=30.0,
        retry_max=60.0,
        dead_letter=str(dead),
        stop_event=stop,
    )

    def stop_after_first_request() -> None:
        receiver.got_request.wait(timeout=10)
        stop.set()

    stopper = threading.Thread(target=stop_after_first_request)
    stopper.start()
    started = time.monotonic()
    try:
        sink.write(trades(range(6)))
    finally:
        stop.set()
        stopper.join(timeout=10)
        sink.close()
    assert time.monotonic() - started < 10  # the retry wait was 21 s or more
    assert [e.id for e in read_jsonl(str(dead))] == [str(i) for i in range(6)]
    assert len(receiver.requests) == 1
    assert sink.stats["dead_lettered"] == 6


def test_logs_and_dead_letters_carry_no_credentials(
    receiver: WebhookReceiver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="streamvisor")
    receiver.plan.extend([(500, {}), (400, {})])
    url = receiver.url.replace("http://", "http://alice:pa55-secret@") + "?token=q-secret&x=1"
    dead = tmp_path / "dead.jsonl"
    fake = ManualClock()
    sink = WebhookSink(
        url,
        headers={"Authorization": "Bearer hdr-secret", "X-Api-Key": "key-secret"},
        dead_letter=str(dead),
        sleep=fake.sleep,
    )
    sink.write(trades(range(2)))
    sink.close()
    assert len(receiver.requests) == 2
    assert receiver.requests[0].headers["X-Api-Key"] == "key-secret"
    assert "Authorization" in receiver.requests[0].headers
    # One redactor for every URL: the user name stays (it is not a secret), the password goes.
    assert "alice:***@127.0.0.1" in caplog.text and "token=***&x=1" in caplog.text
    written = caplog.text + dead.read_text()
    for secret in ("pa55-secret", "hdr-secret", "key-secret", "q-secret"):
        assert secret not in written


def test_a_network_error_without_a_dead_letter_file_raises_sink_error(
    receiver: WebhookReceiver,
) -> None:
    receiver.plan.extend(["reset", "reset"])
    sink = WebhookSink(receiver.url, retry_attempts=1, sleep=ManualClock().sleep)
    with pytest.raises(SinkError, match="no dead_letter file configured") as info:
        sink.write(trades(range(3)))
    sink.close()
    assert "network error" in str(info.value)
    assert sink.stats["failed"] == 3 and receiver.accepted == []


# -- fake transport: statuses, headers, batching, rate limit ----------------------------------


@pytest.fixture
def fake_http() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def _sink(tmp_path: Path, fake: ManualClock, **kwargs: Any) -> WebhookSink:
    options: dict[str, Any] = {
        "dead_letter": str(tmp_path / "dead.jsonl"),
        "sleep": fake.sleep,
        "clock": fake,
        "rng": random.Random(1),
    }
    options.update(kwargs)
    return WebhookSink(URL, **options)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422, 301])
def test_a_status_no_retry_can_fix_is_dead_lettered_at_once(
    fake_http: responses.RequestsMock, tmp_path: Path, status: int
) -> None:
    fake_http.post(URL, status=status)
    fake = ManualClock()
    sink = _sink(tmp_path, fake)
    sink.write(trades(range(2)))
    assert len(fake_http.calls) == 1 and fake.sleeps == []
    lines = [json.loads(x) for x in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert [line["error"] for line in lines] == [f"HTTP {status}"] * 2
    assert [Event.from_dict(line) for line in lines] == trades(range(2))


def test_a_redirect_is_not_followed_and_the_batch_is_dead_lettered(
    fake_http: responses.RequestsMock, tmp_path: Path
) -> None:
    fake_http.post(URL, status=302, headers={"Location": "http://hook.test/elsewhere"})
    fake_http.get("http://hook.test/elsewhere", status=200)
    sink = _sink(tmp_path, ManualClock())
    sink.write(trades(range(1)))
    assert len(fake_http.calls) == 1
    assert sink.stats["dead_lettered"] == 1 and sink.stats["delivered"] == 0


@pytest.mark.parametrize(
    "failure",
    [
        {"status": 500},
        {"status": 502},
        {"status": 503},
        {"status": 408},
        {"status": 429},
        {"body": requests.ConnectionError("refused")},
        {"body": requests.Timeout("slow")},
    ],
)
def test_server_errors_timeouts_429_and_network_errors_are_retried_until_delivered(
    fake_http: responses.RequestsMock, tmp_path: Path, failure: dict[str, Any]
) -> None:
    fake_http.post(URL, **failure)
    fake_http.post(URL, **failure)
    fake_http.post(URL, status=200)
    fake = ManualClock()
    sink = _sink(tmp_path, fake)
    sink.write(trades(range(3)))
    assert len(fake_http.calls) == 3 and len(fake.sleeps) == 2
    assert sink.stats["delivered"] == 3 and sink.stats["retried"] == 2
    assert not (tmp_path / "dead.jsonl").exists()


@pytest.mark.parametrize(("header", "floor"), [("1", 1.0), ("7", 7.0), ("junk", 0.0)])
def test_retry_after_is_a_floor_under_the_backoff_delay(
    fake_http: responses.RequestsMock, tmp_path: Path, header: str, floor: float
) -> None:
    fake_http.post(URL, status=429, headers={"Retry-After": header})
    fake_http.post(URL, status=200)
    fake = ManualClock()
    sink = _sink(tmp_path, fake, retry_initial=0.5)
    sink.write(trades(range(1)))
    (delay,) = fake.sleeps
    assert max(floor, 0.5 * 0.7) <= delay <= max(floor * 1.1, 0.5)


def test_the_delay_grows_exponentially_and_the_batch_is_dead_lettered_after_the_attempts(
    fake_http: responses.RequestsMock, tmp_path: Path
) -> None:
    fake_http.post(URL, status=503)
    fake = ManualClock()
    sink = _sink(tmp_path, fake, retry_initial=1.0, retry_max=5.0, retry_attempts=4)
    sink.write(trades(range(1)))
    assert len(fake_http.calls) == 5
    for delay, base in zip(fake.sleeps, [1.0, 2.0, 4.0, 5.0], strict=True):
        assert base * 0.7 <= delay <= base
    (record,) = read_jsonl(str(tmp_path / "dead.jsonl"))
    assert record == trades(range(1))[0]


def test_the_request_is_a_json_array_of_event_dicts_with_the_configured_headers(
    fake_http: responses.RequestsMock, tmp_path: Path
) -> None:
    fake_http.post(URL, status=204)
    sink = _sink(tmp_path, ManualClock(), headers={"X-Token": "t", "content-type": "text/plain"})
    events = [*trades(range(1)), Event("s", None, "message", "caf\u00e9 \u2603", None, 0.0)]
    sink.write(events)
    request = fake_http.calls[0].request
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Token"] == "t"
    assert request.body is not None
    assert json.loads(request.body) == [event.to_dict() for event in events]


def test_a_write_larger_than_max_batch_is_split_into_batches(
    fake_http: responses.RequestsMock, tmp_path: Path
) -> None:
    fake_http.post(URL, status=200)
    sink = _sink(tmp_path, ManualClock(), max_batch=3)
    sink.write(trades(range(10)))
    sizes = [len(json.loads(call.request.body or b"")) for call in fake_http.calls]
    assert sizes == [3, 3, 3, 1]


def test_the_rate_limit_spaces_requests_on_the_injected_clock(
    fake_http: responses.RequestsMock, tmp_path: Path
) -> None:
    fake = ManualClock()
    sent_at: list[float] = []

    def accept(request: Any) -> tuple[int, dict[str, str], str]:
        sent_at.append(fake.now)
        return (200, {}, "")

    fake_http.add_callback(responses.POST, URL, callback=accept)
    sink = _sink(tmp_path, fake, max_batch=1, rate=4.0, burst=2)
    sink.write(trades(range(6)))
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(sent_at)]
    assert gaps == [0.0, 0.25, 0.25, 0.25, 0.25]
    assert fake.sleeps == pytest.approx([0.25] * 4)


def test_while_stopping_a_batch_gets_one_attempt_and_nothing_waits(
    fake_http: responses.RequestsMock, tmp_path: Path
) -> None:
    fake_http.post(URL, status=200)
    fake_http.post(URL, status=500)
    stop = threading.Event()
    stop.set()
    fake = ManualClock()
    sink = _sink(tmp_path, fake, max_batch=2, rate=1.0, burst=1, stop_event=stop)
    sink.write(trades(range(6)))
    assert len(fake_http.calls) == 2 and fake.sleeps == []
    assert sink.stats["delivered"] == 2
    dead = read_jsonl(str(tmp_path / "dead.jsonl"))
    assert [e.id for e in dead] == ["2", "3", "4", "5"]


def test_an_unwritable_dead_letter_file_raises_sink_error(
    fake_http: responses.RequestsMock, tmp_path: Path
) -> None:
    fake_http.post(URL, status=400)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    sink = _sink(tmp_path, ManualClock(), dead_letter=str(blocker / "dead.jsonl"))
    with pytest.raises(SinkError, match="neither delivered"):
        sink.write(trades(range(1)))
    assert sink.stats["failed"] == 1


def test_close_is_idempotent_and_leaves_a_given_session_open(
    fake_http: responses.RequestsMock, tmp_path: Path
) -> None:
    fake_http.post(URL, status=200)
    session = requests.Session()
    sink = _sink(tmp_path, ManualClock(), session=session)
    sink.flush()
    sink.close()
    sink.close()
    with pytest.raises(SinkError, match="after close"):
        sink.write(trades(range(1)))
    assert session.post(URL).status_code == 200
    session.close()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://h:1/p?a=1", "http://h:1/p?a=1"),
        ("https://u:p@h/p", "https://u:***@h/p"),
        ("https://u@h/p#frag", "https://***@h/p#frag"),
        (
            "http://h/p?access_token=x&api_key=y&sig=z&q=1",
            "http://h/p?access_token=***&api_key=***&sig=***&q=1",
        ),
        ("http://[::1", "http://[::1"),
    ],
)
def test_the_sink_shows_its_url_through_the_one_redactor(url: str, shown: str) -> None:
    sink = WebhookSink(url)
    try:
        assert sink.display_url == shown == redact_url(url)
    finally:
        sink.close()


def test_a_refused_receiver_is_named_and_retries_are_warned_at_1_2_4_only(
    tmp_path: Path, refusing_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    fake = ManualClock()
    sink = WebhookSink(
        f"http://127.0.0.1:{refusing_port}/ingest",
        dead_letter=str(tmp_path / "dead.jsonl"),
        retry_attempts=5,
        sleep=fake.sleep,
        clock=fake,
        rng=random.Random(1),
    )
    caplog.set_level(logging.INFO, logger="streamvisor.sinks.webhook")
    sink.write(trades([1]))
    retries = [r for r in caplog.records if "; retry " in r.getMessage()]
    assert [r.levelno for r in retries] == [
        logging.WARNING,
        logging.WARNING,
        logging.INFO,
        logging.WARNING,
        logging.INFO,
    ]
    assert all("network error: Connection refused" in r.getMessage() for r in retries)
    assert len(read_jsonl(str(tmp_path / "dead.jsonl"))) == 1
