"""The webhook sink end to end in the daemon: a receiver that fails, rate-limits, then
recovers gets every event exactly once, or the event is in the dead-letter file."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from streamvisor.demo.source import DemoSource
from tests.support.daemon import ADMIN, ids_by_stream, running_daemon
from tests.support.demo import MakeDemo
from tests.support.webhooks import MakeReceiver, WebhookReceiver

TOTAL = 300
# Retries: 4 tries per batch. Ten 500s dead-letter two batches and wear the third down,
# three 429s finish it off and delay the fourth, which then goes through.
PLAN = [(500, {})] * 10 + [(429, {"Retry-After": "0"})] * 3


@pytest.fixture
def source(make_demo: MakeDemo) -> DemoSource:
    return make_demo(("orders",), total=TOTAL, rate=500.0)


@pytest.fixture
def receiver(make_receiver: MakeReceiver) -> WebhookReceiver:
    return make_receiver(PLAN)


def test_every_event_reaches_the_recovering_receiver_exactly_once_or_the_dead_letter_file(
    tmp_path: Path, source: DemoSource, receiver: WebhookReceiver
) -> None:
    dead = tmp_path / "dead.jsonl"
    config = {
        "streams": [{"name": "orders", "url": source.url("orders"), "read_timeout": 10}],
        "sinks": [
            {
                "name": "hook",
                "type": "webhook",
                "url": receiver.url,
                "batch": {"max_events": 20, "max_wait": 0.05},
                "retry": {"initial": 0.01, "max": 0.05, "attempts": 3},
                "dead_letter": str(dead),
            }
        ],
        "admin": ADMIN,
    }

    def settled() -> set[int]:
        return set(receiver.accepted_ids("orders")) | set(ids_by_stream(dead).get("orders", []))

    with running_daemon(tmp_path, config) as d:
        d.wait_for(lambda: settled() >= set(range(1, TOTAL + 1)), "every event settled")
        assert d.terminate() == 0, d.stderr()

    accepted = receiver.accepted_ids("orders")
    dead_lettered = ids_by_stream(dead).get("orders", [])
    repeated = [i for i, n in collections.Counter(accepted).items() if n > 1]
    assert repeated == [], "events accepted by the receiver more than once"
    assert not set(accepted) & set(dead_lettered), "events both delivered and dead-lettered"
    assert sorted(accepted + dead_lettered) == list(range(1, TOTAL + 1))
    assert dead_lettered and accepted, "the plan should dead-letter some and deliver the rest"
    statuses = receiver.statuses()
    assert statuses[: len(PLAN)] == [status for status, _ in PLAN]
    assert set(statuses[len(PLAN) :]) == {200}
    assert "dead-lettered" in d.stderr()
