"""Baseline for `streamvisor tail URL > file` and the daemon's file sink: a bare
launchdarkly-eventsource loop that writes the Event JSON lines to a file, as a user would.

Run as its own process (so it pays interpreter start-up, like the CLI it is compared with):

    python bench/ld_jsonl.py URL N PATH [--read1]

Each line is ``json.dumps`` of the Event JSON form (stream, id, event, data, last_event_id,
received_at as RFC 3339 UTC with milliseconds), one per event, into a plain ``open(PATH,
"w")`` text file (Python's default buffering). It exits 0 after N events, 1 if the stream
ended first. ``--read1`` swaps launchdarkly's 10 kB ``resp.stream(10000)`` reads for
``read1(65536)`` (what streamvisor does), keeping its parser: see ``ld_client``.
"""

from __future__ import annotations

import sys
from typing import Any


def ld_client(url: str, read1: bool = False) -> Any:
    """A launchdarkly ``SSEClient`` that fails instead of retrying.

    With ``read1``, the HTTP stream is read with urllib3's ``read1(65536)`` (whatever has
    arrived, at most 64 KiB) instead of launchdarkly's ``resp.stream(10000)``, which blocks
    until 10,000 bytes have arrived; that holds events back by up to one 10 kB read at low
    rates (bench/README.md, latency).
    """
    import urllib3
    from ld_eventsource import SSEClient
    from ld_eventsource.config import ConnectStrategy, ErrorStrategy
    from ld_eventsource.config.connect_strategy import ConnectionClient, ConnectionResult

    timeout = urllib3.Timeout(connect=5, read=30)
    strategy: Any = ConnectStrategy.http(url, urllib3_request_options={"timeout": timeout})
    if read1:

        class _Read1Client(ConnectionClient):
            def __init__(self) -> None:
                self.pool = urllib3.PoolManager()

            def connect(self, last_event_id: str | None) -> ConnectionResult:
                headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
                if last_event_id:
                    headers["Last-Event-ID"] = last_event_id
                resp = self.pool.request(
                    "GET", url, headers=headers, preload_content=False, timeout=timeout
                )

                def chunks() -> Any:
                    read = resp.read1
                    while True:
                        data = read(65536)
                        if not data:
                            return
                        yield data

                return ConnectionResult(chunks(), resp.release_conn, None)

            def close(self) -> None:
                self.pool.clear()

        class _Read1Strategy(ConnectStrategy):
            def create_client(self, logger: Any) -> ConnectionClient:
                return _Read1Client()

        strategy = _Read1Strategy()
    return SSEClient(strategy, initial_retry_delay=0, error_strategy=ErrorStrategy.always_fail())


def main(argv: list[str]) -> int:
    import datetime
    import json

    url, n, path = argv[0], int(argv[1]), argv[2]
    client = ld_client(url, read1="--read1" in argv)
    utc = datetime.UTC
    now = datetime.datetime.now
    count = 0
    with open(path, "w", encoding="utf-8") as out:
        write = out.write
        for ev in client.events:
            record = {
                "stream": "tail",
                "id": ev.id,
                "event": ev.event,
                "data": ev.data,
                "last_event_id": ev.last_event_id,
                "received_at": now(utc).isoformat(timespec="milliseconds"),
            }
            write(json.dumps(record) + "\n")
            count += 1
            if count >= n:
                break
    client.close()
    return 0 if count >= n else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
