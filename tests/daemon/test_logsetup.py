"""configure_logging: formats, extras, redaction, idempotence and level validation."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest

from streamvisor.daemon.logsetup import RedactingFilter, configure_logging
from streamvisor.policy.redact import Redactor

SECRET = "s3cr3t-token"


class FakeRedactor:
    """Replaces one known secret, as streamvisor.policy.redact.Redactor would."""

    def scrub(self, text: str) -> str:
        return text.replace(SECRET, "***")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    others = {n: logging.getLogger(n).level for n in ("pykka", "urllib3.connectionpool")}
    yield
    for handler in list(root.handlers):
        if handler not in saved[1]:
            root.removeHandler(handler)
    root.setLevel(saved[0])
    for name, level in others.items():
        logging.getLogger(name).setLevel(level)


def ours(handlers: list[logging.Handler]) -> list[logging.Handler]:
    return [h for h in handlers if type(h).__name__ == "_StreamvisorHandler"]


def test_text_lines_carry_utc_time_level_logger_and_message() -> None:
    out = io.StringIO()
    configure_logging("info", "text", stream=out)
    logging.getLogger("streamvisor.actors.supervisor").info("restarting %s", "ticker")
    line = out.getvalue()
    pattern = (
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO streamvisor\.actors\.supervisor: "
        r"restarting ticker\n"
    )
    assert re.fullmatch(pattern, line)


def test_records_below_the_level_are_not_written() -> None:
    out = io.StringIO()
    configure_logging("WARNING", stream=out)
    logging.getLogger("streamvisor.x").info("quiet")
    logging.getLogger("streamvisor.x").warning("loud")
    assert "quiet" not in out.getvalue()
    assert "loud" in out.getvalue()


def test_json_lines_carry_the_fixed_keys_and_serialisable_extras() -> None:
    out = io.StringIO()
    configure_logging("DEBUG", "json", stream=out)
    logging.getLogger("streamvisor.actors.stream").info(
        "reconnecting %s",
        "ticker",
        extra={"stream": "ticker", "delay": 1.5, "reason": "eof", "handle": object()},
    )
    record = json.loads(out.getvalue())
    assert record["level"] == "INFO"
    assert record["logger"] == "streamvisor.actors.stream"
    assert record["msg"] == "reconnecting ticker"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["ts"])
    assert (record["stream"], record["delay"], record["reason"]) == ("ticker", 1.5, "eof")
    assert "handle" not in record  # not JSON-serialisable: left out
    assert "exc" not in record


def test_json_lines_include_the_formatted_exception() -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", stream=out)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("streamvisor.x").exception("failed")
    record = json.loads(out.getvalue())
    assert record["msg"] == "failed"
    assert "Traceback" in record["exc"]
    assert "RuntimeError: boom" in record["exc"]


def test_a_secret_is_scrubbed_from_the_message_args_extras_and_exception() -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", redactor=FakeRedactor(), stream=out)
    try:
        raise ValueError(f"bad token {SECRET}")
    except ValueError:
        logging.getLogger("streamvisor.x").exception(
            "GET %s failed",
            f"http://u:{SECRET}@host/x",
            extra={"url": f"http://host/?token={SECRET}", "headers": {"Authorization": SECRET}},
        )
    text = out.getvalue()
    assert SECRET not in text
    record = json.loads(text)
    assert record["msg"] == "GET http://u:***@host/x failed"
    assert record["url"] == "http://host/?token=***"
    assert record["headers"] == {"Authorization": "***"}
    assert "ValueError: bad token ***" in record["exc"]


def test_a_secret_is_scrubbed_in_text_format_too() -> None:
    out = io.StringIO()
    configure_logging("INFO", "text", redactor=FakeRedactor(), stream=out)
    logging.getLogger("streamvisor.x").warning("token=%s", SECRET)
    assert out.getvalue().rstrip().endswith("token=***")


def test_the_real_redactor_plugs_in() -> None:
    out = io.StringIO()
    configure_logging("INFO", redactor=Redactor([SECRET]), stream=out)
    logging.getLogger("streamvisor.x").warning("token=%s", SECRET)
    assert SECRET not in out.getvalue()
    assert "token=" in out.getvalue()


def test_configuring_twice_leaves_one_handler_writing_to_the_newest_stream() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("INFO", stream=first)
    handler = configure_logging("INFO", "json", stream=second)
    root = logging.getLogger()
    assert ours(root.handlers) == [handler]
    logging.getLogger("streamvisor.x").info("once")
    assert first.getvalue() == ""
    assert json.loads(second.getvalue())["msg"] == "once"


def test_handlers_installed_by_others_are_left_alone() -> None:
    foreign = logging.NullHandler()
    logging.getLogger().addHandler(foreign)
    configure_logging("INFO", stream=io.StringIO())
    configure_logging("INFO", stream=io.StringIO())
    assert foreign in logging.getLogger().handlers


@pytest.mark.parametrize("level", ["loud", "", "NOTSET"])
def test_an_invalid_level_raises_a_clear_value_error(level: str) -> None:
    with pytest.raises(ValueError, match="invalid log level"):
        configure_logging(level, stream=io.StringIO())
    assert ours(logging.getLogger().handlers) == []


def test_an_invalid_format_raises_a_value_error() -> None:
    with pytest.raises(ValueError, match="invalid log format 'xml'"):
        configure_logging("INFO", "xml", stream=io.StringIO())


def test_noisy_third_party_loggers_are_quietened_unless_debugging() -> None:
    configure_logging("INFO", stream=io.StringIO())
    assert logging.getLogger("urllib3.connectionpool").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("pykka").getEffectiveLevel() == logging.WARNING
    configure_logging("debug", stream=io.StringIO())
    assert logging.getLogger("pykka").getEffectiveLevel() == logging.DEBUG
    assert logging.getLogger("urllib3.connectionpool").getEffectiveLevel() == logging.WARNING


def test_the_filter_leaves_a_record_whose_arguments_do_not_fit_for_handle_error() -> None:
    # Raising from a filter would reach the caller of log.info(); the handler reports it instead.
    record = logging.LogRecord("streamvisor.x", logging.INFO, __file__, 1, "%d items", ("x",), None)
    assert RedactingFilter(FakeRedactor()).filter(record)
    assert (record.msg, record.args) == ("%d items", ("x",))


def test_a_urllib3_warning_is_one_line_without_its_traceback() -> None:
    # urllib3 logs a server's malformed header line at WARNING with exc_info; the response
    # is still used, so stderr gets the one-line cause, not a traceback.
    out = io.StringIO()
    configure_logging("info", "text", stream=out)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("urllib3.connection").warning("Failed to parse headers", exc_info=True)
        logging.getLogger("streamvisor.x").error("ours keep it", exc_info=True)
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("WARNING urllib3.connection: Failed to parse headers")
    assert lines[1].endswith("ERROR streamvisor.x: ours keep it")
    assert lines[2] == "Traceback (most recent call last):"
    assert out.getvalue().count("Traceback") == 1
