"""The Python API never shows a stream's credentials: not in ``status()`` while the stream
fails, not after ``stop()`` has begun, whatever the cause of the failure."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from streamvisor.api.facade import Streamvisor
from streamvisor.policy.backoff import BackoffPolicy, RestartLimit
from streamvisor.spec import BreakerPolicy, StreamSpec
from tests.support.sse_server import SSEServer, Status
from tests.support.wait import wait_until

pytestmark = pytest.mark.timeout(60)

PASSWORD = "apiPw-7Hq2sEcReT"
TOKEN = "qtok-19ZksEcReT"
FAST = BackoffPolicy(initial=0.02, max=0.05, jitter=0.0)


def secret_url(base: str) -> str:
    return base.replace("//", f"//apiuser:{PASSWORD}@", 1) + f"?access_token={TOKEN}&page=1"


def leaked(value: object) -> list[str]:
    return [s for s in (PASSWORD, TOKEN) if s in repr(value)]


@pytest.mark.parametrize("failure", ["refused", "503", "401"])
def test_status_of_a_failing_stream_shows_no_credentials_before_during_and_after_stop(
    sse_server: SSEServer,
    make_sv: Callable[..., Streamvisor],
    refusing_port: int,
    failure: str,
) -> None:
    if failure == "refused":
        url = secret_url(f"http://127.0.0.1:{refusing_port}/events")
    else:
        sse_server.default = [Status(int(failure), {}, f"no {TOKEN}".encode())]
        url = secret_url(sse_server.url("/events"))
    spec = StreamSpec(
        name="s",
        url=url,
        backoff=FAST,
        max_restarts=RestartLimit(count=0),
        breaker=BreakerPolicy(failures=0),
    )
    sv = make_sv([spec])
    sv.start()

    assert wait_until(lambda: sv.status()["streams"]["s"].get("last_error"), 10.0)
    status = sv.status()
    assert status["streams"]["s"]["url"].endswith("?access_token=***&page=1")
    assert leaked(status) == []
    sv.stop(timeout=5.0)
    after = sv.status()
    assert "s" in after["streams"]
    assert leaked(after) == [], "status() after stop() began shows the raw URL"
