"""Stream commands against a real daemon (in this process) and a real upstream."""

from __future__ import annotations

from pathlib import Path

from tests.support.views import call, demo_daemon, states
from tests.support.wait import wait_until

TOKEN = "daemon-t0ken-7"


def test_commands_close_start_and_reconnect_a_running_daemons_streams(tmp_path: Path) -> None:
    with demo_daemon(tmp_path, ["one", "two"]) as (source, base):
        assert wait_until(lambda: set(states(base).values()) == {"connected"})
        code, body = call(base, "/streams/one/close", "POST")
        assert (code, body["state"]) == (200, "closed")
        assert states(base) == {"one": "closed", "two": "connected"}
        code, body = call(base, "/streams/one/start", "POST")
        assert (code, body["changed"]) == (200, True)
        assert wait_until(lambda: states(base)["one"] == "connected")
        requests_before = source.stats["two"].connections
        code, body = call(base, "/streams/two/reconnect", "POST")
        assert code == 200
        assert wait_until(lambda: source.stats["two"].connections == requests_before + 1)
        assert wait_until(lambda: states(base)["two"] == "connected")
        assert call(base, "/streams/three/close", "POST") == (
            404,
            {"error": "unknown stream", "stream": "three"},
        )


def test_with_a_token_a_daemon_refuses_commands_without_it(tmp_path: Path) -> None:
    with demo_daemon(tmp_path, ["one"], token=TOKEN) as (_source, base):
        assert wait_until(lambda: states(base) == {"one": "connected"})
        assert call(base, "/streams/one/close", "POST")[0] == 401
        assert states(base) == {"one": "connected"}
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert call(base, "/streams/one/close", "POST", auth)[0] == 200
        assert states(base) == {"one": "closed"}
