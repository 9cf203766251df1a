"""The embedded demo source, spoken to over plain sockets and parsed with the real Decoder."""

from __future__ import annotations

import json
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from streamvisor.demo.source import ChannelStats, Chaos, DemoSource, main
from streamvisor.sse import Decoder, Event

DEADLINE = 5.0


class Client:
    """One raw HTTP request; the body is fed to a Decoder as it arrives."""

    def __init__(
        self,
        source: DemoSource,
        path: str = "/events/ticker",
        *,
        last_event_id: str | None = None,
        method: str = "GET",
        timeout: float = DEADLINE,
    ) -> None:
        self.sock = socket.create_connection(("127.0.0.1", source.port), timeout=timeout)
        extra = f"Last-Event-ID: {last_event_id}\r\n" if last_event_id is not None else ""
        if method == "POST":
            extra += "Content-Length: 2\r\n"
        request = f"{method} {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n"
        self.sock.sendall(request.encode() + (b"{}" if method == "POST" else b""))
        self.deadline = time.monotonic() + timeout
        self.decoder = Decoder(last_event_id=last_event_id)
        self.events: list[Event] = []
        self.body = b""
        self.ending: str | None = None  # "eof" or "reset" once the server has ended
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self._recv()
            assert chunk, f"connection ended inside the response head: {head!r}"
            head += chunk
        head, _, rest = head.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        self._take(rest)

    def _recv(self) -> bytes:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("client deadline passed")
        self.sock.settimeout(left)
        return self.sock.recv(65536)

    def _take(self, data: bytes) -> None:
        self.body += data
        self.events += self.decoder.feed(data)

    def read_events(self, n: int) -> list[Event]:
        """Read until at least ``n`` events arrived (or the server ended); return them all."""
        while len(self.events) < n and self.ending is None:
            self.read_once()
        return self.events

    def read_once(self) -> None:
        try:
            chunk = self._recv()
        except ConnectionResetError:
            self.ending = "reset"
            self.decoder.end()
            return
        if not chunk:
            self.ending = "eof"
            self.decoder.end()
        self._take(chunk)

    def read_to_end(self) -> list[Event]:
        while self.ending is None:
            self.read_once()
        return self.events

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def sources() -> Iterator[list[DemoSource]]:
    """Sources a test starts; every one is stopped afterwards."""
    started: list[DemoSource] = []
    yield started
    for source in started:
        source.stop(timeout=DEADLINE)


def start(sources: list[DemoSource], **kwargs: object) -> DemoSource:
    source = DemoSource(**kwargs)  # type: ignore[arg-type]
    sources.append(source)
    source.start()
    return source


def ids(events: list[Event]) -> list[int]:
    return [int(e.id or 0) for e in events]


def test_events_arrive_in_order_with_ids_one_to_n_and_the_documented_content(sources):
    source = start(sources, total=30, rate=1000.0)
    client = Client(source)
    assert client.status == 200
    assert client.headers["content-type"].startswith("text/event-stream")
    events = client.read_events(30)
    client.close()
    assert ids(events) == list(range(1, 31))
    assert {e.event for e in events} == {"tick"}
    assert [e.data for e in events] == [source.event_data("ticker", n) for n in range(1, 31)]
    assert events[4].data.count("\n") == 1  # some events span two data lines
    assert set(json.loads(events[4].data)) == {"channel", "seq", "price"}


def test_a_backlog_larger_than_one_write_streams_without_pause(sources):
    source = start(sources, channels=["a", "b"], total=500, rate=float("inf"), heartbeat=30.0)
    client = Client(source, "/events/b", timeout=2.0)  # a pause would be a heartbeat: 30 s
    assert ids(client.read_events(500)) == list(range(1, 501))
    client.close()
    assert source.stats["b"].events_sent == 500
    assert source.stats["a"] == ChannelStats()


def test_a_source_starts_only_once(sources):
    source = start(sources, total=1)
    with pytest.raises(RuntimeError):
        source.start()
    source.stop()
    with pytest.raises(RuntimeError):
        source.start()


def test_event_data_names_channel_and_seq_and_is_padded_to_payload_size():
    source = DemoSource(["a b"], payload_size=300)
    for seq in (1, 5, 123):  # 5: a two-line event
        data = source.event_data("a b", seq)
        assert len(data) == 300
        assert json.loads(data)["channel"] == "a b"
        assert json.loads(data)["seq"] == seq
    assert source.event_data("a b", 7) == DemoSource(["a b"], payload_size=300).event_data("a b", 7)


def test_a_resume_starts_right_after_the_last_event_id(sources):
    source = start(sources, total=20, rate=float("inf"))
    client = Client(source, last_event_id="7")
    assert ids(client.read_events(13)) == list(range(8, 21))
    client.close()


@pytest.mark.parametrize("bad_id", ["", "abc", "-3", "1.5"])
def test_a_missing_or_non_numeric_last_event_id_starts_from_the_beginning(sources, bad_id):
    source = start(sources, total=3, rate=float("inf"))
    client = Client(source, last_event_id=bad_id)
    assert ids(client.read_events(3)) == [1, 2, 3]
    client.close()


def test_a_post_request_streams_like_a_get(sources):
    source = start(sources, total=3, rate=float("inf"))
    client = Client(source, method="POST")
    assert ids(client.read_events(3)) == [1, 2, 3]
    client.close()


def test_replay_chaos_resends_ids_at_or_before_the_requested_one_first(sources):
    source = start(sources, total=20, rate=float("inf"), chaos=Chaos(replay=1.0))
    client = Client(source, last_event_id="10")
    while not client.events or client.events[-1].id != "20":
        client.read_once()
    got = ids(client.events)
    client.close()
    first = got[0]
    assert 6 <= first <= 10
    assert got[: 21 - first] == list(range(first, 21))
    assert source.stats["ticker"].replays == 1


def test_replay_chaos_does_nothing_on_a_fresh_start(sources):
    source = start(sources, total=5, rate=float("inf"), chaos=Chaos(replay=1.0))
    client = Client(source)
    assert ids(client.read_events(5)) == [1, 2, 3, 4, 5]
    client.close()
    assert source.stats["ticker"].replays == 0


def test_cut_event_leaves_a_partial_event_that_the_decoder_discards_at_the_end(sources):
    chaos = Chaos(cut_event=1.0, max_events_per_connection=3)
    source = start(sources, total=50, rate=float("inf"), chaos=chaos)
    client = Client(source)
    events = client.read_to_end()
    assert client.ending == "eof"
    k = len(events)
    assert 1 <= k <= 3
    assert ids(events) == list(range(1, k + 1))
    tail = client.body.split(b"\n\n")[-1]
    assert tail and b"id: %d\n" % (k + 1) in tail  # half of event k+1 came, unterminated
    assert client.decoder.last_event_id == str(k)  # and end() dropped its id
    assert source.stats["ticker"].cut_events == 1
    # Nothing is lost on the server side: the next connection resumes with event k+1.
    again = Client(source, last_event_id=str(k))
    assert ids(again.read_events(1))[0] == k + 1
    again.close()


def test_clean_close_chaos_ends_the_body_after_a_few_whole_events(sources):
    chaos = Chaos(clean_close=1.0, max_events_per_connection=4)
    source = start(sources, total=50, rate=float("inf"), chaos=chaos)
    client = Client(source)
    events = client.read_to_end()
    assert client.ending == "eof"
    assert 1 <= len(events) <= 4
    assert client.body.endswith(b"\n\n")
    assert source.stats["ticker"].clean_closes == 1


def test_reset_chaos_aborts_the_connection_with_a_tcp_reset(sources):
    chaos = Chaos(reset=1.0, max_events_per_connection=2)
    source = start(sources, total=50, rate=float("inf"), chaos=chaos)
    client = Client(source)
    events = client.read_to_end()
    client.close()
    assert client.ending == "reset"
    assert len(events) <= 2
    assert source.stats["ticker"].resets == 1


def test_unavailable_once_answers_503_with_retry_after_then_serves(sources):
    chaos = Chaos(unavailable_once=True, retry_after_seconds=7)
    source = start(sources, channels=["a", "b"], total=2, rate=float("inf"), chaos=chaos)
    first = Client(source, "/events/a")
    first.read_to_end()
    assert first.status == 503
    assert first.headers["retry-after"] == "7"
    assert first.events == []
    second = Client(source, "/events/a")
    assert second.status == 200
    assert ids(second.read_events(2)) == [1, 2]
    other = Client(source, "/events/b")  # each channel's first request
    assert other.status == 503
    for client in (first, second, other):
        client.close()
    assert source.stats["a"] == ChannelStats(connections=2, unavailable=1, events_sent=2)


def _chaos_run(
    seed: int,
) -> tuple[list[tuple[int, list[int], str | None]], dict[str, ChannelStats]]:
    """Follow one channel to its end, resuming like a client; record what each connection did."""
    chaos = Chaos(clean_close=0.5, cut_event=0.5, replay=0.5, max_events_per_connection=6)
    source = DemoSource(total=60, rate=float("inf"), chaos=chaos, seed=seed)
    seen: dict[int, str] = {}
    log: list[tuple[int, list[int], str | None]] = []
    with source:
        last: str | None = None
        while len(seen) < 60 and len(log) < 100:
            client = Client(source, last_event_id=last)
            while client.ending is None and (not client.events or client.events[-1].id != "60"):
                client.read_once()
            client.close()
            for event in client.events:
                assert seen.setdefault(int(event.id or 0), event.data) == event.data
            log.append((client.status, ids(client.events), client.ending))
            last = client.decoder.last_event_id
    assert sorted(seen) == list(range(1, 61))  # nothing lost
    return log, source.stats


def test_the_same_seed_gives_the_same_faults_for_the_same_requests():
    log_a, stats_a = _chaos_run(seed=7)
    log_b, stats_b = _chaos_run(seed=7)
    log_c, _ = _chaos_run(seed=8)
    assert log_a == log_b
    assert stats_a == stats_b
    assert log_a != log_c
    faults = stats_a["ticker"]
    assert faults.clean_closes and faults.cut_events and faults.replays  # the run exercised them


def test_heartbeats_arrive_when_the_feed_is_quiet(sources):
    source = start(sources, total=2, rate=float("inf"), heartbeat=0.1)
    client = Client(source)
    assert ids(client.read_events(2)) == [1, 2]
    while client.body.count(b": heartbeat\n") < 2:
        client.read_once()
        assert client.ending is None
    client.close()


def test_retry_ms_is_sent_first(sources):
    source = start(sources, total=1, rate=float("inf"), retry_ms=1500)
    client = Client(source)
    client.read_events(1)
    client.close()
    assert client.body.startswith(b"retry: 1500\n")
    assert client.decoder.retry == 1500


def test_unknown_paths_get_404_and_health_gets_ok(sources):
    source = start(sources, total=1)
    for path in ("/nope", "/events/unknown", "/events/"):
        client = Client(source, path)
        client.read_to_end()
        client.close()
        assert client.status == 404
        assert client.headers["content-type"].startswith("text/plain")
    health = Client(source, "/health")
    health.read_to_end()
    health.close()
    assert (health.status, health.body) == (200, b"ok\n")


def test_published_and_wait_published_follow_the_rate(sources):
    source = start(sources, total=10, rate=100.0)
    assert source.wait_published("ticker", 10, timeout=DEADLINE)
    assert source.published("ticker") == 10
    assert not source.wait_published("ticker", 11, timeout=0.1)  # beyond total: never


def _demo_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("demo-source")]


def test_stop_returns_in_time_with_clients_connected_and_leaves_no_threads():
    count_before = threading.active_count()
    source = DemoSource(rate=2000.0, heartbeat=30.0, payload_size=20000)
    source.start()
    reader = Client(source)
    reader.read_events(5)
    stalled = Client(source)  # never reads: the server blocks sending to it
    silent = socket.create_connection(("127.0.0.1", source.port), timeout=DEADLINE)  # no request
    assert source.wait_published("ticker", 200, timeout=DEADLINE)
    assert len(_demo_threads()) == 4  # the listener and three connections
    began = time.monotonic()
    source.stop(timeout=2.0)
    assert time.monotonic() - began < 2.0
    assert _demo_threads() == []
    assert threading.active_count() == count_before
    for client in (reader, stalled):
        client.read_to_end()
        client.close()
    silent.close()
    assert source.stats["ticker"].connections == 2


def test_client_disconnects_print_no_tracebacks(sources, capfd):
    source = start(sources, rate=1000.0, heartbeat=0.05)
    client = Client(source)
    client.read_events(3)
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()  # abort with RST under the server's feet
    polite = Client(source)
    polite.read_events(3)
    polite.close()
    source.stop(timeout=DEADLINE)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_chaos_rejects_impossible_probabilities():
    with pytest.raises(ValueError):
        Chaos(clean_close=0.6, reset=0.6)
    with pytest.raises(ValueError):
        Chaos(replay=1.5)
    with pytest.raises(ValueError):
        DemoSource(rate=float("inf"))  # an endless feed cannot be all there at once


@pytest.mark.parametrize("port", ["99999", "-1"])
def test_a_port_out_of_range_is_one_line_and_exit_2(port, capsys):
    assert main(["--port", port]) == 2
    assert capsys.readouterr().err == "demo_source: bind(): port must be 0-65535.\n"


def test_the_module_serves_from_the_command_line_until_ctrl_c():
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamvisor.demo.source",
            "--port",
            "0",
            "--total",
            "3",
            "--channels",
            "ticker,news",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        second = proc.stdout.readline().strip()
        assert first.startswith("http://127.0.0.1:") and first.endswith("/events/ticker")
        assert second.endswith("/events/news")
        port = int(first.split(":")[2].split("/")[0])
        sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        sock.sendall(b"GET /events/news HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while data.count(b"\n\n") < 2:  # the end of the head, then one whole event
            data += sock.recv(65536)
        sock.close()
        decoder = Decoder()
        events = decoder.feed(data.partition(b"\r\n\r\n")[2])
        assert events[0].id == "1"
        assert events[0].data == DemoSource(["news"]).event_data("news", 1)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=DEADLINE) == 0
        assert proc.stderr is not None
        assert "Traceback" not in proc.stderr.read()
    finally:
        proc.kill()
        proc.wait(timeout=DEADLINE)
