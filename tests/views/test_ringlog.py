"""The page's recent log lines: bounded, WARNING and above, redacted, one line each."""

from __future__ import annotations

import logging

from streamvisor.policy.redact import Redactor
from streamvisor.views.ringlog import RingLogHandler


def logger_with(handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger("streamvisor.test.ringlog")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger


def test_only_warnings_and_above_are_kept_oldest_first_up_to_capacity() -> None:
    ring = RingLogHandler(capacity=3)
    log = logger_with(ring)
    log.info("not kept")
    for n in range(5):
        log.warning("warning %d", n)
    log.error("an error")
    lines = ring.lines()
    assert [line["msg"] for line in lines] == ["warning 3", "warning 4", "an error"]
    assert [line["level"] for line in lines] == ["WARNING", "WARNING", "ERROR"]
    assert lines[0]["logger"] == "streamvisor.test.ringlog"
    assert lines[0]["ts"].endswith("Z")
    assert [line["msg"] for line in ring.lines(limit=1)] == ["an error"]


def test_secrets_are_scrubbed_and_only_the_first_line_is_kept() -> None:
    ring = RingLogHandler(redactor=Redactor(["hunter2-secret"]))
    log = logger_with(ring)
    log.warning("login with hunter2-secret failed\nTraceback ...")
    try:
        raise ValueError("hunter2-secret")
    except ValueError:
        log.exception("boom")
    assert [line["msg"] for line in ring.lines()] == ["login with *** failed", "boom"]
