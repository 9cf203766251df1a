"""Sink keys and the sink-type registry: every type is read and built through one class."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from streamvisor.config.load import Config, ConfigErrors, parse_config
from streamvisor.config.model import SinkConfig
from streamvisor.config.sink_types import SINK_TYPES
from streamvisor.sinks.base import Sink
from streamvisor.sinks.factory import build_sink
from streamvisor.sinks.file import FileSink
from streamvisor.sinks.redis_streams import RedisStreamsSink
from streamvisor.sinks.stdout import StdoutSink
from streamvisor.sinks.webhook import WebhookSink
from tests.support.config import STREAM


def _parse(sinks: str, base_dir: Path | str = "/cfg") -> Config:
    text = STREAM + "sinks:\n" + textwrap.indent(textwrap.dedent(sinks).strip("\n"), "  ") + "\n"
    return parse_config(text, source="c.yaml", base_dir=str(base_dir), environ={})


def _errors(sinks: str) -> list[str]:
    with pytest.raises(ConfigErrors) as info:
        _parse(sinks)
    return info.value.format().splitlines()


def test_each_sink_type_is_built_as_its_own_sink_class(tmp_path: Path) -> None:
    config = _parse(
        """
        - {name: out, type: stdout}
        - {name: log, type: file, path: events.jsonl}
        - {name: hook, type: webhook, url: "http://127.0.0.1:9/ingest"}
        - {name: redis, type: redis_streams, redis: "redis://127.0.0.1:9/0"}
        """,
        base_dir=tmp_path,
    )
    expected = {"out": StdoutSink, "log": FileSink, "hook": WebhookSink, "redis": RedisStreamsSink}
    built: list[Sink] = []
    try:
        for sink_config in config.sinks:
            sink = build_sink(sink_config)
            built.append(sink)
            assert type(sink) is expected[sink_config.name]
            assert sink.name == sink_config.name
    finally:
        for sink in built:
            sink.close()
    assert [s.type for s in config.sinks] == list(SINK_TYPES)
    assert (tmp_path / "events.jsonl").exists()


def test_a_type_outside_the_registry_is_refused_by_the_factory() -> None:
    with pytest.raises(ValueError, match="unknown sink type 'kafka'"):
        build_sink(SinkConfig(name="k", type="kafka"))


def test_an_unknown_type_lists_every_registered_type() -> None:
    (line,) = _errors("- {name: k, type: kafka}")
    assert line == (
        "c.yaml:5: sinks[0].type: unknown sink type 'kafka' "
        "(expected 'stdout', 'file', 'webhook' or 'redis_streams')"
    )
    assert all(repr(name) in line for name in SINK_TYPES)


def test_a_key_of_another_type_names_the_sink_type() -> None:
    assert _errors("- {name: o, type: stdout, maxlen: 5}") == [
        "c.yaml:5: sinks[0].maxlen: 'maxlen' does not apply to a stdout sink"
    ]


@pytest.mark.parametrize(
    ("sinks", "expected"),
    [
        (
            "- {name: r, redis: 'redis://127.0.0.1/0', maxlen: -1}",
            [
                "c.yaml:5: sinks[0]: missing required key 'type'",
                "c.yaml:5: sinks[0].maxlen: must be at least 0, got -1",
            ],
        ),
        (
            "- {name: r, type: kafka, stream: 'x:{stream}', maxlen: 5}",
            [
                "c.yaml:5: sinks[0].type: unknown sink type 'kafka' "
                "(expected 'stdout', 'file', 'webhook' or 'redis_streams')"
            ],
        ),
        (
            "- {name: r, fields: {a: nope}}",
            [
                "c.yaml:5: sinks[0]: missing required key 'type'",
            ],
        ),
    ],
)
def test_a_sink_without_a_valid_type_gets_located_errors_not_a_crash(
    sinks: str, expected: list[str]
) -> None:
    assert _errors(sinks) == expected


def test_a_redis_streams_sink_without_a_name_still_has_its_keys_checked() -> None:
    assert _errors("- {type: redis_streams, redis: 'redis://127.0.0.1/0', maxlen: -1}") == [
        "c.yaml:5: sinks[0]: missing required key 'name'",
        "c.yaml:5: sinks[0].maxlen: must be at least 0, got -1",
    ]
