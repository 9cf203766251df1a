"""``Connection.open()`` over a fake transport (``responses``): status mapping, headers sent.

``responses`` replaces requests' transport, so these tests cover what happens at open()
time; streaming bytes, timeouts and interrupts are tested against the real server.
"""

from __future__ import annotations

import base64
import email.utils
import time
from typing import Any

import pytest
import requests
import responses

from streamvisor.errors import (
    ConnectError,
    ContentTypeError,
    HTTPStatusError,
    ReadTimeoutError,
    RequestBuildError,
)
from streamvisor.spec import StreamSpec
from streamvisor.upstream.connection import Connection

URL = "http://sse.example/events"
SSE = {"Content-Type": "text/event-stream"}


@pytest.fixture
def fake() -> responses.RequestsMock:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def open_connection(spec: StreamSpec, last_event_id: str | None = None) -> Connection:
    conn = Connection(spec, last_event_id)
    try:
        conn.open()
    finally:
        conn.close()
    return conn


def spec(url: str = URL, **kwargs: Any) -> StreamSpec:
    return StreamSpec(name="test", url=url, **kwargs)


# --- status mapping --------------------------------------------------------------------


def test_a_200_event_stream_opens(fake):
    fake.get(URL, body=b"data: x\n\n", headers=SSE)
    conn = open_connection(spec())
    assert (conn.status, conn.content_type) == (200, "text/event-stream")


def test_a_301_chain_ending_in_200_is_followed(fake):
    fake.get(URL, status=301, headers={"Location": "http://sse.example/a"})
    fake.get("http://sse.example/a", status=308, headers={"Location": "/b"})
    fake.get("http://sse.example/b", body=b"", headers=SSE)
    assert open_connection(spec()).status == 200
    assert [c.request.url for c in fake.calls] == [
        URL,
        "http://sse.example/a",
        "http://sse.example/b",
    ]


IN_2_MIN = "<an HTTP date 120 s from now>"  # made when the test runs, not at import


@pytest.mark.parametrize(
    ("status", "headers", "retry_after"),
    [
        (204, {}, None),
        (400, {}, None),
        (401, {"WWW-Authenticate": "Bearer"}, None),
        (404, {}, None),
        (408, {}, None),
        (410, {}, None),
        (429, {}, None),
        (429, {"Retry-After": "7"}, 7.0),
        (500, {}, None),
        (502, {}, None),
        (503, {"Retry-After": "2.5"}, 2.5),
        (503, {"Retry-After": IN_2_MIN}, 120.0),
        (503, {"Retry-After": "soon"}, None),
    ],
)
def test_a_status_other_than_200_maps_to_http_status_error(fake, status, headers, retry_after):
    if headers.get("Retry-After") == IN_2_MIN:
        headers = {"Retry-After": email.utils.formatdate(time.time() + 120, usegmt=True)}
    fake.get(URL, status=status, headers={**SSE, **headers}, body=b"")
    with pytest.raises(HTTPStatusError) as info:
        open_connection(spec())
    assert info.value.status == status
    if retry_after is None:
        assert info.value.retry_after is None
    else:
        assert info.value.retry_after == pytest.approx(retry_after, abs=5)


@pytest.mark.parametrize(
    ("content_type", "accepted"),
    [
        ("text/event-stream", True),
        ("TEXT/EVENT-STREAM;charset=UTF-8", True),
        ("text/event-stream ; foo=bar", True),
        # Fetch "extract a MIME type": a list keeps the last valid value (issue 10)
        ("application/json, text/event-stream; charset=utf-8", True),
        ("text/event-stream, */*", True),
        ('text/plain;x="a,b", text/event-stream', True),
        ("text/event-stream, application/json", False),
        ("text/event-stream, text/html", False),
        ("text /event-stream", False),
        ("text/plain", False),
        ("application/json", False),
        ("", False),
    ],
)
def test_only_the_event_stream_content_type_is_accepted(fake, content_type, accepted):
    fake.get(URL, headers={"Content-Type": content_type}, body=b"")
    if accepted:
        assert open_connection(spec()).status == 200
    else:
        with pytest.raises(ContentTypeError):
            open_connection(spec())


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (requests.exceptions.ConnectTimeout("boom"), ConnectError),
        (requests.exceptions.ConnectionError("boom"), ConnectError),
        (requests.exceptions.SSLError("boom"), ConnectError),
        (requests.exceptions.ChunkedEncodingError("boom"), ConnectError),
        (requests.exceptions.TooManyRedirects("boom"), ConnectError),
        (requests.exceptions.ReadTimeout("boom"), ReadTimeoutError),
    ],
)
def test_transport_exceptions_map_to_stream_errors_with_their_cause(fake, failure, expected):
    fake.get(URL, body=failure)
    with pytest.raises(expected) as info:
        open_connection(spec())
    assert info.value.__cause__ is failure


def test_an_invalid_url_is_a_local_error_not_a_network_one():
    with pytest.raises(RequestBuildError, match="cannot build the request: an invalid URL"):
        open_connection(spec(url="http://exa mple.com/"))


def test_url_credentials_are_redacted_from_connect_errors(fake):
    url = "http://bob:hunter2@sse.example/events"
    fake.get(URL, body=requests.exceptions.ConnectionError("refused"))
    with pytest.raises(ConnectError) as info:
        open_connection(spec(url=url))
    assert "hunter2" not in str(info.value)
    assert "http://bob:***@sse.example/events" in str(info.value)


# --- headers sent ---------------------------------------------------------------------


def sent_headers(fake: responses.RequestsMock, index: int = 0) -> dict[str, str | bytes]:
    return dict(fake.calls[index].request.headers)


def test_the_sse_headers_are_sent_and_last_event_id_only_when_set(fake):
    fake.get(URL, headers=SSE)
    open_connection(spec())
    open_connection(spec(), "")
    open_connection(spec(), "evt-9")
    for index in (0, 1):
        headers = sent_headers(fake, index)
        assert headers["Accept"] == "text/event-stream"
        assert headers["Cache-Control"] == "no-cache"
        assert "Last-Event-ID" not in headers
    assert sent_headers(fake, 2)["Last-Event-ID"] == "evt-9"


def test_custom_headers_are_sent_and_may_override_accept(fake):
    fake.get(URL, headers=SSE)
    open_connection(spec(headers={"X-Tenant": "acme", "accept": "text/event-stream, */*"}))
    request = fake.calls[0].request
    assert request.headers["X-Tenant"] == "acme"
    assert request.headers["Accept"] == "text/event-stream, */*"


def test_basic_auth_signs_the_request(fake):
    fake.get(URL, headers=SSE)
    open_connection(spec(auth=requests.auth.HTTPBasicAuth("ann", "pw")))
    expected = "Basic " + base64.b64encode(b"ann:pw").decode()
    assert fake.calls[0].request.headers["Authorization"] == expected


def test_a_callable_auth_signs_every_attempt_afresh(fake):
    fake.get(URL, headers=SSE)
    counter = iter(range(1, 10))

    def sign(request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["X-Signature"] = f"sig-{next(counter)}"
        return request

    stream = spec(auth=sign)
    open_connection(stream, "1")
    open_connection(stream, "2")
    assert [c.request.headers["X-Signature"] for c in fake.calls] == ["sig-1", "sig-2"]


def test_a_json_body_is_posted_with_its_content_type_unless_one_is_given(fake):
    fake.post(URL, headers=SSE)
    open_connection(spec(method="POST", body={"q": 1}))
    open_connection(spec(method="POST", body={"q": 1}, headers={"Content-Type": "text/x-q"}))
    first, second = (c.request for c in fake.calls)
    assert (first.body, first.headers["Content-Type"]) == (b'{"q":1}', "application/json")
    assert (second.body, second.headers["Content-Type"]) == (b'{"q":1}', "text/x-q")


def test_an_error_response_is_closed_and_does_not_mention_auth_values(fake):
    fake.get(URL, status=401, headers=SSE)
    with pytest.raises(HTTPStatusError) as info:
        open_connection(spec(headers={"Authorization": "Bearer top-secret"}))
    assert "top-secret" not in str(info.value)
    assert info.value.status == 401


# -- what is a local request error and what is not (issue 10) --------------------------------


def test_an_auth_hook_whose_token_fetch_fails_is_a_retryable_connect_error(fake):
    fake.get(URL, headers=SSE, body=b"")

    def fetch_token(request: requests.PreparedRequest) -> requests.PreparedRequest:
        # e.g. the token endpoint answered an HTML error page: .json() raises a ValueError
        raise requests.exceptions.JSONDecodeError("Expecting value", "<html>", 0)

    with pytest.raises(ConnectError, match="the auth hook failed"):
        open_connection(spec(auth=fetch_token))


def test_a_bug_in_an_auth_hook_surfaces_as_itself_not_as_a_local_request_error(fake):
    fake.get(URL, headers=SSE, body=b"")

    def broken(request: requests.PreparedRequest) -> requests.PreparedRequest:
        raise ValueError("bug in the hook")

    with pytest.raises(ValueError, match="bug in the hook"):
        open_connection(spec(auth=broken))


def test_a_body_that_is_not_json_is_a_local_request_error(fake):
    with pytest.raises(RequestBuildError, match="a body that cannot be sent as JSON"):
        open_connection(spec(method="POST", body={"when": object()}))
