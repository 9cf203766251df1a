"""Warnings across config sections (``config/checks.py``): settings that work but will not
do what they seem to: an unreachable restart limit, a read timeout shorter than heartbeats,
a stream no sink takes."""

from __future__ import annotations

import pytest

from tests.support import config as cfg
from tests.support.config import STREAM


def test_an_unreachable_restart_limit_is_a_warning() -> None:
    text = STREAM + "    max_restarts: {count: 20, within: 60}\n"
    assert cfg.warnings(text) == [
        "config.yaml:4: streams[0].max_restarts: 20 restarts within 60s cannot be reached by "
        "failing connections with this backoff (at most 7 fit); it only catches crash loops "
        "and rapid reconnects"
    ]


def test_an_unreachable_restart_limit_in_defaults_is_reported_for_each_stream() -> None:
    text = "defaults:\n  max_restarts: {count: 20}\n" + STREAM + "  - {name: b, url: 'http://h/'}\n"
    assert [w.split(": ", 2)[1] for w in cfg.warnings(text)] == [
        "streams[0].max_restarts",
        "streams[1].max_restarts",
    ]


@pytest.mark.parametrize(
    "extra",
    [
        "",  # the default limit is not the user's choice: no warning
        "    max_restarts: {count: 5, within: 60}\n",  # 7 fit: reachable
        "    max_restarts: {count: 20, within: 60}\n    backoff: {initial: 0.1, max: 1}\n",
        "    max_restarts: {count: 0}\n",  # disabled
    ],
)
def test_a_reachable_or_implicit_restart_limit_is_not_a_warning(extra: str) -> None:
    assert cfg.warnings(STREAM + extra) == []


def test_a_short_read_timeout_is_a_warning() -> None:
    assert cfg.warnings(STREAM + "    read_timeout: 2\n") == [
        "config.yaml:4: streams[0].read_timeout: 2s is shorter than typical server heartbeats "
        "(15-30 s): quiet streams will be reconnected needlessly"
    ]


def test_a_stream_no_sink_takes_is_a_warning_only_when_there_are_sinks() -> None:
    two = STREAM + "  - {name: b, url: 'http://h/'}\n"
    assert cfg.warnings(two) == []
    assert cfg.warnings(two + "sinks:\n  - {name: s, type: stdout, streams: [a]}\n") == [
        "config.yaml:4: streams[1]: no sink takes the events of stream 'b'"
    ]
    assert cfg.warnings(two + "sinks:\n  - {name: s, type: stdout}\n") == []
    disabled = STREAM + "  - {name: b, url: 'http://h/', enabled: false}\n"
    disabled += "sinks:\n  - {name: s, type: stdout, streams: [a]}\n"
    assert cfg.warnings(disabled) == []
