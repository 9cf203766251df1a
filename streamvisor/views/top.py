"""``streamvisor top``: a live terminal view of a daemon, read through its admin endpoint.

I/O only: a poller thread fetches ``/streams`` about once a second; the main thread reads keys
(cbreak mode, ``select`` with the poller's wake-up pipe) and draws with rich's ``Live`` on the
alternate screen. What is shown and what keys do is decided in ``views.model`` and
``views.controls`` (pure). Only the rows that fit on the screen are drawn, so 1,000 streams
cost about what 40 do.
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import sys
import termios
import threading
import time
import tty
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from streamvisor.views.client import AdminClient, AdminClientError
from streamvisor.views.controls import Command, TopState, decode_keys
from streamvisor.views.model import (
    RateTracker,
    Row,
    build_rows,
    format_age,
    format_rate,
    matches,
    totals,
)

__all__ = ["TopApp", "render"]

STATE_STYLES = {
    "connected": "green",
    "connecting": "yellow",
    "reconnecting": "yellow",
    "failed": "bold red",
    "closed": "dim",
    "disconnected": "dim",
}
FAILURE_STYLES = {"permanent": "red", "crash": "magenta", "rate_limited": "yellow"}
BREAKER_STYLES = {"open": "bold red", "half_open": "yellow"}
CHROME_LINES = 4  # title, table header, two footer lines
HELP = "↑↓ select  r reconnect  c close  s start  / filter  q quit"


class _Poller:
    """Fetches ``/streams`` every ``interval`` seconds in a daemon thread; wakes the UI."""

    def __init__(self, client: AdminClient, interval: float, wake: int) -> None:
        self._client = client
        self._interval = interval
        self._wake = wake
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._now = threading.Event()
        self.seq = 0
        self.streams: dict[str, Any] = {}
        self.fetched_at = 0.0
        self.error: str | None = None
        self._thread = threading.Thread(target=self._loop, name="streamvisor-top-poll")
        self._thread.daemon = True

    def fetch(self) -> None:
        """One fetch, recorded as the latest data or error."""
        try:
            streams = self._client.streams()
        except AdminClientError as exc:
            with self._lock:
                self.error, self.seq = str(exc), self.seq + 1
        else:
            with self._lock:
                self.streams, self.fetched_at = streams, time.time()
                self.error, self.seq = None, self.seq + 1
        try:
            os.write(self._wake, b"!")
        except OSError:
            pass  # the UI has gone

    def latest(self) -> tuple[int, dict[str, Any], float, str | None]:
        with self._lock:
            return self.seq, self.streams, self.fetched_at, self.error

    def start(self) -> None:
        self._thread.start()

    def poll_now(self) -> None:
        self._now.set()

    def stop(self) -> None:
        self._stop.set()
        self._now.set()
        self._thread.join(self._interval + 5.0)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._now.wait(self._interval)
            self._now.clear()
            if not self._stop.is_set():
                self.fetch()


def _cell(value: str | None, style: str = "") -> Text:
    return Text(value if value is not None else "-", style=style)


def render(
    rows: list[Row],
    shown: list[Row],
    window: tuple[int, int],
    state: TopState,
    title: str,
    spark_width: int,
) -> Group:
    """The whole screen: a title line, the visible slice of ``shown``, and the footer.

    Args:
        rows: every stream (for the totals).
        shown: the filtered rows, in display order.
        window: the ``[start, end)`` slice of ``shown`` to draw.
        state: selection, filter and message.
        title: the first line.
        spark_width: characters of the sparkline column (0 hides it).
    """
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    table.add_column("STREAM", no_wrap=True, overflow="ellipsis", max_width=28)
    table.add_column("STATE", no_wrap=True)
    table.add_column("EV/S", justify="right", no_wrap=True)
    if spark_width:
        table.add_column("LAST MINUTE", no_wrap=True, width=spark_width)
    table.add_column("LAST", justify="right", no_wrap=True)
    table.add_column("LAST-EVENT-ID", no_wrap=True, overflow="ellipsis", max_width=18)
    table.add_column("RESTARTS", justify="right", no_wrap=True)
    table.add_column("FAILURE", no_wrap=True)
    table.add_column("BREAKER", no_wrap=True)
    table.add_column("QUEUE", justify="right", no_wrap=True)
    table.add_column("DROPS", justify="right", no_wrap=True)
    table.add_column("CKPT LAG", justify="right", no_wrap=True)
    start, end = window
    for row in shown[start:end]:
        cells = [
            _cell(row.name),
            _cell(row.state, STATE_STYLES.get(row.state, ""))
            if not row.paused
            else _cell(f"{row.state}⏸", "magenta"),
            _cell(format_rate(row.rate)),
            *([_cell(row.spark, "cyan")] if spark_width else []),
            _cell(format_age(row.age)),
            _cell(row.last_event_id),
            _cell(str(row.restarts)),
            _cell(row.failure, FAILURE_STYLES.get(row.failure or "", "yellow")),
            _cell(row.breaker, BREAKER_STYLES.get(row.breaker or "", "")),
            _cell(str(row.queue)),
            _cell(str(row.drops), "red" if row.drops else ""),
            _cell(format_age(row.lag) if row.lag is not None else None),
        ]
        table.add_row(*cells, style="reverse" if row.name == state.selected else "")
    sums = totals(rows)
    footer = Text()
    footer.append(f"{sums.streams} streams", style="bold")
    for name, count in sums.by_state.items():
        footer.append(f"  {count} {name}", style=STATE_STYLES.get(name, ""))
    footer.append(f"   {format_rate(sums.rate)} ev/s   {sums.events:,} events")
    footer.append(f"   {sums.restarts} restarts   {sums.drops} drops")
    if len(shown) != len(rows):
        footer.append(f"   ({len(shown)} shown)")
    if state.editing:
        prompt = Text(f"filter: {state.filter}▏", style="bold")
    elif state.message:
        prompt = Text(state.message, style="yellow")
    else:
        prompt = Text(HELP + (f"   [filter: {state.filter}]" if state.filter else ""), "dim")
    return Group(Text(title, style="bold"), table, footer, prompt)


class TopApp:
    """The interactive view; ``run()`` returns the exit code.

    Args:
        client: the admin endpoint.
        interval: seconds between fetches.
        console: where to draw (default: the terminal).
    """

    def __init__(
        self, client: AdminClient, interval: float = 1.0, console: Console | None = None
    ) -> None:
        self._client = client
        self._interval = interval
        self._console = console or Console(highlight=False)
        self._tracker = RateTracker()
        self._state = TopState()
        self._rows: list[Row] = []
        self._seq = -1

    def run(self) -> int:
        """Draw until ``q`` (0); the first fetch failing is reported on stderr (1)."""
        wake_r, wake_w = os.pipe()
        poller = _Poller(self._client, self._interval, wake_w)
        poller.fetch()
        _, _, _, error = poller.latest()
        if error is not None:
            os.close(wake_r)
            os.close(wake_w)
            print(f"streamvisor top: {error}", file=sys.stderr)
            return 1
        fd = sys.stdin.fileno()
        saved = termios.tcgetattr(fd)
        poller.start()
        try:
            tty.setcbreak(fd)
            with Live(
                console=self._console,
                screen=True,
                auto_refresh=False,
                redirect_stdout=False,
                redirect_stderr=False,
            ) as live:
                return self._loop(live, poller, fd, wake_r)
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
            poller.stop()
            os.close(wake_r)
            os.close(wake_w)

    def _loop(self, live: Live, poller: _Poller, fd: int, wake: int) -> int:
        while True:
            self._draw(live, poller)
            ready, _, _ = select.select([fd, wake], [], [], self._interval)
            if wake in ready:
                os.read(wake, 4096)
            if fd not in ready:
                continue
            data = os.read(fd, 1024)
            if not data:
                return 0  # the terminal went away
            names = [r.name for r in self._shown()]
            page = max(1, self._console.size.height - CHROME_LINES)
            for key in decode_keys(data):
                self._state.message = ""
                command = self._state.handle(key, names, page)
                if command is None:
                    continue
                if command.action == "quit":
                    return 0
                self._run(command, poller)

    def _run(self, command: Command, poller: _Poller) -> None:
        assert command.stream is not None
        try:
            self._state.message = self._client.command(command.stream, command.action)
        except AdminClientError as exc:
            self._state.message = str(exc)
        poller.poll_now()

    def _shown(self) -> list[Row]:
        text = self._state.filter
        return [r for r in self._rows if matches(r, text)] if text.strip() else self._rows

    def _draw(self, live: Live, poller: _Poller) -> None:
        width, height = self._console.size
        spark_width = 20 if width >= 140 else 10 if width >= 110 else 0
        seq, streams, fetched_at, error = poller.latest()
        if seq != self._seq:
            self._seq = seq
            if error is None:
                counts = {n: int(i.get("events") or 0) for n, i in streams.items()}
                self._tracker.update(fetched_at, counts)
                self._rows = build_rows(streams, self._tracker, fetched_at, spark_width)
        shown = self._shown()
        window = self._state.settle([r.name for r in shown], max(1, height - CHROME_LINES))
        title = f"streamvisor top  {self._client.shown}"
        if error is not None:
            title += f"   ! {error} (data from {format_age(time.time() - fetched_at)} ago)"
        live.update(render(self._rows, shown, window, self._state, title, spark_width))
        live.refresh()


def run_top(args: argparse.Namespace) -> int:
    """``streamvisor top [CONFIG | --admin URL] [--token T] [--interval S]``."""
    from streamvisor.config.load import ConfigErrors
    from streamvisor.views.launch import LocalDaemon, LocalDaemonError

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print("streamvisor top: needs a terminal (stdin and stdout)", file=sys.stderr)
        return 2
    token = args.token or os.environ.get("STREAMVISOR_TOKEN") or None
    local: LocalDaemon | None = None
    quiet = logging.NullHandler()  # no log line may land on the drawn screen
    root = logging.getLogger()
    root.addHandler(quiet)
    try:
        if args.config is not None:
            try:
                local = LocalDaemon(args.config)
            except ConfigErrors as exc:
                print(exc.format(), file=sys.stderr)
                return 2
            try:
                base = local.start()
            except LocalDaemonError as exc:
                print(f"streamvisor top: {exc}", file=sys.stderr)
                return 1
            token = token or local.token
        else:
            base = args.admin
        client = AdminClient(base, token)
        try:
            return TopApp(client, args.interval).run()
        finally:
            client.close()
    finally:
        if local is not None:
            local.stop()
        root.removeHandler(quiet)
