"""The relay's HTTP pieces: request heads (h11), bearer tokens, CORS, response heads."""

from __future__ import annotations

import pytest

from streamvisor.relay.http import (
    BadRequestError,
    HeadParser,
    Request,
    authorized,
    cors_headers,
    head_only,
    plain_response,
    stream_head,
)

HEAD = (
    b"GET /streams/t%C3%A9st?lastEventId=a-1&lastEventId=a-2&access_token=x HTTP/1.1\r\n"
    b"Host: relay\r\nLast-Event-ID: ep-7\r\nX-Many: 1\r\nX-Many: 2\r\n\r\n"
)


def test_a_head_fed_in_any_split_gives_the_same_request() -> None:
    whole = HeadParser().feed(HEAD)
    parser = HeadParser()
    parts = [parser.feed(HEAD[i : i + 1]) for i in range(len(HEAD))]
    assert parts[:-1] == [None] * (len(HEAD) - 1)
    assert parts[-1] == whole
    assert whole == Request(
        method="GET",
        path="/streams/tést",
        query={"lastEventId": "a-1", "access_token": "x"},
        headers={"host": "relay", "last-event-id": "ep-7", "x-many": "1, 2"},
    )


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"NOT HTTP\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # HTTP/1.1 needs a Host header
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"y" * 20000, 431),
    ],
)
def test_bad_or_oversized_heads_are_refused_with_a_status(data: bytes, status: int) -> None:
    with pytest.raises(BadRequestError) as info:
        HeadParser().feed(data)
    assert info.value.status == status


def request(headers: dict[str, str] | None = None, query: dict[str, str] | None = None) -> Request:
    return Request("GET", "/streams/s", query or {}, headers or {})


@pytest.mark.parametrize(
    ("headers", "query", "ok"),
    [
        ({}, {}, False),
        ({"authorization": "Bearer t1"}, {}, True),
        ({"authorization": "bearer   t2 "}, {}, True),
        ({"authorization": "Bearer nope"}, {"access_token": "t1"}, False),  # the header wins
        ({"authorization": "Basic dDE="}, {"access_token": "t1"}, True),
        ({}, {"access_token": "t2"}, True),
        ({}, {"access_token": ""}, False),
        ({"authorization": "Bearer"}, {}, False),
    ],
)
def test_tokens_come_from_the_bearer_header_or_the_access_token_parameter(
    headers: dict[str, str], query: dict[str, str], ok: bool
) -> None:
    assert authorized(request(headers, query), ("t1", "t2")) is ok


def test_without_tokens_everyone_is_authorized() -> None:
    assert authorized(request(), ())


def test_cors_allows_listed_origins_or_any_and_exposes_the_gap_header() -> None:
    req = request({"origin": "https://a.example"})
    assert cors_headers(req, ()) == []
    assert cors_headers(req, ("https://b.example",)) == []
    assert ("Access-Control-Allow-Origin", "https://a.example") in cors_headers(
        req, ("https://a.example",)
    )
    allowed = dict(cors_headers(req, ("*",)))
    assert allowed["Access-Control-Allow-Origin"] == "*"
    assert allowed["Access-Control-Expose-Headers"] == "Streamvisor-Gap"
    preflight = dict(cors_headers(req, ("*",), preflight=True))
    assert "Last-Event-ID" in preflight["Access-Control-Allow-Headers"]
    assert cors_headers(request(), ("*",)) == []


def test_response_heads() -> None:
    head = stream_head(True, [("Vary", "Origin")])
    assert head.startswith(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")
    assert b"Cache-Control: no-cache\r\n" in head and b"Streamvisor-Gap: 1\r\n" in head
    assert head.endswith(b"Vary: Origin\r\n\r\n")
    assert b"Streamvisor-Gap" not in stream_head(False)
    reply = plain_response(404, b"{}")
    assert reply.startswith(b"HTTP/1.1 404 Not Found\r\n") and reply.endswith(b"\r\n\r\n{}")
    assert b"Content-Length: 2\r\n" in reply
    assert head_only(reply, "HEAD").endswith(b"\r\n\r\n") and head_only(reply, "GET") == reply
