"""The relay in the daemon (``relay:`` section) and its SQLite history across restarts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from streamvisor.daemon.run import run_check
from streamvisor.demo.source import DemoSource
from streamvisor.relay import RelayConfig, RelayServer
from streamvisor.relay.history_sqlite import HistoryError, SQLiteHistory
from streamvisor.sse import Event
from tests.support.daemon import running_daemon, write_config
from tests.support.relay import ClientPool, seqs
from tests.support.wait import wait_until

pytestmark = pytest.mark.timeout(60)

RELAY_LINE = re.compile(r"relay listening on http://127\.0\.0\.1:(\d+)")


def test_the_daemon_serves_every_configured_stream_and_stops_cleanly(
    tmp_path: Path, pool: ClientPool
) -> None:
    with DemoSource(["a", "b"], rate=100.0, heartbeat=0) as source:
        config = {
            "streams": [{"name": n, "url": source.url(n)} for n in ("a", "b")],
            "relay": {"listen": "127.0.0.1:0", "auth": {"tokens": ["${RELAY_TOKEN}"]}},
        }
        env = {"RELAY_TOKEN": "tok-123"}
        with running_daemon(tmp_path, config, env=env) as daemon:
            daemon.wait_for(lambda: RELAY_LINE.search(daemon.stderr()) is not None, "relay")
            match = RELAY_LINE.search(daemon.stderr())
            assert match is not None
            port = int(match.group(1))
            denied = pool.get(port, "/streams/a")
            assert denied.wait_closed() and denied.status == 401
            clients = {n: pool.get(port, f"/streams/{n}?access_token=tok-123") for n in "ab"}
            for client in clients.values():
                assert client.wait(lambda d: len(d.events) >= 5, 10.0)
                got = seqs(client.events)
                assert got == list(range(got[0], got[0] + len(got)))
            assert daemon.terminate() == 0
            assert all(c.wait_closed() for c in clients.values())
        assert "tok-123" not in daemon.stderr()


def test_check_validates_the_relay_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(
        tmp_path / "c.yaml",
        "streams:\n  - {name: a, url: 'http://127.0.0.1:1/e'}\n"
        "relay:\n  streams: [b]\n  client: {heartbeat: 0}\n",
    )
    assert run_check(str(path)) == 2
    err = capsys.readouterr().err
    assert "c.yaml:4: relay.streams[0]: unknown stream 'b'" in err
    assert "c.yaml:5: relay.client.heartbeat: must be greater than 0" in err


def run_relay_once(
    pool: ClientPool, config: RelayConfig, events: list[Event], last_id: str | None
) -> tuple[list[str], str | None]:
    """Start a relay on the history file, connect one client (resuming from ``last_id``),
    publish ``events``, and return what the client got (data) and its last id."""
    assert config.path is not None
    history = SQLiteHistory(config.path, config.max_events, config.max_age)
    server = RelayServer(config, ["s"], history=history)
    port = server.start()[1]
    try:
        headers = {"Last-Event-ID": last_id} if last_id else {}
        client = pool.get(port, "/streams/s", headers)
        assert wait_until(lambda: server.counters()["s"].clients == 1)
        server.publish("s", events)
        client.wait(lambda d: any(e.data == events[-1].data for e in d.events))
        return [e.data for e in client.events], client.last_id
    finally:
        server.stop()
        history.close()


def plain(*data: str) -> list[Event]:
    return [Event("s", None, "message", d) for d in data]


def test_a_sqlite_history_resumes_exactly_across_a_relay_restart(
    tmp_path: Path, pool: ClientPool
) -> None:
    config = RelayConfig(port=0, store="sqlite", path=str(tmp_path / "relay.db"), max_events=3)
    first, last_id = run_relay_once(pool, config, plain("1", "2", "3", "4"), None)
    assert first == ["1", "2", "3", "4"]
    assert last_id is not None
    second, next_id = run_relay_once(pool, config, plain("5"), last_id)
    assert second == ["5"]  # no gap: the id survived the restart
    assert next_id is not None and next_id.split("-")[0] == last_id.split("-")[0]
    # an id that fell out of the 3 retained events gets a gap and the retained ones
    third, _ = run_relay_once(pool, config, plain("6"), next_id.rsplit("-", 1)[0] + "-1")
    assert '"reason":"expired"' in third[0]
    assert third[1:] == ["3", "4", "5", "6"]


def test_an_upstream_replay_of_stored_events_is_not_issued_again_after_a_restart(
    tmp_path: Path, pool: ClientPool
) -> None:
    config = RelayConfig(port=0, store="sqlite", path=str(tmp_path / "relay.db"))

    def upstream(*ids: int) -> list[Event]:
        return [Event("s", f"u{i}", "tick", f"data {i}") for i in ids]

    _, last_id = run_relay_once(pool, config, upstream(1, 2, 3), None)
    # The upstream resumes from an older checkpoint (after u1): u2 and u3 come again.
    got, _ = run_relay_once(pool, config, upstream(2, 3, 4), last_id)
    assert got == ["data 4"]
    # The same id with other content is a new event (a restarted upstream counter).
    reused = [Event("s", "u4", "tick", "other content")]
    got, _ = run_relay_once(pool, config, reused, last_id)
    assert got == ["data 4", "other content"]


def test_a_history_file_that_cannot_be_opened_is_a_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    with pytest.raises(HistoryError, match="relay history"):
        SQLiteHistory(str(folder), 10, 60.0)
