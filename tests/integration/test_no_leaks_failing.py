"""No secret leaves a stream that keeps failing (issue 10): streams to a wrong port, a 503 and
a 401, each carrying secrets in the URL password, the query and headers. The daemon's logs
(at debug level), ``/streams``, ``/metrics`` and the checkpoint file are searched, also while
the daemon shuts down; so is ``streamvisor tail``'s stderr. Each secret is shown to reach the
servers, so its absence from the output means something."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streamvisor.demo.source import DemoSource
from tests.support.daemon import ADMIN, running_daemon
from tests.support.demo import MakeDemo
from tests.support.sse_server import SSEServer, Status
from tests.support.tail import run_tail
from tests.support.webhooks import MakeReceiver, WebhookReceiver

pytestmark = pytest.mark.timeout(90)

URL_PASSWORD = "urlPw-F41LsEcReT"
QUERY_TOKEN = "qtok-F41LsEcReT"
BEARER = "bearer-F41LsEcReT-77"
API_KEY = "apikey-F41LsEcReT-88"
HOOK_SECRET = "hook-F41LsEcReT-99"
SECRETS = (URL_PASSWORD, QUERY_TOKEN, BEARER, API_KEY, HOOK_SECRET)


def leaked(text: str | bytes) -> list[str]:
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    return [secret for secret in SECRETS if secret in text]


def with_secrets(url: str) -> str:
    return url.replace("//", f"//apiuser:{URL_PASSWORD}@", 1) + f"?access_token={QUERY_TOKEN}"


@pytest.fixture
def servers() -> Iterator[dict[str, SSEServer]]:
    # Each answers for ever, and echoes a secret in its body (bodies must never be logged).
    made = {
        "unavailable": SSEServer(default=[Status(503, {}, f"down {BEARER}".encode())]),
        "denied": SSEServer(default=[Status(401, {}, f"bad {API_KEY}".encode())]),
    }
    for server in made.values():
        server.start()
    try:
        yield made
    finally:
        for server in made.values():
            server.stop()


@pytest.fixture
def source(make_demo: MakeDemo) -> DemoSource:
    return make_demo(("ticker", "busy"), rate=200.0)


@pytest.fixture
def hanging(make_receiver: MakeReceiver) -> WebhookReceiver:
    return make_receiver(then="hang")  # never answers


def daemon_config(
    tmp_path: Path,
    servers: dict[str, SSEServer],
    source: DemoSource,
    hanging: WebhookReceiver,
    refused: int,
) -> dict[str, Any]:
    headers = {"Authorization": "Bearer ${SV_LEAK_TOKEN}", "X-Api-Key": API_KEY}
    fast = {"initial": 0.05, "max": 0.2}
    return {
        "defaults": {"headers": headers, "backoff": fast, "read_timeout": 5},
        "streams": [
            {"name": "refused", "url": with_secrets(f"http://127.0.0.1:{refused}/e")},
            {"name": "unavailable", "url": with_secrets(servers["unavailable"].url("/e"))},
            {"name": "denied", "url": with_secrets(servers["denied"].url("/e"))},
            {"name": "ticker", "url": with_secrets(source.url("ticker"))},
            {"name": "busy", "url": with_secrets(source.url("busy"))},
        ],
        "sinks": [
            {"name": "archive", "type": "file", "path": "out.jsonl", "streams": ["ticker"]},
            {
                # Hangs, so the shutdown lasts long enough to be looked at.
                "name": "hook",
                "type": "webhook",
                "streams": ["busy"],
                "url": hanging.url + f"?token={QUERY_TOKEN}",
                "headers": {"X-Hook-Secret": HOOK_SECRET},
                "timeout": 3,
                "batch": {"max_events": 10, "max_wait": 0.05},
                "retry": {"initial": 0.05, "max": 0.1, "attempts": 1},
            },
        ],
        "checkpoint": {"path": str(tmp_path / "ckpt.db"), "interval": 0.2},
        "admin": ADMIN,
        "shutdown_timeout": 8,
    }


def test_failing_streams_leak_no_secret_into_logs_status_metrics_or_checkpoints(
    tmp_path: Path,
    servers: dict[str, SSEServer],
    source: DemoSource,
    hanging: WebhookReceiver,
    refusing_port: int,
) -> None:
    config = daemon_config(tmp_path, servers, source, hanging, refusing_port)
    env = {"SV_LEAK_TOKEN": BEARER}
    bodies: list[str] = []
    with running_daemon(tmp_path, config, env=env, log_level="debug") as d:
        d.wait_for(
            lambda: (d.stream_info("denied") or {}).get("state") == "failed",
            "the 401 stream to fail",
        )
        d.wait_for(
            lambda: (
                (d.stream_info("unavailable") or {}).get("restarts", 0) >= 3
                and (d.stream_info("refused") or {}).get("restarts", 0) >= 3
                and (d.stream_info("ticker") or {}).get("checkpoint_id") is not None
            ),
            "failures to repeat and a checkpoint to be written",
        )
        d.wait_for(lambda: bool(hanging.requests), "a webhook request to hang")
        for path in ("/streams", "/metrics"):
            status, body = d.get(path)
            assert status == 200
            bodies.append(body)
        running = json.loads(bodies[0])["streams"]
        d.send_signal(15)
        # While it shuts down (the webhook hangs), the admin endpoint still answers.
        d.wait_for(lambda: '"stopping"' in d.get("/health")[1], "the shutdown to begin")
        stopping = 0
        for path in ("/streams", "/metrics", "/streams"):
            try:
                status, body = d.get(path)
            except OSError:
                break
            if status == 200:
                bodies.append(body)
                stopping += 1
        assert d.wait(20) == 0
    assert stopping >= 1, "no status was read during the shutdown"

    # The secrets were really sent.
    sent = servers["denied"].requests[0].headers
    assert base64.b64decode(sent["Authorization"].split()[1]).decode().endswith(URL_PASSWORD)
    assert sent["X-Api-Key"] == API_KEY
    assert QUERY_TOKEN in servers["unavailable"].requests[0].path

    # The failures are there to see, with their causes...
    assert "Connection refused" in running["refused"]["last_error"]
    assert "HTTP 503" in running["unavailable"]["last_error"]
    assert "HTTP 401" in running["denied"]["last_error"]
    log = d.stderr()
    assert "Connection refused" in log and "HTTP 503" in log and "HTTP 401" in log
    # ...and no secret anywhere.
    assert leaked(log) == [], "secrets in the daemon's stderr"
    assert leaked(d.stdout()) == []
    for body in bodies:
        assert leaked(body) == [], f"secrets in a status body: {body[:300]}"
    for file in tmp_path.glob("ckpt.db*"):
        assert leaked(file.read_bytes()) == [], f"secrets in {file.name}"


@pytest.mark.parametrize("failure", ["refused", "503", "401"])
def test_tail_of_a_failing_stream_leaks_no_secret_on_stderr(
    sse_server: SSEServer, capsys: pytest.CaptureFixture[str], refusing_port: int, failure: str
) -> None:
    if failure == "refused":
        url = with_secrets(f"http://127.0.0.1:{refusing_port}/e")
    else:
        sse_server.default = [Status(int(failure), {}, f"echo {BEARER}".encode())]
        url = with_secrets(sse_server.url("/e"))

    run = run_tail(
        capsys,
        url,
        "-H",
        f"Authorization: Bearer {BEARER}",
        "-H",
        f"X-Api-Key: {API_KEY}",
        "--backoff-initial",
        "0.01",
        "--backoff-max",
        "0.02",
        "--max-attempts",
        "4",
        "--log-level",
        "debug",
    )

    assert run.code == 1
    assert "streamvisor tail: " in run.err_lines[-1]
    assert leaked(run.err) == [] and leaked(run.out) == []
    if failure != "refused":
        assert sse_server.requests[0].headers["X-Api-Key"] == API_KEY
