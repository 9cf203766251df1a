"""Config loading: good files become the right objects; bad files report every problem."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from streamvisor.config import walker
from streamvisor.config.load import (
    AdminConfig,
    CheckpointConfig,
    ConfigErrors,
    SinkConfig,
    load_config,
)
from streamvisor.errors import ConfigError
from streamvisor.policy.backoff import BackoffPolicy, RestartLimit
from streamvisor.policy.flow import BufferSettings, WhenFull
from streamvisor.spec import BreakerPolicy
from tests.support import config as cfg
from tests.support.config import BASE_DIR, STREAM

REPO = Path(__file__).resolve().parents[2]


# -- good configs -----------------------------------------------------------------------


GOOD = """
shutdown_timeout: 20
defaults:
  read_timeout: 45
  headers: {Accept-Language: en, Authorization: "Bearer ${TOKEN}"}
  backoff: {initial: 2, max: 60, jitter: 0.1}
  breaker: {failures: 3}
streams:
  - name: ticker
    url: http://127.0.0.1:8000/events
    backoff: {max: 90}
  - name: orders
    url: https://127.0.0.1:8443/orders
    method: post
    headers: {authorization: "Bearer other-token-1"}
    body: {symbols: [BTC], price: "$${PRICE}"}
    max_attempts: 5
    max_restarts: {count: 3, within: 600}
    verify: certs/ca.pem
    enabled: false
    last_event_id: 0042
    connect_timeout: ${CONNECT_TIMEOUT:-2.5}
    dedup_window: ${WINDOW}
sinks:
  - name: archive
    type: file
    path: out/events.jsonl
    streams: [ticker]
    events: [trade, quote]
    fsync: ${FSYNC:-true}
  - name: hook
    type: webhook
    url: http://127.0.0.1:9000/ingest
    headers: {X-Api-Key: "${HOOK_KEY:-local-key}"}
    batch: {max_events: 50, max_wait: 1}
    rate_limit: {rate: 2.5}
    retry: {initial: 1, max: 10, attempts: 3}
    dead_letter: /var/dead.jsonl
    buffer: 500
    overflow: drop_oldest
checkpoint: {path: state/sv.db, interval: 2}
admin: {listen: "[::1]:0"}
"""


def test_a_good_config_becomes_the_right_objects() -> None:
    config = cfg.parse(GOOD, {"TOKEN": "tok-12345", "WINDOW": "128"})

    ticker, orders = config.streams
    assert ticker.name == "ticker"
    assert ticker.read_timeout == 45.0
    assert ticker.headers == {"Accept-Language": "en", "Authorization": "Bearer tok-12345"}
    assert ticker.backoff == BackoffPolicy(initial=2, max=90, jitter=0.1)
    assert ticker.breaker == BreakerPolicy(failures=3, cooldown=120.0)
    assert ticker.max_restarts == RestartLimit()
    assert ticker.enabled is True

    assert orders.method == "POST"
    assert orders.headers == {"Accept-Language": "en", "authorization": "Bearer other-token-1"}
    assert orders.body == {"symbols": ["BTC"], "price": "${PRICE}"}
    assert orders.backoff == BackoffPolicy(initial=2, max=60, jitter=0.1)
    assert orders.max_attempts == 5
    assert orders.max_restarts == RestartLimit(count=3, within=600)
    assert orders.verify == os.path.join(BASE_DIR, "certs/ca.pem")
    assert orders.enabled is False
    assert orders.last_event_id == "0042"
    assert orders.connect_timeout == 2.5
    assert orders.dedup_window == 128

    assert config.sinks == (
        SinkConfig(
            name="archive",
            type="file",
            path=os.path.join(BASE_DIR, "out/events.jsonl"),
            streams=("ticker",),
            events=("trade", "quote"),
            fsync=True,
        ),
        SinkConfig(
            name="hook",
            type="webhook",
            url="http://127.0.0.1:9000/ingest",
            headers={"X-Api-Key": "local-key"},
            batch_max_events=50,
            batch_max_wait=1.0,
            rate=2.5,
            burst=3,
            retry_initial=1.0,
            retry_max=10.0,
            retry_attempts=3,
            dead_letter="/var/dead.jsonl",
            buffer=BufferSettings(max_events=500, when_full=WhenFull.DROP_OLDEST),
        ),
    )
    assert config.checkpoint == CheckpointConfig(
        path=os.path.join(BASE_DIR, "state/sv.db"), interval=2.0
    )
    assert config.admin == AdminConfig(host="::1", port=0)
    assert config.shutdown_timeout == 20.0
    assert config.source == "config.yaml"
    assert {"tok-12345", "Bearer tok-12345", "other-token-1", "local-key"} <= config.secrets
    assert config.warnings == ()


def test_a_minimal_config_gets_every_default() -> None:
    config = cfg.parse(STREAM)
    (stream,) = config.streams
    assert (stream.method, stream.read_timeout, stream.backoff) == ("GET", 60.0, BackoffPolicy())
    assert config.sinks == ()
    assert config.checkpoint is None
    assert config.admin is None
    assert config.shutdown_timeout == 10.0


def test_the_example_config_loads_without_errors_or_warnings() -> None:
    config = load_config(REPO / "config.example.yaml", environ={})
    assert config.warnings == ()
    assert [s.name for s in config.streams] == ["ticker", "orders"]
    assert config.admin == AdminConfig(host="127.0.0.1", port=9108)
    assert config.checkpoint is not None
    assert config.checkpoint.path == str(REPO / "streamvisor.db")
    assert config.sinks[1].path == str(REPO / "events.jsonl")


def test_load_config_resolves_relative_paths_against_the_config_folder(tmp_path: Path) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    path = folder / "sv.yaml"
    path.write_text(STREAM + "checkpoint: {path: sv.db}\n", encoding="utf-8")
    config = load_config(path, environ={})
    assert config.checkpoint == CheckpointConfig(path=str(folder / "sv.db"))
    assert config.source == str(path)


def test_load_config_reads_os_environ_when_no_environ_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SV_TEST_TIMEOUT", "7")
    path = tmp_path / "sv.yaml"
    path.write_text(STREAM + "    read_timeout: ${SV_TEST_TIMEOUT}\n", encoding="utf-8")
    assert load_config(path).streams[0].read_timeout == 7.0


@pytest.mark.parametrize(
    ("value", "environ", "expected"),
    [
        ("${HOST}", {"HOST": "example.com"}, "example.com"),
        ("${HOST:-localhost}", {}, "localhost"),
        ("${HOST:-localhost}", {"HOST": ""}, "localhost"),
        ("${HOST:-localhost}", {"HOST": "h1"}, "h1"),
        ("${HOST:?set HOST}", {"HOST": "h2"}, "h2"),
        ("$${HOST}", {"HOST": "h3"}, "${HOST}"),
        ("a$b$$c", {}, "a$b$$c"),
        ("${A}${B:-x}-$${C}", {"A": "1"}, "1x-${C}"),
        ("${EMPTY}", {"EMPTY": ""}, ""),
    ],
)
def test_interpolation_expands_variables_inside_string_values(
    value: str, environ: dict[str, str], expected: str
) -> None:
    config = cfg.parse(STREAM + f'    last_event_id: "{value}"\n', environ)
    assert config.streams[0].last_event_id == expected


def test_interpolated_strings_are_coerced_to_numbers_and_booleans() -> None:
    text = STREAM + "    read_timeout: ${RT}\n    max_redirects: ${MR}\n    enabled: ${ON}\n"
    (stream,) = cfg.parse(text, {"RT": " 30 ", "MR": "3", "ON": "no"}).streams
    assert (stream.read_timeout, stream.max_redirects, stream.enabled) == (30.0, 3, False)


def test_yaml_merge_keys_and_anchors_are_understood() -> None:
    text = """
    streams:
      - &base
        name: a
        url: http://127.0.0.1:8000/a
        read_timeout: 30
      - <<: *base
        name: b
    """
    streams = cfg.parse(text).streams
    assert [(s.name, s.url, s.read_timeout) for s in streams] == [
        ("a", "http://127.0.0.1:8000/a", 30.0),
        ("b", "http://127.0.0.1:8000/a", 30.0),
    ]


def test_a_rate_limit_burst_defaults_to_the_rate_rounded_up() -> None:
    text = (
        STREAM + "sinks:\n  - {name: h, type: webhook, url: 'http://h/', rate_limit: {rate: 0.2}}\n"
    )
    (sink,) = cfg.parse(text).sinks
    assert (sink.rate, sink.burst) == (0.2, 1)


def test_sink_repr_masks_credentials() -> None:
    text = STREAM + (
        "sinks:\n  - {name: h, type: webhook, url: 'http://u:pa55w0rd@h/',"
        " headers: {Authorization: Bearer zzz-token}}\n"
    )
    shown = repr(cfg.parse(text).sinks[0])
    assert "pa55w0rd" not in shown
    assert "zzz-token" not in shown


# -- bad configs ------------------------------------------------------------------------

BAD = [
    pytest.param(
        "streams: [\n  - name: a\n",
        "config.yaml:2: YAML syntax error: while parsing a flow node, expected the node "
        "content, but found '-' (column 3)",
        id="syntax-error-flow",
    ),
    pytest.param(
        "streams:\n  - name: a: b\n",
        "config.yaml:2: YAML syntax error: mapping values are not allowed here (column 12)",
        id="syntax-error-mapping-value",
    ),
    pytest.param(
        STREAM + "---\nx: 1\n",
        "config.yaml:4: YAML syntax error: expected a single document in the stream, but found "
        "another document (column 1)",
        id="two-documents",
    ),
    pytest.param(
        "- a\n- b\n",
        "config.yaml:1: the top level must be a mapping, got a list",
        id="top-level-list",
    ),
    pytest.param("# nothing here\n", "config.yaml:1: the file is empty", id="empty"),
    pytest.param(
        STREAM + "sink: []\n",
        "config.yaml:4: sink: unknown key 'sink' (did you mean 'sinks'?)",
        id="unknown-top-level-key",
    ),
    pytest.param(
        STREAM + "    read_timout: 5\n",
        "config.yaml:4: streams[0].read_timout: unknown key 'read_timout' "
        "(did you mean 'read_timeout'?)",
        id="unknown-stream-key",
    ),
    pytest.param(
        STREAM + "    backoff: {initial: 1, maximum: 5}\n",
        "config.yaml:4: streams[0].backoff.maximum: unknown key 'maximum' (did you mean 'max'?)",
        id="unknown-nested-key",
    ),
    pytest.param(
        STREAM + "    read_timeout: 5\n    read_timeout: 6\n",
        "config.yaml:5: streams[0].read_timeout: duplicate key 'read_timeout' (first at line 4)",
        id="duplicate-key",
    ),
    pytest.param(
        STREAM + "    read_timeout: sixty\n",
        "config.yaml:4: streams[0].read_timeout: expected a number, got 'sixty'",
        id="number-not-a-number",
    ),
    pytest.param(
        STREAM + "    read_timeout: true\n",
        "config.yaml:4: streams[0].read_timeout: expected a number, got true",
        id="bool-is-not-a-number",
    ),
    pytest.param(
        STREAM + "    connect_timeout: 0\n",
        "config.yaml:4: streams[0].connect_timeout: must be greater than 0, got 0",
        id="timeout-zero",
    ),
    pytest.param(
        STREAM + "    read_timeout: .nan\n",
        "config.yaml:4: streams[0].read_timeout: expected a finite number, got nan",
        id="timeout-nan",
    ),
    pytest.param(
        STREAM + "    backoff: {jitter: 1.5}\n",
        "config.yaml:4: streams[0].backoff.jitter: must be between 0 and 1, got 1.5",
        id="jitter-out-of-range",
    ),
    pytest.param(
        STREAM + "    backoff:\n      multiplier: 0.5\n",
        "config.yaml:5: streams[0].backoff.multiplier: must be at least 1, got 0.5",
        id="multiplier-below-one",
    ),
    pytest.param(
        STREAM + "    backoff: {initial: 5, max: 2}\n",
        "config.yaml:4: streams[0].backoff.max: must not be less than initial (5), got 2",
        id="backoff-max-below-initial",
    ),
    pytest.param(
        STREAM + "    backoff:\n      initial: 45\n",
        "config.yaml:5: streams[0].backoff.initial: must not be more than max (30), got 45",
        id="backoff-initial-above-default-max",
    ),
    pytest.param(
        STREAM + "    max_restarts: {count: -1}\n",
        "config.yaml:4: streams[0].max_restarts.count: must be at least 0, got -1",
        id="restart-count-negative",
    ),
    pytest.param(
        STREAM + "    max_attempts: 0\n",
        "config.yaml:4: streams[0].max_attempts: must be at least 1, got 0",
        id="max-attempts-zero",
    ),
    pytest.param(
        STREAM + "    dedup_window: 4.5\n",
        "config.yaml:4: streams[0].dedup_window: expected an integer, got 4.5",
        id="integer-not-whole",
    ),
    pytest.param(
        STREAM + "    max_event_size: 10\n",
        "config.yaml:4: streams[0].max_event_size: must be at least 64, got 10",
        id="event-size-too-small",
    ),
    pytest.param(
        STREAM + "    enabled: maybe\n",
        "config.yaml:4: streams[0].enabled: expected true or false, got 'maybe'",
        id="bool-not-a-bool",
    ),
    pytest.param(
        STREAM + "    verify: 5\n",
        "config.yaml:4: streams[0].verify: expected true, false or a CA bundle path",
        id="verify-number",
    ),
    pytest.param(
        STREAM + "    method: PUT\n",
        "config.yaml:4: streams[0].method: expected 'GET' or 'POST', got 'PUT'",
        id="bad-method",
    ),
    pytest.param(
        "streams:\n  - name: a\n    url: ftp://127.0.0.1/x\n",
        "config.yaml:3: streams[0].url: expected an http:// or https:// URL, "
        "got 'ftp://127.0.0.1/x'",
        id="url-scheme",
    ),
    pytest.param(
        "streams:\n  - name: a\n    url: http:///events\n",
        "config.yaml:3: streams[0].url: URL has no host: 'http:///events'",
        id="url-without-host",
    ),
    pytest.param(
        "streams:\n  - name: a\n    url: http://h:99999/\n",
        "config.yaml:3: streams[0].url: not a valid URL: 'http://h:99999/'",
        id="url-bad-port",
    ),
    pytest.param(
        "streams:\n  - name: a\n",
        "config.yaml:2: streams[0]: missing required key 'url'",
        id="stream-without-url",
    ),
    pytest.param(
        "streams:\n  - url: http://h/\n",
        "config.yaml:2: streams[0]: missing required key 'name'",
        id="stream-without-name",
    ),
    pytest.param(
        "shutdown_timeout: 5\n",
        "config.yaml:1: missing required key 'streams'",
        id="no-streams-key",
    ),
    pytest.param(
        "streams: []\n",
        "config.yaml:1: streams: must list at least one stream",
        id="empty-streams",
    ),
    pytest.param(
        "streams: {name: a}\n",
        "config.yaml:1: streams: expected a list of streams, got a mapping",
        id="streams-not-a-list",
    ),
    pytest.param(
        STREAM + "  - name: a\n    url: http://h/\n",
        "config.yaml:4: streams[1].name: duplicate stream name 'a' (first at line 2)",
        id="duplicate-stream-name",
    ),
    pytest.param(
        STREAM + "    headers: {Authorization: {token: x}}\n",
        "config.yaml:4: streams[0].headers.Authorization: expected a string value, got a mapping",
        id="header-value-mapping",
    ),
    pytest.param(
        STREAM + "    headers: {'Bad Name': x}\n",
        "config.yaml:4: streams[0].headers.Bad Name: 'Bad Name' is not a valid header name",
        id="header-name-invalid",
    ),
    pytest.param(
        STREAM + "    last_event_id: ${READ_TIMEOUT}\n",
        "config.yaml:4: streams[0].last_event_id: environment variable READ_TIMEOUT is not set",
        id="env-var-missing",
    ),
    pytest.param(
        STREAM + "    read_timeout: ${RT:?set RT to the server heartbeat plus a margin}\n",
        "config.yaml:4: streams[0].read_timeout: RT: set RT to the server heartbeat plus a margin",
        id="env-var-required-message",
    ),
    pytest.param(
        STREAM + "    last_event_id: ${1BAD}\n",
        "config.yaml:4: streams[0].last_event_id: bad variable reference '${1BAD}': use ${VAR}, "
        "${VAR:-default} or ${VAR:?message}, and $${ for a literal ${",
        id="env-var-bad-reference",
    ),
    pytest.param(
        STREAM + "    last_event_id: ab${OPEN\n",
        "config.yaml:4: streams[0].last_event_id: bad variable reference '${OPEN': use ${VAR}, "
        "${VAR:-default} or ${VAR:?message}, and $${ for a literal ${",
        id="env-var-unclosed",
    ),
    pytest.param(
        "defaults:\n  name: x\n" + STREAM,
        "config.yaml:2: defaults.name: each stream needs its own name",
        id="defaults-with-name",
    ),
    pytest.param(
        STREAM + "sinks:\n  - name: s\n    type: kafka\n",
        "config.yaml:6: sinks[0].type: unknown sink type 'kafka' "
        "(expected 'stdout', 'file', 'webhook' or 'redis_streams')",
        id="unknown-sink-type",
    ),
    pytest.param(
        STREAM + "sinks:\n  - name: s\n    type: file\n",
        "config.yaml:5: sinks[0]: missing required key 'path'",
        id="file-sink-without-path",
    ),
    pytest.param(
        STREAM + "sinks:\n  - {name: s, type: webhook}\n",
        "config.yaml:5: sinks[0]: missing required key 'url'",
        id="webhook-without-url",
    ),
    pytest.param(
        STREAM + "sinks:\n  - {type: stdout}\n",
        "config.yaml:5: sinks[0]: missing required key 'name'",
        id="sink-without-name",
    ),
    pytest.param(
        STREAM + "sinks:\n  - name: s\n    type: stdout\n    streams: [b]\n",
        "config.yaml:7: sinks[0].streams[0]: unknown stream 'b'",
        id="sink-names-unknown-stream",
    ),
    pytest.param(
        STREAM + "sinks:\n  - {name: s, type: stdout}\n  - {name: s, type: stdout}\n",
        "config.yaml:6: sinks[1].name: duplicate sink name 's' (first at line 5)",
        id="duplicate-sink-name",
    ),
    pytest.param(
        STREAM + "sinks:\n  - name: s\n    type: stdout\n    path: x.jsonl\n",
        "config.yaml:7: sinks[0].path: 'path' does not apply to a stdout sink",
        id="sink-key-for-another-type",
    ),
    pytest.param(
        STREAM + "sinks:\n  - {name: s, type: stdout, overflow: drop_new}\n",
        "config.yaml:5: sinks[0].overflow: expected 'block', 'drop_newest', 'drop_oldest' or "
        "'disconnect', got 'drop_new' (did you mean 'drop_newest'?)",
        id="bad-overflow",
    ),
    pytest.param(
        STREAM + "sinks:\n  - {name: s, type: stdout, streams: []}\n",
        "config.yaml:5: sinks[0].streams: must not be empty (leave the key out for all)",
        id="empty-stream-filter",
    ),
    pytest.param(
        STREAM + "sinks:\n  - {name: h, type: webhook, url: 'http://h/', rate_limit: {burst: 2}}\n",
        "config.yaml:5: sinks[0].rate_limit: missing required key 'rate'",
        id="rate-limit-without-rate",
    ),
    pytest.param(
        STREAM + "sinks:\n  - {name: h, type: webhook, url: 'http://h/', retry: {initial: 60}}\n",
        "config.yaml:5: sinks[0].retry.initial: must not be more than max (30), got 60",
        id="retry-initial-above-max",
    ),
    pytest.param(
        STREAM + "checkpoint: {interval: 1}\n",
        "config.yaml:4: checkpoint: missing required key 'path'",
        id="checkpoint-without-path",
    ),
    pytest.param(
        STREAM + "admin: {listen: localhost}\n",
        "config.yaml:4: admin.listen: expected HOST:PORT such as 127.0.0.1:9108 or "
        "[::1]:9108, got 'localhost'",
        id="listen-without-port",
    ),
    pytest.param(
        STREAM + "admin: {listen: '127.0.0.1:70000'}\n",
        "config.yaml:4: admin.listen: port must be a number from 0 to 65535, got '70000'",
        id="listen-port-out-of-range",
    ),
    pytest.param(
        STREAM + "admin: {listen: '::1:9108'}\n",
        "config.yaml:4: admin.listen: an IPv6 address needs brackets, as in [::1]:9108; "
        "got '::1:9108'",
        id="listen-ipv6-without-brackets",
    ),
    pytest.param(
        STREAM + "admin: {listen: '[nope]:9108'}\n",
        "config.yaml:4: admin.listen: 'nope' is not an IPv6 address",
        id="listen-bad-ipv6",
    ),
    pytest.param(
        STREAM + "    read_timeout: 1e300\n",
        "config.yaml:4: streams[0].read_timeout: must be at most 1e+09, got 1e+300",
        id="read-timeout-beyond-any-socket",
    ),
    pytest.param(
        STREAM + "    connect_timeout: 1e10\n",
        "config.yaml:4: streams[0].connect_timeout: must be at most 1e+09, got 1e+10",
        id="connect-timeout-beyond-any-socket",
    ),
    pytest.param(
        STREAM
        + "sinks:\n  - {name: h, type: webhook, url: 'http://h/', rate_limit: {rate: 1e-300}}\n",
        "config.yaml:5: sinks[0].rate_limit.rate: must be at least 1e-06, got 1e-300",
        id="rate-limit-slower-than-any-wait",
    ),
    pytest.param(
        STREAM + "sinks:\n  - {name: f, type: file, path: a.jsonl}\n"
        "  - {name: g, type: file, path: ./sub/../a.jsonl}\n",
        "config.yaml:6: sinks[1].path: the same file as sinks[0].path (line 5): "
        "each file needs its own writer",
        id="two-file-sinks-one-file",
    ),
    pytest.param(
        STREAM + "sinks:\n  - {name: f, type: file, path: sv.db}\ncheckpoint: {path: sv.db}\n",
        "config.yaml:6: checkpoint.path: the same file as sinks[0].path (line 5): "
        "each file needs its own writer",
        id="file-sink-is-the-checkpoint",
    ),
    pytest.param(
        STREAM + "checkpoint: {path: sv.db}\nrelay: {history: {store: sqlite, path: sv.db}}\n",
        "config.yaml:5: relay.history.path: the same file as checkpoint.path (line 4): "
        "each file needs its own writer",
        id="relay-history-is-the-checkpoint",
    ),
    pytest.param(
        STREAM + "sinks:\n  - {name: f, type: file, path: ./config.yaml}\n",
        "config.yaml:5: sinks[0].path: this is the config file itself",
        id="file-sink-is-the-config",
    ),
    pytest.param(
        STREAM + "shutdown_timeout: 1e300\n",
        "config.yaml:4: shutdown_timeout: must be at most 1e+09, got 1e+300",
        id="shutdown-timeout-beyond-any-wait",
    ),
    pytest.param(
        STREAM + "checkpoint: {path: c.db, interval: 1e300}\n",
        "config.yaml:4: checkpoint.interval: must be at most 1e+09, got 1e+300",
        id="checkpoint-interval-beyond-any-wait",
    ),
    pytest.param(
        STREAM + "    breaker: {cooldown: 1e10}\n",
        "config.yaml:4: streams[0].breaker.cooldown: must be at most 1e+09, got 1e+10",
        id="breaker-cooldown-beyond-any-wait",
    ),
    pytest.param(
        STREAM + "shutdown_timeout: -1\n",
        "config.yaml:4: shutdown_timeout: must be greater than 0, got -1",
        id="shutdown-timeout-negative",
    ),
    pytest.param(
        STREAM + "    body: {at: 2024-01-01}\n",
        "config.yaml:4: streams[0].body.at: a JSON value cannot hold a date (2024-01-01); quote it",
        id="date-in-body",
    ),
    pytest.param(
        STREAM + "  - 5\n",
        "config.yaml:4: streams[1]: expected a stream mapping, got 5",
        id="stream-not-a-mapping",
    ),
    pytest.param(
        STREAM + "    body: !custom 1\n",
        "config.yaml:4: streams[0].body: unsupported YAML tag '!custom'",
        id="unknown-yaml-tag",
    ),
    pytest.param(
        STREAM + "    body: &b [1, *b]\n",
        "config.yaml:4: streams[0].body[1]: recursive YAML alias",
        id="recursive-alias",
    ),
]


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_a_bad_config_reports_exactly_this_problem(text: str, expected: str) -> None:
    assert cfg.errors(text) == [expected]


@pytest.mark.parametrize("depth", [150, 5000])
def test_deeply_nested_yaml_is_one_error_not_a_crash(depth: int) -> None:
    text = STREAM + "    body: " + "[" * depth + "]" * depth + "\n"
    assert cfg.errors(text) == ["config.yaml:4: nested too deeply (more than 100 levels)"]


def test_an_alias_bomb_is_one_error() -> None:
    rows = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    rows += [
        f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]" for p, c in zip("abcde", "bcdef", strict=True)
    ]
    text = STREAM + "\n".join(rows) + "\n"
    assert cfg.errors(text) == ["config.yaml:4: document too large (too many values or aliases)"]


def test_a_document_with_too_many_values_is_one_error_not_one_per_stream(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(walker, "_MAX_NODES", 100)  # the real cap is 100,000 values
    rows = [f"  - {{name: s{i}, url: 'http://h/{i}'}}" for i in range(50)]
    text = "streams:\n" + "\n".join(rows) + "\n"
    assert cfg.errors(text) == ["config.yaml:34: document too large (too many values or aliases)"]


def test_every_problem_is_reported_at_once_in_line_order() -> None:
    text = """
    streams:
      - name: a
        url: http://127.0.0.1:8000/a
        read_timeout: sixty
      - name: a
        url: gopher://x
    sinks:
      - {name: s, type: file}
    admin: {listen: nowhere}
    shutdown_timeout: soon
    """
    assert cfg.errors(text) == [
        "config.yaml:4: streams[0].read_timeout: expected a number, got 'sixty'",
        "config.yaml:5: streams[1].name: duplicate stream name 'a' (first at line 2)",
        "config.yaml:6: streams[1].url: expected an http:// or https:// URL, got 'gopher://x'",
        "config.yaml:8: sinks[0]: missing required key 'path'",
        "config.yaml:9: admin.listen: expected HOST:PORT such as 127.0.0.1:9108 or "
        "[::1]:9108, got 'nowhere'",
        "config.yaml:10: shutdown_timeout: expected a number, got 'soon'",
    ]


def test_config_errors_str_lists_every_problem_one_per_line() -> None:
    with pytest.raises(ConfigErrors) as info:
        cfg.parse(STREAM + "    read_timeout: x\n    connect_timeout: y\n")
    error = info.value
    assert isinstance(error, ConfigError)
    assert str(error).splitlines() == [e.format() for e in error.errors]
    assert (error.file, error.line, error.path) == ("config.yaml", 4, "streams[0].read_timeout")


def test_a_bad_default_is_reported_once_at_its_own_line() -> None:
    text = "defaults:\n  read_timeout: sixty\n" + STREAM + "  - name: b\n    url: http://h/\n"
    assert cfg.errors(text) == [
        "config.yaml:2: defaults.read_timeout: expected a number, got 'sixty'",
    ]


def test_a_bad_default_is_reported_even_when_every_stream_overrides_it() -> None:
    text = "defaults:\n  backoff: {jitter: 2}\n" + STREAM + "    backoff: {jitter: 0.1}\n"
    assert cfg.errors(text) == [
        "config.yaml:2: defaults.backoff.jitter: must be between 0 and 1, got 2",
    ]


def test_defaults_are_not_checked_against_each_other_before_streams_complete_them() -> None:
    text = "defaults:\n  backoff: {initial: 45}\n" + STREAM + "    backoff: {max: 90}\n"
    assert cfg.parse(text).streams[0].backoff == BackoffPolicy(initial=45, max=90)


def test_a_header_value_line_break_is_rejected_without_showing_the_value() -> None:
    errors = cfg.errors(STREAM + "    headers: {X-Trace: '${TRACE}'}\n", {"TRACE": "a\r\nEvil: 1"})
    assert errors == [
        "config.yaml:4: streams[0].headers.X-Trace: header value holds control characters"
    ]


# -- files ------------------------------------------------------------------------------


def test_a_missing_file_is_one_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigErrors) as info:
        load_config(path, environ={})
    assert [e.format() for e in info.value.errors] == [f"{path}: file not found"]


def test_a_directory_is_not_a_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigErrors) as info:
        load_config(tmp_path, environ={})
    assert str(info.value) == f"{tmp_path}: is a directory, not a file"


def test_a_file_that_is_not_utf8_reports_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"streams:\n  - name: \xff\n")
    with pytest.raises(ConfigErrors) as info:
        load_config(path, environ={})
    assert str(info.value) == f"{path}:2: not valid UTF-8 text"


def test_an_empty_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("", encoding="utf-8")
    with pytest.raises(ConfigErrors) as info:
        load_config(path, environ={})
    assert str(info.value) == f"{path}:1: the file is empty"


# -- secrets ----------------------------------------------------------------------------


SECRET_TOKEN = "tok-SUPERSECRET-123"
URL_PASSWORD = "pw-HUNTER2-xyz"


def test_secrets_never_appear_in_errors_or_warnings() -> None:
    text = f"""
    streams:
      - name: a
        url: https://bob:{URL_PASSWORD}@127.0.0.1:8000/a?token=qtok-98765
        headers: {{Authorization: "Bearer ${{API_TOKEN}}", Cookie: "${{API_TOKEN}}"}}
        read_timeout: ${{API_TOKEN}}
        connect_timeout: "${{API_TOKEN}}-x"
        last_event_id: ${{NOPE}}
        method: ${{API_TOKEN}}
      - name: b
        url: ftp://bob:{URL_PASSWORD}@127.0.0.1/?token=qtok-98765
        body: {{key: "${{API_TOKEN}}"}}
        dedup_window: ${{API_TOKEN}}
        backoff: {{initial: "${{API_TOKEN}}"}}
    sinks:
      - name: hook
        type: webhook
        url: "https://u:${{HOOK_PASSWORD}}@127.0.0.1/in"
        timeout: ${{HOOK_PASSWORD}}
        streams: ["${{API_TOKEN}}"]
    admin: {{listen: "${{API_TOKEN}}"}}
    """
    environ = {"API_TOKEN": SECRET_TOKEN, "HOOK_PASSWORD": URL_PASSWORD + "-2"}
    with pytest.raises(ConfigErrors) as info:
        cfg.parse(text, environ)
    output = str(info.value)
    assert len(info.value.errors) >= 10
    assert "'***'" in output
    for secret in (SECRET_TOKEN, URL_PASSWORD, "qtok-98765", "SUPERSECRET"):
        assert secret not in output


def test_secrets_never_appear_in_warnings() -> None:
    environ = {"STREAM_TOKEN": SECRET_TOKEN, "ADMIN_SECRET": "10.1.2.3:9108"}
    text = STREAM.replace("name: a", 'name: "${STREAM_TOKEN}"') + (
        "    read_timeout: 2\n"
        "  - {name: b, url: 'http://h/'}\n"
        "sinks:\n  - {name: s, type: stdout, streams: [b]}\n"
        "admin: {listen: '${ADMIN_SECRET}'}\n"
    )
    warnings = cfg.warnings(text, environ)
    assert len(warnings) == 3
    assert "config.yaml:2: streams[0]: no sink takes the events of stream '***'" in warnings
    for secret in (SECRET_TOKEN, "10.1.2.3"):
        assert not any(secret in warning for warning in warnings)


def test_config_secrets_collect_header_url_and_env_secrets() -> None:
    text = (
        STREAM.replace(
            "http://127.0.0.1:8000/events", "http://u:urlpass1@127.0.0.1/e?api_key=qkey1"
        )
        + '    headers: {X-Api-Key: literal-key, Accept: text/plain}\n    body: "${DB_PASSWORD}"\n'
    )
    secrets = cfg.parse(text, {"DB_PASSWORD": "dbpass1"}).secrets
    assert {"urlpass1", "qkey1", "literal-key", "dbpass1"} <= secrets
    assert "text/plain" not in secrets
