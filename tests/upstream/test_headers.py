"""Request header values that can and cannot be sent (RFC 9110 section 5.5), as tables."""

from __future__ import annotations

import pytest

from streamvisor.upstream.headers import header_problem, last_event_id_header, location_problem


@pytest.mark.parametrize(
    ("last_id", "sent"),
    [
        ("7", "7"),
        (" 7", "7"),  # "id:  7": the value keeps one leading space
        ("7 \t", "7"),
        ("a b\tc", "a b\tc"),  # inner spaces and tabs are fine
        ("é1", "é1".encode()),  # non-ASCII goes as UTF-8 bytes
        ("\u00a07", "\u00a07".encode()),
        (None, None),
        ("", None),
        ("  ", None),  # nothing left: the server would read no id either
    ],
)
def test_a_sendable_id_is_sent_without_surrounding_whitespace(
    last_id: str | None, sent: str | bytes | None
) -> None:
    assert last_event_id_header(last_id) == (sent, None)


@pytest.mark.parametrize("last_id", ["a\x01b", "7\x7f", "\x0b7", "x\x1fy", "é\x00"])
def test_an_id_with_control_characters_is_not_sent_and_says_why(last_id: str) -> None:
    value, problem = last_event_id_header(last_id)
    assert value is None
    assert problem is not None and "control characters" in problem


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("X-Token", "abc", None),
        ("X-Token", "a b\tc", None),
        ("X-Token", "café", None),  # Latin-1 is sendable
        ("X-Token", "a\x01b", "control characters"),
        ("X-Token", "a\x7f", "control characters"),
        ("X-Token", "a\nb", "control characters"),
        ("X-Token", "\u20ac", "not Latin-1"),
        ("X-Token", "\x85abc", "starts with whitespace"),
        ("X Token", "abc", "not a valid header name"),
        ("X:Token", "abc", "not a valid header name"),
        ("", "abc", "not a valid header name"),
    ],
)
def test_header_problems_are_found_before_anything_is_sent(
    name: str, value: str, problem: str | None
) -> None:
    found = header_problem(name, value)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found
        assert value not in found or not value.strip()  # values are never quoted


@pytest.mark.parametrize(
    ("location", "problem"),
    [
        ("/moved", None),
        ("moved?x=1", None),
        ("https://other.example/events", None),
        ("//cdn.example/events", None),
        (" http://h/e ", None),
        (None, "no Location header"),
        ("", "an empty Location"),
        ("  ", "an empty Location"),
        ("http://", "a URL without a host"),
        ("//", "a URL without a host"),
        ("ftp://files.example/x", "a URL scheme other than http or https"),
        ("javascript:alert(1)", "a URL scheme other than http or https"),
        ("http://h:99999/x", "an invalid URL"),
        ("http://[::1/x", "an invalid URL"),
    ],
)
def test_a_redirect_location_is_usable_or_says_why_not(
    location: str | None, problem: str | None
) -> None:
    assert location_problem(location) == problem
