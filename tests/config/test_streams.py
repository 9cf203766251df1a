"""Stream keys of issue 10 (``config/streams.py``): ``backoff.max_retry_after``, the 8 MiB
``max_event_size``."""

from __future__ import annotations

import re

import pytest

from streamvisor.config.load import ConfigErrors
from streamvisor.spec import StreamSpec
from tests.support import config as cfg


def parse(text: str) -> list[StreamSpec]:
    return list(cfg.parse(text, source="c.yaml").streams)


def test_max_retry_after_is_a_backoff_key_with_a_default_of_one_hour() -> None:
    a, b = parse(
        """
        defaults:
          backoff: {max_retry_after: 120}
        streams:
          - {name: a, url: "http://127.0.0.1:1/e"}
          - {name: b, url: "http://127.0.0.1:1/e", backoff: {max: 10}}
        """
    )
    assert a.backoff.max_retry_after == 120.0
    assert (b.backoff.max_retry_after, b.backoff.max) == (120.0, 10.0)  # merged with defaults
    assert StreamSpec(name="x", url="http://h/").backoff.max_retry_after == 3600.0


def test_a_negative_max_retry_after_is_reported_with_its_line() -> None:
    with pytest.raises(ConfigErrors) as info:
        parse(
            """
            streams:
              - name: a
                url: http://127.0.0.1:1/e
                backoff: {max_retry_after: -1}
            """
        )
    assert [e.format() for e in info.value.errors] == [
        "c.yaml:4: streams[0].backoff.max_retry_after: must be at least 0, got -1"
    ]


def test_the_default_max_event_size_is_8_mib() -> None:
    assert StreamSpec(name="x", url="http://h/").max_event_size == 8 * 1024 * 1024
    (a,) = parse('streams:\n  - {name: a, url: "http://127.0.0.1:1/e"}\n')
    assert a.max_event_size == 8 * 1024 * 1024


def test_stream_spec_takes_backoff_restarts_and_breaker_as_mappings_as_in_yaml() -> None:
    spec = StreamSpec(
        name="x",
        url="http://h/",
        backoff={"initial": 0.1, "max": 2},
        max_restarts={"count": 3, "within": 10},
        breaker={"failures": 0},
    )
    assert (spec.backoff.initial, spec.backoff.max, spec.backoff.jitter) == (0.1, 2, 0.3)
    assert (spec.max_restarts.count, spec.max_restarts.within) == (3, 10)
    assert spec.breaker.failures == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"backoff": {"initial": 5, "max": 1}}, "backoff.max"),
        ({"backoff": {"inital": 1}}, "unknown backoff key(s) inital"),
        ({"backoff": 1.0}, "backoff must be a BackoffPolicy or a mapping"),
        ({"max_restarts": {"count": -1}}, "max_restarts.count"),
        ({"breaker": "off"}, "breaker must be a BreakerPolicy or a mapping"),
    ],
)
def test_a_bad_backoff_restarts_or_breaker_argument_is_a_value_error_naming_it(
    options: dict[str, object], message: str
) -> None:
    # Before: anything was stored as is, and the stream's supervisor crashed on the first
    # reconnect ('dict' object has no attribute 'initial'), leaving connect() hanging.
    with pytest.raises(ValueError, match=re.escape(message)):
        StreamSpec(name="x", url="http://h/", **options)  # type: ignore[arg-type]
