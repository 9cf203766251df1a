"""Secrets never leave the daemon: not in logs (even at debug level), not in error output,
not in ``/streams`` or ``/metrics``, not in the dead-letter file. Each secret is shown to be
really in use (the servers receive it), so its absence from the output means something."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from streamvisor.demo.source import DemoSource
from tests.support.daemon import ADMIN, running_daemon
from tests.support.demo import MakeDemo
from tests.support.sse_server import SSEServer, Status
from tests.support.webhooks import MakeReceiver, WebhookReceiver

BEARER = "bearer-Zq81sEcReT-4417"
URL_PASSWORD = "urlPw-9dK2sEcReT"
QUERY_TOKEN = "qtok-77aXsEcReT"
HOOK_SECRET = "hook-Hd3sEcReT-5521"
HOOK_PASSWORD = "hookPw-Lm4sEcReT"
SECRETS = (BEARER, URL_PASSWORD, QUERY_TOKEN, HOOK_SECRET, HOOK_PASSWORD)


def leaked(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


@pytest.fixture
def source(make_demo: MakeDemo) -> DemoSource:
    return make_demo(("ticker",), rate=100.0)


@pytest.fixture
def receiver(make_receiver: MakeReceiver) -> WebhookReceiver:
    return make_receiver(then=(500, {}))  # fails every request


def secret_config(
    tmp_path: Path, sse_server: SSEServer, source: DemoSource, receiver: WebhookReceiver
) -> dict[str, Any]:
    # Two streams: with both, requests would send the URL's Basic auth instead of the header.
    with_password = sse_server.url("/basic").replace("//", f"//apiuser:{URL_PASSWORD}@", 1)
    hook = receiver.url.replace("//", f"//hookuser:{HOOK_PASSWORD}@", 1)
    return {
        "streams": [
            {
                "name": "private",
                "url": sse_server.url("/private"),
                "headers": {"Authorization": "Bearer ${SV_TEST_API_TOKEN}"},
            },
            {"name": "userinfo", "url": with_password},
            {"name": "public", "url": source.url("ticker") + f"?access_token={QUERY_TOKEN}"},
        ],
        "sinks": [
            {
                "name": "hook",
                "type": "webhook",
                "url": hook,
                "headers": {"X-Hook-Secret": HOOK_SECRET},
                "batch": {"max_events": 50, "max_wait": 0.05},
                "retry": {"initial": 0.01, "max": 0.05, "attempts": 1},
                "dead_letter": str(tmp_path / "dead.jsonl"),
            }
        ],
        "admin": ADMIN,
    }


def test_no_secret_appears_in_logs_status_metrics_or_dead_letters_while_streams_fail(
    tmp_path: Path, sse_server: SSEServer, source: DemoSource, receiver: WebhookReceiver
) -> None:
    # The upstream rejects the token, and echoes it back in its error body.
    sse_server.default = [Status(401, {"WWW-Authenticate": "Bearer"}, f"bad {BEARER}".encode())]
    config = secret_config(tmp_path, sse_server, source, receiver)
    env = {"SV_TEST_API_TOKEN": BEARER}
    with running_daemon(tmp_path, config, env=env, log_level="debug") as d:
        for name in ("private", "userinfo"):
            d.wait_for(
                lambda name=name: (d.stream_info(name) or {}).get("state") == "failed",
                f"stream {name} to fail with 401",
            )
        d.wait_for_log("dead-lettered")
        statuses = receiver.statuses()
        assert statuses and set(statuses) == {500}
        streams_status, streams_body = d.get("/streams")
        metrics_status, metrics_body = d.get("/metrics")
        assert d.terminate() == 0

    # Every secret was really sent, so its absence below is meaningful.
    sent = {r.path: r.headers["Authorization"] for r in sse_server.requests}
    assert sent["/private"] == f"Bearer {BEARER}"
    assert base64.b64decode(sent["/basic"].split()[1]).decode() == f"apiuser:{URL_PASSWORD}"
    hook_request = receiver.requests[0]
    assert hook_request.headers["X-Hook-Secret"] == HOOK_SECRET
    hook_auth = base64.b64decode(hook_request.headers["Authorization"].split()[1]).decode()
    assert hook_auth == f"hookuser:{HOOK_PASSWORD}"

    assert streams_status == 200 and metrics_status == 200
    log = d.stderr()
    assert "401" in log, "the failure was not logged at all"
    assert leaked(log) == [], "secrets in the daemon's stderr"
    assert leaked(d.stdout()) == []
    assert leaked(streams_body) == [], "secrets in /streams"
    assert leaked(metrics_body) == [], "secrets in /metrics"
    assert leaked((tmp_path / "dead.jsonl").read_text(encoding="utf-8")) == []


def test_check_reports_a_broken_config_without_its_secrets(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(
        "streams:\n"
        "  - name: private\n"
        f"    url: ftp://apiuser:{URL_PASSWORD}@127.0.0.1:9/events?token={QUERY_TOKEN}\n"
        f"    headers: {{Authorization: Bearer {BEARER}, X-Hook-Secret: [{HOOK_SECRET}]}}\n"
        "sinks:\n"
        "  - name: hook\n"
        "    type: webhook\n"
        f"    url: http://hookuser:{HOOK_PASSWORD}@127.0.0.1:9/in\n"
        "    retry: {attempts: -1}\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "streamvisor", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=20.0,
        env=dict(os.environ),
    )
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) >= 3, result.stderr  # the url, the header and the retry problems
    assert leaked(result.stdout + result.stderr) == []
    assert "Traceback" not in result.stderr
