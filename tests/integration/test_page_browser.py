"""The status page in a real headless Chromium, against a real daemon and a real upstream.

Skipped when no Chromium is installed (``.ci/run`` installs Debian's ``chromium``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streamvisor.daemon.admin import AdminServer
from tests.support.browser import Browser, find_chromium
from tests.support.views import call, demo_daemon, states
from tests.support.wait import wait_until

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")

TOKEN = "page-t0ken-42"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    assert CHROMIUM is not None
    chromium = Browser(CHROMIUM, tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield chromium
    finally:
        chromium.close()


def row(name: str, inner: str = "") -> str:
    """JavaScript for the element ``inner`` in the row of stream ``name`` (or the row)."""
    selector = f'tr[data-stream="{name}"] {inner}'.strip()
    return f"document.querySelector({json.dumps(selector)})"


def row_state(name: str) -> str:
    return f"{row(name)}?.dataset.state"


def click(browser: Browser, name: str, command: str) -> None:
    browser.evaluate(f"{row(name, 'button.' + command)}.click()")


def test_the_page_shows_the_streams_and_follows_the_daemon_without_a_reload(
    browser: Browser, tmp_path: Path
) -> None:
    with demo_daemon(tmp_path, ["alpha", "beta"]) as (_source, base):
        browser.open(base + "/")
        browser.evaluate("window.__sameDocument = true")
        browser.wait_for(f"{row_state('alpha')} === 'connected'")
        browser.wait_for(f"{row_state('beta')} === 'connected'")
        # Rates come from successive snapshots: the chart gets points, the rate a value.
        browser.wait_for(f"Number({row('alpha', '.rate')}.textContent) > 0")
        assert browser.evaluate(f"{row('alpha', 'polyline')}.getAttribute('points') !== ''")

        # A state change made elsewhere (the admin command) shows up on the page.
        assert call(base, "/streams/alpha/close", "POST")[0] == 200
        browser.wait_for(f"{row_state('alpha')} === 'closed'")
        # ... and the page's own buttons act on the daemon.
        click(browser, "alpha", "start")
        assert wait_until(lambda: states(base)["alpha"] == "connected")
        browser.wait_for(f"{row_state('alpha')} === 'connected'")
        click(browser, "beta", "close")
        assert wait_until(lambda: states(base)["beta"] == "closed")
        browser.wait_for(f"{row_state('beta')} === 'closed'")

        logging.getLogger("streamvisor.test").warning("upstream beta looks slow")
        browser.wait_for(
            "document.getElementById('logs').textContent.includes('upstream beta looks slow')"
        )
        assert browser.evaluate("window.__sameDocument") is True  # never reloaded


def test_with_a_token_the_page_asks_for_it_once_and_then_works(
    browser: Browser, tmp_path: Path
) -> None:
    with demo_daemon(tmp_path, ["gamma"], token=TOKEN) as (_source, base):
        browser.open(base + "/")
        browser.evaluate("sessionStorage.clear()")
        browser.open(base + "/")
        browser.wait_for("document.getElementById('tokenform').classList.contains('shown')")
        assert not browser.evaluate("document.querySelector('tr[data-stream]')")
        browser.evaluate(
            f"document.getElementById('token').value = {TOKEN!r};"
            "document.getElementById('tokenform').requestSubmit()"
        )
        browser.wait_for(f"{row_state('gamma')} === 'connected'")
        assert browser.evaluate(f"sessionStorage.getItem('streamvisor.token') === {TOKEN!r}")
        click(browser, "gamma", "close")
        assert wait_until(lambda: states(base)["gamma"] == "closed")
        browser.wait_for(f"{row_state('gamma')} === 'closed'")
        browser.evaluate("sessionStorage.clear()")


def test_the_page_reconnects_by_itself_when_the_daemon_comes_back(
    browser: Browser,
) -> None:
    status: dict[str, Any] = {"streams": {"delta": {"state": "connected"}}, "subscribers": {}}

    def serve(port: int) -> AdminServer:
        server = AdminServer("127.0.0.1", port, snapshot=lambda: status, ready=lambda: True)
        server.start()
        return server

    server = serve(0)
    try:
        assert server.address is not None
        port = server.address[1]
        browser.open(f"http://127.0.0.1:{port}/")
        browser.evaluate("window.__sameDocument = true")
        browser.wait_for(f"{row_state('delta')} === 'connected'")
        server.stop()
        browser.wait_for("document.getElementById('feed').dataset.state === 'stale'")
        status["streams"]["delta"]["state"] = "failed"
        started = time.monotonic()
        server = serve(port)
        # EventSource reconnects after the retry: the server sent (2 s), no reload.
        browser.wait_for(f"{row_state('delta')} === 'failed'")
        assert time.monotonic() - started < 10
        assert browser.evaluate("window.__sameDocument") is True
    finally:
        server.stop()
