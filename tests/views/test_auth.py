"""Who may use the page's feed and the commands: tables of requests and verdicts."""

from __future__ import annotations

from typing import Any

import pytest

from streamvisor.views import auth


def env(**headers: str) -> dict[str, Any]:
    environ: dict[str, Any] = {"REQUEST_METHOD": "POST", "QUERY_STRING": ""}
    for name, value in headers.items():
        key = name.upper()
        environ[key if key == "QUERY_STRING" else "HTTP_" + key] = value
    return environ


@pytest.mark.parametrize(
    ("environ", "allow_query", "expected"),
    [
        (env(), False, False),
        (env(authorization="Bearer tok-1"), False, True),
        (env(authorization="bearer   tok-1  "), False, True),
        (env(authorization="Bearer tok-2"), False, False),
        (env(authorization="Basic tok-1"), False, False),
        (env(authorization="Bearer"), False, False),
        (env(query_string="token=tok-1"), False, False),
        (env(query_string="token=tok-1"), True, True),
        (env(query_string="x=1&token=tok-1"), True, True),
        (env(query_string="token=nope"), True, False),
        (env(authorization="Bearer nope", query_string="token=tok-1"), True, False),
    ],
)
def test_a_request_is_authorized_by_the_configured_token(
    environ: dict[str, Any], allow_query: bool, expected: bool
) -> None:
    assert auth.authorized(environ, "tok-1", allow_query=allow_query) is expected


def test_without_a_configured_token_every_request_is_authorized() -> None:
    assert auth.authorized(env(), None, allow_query=False)
    assert auth.authorized(env(authorization="Bearer anything"), None, allow_query=False)


def test_a_non_ascii_token_is_compared_as_utf8() -> None:
    assert auth.authorized(env(authorization="Bearer clé"), "clé", allow_query=False)
    assert not auth.authorized(env(authorization="Bearer cle"), "clé", allow_query=False)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (env(host="127.0.0.1:9108"), False),  # curl, streamvisor top: no Origin
        (env(host="127.0.0.1:9108", origin="http://127.0.0.1:9108"), False),
        (env(host="LOCALHOST:9108", origin="http://localhost:9108"), False),
        (env(host="127.0.0.1:9108", origin="https://evil.example"), True),
        (env(host="127.0.0.1:9108", origin="null"), True),
        (env(host="127.0.0.1:9108", sec_fetch_site="cross-site"), True),
        (env(host="127.0.0.1:9108", sec_fetch_site="same-site"), True),
        (env(host="127.0.0.1:9108", sec_fetch_site="same-origin"), False),
    ],
)
def test_a_browser_request_from_another_site_is_cross_site(
    environ: dict[str, Any], expected: bool
) -> None:
    assert auth.cross_site(environ) is expected


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1:9108", True),
        ("127.0.0.1", True),
        ("localhost:9108", True),
        ("[::1]:9108", True),
        ("10.1.2.3:9108", True),
        ("rebind.example:9108", False),
        ("admin.internal", False),
        ("", True),
    ],
)
def test_a_host_header_is_local_when_it_is_an_ip_literal_or_localhost(
    host: str, expected: bool
) -> None:
    assert auth.local_host(env(host=host) if host else env()) is expected
