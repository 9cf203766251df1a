"""``classify`` as a table (failure -> the supervisor's action) and ``parse_retry_after``
(RFC 9110 section 10.2.3: seconds or an HTTP date)."""

from __future__ import annotations

import email.utils

import pytest

import streamvisor.errors
from streamvisor.errors import (
    ConnectError,
    ContentTypeError,
    EndOfStreamError,
    HTTPStatusError,
    LineTooLongError,
    ReadTimeoutError,
    RedirectError,
    RequestBuildError,
    StreamProtocolError,
)
from streamvisor.policy.classify import Action, classify, parse_retry_after

CLASSIFY_TABLE = [
    ("HTTP 204 ends the stream for good", HTTPStatusError(204), Action.DONE),
    ("HTTP 204 with Retry-After still ends the stream", HTTPStatusError(204, 5.0), Action.DONE),
    ("HTTP 400 is permanent", HTTPStatusError(400), Action.PERMANENT),
    ("HTTP 401 is permanent", HTTPStatusError(401), Action.PERMANENT),
    ("HTTP 403 is permanent", HTTPStatusError(403), Action.PERMANENT),
    ("HTTP 404 is permanent", HTTPStatusError(404), Action.PERMANENT),
    ("HTTP 410 is permanent", HTTPStatusError(410), Action.PERMANENT),
    ("HTTP 401 with Retry-After is still permanent", HTTPStatusError(401, 5.0), Action.PERMANENT),
    ("HTTP 408 is retried", HTTPStatusError(408), Action.RETRY),
    ("HTTP 429 without Retry-After is retried", HTTPStatusError(429), Action.RETRY),
    ("HTTP 429 with Retry-After is rate limited", HTTPStatusError(429, 30.0), Action.RATE_LIMITED),
    (
        "HTTP 429 with Retry-After zero is rate limited",
        HTTPStatusError(429, 0.0),
        Action.RATE_LIMITED,
    ),
    ("HTTP 500 is retried", HTTPStatusError(500), Action.RETRY),
    ("HTTP 502 is retried", HTTPStatusError(502), Action.RETRY),
    ("HTTP 504 is retried", HTTPStatusError(504), Action.RETRY),
    ("HTTP 503 with Retry-After is rate limited", HTTPStatusError(503, 10.0), Action.RATE_LIMITED),
    ("HTTP 503 without Retry-After is retried", HTTPStatusError(503), Action.RETRY),
    ("HTTP 500 with Retry-After is retried", HTTPStatusError(500, 10.0), Action.RETRY),
    ("a wrong content type is permanent", ContentTypeError("text/html"), Action.PERMANENT),
    ("a missing content type is permanent", ContentTypeError(None), Action.PERMANENT),
    ("a connect error is retried", ConnectError("refused"), Action.RETRY),
    # issue 10: local and redirect failures are never looped on
    ("a 302 that was not followed is permanent", HTTPStatusError(302), Action.PERMANENT),
    ("a 304 is permanent", HTTPStatusError(304), Action.PERMANENT),
    ("an unfollowable redirect is permanent", RedirectError("no Location"), Action.PERMANENT),
    ("a request that cannot be built is permanent", RequestBuildError("x"), Action.PERMANENT),
    ("a read timeout is retried", ReadTimeoutError("silent for 60s"), Action.RETRY),
    ("a protocol error is retried", StreamProtocolError("bad"), Action.RETRY),
    ("a line over the size limit is retried", LineTooLongError(1024), Action.RETRY),
    ("a clean end of stream is retried", EndOfStreamError(), Action.RETRY),
    ("no error at all (a clean close) is retried", None, Action.RETRY),
    ("an unexpected RuntimeError is retried", RuntimeError("bug"), Action.RETRY),
]


@pytest.mark.parametrize(
    ("error", "action"),
    [(error, action) for _, error, action in CLASSIFY_TABLE],
    ids=[name for name, _, _ in CLASSIFY_TABLE],
)
def test_classify_maps_each_failure_to_the_supervisor_action(
    error: BaseException | None, action: Action
) -> None:
    assert classify(error) is action


NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def _http_date(when: float) -> str:
    return email.utils.formatdate(when, usegmt=True)


RETRY_AFTER_TABLE = [
    ("whole seconds", "120", 120.0),
    ("zero seconds", "0", 0.0),
    ("seconds with surrounding spaces", "  7 ", 7.0),
    ("float seconds", "1.5", 1.5),
    ("a huge number of seconds is capped at a day", "999999999", 86400.0),
    ("a huge float is capped at a day", "1e9", 86400.0),
    ("a number too long for int is capped at a day", "9" * 5000, 86400.0),
    ("an IMF-fixdate 90 s ahead", _http_date(NOW + 90), 90.0),
    ("an IMF-fixdate in the past means now", _http_date(NOW - 3600), 0.0),
    ("an IMF-fixdate a year ahead is capped at a day", _http_date(NOW + 365 * 86400), 86400.0),
]


RETRY_AFTER_GARBAGE = [
    ("garbage", "soon"),
    ("a negative number", "-5"),
    ("a negative float", "-0.5"),
    ("an empty string", ""),
    ("only spaces", "   "),
    ("infinity", "inf"),
    ("not a number", "nan"),
    ("a date without a time zone", "2023-11-14 22:13:20"),
    ("superscript digits", "\u00b2"),
    ("Arabic-Indic digits", "\u0661\u0662"),
    ("digits with an underscore", "1_0"),
]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(v, e) for _, v, e in RETRY_AFTER_TABLE if e is not None],
    ids=[name for name, _, e in RETRY_AFTER_TABLE if e is not None],
)
def test_parse_retry_after_reads_seconds_and_http_dates(value: str, expected: float) -> None:
    assert parse_retry_after(value, now=NOW) == pytest.approx(expected)


def test_parse_retry_after_reads_the_rfc_example_date_relative_to_the_given_now() -> None:
    example = "Sun, 06 Nov 1994 08:49:37 GMT"
    then = email.utils.parsedate_to_datetime(example).timestamp()
    assert parse_retry_after(example, now=then - 30) == pytest.approx(30.0)
    assert parse_retry_after(example, now=then + 30) == 0.0


@pytest.mark.parametrize(
    "value", [v for _, v in RETRY_AFTER_GARBAGE], ids=[n for n, _ in RETRY_AFTER_GARBAGE]
)
def test_parse_retry_after_ignores_values_that_are_not_a_delay(value: str) -> None:
    assert parse_retry_after(value, now=NOW) is None


def test_parse_retry_after_of_no_header_is_none() -> None:
    assert parse_retry_after(None) is None


def test_parse_retry_after_uses_the_wall_clock_when_now_is_not_given() -> None:
    delay = parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT")
    assert delay == 86400.0


def test_the_names_stay_importable_from_errors() -> None:
    assert streamvisor.errors.classify is classify
    assert streamvisor.errors.Action is Action
    assert streamvisor.errors.parse_retry_after is parse_retry_after
