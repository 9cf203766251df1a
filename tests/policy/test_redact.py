"""Redaction of URLs, headers, env var names and free text."""

from __future__ import annotations

import pytest

from streamvisor.policy.redact import (
    Redactor,
    is_secret_header,
    is_secret_name,
    is_secret_param,
    redact_fields,
    redact_headers,
    redact_text,
    redact_url,
    request_secrets,
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:pw@host/p", "https://user:***@host/p"),
        ("https://user@host/p", "https://***@host/p"),
        ("http://host:8080/p?page=2", "http://host:8080/p?page=2"),
        ("http://h/p?token=abc&page=2", "http://h/p?token=***&page=2"),
        ("http://h/p?ACCESS_TOKEN=abc", "http://h/p?ACCESS_TOKEN=***"),
        ("http://h/p?api_key=a&apikey=b&key=c", "http://h/p?api_key=***&apikey=***&key=***"),
        ("http://h/p?sig=a&signature=b&auth=c", "http://h/p?sig=***&signature=***&auth=***"),
        (
            "http://h/p?password=a&passwd=b&secret=c",
            "http://h/p?password=***&passwd=***&secret=***",
        ),
        ("http://h/p?code=a", "http://h/p?code=***"),
        (
            "http://h/p?x_auth_thing=a&client_secret=b",
            "http://h/p?x_auth_thing=***&client_secret=***",
        ),
        ("http://u:p%40ss@h/p?q=1#frag", "http://u:***@h/p?q=1#frag"),
        ("http://h/p?flag&token=", "http://h/p?flag&token=***"),
        ("", ""),
        ("not a url", "not a url"),
    ],
)
def test_redact_url_masks_passwords_and_secret_query_values(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    "junk",
    ["http://[::1", "http://u:pw@[bad/p?token=x", "://", "?", "http://h:notaport/", "\x00\xff"],
)
def test_redact_url_never_raises_on_junk(junk: str) -> None:
    result = redact_url(junk)
    assert isinstance(result, str)


def test_redact_url_still_masks_credentials_in_urls_it_cannot_parse() -> None:
    assert redact_url("http://u:pw@[bad/p?token=x&a=1") == "http://u:***@[bad/p?token=***&a=1"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # An unencoded '/', '?' or '#' in a password ends the host early: the password
        # becomes a "port" and the rest lands in the path, query or fragment.
        ("http://u:pw/x1@h:8/p", "http://u:***@h:8/p"),
        ("http://u:pw?x2@h/p?token=t&a=1", "http://u:***@h/p?token=***&a=1"),
        ("http://u:pw#x3@h/p", "http://u:***@h/p"),
        ("http://u:p/w@h/p@q", "http://u:***@q"),
        # A valid URL with '@' in its path or query keeps it.
        ("http://h:80/users/@me?mail=a@b", "http://h:80/users/@me?mail=a@b"),
        ("http://[::1]:80/@x", "http://[::1]:80/@x"),
    ],
)
def test_redact_url_masks_a_password_holding_a_url_delimiter(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_redact_url_masks_a_non_string_entirely() -> None:
    assert redact_url(None) == "***"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("Authorization", True),
        ("proxy-authorization", True),
        ("Cookie", True),
        ("SET-COOKIE", True),
        ("X-Api-Key", True),
        ("X-Auth-Token", True),
        ("X-Session-Id", True),
        ("X-Client-Secret", True),
        ("X-Signature", True),
        ("X-Password", True),
        ("Accept", False),
        ("Last-Event-ID", False),
        ("Content-Type", False),
        ("User-Agent", False),
    ],
)
def test_is_secret_header_recognises_credential_headers(name: str, secret: bool) -> None:
    assert is_secret_header(name) is secret


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("TICKER_TOKEN", True),
        ("api_key", True),
        ("DB_PASSWORD", True),
        ("PASSWD", True),
        ("CLIENT_SECRET", True),
        ("GOOGLE_APPLICATION_CREDENTIALS", True),
        ("BASIC_AUTH", True),
        ("HOME", False),
        ("PORT", False),
        ("READ_TIMEOUT", False),
    ],
)
def test_is_secret_name_recognises_secret_looking_env_vars(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


@pytest.mark.parametrize(
    ("name", "secret"),
    [("token", True), ("Code", True), ("my_api_key", True), ("page", False), ("q", False)],
)
def test_is_secret_param_recognises_secret_query_names(name: str, secret: bool) -> None:
    assert is_secret_param(name) is secret


def test_redact_headers_masks_only_secret_values_and_keeps_the_input() -> None:
    headers = {"Authorization": "Bearer abc", "Accept": "text/event-stream", "X-Api-Key": "k"}
    assert redact_headers(headers) == {
        "Authorization": "***",
        "Accept": "text/event-stream",
        "X-Api-Key": "***",
    }
    assert headers["Authorization"] == "Bearer abc"


@pytest.mark.parametrize(
    ("secrets", "text", "expected"),
    [
        ([], "nothing to hide", "nothing to hide"),
        (["hunter22"], "password is hunter22!", "password is ***!"),
        (["hunter22"], "hunter22hunter22", "******"),
        (["abc"], "abc is too short to be a secret", "abc is too short to be a secret"),
        (["tok-1", "tok-1234"], "tok-1234 and tok-1", "*** and ***"),
        (["a+b?c"], "regex chars a+b?c stay literal", "regex chars *** stay literal"),
        (["p@ss word"], "url http://h/?x=p%40ss%20word", "url http://h/?x=***"),
        ([], "Authorization: Bearer eyJhbGciOi.x-y_z", "Authorization: Bearer ***"),
        ([], "header basic dXNlcjpwYXNz==", "header basic ***"),
        ([], "GET https://bob:pa55@host/x failed", "GET https://bob:***@host/x failed"),
        ([], "mail bob@example.com", "mail bob@example.com"),
    ],
)
def test_redactor_scrubs_known_secrets_and_credential_patterns(
    secrets: list[str], text: str, expected: str
) -> None:
    assert Redactor(secrets).scrub(text) == expected


def test_redactor_add_takes_effect_on_the_next_scrub() -> None:
    redactor = Redactor()
    assert redactor.scrub("s3cr3t-value") == "s3cr3t-value"
    redactor.add("s3cr3t-value")
    assert redactor.scrub("got s3cr3t-value") == "got ***"
    assert "s3cr3t-value" in redactor.secrets


def test_redactor_ignores_empty_and_short_secrets() -> None:
    redactor = Redactor(["", "ab", "xyz"])
    assert redactor.secrets == frozenset()
    assert redactor.scrub("ab xyz") == "ab xyz"


# -- one redactor for every place (issue 10) ---------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # a lone user name is a token by convention (https://TOKEN@host): requests sends it
        ("https://ghp_tok3n@host/p", "https://***@host/p"),
        ("http://h/p?sessionid=a&jsessionid=b", "http://h/p?sessionid=***&jsessionid=***"),
        (
            "http://h/p?X-Amz-Credential=a&X-Amz-Signature=b&page=1",
            "http://h/p?X-Amz-Credential=***&X-Amz-Signature=***&page=1",
        ),
        ("http://h/cb#access_token=abc&state=1", "http://h/cb#access_token=***&state=1"),
        ("http://h/p#section-2", "http://h/p#section-2"),
    ],
)
def test_redact_url_covers_user_tokens_sessions_and_fragments(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "GET http://127.0.0.1:9/e?access_token=qtok-1&page=2: Connection refused",
            "GET http://127.0.0.1:9/e?access_token=***&page=2: Connection refused",
        ),
        (
            "Max retries exceeded with url: /events?api_key=k-123&x=1 (Caused by ...)",
            "Max retries exceeded with url: /events?api_key=***&x=1 (Caused by ...)",
        ),
        ("retrying with token=abcd1234 later", "retrying with token=*** later"),
        ("sent X-Api-Key: k-9921, got 401", "sent X-Api-Key: ***"),
        ("Cookie: sid=abc; theme=dark", "Cookie: ***"),
        ("Authorization: Bearer eyJhbGciOi.x-y_z", "Authorization: Bearer ***"),
        ("HTTP 401 Unauthorized", "HTTP 401 Unauthorized"),
        (
            "stream s (http://h/e): HTTP 503; attempt 2",
            "stream s (http://h/e): HTTP 503; attempt 2",
        ),
        ("see https://u:pw@h/x#token=t", "see https://u:***@h/x#token=***"),
        # sentence punctuation after a URL or a value is kept
        (
            "stream s (http://h/x?token=abc): GET http://h/x?token=abc: Connection refused.",
            "stream s (http://h/x?token=***): GET http://h/x?token=***: Connection refused.",
        ),
        ("x token=abc, y api_key=k1.", "x token=***, y api_key=***."),
        ("a token=ab:cd.ef end", "a token=*** end"),
    ],
)
def test_redact_text_masks_credentials_anywhere_in_free_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected
    assert Redactor().scrub(text) == expected


def test_redact_text_also_masks_the_given_secret_values() -> None:
    assert redact_text("echo: s3cr3t-v4lue", ["s3cr3t-v4lue"]) == "echo: ***"


def test_redact_fields_scrubs_every_string_in_a_status_mapping() -> None:
    status = {
        "streams": {
            "s": {
                "url": "http://u:pw@h/e?token=t0k3n",
                "last_error": "HTTP 401 (sent hunter22)",
                "restarts": 3,
                "failures": {"retry": 1},
                "seen": ["hunter22", None],
            }
        }
    }
    out = redact_fields(status, Redactor(["hunter22"]).scrub)
    info = out["streams"]["s"]
    assert info["url"] == "http://u:***@h/e?token=***"
    assert info["last_error"] == "HTTP 401 (sent ***)"
    assert (info["restarts"], info["failures"], info["seen"]) == (3, {"retry": 1}, ["***", None])
    assert status["streams"]["s"]["last_error"] == "HTTP 401 (sent hunter22)"  # not mutated


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "GET http://127.0.0.1:1/v2/tokens: Connection refused",
            "GET http://127.0.0.1:1/v2/tokens: Connection refused",
        ),
        ("http://h/v1/sessions: HTTP 503", "http://h/v1/sessions: HTTP 503"),
        (
            "redirect to https://h/stream/signature: loop",
            "redirect to https://h/stream/signature: loop",
        ),
        ("sent X-Auth-Token: abc123def", "sent X-Auth-Token: ***"),
        ("headers {session: s3cr3t}", "headers {session: ***"),  # to the line end
    ],
)
def test_a_url_path_ending_in_a_secret_word_keeps_the_real_cause(text: str, expected: str) -> None:
    from streamvisor.policy.redact import redact_text

    assert redact_text(text) == expected


def test_request_secrets_are_the_bare_credentials_a_request_carries() -> None:
    url = "http://u:p%40ss@h/e?access_token=qtok&page=2#x"
    headers = [("Authorization", "Bearer btok"), ("X-Api-Key", "ktok"), ("Accept", "a/b")]
    found = request_secrets(url, headers)
    assert sorted(found) == sorted(["Bearer btok", "btok", "ktok", "p%40ss", "p@ss", "qtok"])
    assert request_secrets("http://[::1/x?token=t", [("Cookie", "c=1")]) == ["c=1"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "stream api-token: circuit breaker open after 5 failures",
            "stream api-token: circuit breaker open after 5 failures",
        ),
        ("sink session-log: cannot write out.jsonl", "sink session-log: cannot write out.jsonl"),
        ("upstream session: abc123def", "upstream session: ***"),  # a header-like pair still is
        ("mystream api-token: abc123def", "mystream api-token: ***"),
    ],
)
def test_a_stream_or_sink_named_like_a_credential_keeps_its_log_line(
    text: str, expected: str
) -> None:
    from streamvisor.policy.redact import redact_text

    assert redact_text(text) == expected
