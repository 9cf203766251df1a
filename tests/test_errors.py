"""The error types: one root, what each stream failure carries, ``ConfigError.format``."""

from __future__ import annotations

from streamvisor.errors import (
    ConfigError,
    ConnectError,
    ContentTypeError,
    EndOfStreamError,
    HTTPStatusError,
    LineTooLongError,
    ReadTimeoutError,
    StreamError,
    StreamProtocolError,
    StreamvisorError,
)


def test_every_stream_failure_is_a_streamvisor_error() -> None:
    for error_type in (
        HTTPStatusError,
        ContentTypeError,
        StreamProtocolError,
        LineTooLongError,
        ReadTimeoutError,
        ConnectError,
        EndOfStreamError,
    ):
        assert issubclass(error_type, StreamError)
        assert issubclass(error_type, StreamvisorError)
    assert issubclass(ConfigError, StreamvisorError)
    assert not issubclass(ConfigError, StreamError)


def test_http_status_error_message_names_the_status_reason_and_retry_after() -> None:
    error = HTTPStatusError(429, 2.5, "Too Many Requests")
    assert str(error) == "HTTP 429 Too Many Requests (Retry-After 2.5s)"
    assert (error.status, error.retry_after) == (429, 2.5)
    assert str(HTTPStatusError(500)) == "HTTP 500"


def test_config_error_formats_file_line_path_and_message() -> None:
    error = ConfigError("must be a URL", file="cfg.yaml", line=7, path="streams[0].url")
    assert error.format() == "cfg.yaml:7: streams[0].url: must be a URL"
    assert str(error) == error.format()
    assert (error.file, error.line, error.path, error.message) == (
        "cfg.yaml",
        7,
        "streams[0].url",
        "must be a URL",
    )


def test_config_error_without_a_line_formats_file_path_and_message() -> None:
    error = ConfigError("unknown key", file="cfg.yaml", path="sinks[1].typo")
    assert error.format() == "cfg.yaml: sinks[1].typo: unknown key"


def test_config_error_without_a_path_formats_file_line_and_message() -> None:
    error = ConfigError("not a mapping", file="cfg.yaml", line=1)
    assert error.format() == "cfg.yaml:1: not a mapping"


def test_config_error_without_a_file_formats_path_and_message() -> None:
    error = ConfigError("must be > 0", path="defaults.backoff.max")
    assert error.format() == "defaults.backoff.max: must be > 0"


def test_config_error_with_only_a_message_is_just_the_message() -> None:
    assert ConfigError("no config given").format() == "no config given"
