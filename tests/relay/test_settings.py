"""The ``relay:`` config section: read into ``RelayConfig``, every mistake located."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from streamvisor.config.load import Config, parse_config
from streamvisor.relay.settings import RelayConfig
from tests.support import config as cfg
from tests.support.config import BASE_DIR

STREAMS = """\
streams:
  - {name: a, url: "http://127.0.0.1:8000/a"}
  - {name: b, url: "http://127.0.0.1:8000/b"}
"""


def parse(relay: str, environ: dict[str, str] | None = None) -> Config:
    return cfg.parse(STREAMS + textwrap.dedent(relay).lstrip("\n"), environ, source="c.yaml")


def errors(relay: str) -> list[str]:
    return cfg.errors(STREAMS + textwrap.dedent(relay).lstrip("\n"), source="c.yaml")


def test_without_a_relay_section_there_is_no_relay() -> None:
    assert parse("").relay is None


def test_an_empty_section_gets_every_default() -> None:
    assert parse("relay: {}\n").relay == RelayConfig()


def test_every_key_is_read_into_the_settings() -> None:
    config = parse(
        """
        relay:
          listen: "[::1]:0"
          streams: [b]
          history: {max_events: 50, max_age: 30, store: sqlite, path: relay.db}
          client: {max_buffer_bytes: 65536, heartbeat: 5, retry: 1.5, max_lifetime: 600}
          auth: {tokens: ["${RELAY_TOKEN}"]}
          cors: {allow_origins: ["https://app.example"]}
        """,
        {"RELAY_TOKEN": "s3cret-token"},
    )
    assert config.relay == RelayConfig(
        host="::1",
        port=0,
        streams=("b",),
        max_events=50,
        max_age=30.0,
        store="sqlite",
        path=os.path.join(BASE_DIR, "relay.db"),
        max_buffer_bytes=65536,
        heartbeat=5.0,
        retry=1.5,
        max_lifetime=600.0,
        tokens=("s3cret-token",),
        allow_origins=("https://app.example",),
    )
    assert "s3cret-token" in config.secrets
    assert "s3cret-token" not in repr(config.relay)


@pytest.mark.parametrize(
    ("relay", "expected"),
    [
        ("relay: {listen: nowhere}", "c.yaml:4: relay.listen: expected HOST:PORT"),
        ("relay: {streams: [a, zz]}", "c.yaml:4: relay.streams[1]: unknown stream 'zz'"),
        ("relay: {history: {max_events: 0}}", "relay.history.max_events: must be between 1 and"),
        (
            "relay: {history: {max_events: 99999999999999999999}}",
            "relay.history.max_events: must be between 1 and 1e+06, got 1e+20",
        ),
        ("relay: {history: {store: redis}}", "relay.history.store: expected 'memory' or 'sqlite'"),
        ("relay: {history: {store: sqlite}}", "relay.history: store 'sqlite' needs a 'path'"),
        ("relay: {client: {heartbeat: 0}}", "relay.client.heartbeat: must be greater than 0"),
        ("relay: {client: {max_buffer_bytes: 10}}", "max_buffer_bytes: must be at least 1024"),
        ("relay: {client: {retry: -1}}", "relay.client.retry: must be at least 0"),
        ("relay: {client: {buffer: 1}}", "relay.client.buffer: unknown key 'buffer'"),
        ("relay: {auth: {}}", "relay.auth: missing required key 'tokens'"),
        ("relay: {auth: {tokens: []}}", "relay.auth.tokens: must not be empty"),
        ("relay: {cors: {allow_origins: [example]}}", "expected an origin (https://host) or '*'"),
        ("relay: {port: 1}", "relay.port: unknown key 'port'"),
        ("relay: [1]", "relay: expected a mapping, got a list"),
    ],
)
def test_a_bad_relay_section_reports_exactly_this_problem(relay: str, expected: str) -> None:
    found = errors(relay + "\n")
    assert len(found) == 1, found
    assert expected in found[0]


def test_the_commented_relay_example_in_config_example_yaml_is_valid() -> None:
    example = (Path(__file__).resolve().parents[2] / "config.example.yaml").read_text()
    start = example.index("# relay:")
    block = "\n".join(line[2:] for line in example[start:].splitlines() if line.startswith("# "))
    config = parse_config(
        STREAMS.replace("name: a", "name: ticker") + block,
        source="c.yaml",
        base_dir=BASE_DIR,
        environ={"RELAY_TOKEN": "t"},
    )
    assert config.relay is not None
    assert config.relay.store == "memory" and config.relay.tokens == ("t",)


def test_a_history_the_ring_cannot_hold_is_refused_before_it_is_allocated() -> None:
    # The ring preallocates max_events slots: 1e20 raised OverflowError, 1e9 MemoryError.
    with pytest.raises(ValueError, match="max_events must be between 1 and 1000000"):
        RelayConfig(max_events=10**9)
