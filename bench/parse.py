"""Parse-only throughput of SSE decoders: streamvisor's Decoder against other Python parsers.

Usage::

    python bench/parse.py [--repeats N] [--size MIB] [--json]

Every contender gets the same pre-chunked bytes per scenario (no sockets, no HTTP). Before it
is timed, each contender's output is checked against the events the generator wrote (count,
and type and data of every event); a contender that gets a scenario wrong is reported as WRONG
(or ERROR if it raised) and not timed. Timings are the best of N runs; ratios are against
sseclient-py measured in the same run.

Contenders (each skipped when it cannot be imported):

- streamvisor: ``streamvisor.sse.Decoder().feed(chunk)`` for each chunk, then ``end()``.
- sseclient-py: ``sseclient.SSEClient(iter(chunks)).events()``.
- launchdarkly-eventsource: its lowest sync layer, below the HTTP client and retry logic:
  ``ld_eventsource.reader._SSEReader(_BufferedLineReader.lines_from(iter(chunks)))``
  ``.events_and_comments()``, keeping the ``ld_eventsource.actions.Event`` items. These are
  private names (``SSEClient`` itself always opens its own connection through a
  ``ConnectStrategy``); they are what ``SSEClient`` runs on the response body.
- httpx-sse: ``httpx_sse._decoders.SSEDecoder`` fed lines from ``httpx._decoders.LineDecoder``
  over an incremental UTF-8 decoder, which is what ``EventSource.iter_sse()`` does with
  ``response.iter_lines()``. Private names again; untested when httpx-sse is not installed.
"""

from __future__ import annotations

import argparse
import codecs
import gc
import json
import platform
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

Parsed = list[tuple[str, str]]  # (event type, data) per event


@dataclass(frozen=True)
class Parser:
    """``run`` is what gets timed: chunks in, the contender's own event objects out.
    ``extract`` turns those into (type, data) pairs for the correctness check."""

    run: Callable[[list[bytes]], list[Any]]
    extract: Callable[[list[Any]], Parsed]


def _type_and_data(events: list[Any]) -> Parsed:
    return [(e.event, e.data) for e in events]


# -- scenarios ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    chunks: list[bytes]
    expected: Parsed
    size: int


def _chunked(blob: bytes, size: int) -> list[bytes]:
    return [blob[i : i + size] for i in range(0, len(blob), size)]


def _single_line_events(
    event_size: int, total: int, eol: bytes, blank: bytes | None = None
) -> tuple[bytes, Parsed]:
    """Events of ``id``, ``event`` and one ``data`` line, ``event_size`` bytes each on the wire.

    ``blank`` is the empty line that ends each event (``eol`` unless given).
    """
    blank = eol if blank is None else blank
    parts: list[bytes] = []
    expected: Parsed = []
    count = total // event_size
    for i in range(count):
        kind = "tick" if i % 3 else "message"
        head = b"id: %d" % i + eol + (b"event: tick" + eol if i % 3 else b"")
        filler = event_size - len(head) - len(b"data: ") - 9 - len(eol) - len(blank)
        data = f"{i:08d} " + "x" * max(filler, 0)
        parts.append(head + b"data: " + data.encode() + eol + blank)
        expected.append((kind, data))
    return b"".join(parts), expected


def _multi_line_events(total: int) -> tuple[bytes, Parsed]:
    """Events with a comment, an event type and four data lines (~330 bytes each)."""
    parts: list[bytes] = []
    expected: Parsed = []
    i = 0
    size = 0
    while size < total:
        lines = [f"{i:08d} line {n} " + "y" * 60 for n in range(4)]
        body = (
            b": keep-alive\nid: %d\nevent: update\n" % i
            + b"".join(b"data: " + line.encode() + b"\n" for line in lines)
            + b"\n"
        )
        parts.append(body)
        expected.append(("update", "\n".join(lines)))
        size += len(body)
        i += 1
    return b"".join(parts), expected


def build_scenarios(total: int) -> list[Scenario]:
    def make(name: str, blob: bytes, expected: Parsed, chunk: int) -> Scenario:
        return Scenario(name, _chunked(blob, chunk), expected, len(blob))

    b256, e256 = _single_line_events(256, total, b"\n")
    b64, e64 = _single_line_events(64, total // 2, b"\n")
    multi, emulti = _multi_line_events(total)
    crlf, ecrlf = _single_line_events(256, total, b"\r\n")
    cr, ecr = _single_line_events(256, total, b"\r")
    mixed, emixed = _single_line_events(256, total, b"\n", b"\r\n")
    return [
        make("256 B events, 64 KiB chunks", b256, e256, 64 << 10),
        make("256 B events, 1 KiB chunks", b256, e256, 1 << 10),
        make("64 B events, 64 KiB chunks", b64, e64, 64 << 10),
        make("multi-line events, 64 KiB chunks", multi, emulti, 64 << 10),
        make("CRLF 256 B events, 64 KiB chunks", crlf, ecrlf, 64 << 10),
        make("CR-only 256 B events, 64 KiB chunks", cr, ecr, 64 << 10),
        # Spec edge, not a speed scenario: lines end in LF, events in CRLF ("\n\r\n").
        make("LF lines + CRLF blank, 64 KiB chunks", mixed, emixed, 64 << 10),
    ]


# -- contenders --------------------------------------------------------------------------------


def _streamvisor() -> Parser:
    from streamvisor.sse import Decoder

    def parse(chunks: list[bytes]) -> list[Any]:
        decoder = Decoder(max_size=64 << 20)
        feed = decoder.feed
        events: list[Any] = []
        extend = events.extend
        for chunk in chunks:
            extend(feed(chunk))
        decoder.end()
        return events

    return Parser(parse, _type_and_data)


def _sseclient() -> Parser:
    import sseclient

    def parse(chunks: list[bytes]) -> list[Any]:
        return list(sseclient.SSEClient(iter(chunks)).events())

    return Parser(parse, _type_and_data)


def _launchdarkly() -> Parser:
    from ld_eventsource.actions import Event
    from ld_eventsource.reader import _BufferedLineReader, _SSEReader

    def parse(chunks: list[bytes]) -> list[Any]:
        reader = _SSEReader(_BufferedLineReader.lines_from(iter(chunks)))
        return [a for a in reader.events_and_comments() if isinstance(a, Event)]

    return Parser(parse, _type_and_data)


def _httpx_sse() -> Parser:
    from httpx._decoders import LineDecoder
    from httpx_sse._decoders import SSEDecoder

    def lines(chunks: Iterable[bytes]) -> Iterable[str]:
        text = codecs.getincrementaldecoder("utf-8")("replace")
        splitter = LineDecoder()
        for chunk in chunks:
            yield from splitter.decode(text.decode(chunk))
        yield from splitter.decode(text.decode(b"", final=True))
        yield from splitter.flush()

    def parse(chunks: list[bytes]) -> list[Any]:
        decoder = SSEDecoder()
        out: list[Any] = []
        for line in lines(chunks):
            sse = decoder.decode(line.rstrip("\n"))
            if sse is not None:
                out.append(sse)
        return out

    return Parser(parse, _type_and_data)


CONTENDERS: list[tuple[str, Callable[[], Parser]]] = [
    ("streamvisor", _streamvisor),
    ("sseclient-py", _sseclient),
    ("launchdarkly", _launchdarkly),
    ("httpx-sse", _httpx_sse),
]
BASELINE = "sseclient-py"


# -- running -----------------------------------------------------------------------------------


@dataclass
class Result:
    contender: str
    scenario: str
    status: str  # "ok", "WRONG", "ERROR"
    events_per_s: float | None = None
    seconds: float | None = None
    note: str = ""


def _check(parsed: Parsed, expected: Parsed) -> str:
    if len(parsed) != len(expected):
        return f"{len(parsed)} events, expected {len(expected)}"
    for index, (got, want) in enumerate(zip(parsed, expected, strict=True)):
        if got != want:
            return f"event {index}: got {got!r:.60}, expected {want!r:.60}"
    return ""


def run(repeats: int, total: int) -> tuple[list[Scenario], list[str], list[Result]]:
    scenarios = build_scenarios(total)
    parsers: list[tuple[str, Parser]] = []
    skipped: list[str] = []
    for name, factory in CONTENDERS:
        try:
            parsers.append((name, factory()))
        except ImportError as exc:
            skipped.append(f"{name} ({exc.name or exc})")
    results: list[Result] = []
    for scenario in scenarios:
        for name, parse in parsers:
            try:
                problem = _check(parse.extract(parse.run(scenario.chunks)), scenario.expected)
            except Exception as exc:  # a contender that crashes is reported, not fatal
                results.append(Result(name, scenario.name, "ERROR", note=repr(exc)[:80]))
                continue
            if problem:
                results.append(Result(name, scenario.name, "WRONG", note=problem))
                continue
            best = float("inf")
            for _ in range(repeats):
                gc.collect()
                start = time.perf_counter()
                parse.run(scenario.chunks)
                best = min(best, time.perf_counter() - start)
            results.append(Result(name, scenario.name, "ok", len(scenario.expected) / best, best))
    return scenarios, skipped, results


def _table(scenarios: list[Scenario], skipped: list[str], results: list[Result]) -> str:
    names = list(dict.fromkeys(r.contender for r in results))
    by_key = {(r.scenario, r.contender): r for r in results}
    width = max(len(s.name) for s in scenarios) + 2
    col = 24
    lines = ["scenario".ljust(width) + "".join(n.ljust(col) for n in names)]
    lines.append("-" * len(lines[0]))
    for scenario in scenarios:
        base = by_key.get((scenario.name, BASELINE))
        row = scenario.name.ljust(width)
        for name in names:
            r = by_key[(scenario.name, name)]
            if r.status != "ok" or r.events_per_s is None:
                cell = r.status
            else:
                cell = f"{r.events_per_s / 1000:,.0f}k ev/s"
                if base is not None and base.events_per_s and name != BASELINE:
                    cell += f" ({r.events_per_s / base.events_per_s:.2f}x)"
            row += cell.ljust(col)
        lines.append(row)
    notes = [f"  {r.contender} on {r.scenario}: {r.status}: {r.note}" for r in results if r.note]
    if notes:
        lines += ["", "not timed:", *notes]
    if skipped:
        lines += ["", "skipped (not importable): " + ", ".join(skipped)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per cell (best wins)")
    parser.add_argument("--size", type=float, default=4.0, help="MiB of stream per scenario")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    scenarios, skipped, results = run(args.repeats, int(args.size * (1 << 20)))
    if args.json:
        baseline = {r.scenario: r.events_per_s for r in results if r.contender == BASELINE}
        print(
            json.dumps(
                {
                    "python": platform.python_version(),
                    "repeats": args.repeats,
                    "scenarios": [
                        {"name": s.name, "bytes": s.size, "events": len(s.expected)}
                        for s in scenarios
                    ],
                    "skipped": skipped,
                    "results": [
                        {
                            "contender": r.contender,
                            "scenario": r.scenario,
                            "status": r.status,
                            "events_per_s": r.events_per_s,
                            "best_seconds": r.seconds,
                            "vs_sseclient": (
                                r.events_per_s / baseline[r.scenario]
                                if r.events_per_s and baseline.get(r.scenario)
                                else None
                            ),
                            "note": r.note,
                        }
                        for r in results
                    ],
                },
                indent=2,
            )
        )
    else:
        print(f"Python {platform.python_version()}, best of {args.repeats}, {args.size:g} MiB each")
        print(_table(scenarios, skipped, results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
