"""Stream keys of issue 10 (``config/streams.py``): ``backoff.max_retry_after``, the 8 MiB
``max_event_size``."""

from __future__ import annotations

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
