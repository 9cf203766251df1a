"""The URL and header rules shared by the config, the command line and the connection, as
tables: what ``url_problem`` and ``header_value_problem`` accept, and what they say."""

from __future__ import annotations

import pytest
import requests

from streamvisor.upstream.fields import header_value_problem, url_problem

GOOD_URLS = [
    "http://127.0.0.1:8000/events/ticker",
    "https://stream.example.org/v2/stream/recentchange",
    "HTTP://H/",
    "http://[::1]:8080/x",
    "http://user:pw@h/x?token=t",
    "http://h:0/x",
    "http://h/a b?q=c d",  # requests percent-encodes spaces outside the host
]


@pytest.mark.parametrize("url", GOOD_URLS)
def test_a_url_requests_can_send_has_no_problem(url: str) -> None:
    assert url_problem(url) is None
    assert requests.Request("GET", url).prepare().url  # requests agrees


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://[::1/x", "not a valid URL: 'http://[::1/x'"),
        ("http://127.0.0.1:99999/x", "not a valid URL: 'http://127.0.0.1:99999/x'"),
        ("http://h:port/x", "not a valid URL: 'http://h:port/x'"),
        ("http://", "URL has no host: 'http://'"),
        ("http:///events", "URL has no host: 'http:///events'"),
        ("ftp://h/x", "expected an http:// or https:// URL, got 'ftp://h/x'"),
        ("127.0.0.1:8000/x", "expected an http:// or https:// URL, got '127.0.0.1:8000/x'"),
        ("http://a b/x", "not a valid URL (a space in the host): 'http://a b/x'"),
        ("http://h/a\x07b", "not a valid URL (it holds control characters): 'http://h/a\\x07b'"),
        ("http://h\n/x", "not a valid URL (it holds control characters): "),
    ],
)
def test_a_bad_url_gets_one_line_saying_why(url: str, expected: str) -> None:
    problem = url_problem(url)
    assert problem is not None and problem.startswith(expected) and "\n" not in problem
    if not expected.endswith(": "):
        assert problem == expected


def test_a_url_password_is_masked_in_the_message() -> None:
    problem = url_problem("http://u:s3cret@h:99999/x")
    assert problem is not None and "s3cret" not in problem and "***" in problem


def test_the_caller_chooses_how_the_url_is_shown() -> None:
    assert url_problem("http://", shown="'***'") == "URL has no host: '***'"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("Bearer abc", None),
        ("a b\tc", None),
        ("café", None),
        ("Bearer x\x07", "holds control characters"),
        ("a\x00b", "holds control characters"),
        ("a\r\nEvil: 1", "holds control characters"),
        ("\x7f", "holds control characters"),
        ("é中", "is not Latin-1 text"),
        ("\x85abc", "starts with whitespace"),
    ],
)
def test_a_header_value_problem_never_quotes_the_value(value: str, problem: str | None) -> None:
    assert header_value_problem(value) == problem
