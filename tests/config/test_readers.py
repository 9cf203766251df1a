"""The config's URL and header readers apply the rules a request is sent by
(``upstream.fields``): what ``check`` accepts, ``run`` can send. Values of headers are never
shown in the errors (they may be secrets)."""

from __future__ import annotations

import pytest

from tests.support import config as cfg
from tests.support.config import STREAM

SECRET = "s3cr3t-v4lue"


@pytest.mark.parametrize(
    ("yaml_value", "problem"),
    [
        (f'"Bearer {SECRET}\\u0007"', "header value holds control characters"),
        (f'"{SECRET}\\u0000b"', "header value holds control characters"),
        (f'"{SECRET}\\u007f"', "header value holds control characters"),
        (f'"{SECRET}\\u00e9\\u4e2d"', "header value is not Latin-1 text"),
    ],
    ids=["bell", "nul", "del", "not-latin-1"],
)
@pytest.mark.parametrize("name", ["Authorization", "X-Trace"])
def test_a_header_value_run_cannot_send_is_an_error_at_its_line_without_the_value(
    name: str, yaml_value: str, problem: str
) -> None:
    errors = cfg.errors(STREAM + f"    headers: {{Accept: x, {name}: {yaml_value}}}\n")
    assert errors == [f"config.yaml:4: streams[0].headers.{name}: {problem}"]
    assert SECRET not in "".join(errors)


def test_surrounding_spaces_and_tabs_of_a_header_value_are_not_part_of_it() -> None:
    config = cfg.parse(STREAM + '    headers: {X-Trace: " \\tabc\\t "}\n')
    assert config.streams[0].headers == {"X-Trace": " \tabc\t "}


def test_default_and_webhook_headers_follow_the_same_rule() -> None:
    text = (
        'defaults:\n  headers: {X-A: "a\\u0001"}\n'
        + STREAM
        + 'sinks:\n  - {name: h, type: webhook, url: "http://h/x", headers: {X-B: "\\u20ac"}}\n'
    )
    assert cfg.errors(text) == [
        "config.yaml:2: defaults.headers.X-A: header value holds control characters",
        "config.yaml:7: sinks[0].headers.X-B: header value is not Latin-1 text",
    ]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://a b/x", "not a valid URL (a space in the host): 'http://a b/x'"),
        ("http://h/a\\u0007b", "not a valid URL (it holds control characters): 'http://h/a\\x07b'"),
        ("http://[::1/x", "not a valid URL: 'http://[::1/x'"),
    ],
)
def test_a_url_requests_cannot_send_is_an_error_at_its_line(url: str, expected: str) -> None:
    errors = cfg.errors(f'streams:\n  - name: a\n    url: "{url}"\n')
    assert errors == [f"config.yaml:3: streams[0].url: {expected}"]


def test_a_bad_url_with_a_password_is_shown_masked() -> None:
    errors = cfg.errors('streams:\n  - name: a\n    url: "http://u:pw-1234@a b/x"\n')
    assert errors == [
        "config.yaml:3: streams[0].url: not a valid URL (a space in the host): 'http://u:***@a b/x'"
    ]
