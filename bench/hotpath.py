"""Per-event cost of each step of streamvisor's hot path, in microseconds, one thread.

Input: reads of ``--per-read`` events of 256 B (the source's events; 256 per read is one
64 KiB ``read1``), ids ascending so dedup keeps them all. Each step is timed on its own
(best of ``--repeat``), in the order an event takes:

* stream thread: ``Decoder.feed`` (bytes -> Event), ``StreamBook.admit`` + ``commit``
  (dedup digest and window), ``digest()`` alone, the outlets' ``offer`` (per-event
  envelopes or one ``EventBatch``; a ``MemoryBuffer.put`` for a sink);
* subscriber thread: pykka's loop per message (``inbox.get``, dispatch, ``on_receive``);
* sink thread: ``Event.to_json`` and the alternatives below, ``FileSink.write`` and
  ``TailSink.write`` into a real file.

JSON alternatives (same bytes out, checked): stdlib ``json.dumps`` of ``to_dict()`` (today),
a template filled with the C string escaper ``json.encoder.c_encode_basestring`` (stdlib
only), and ``orjson.dumps`` (if installed; not a dependency).

``--compare DIR`` times another copy of the code too (e.g. ``git archive COMMIT streamvisor |
tar -x -C DIR``): both run in fresh processes, alternating 3 times, best kept, side by side.

    python bench/hotpath.py [--per-read 256] [--events 25600] [--repeat 15] [--compare DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from benchlib import ensure_repo_on_path, machine_note, table
from sse_source import make_event

if os.environ.get("HOTPATH_SRC"):  # --compare: this process times another copy
    sys.path.insert(0, os.environ["HOTPATH_SRC"])
    # an editable install's finder would win over sys.path: drop it
    sys.meta_path = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]
else:
    ensure_repo_on_path()

from streamvisor.actors.book import StreamBook

try:  # where ActorOutlet lives moved with the layout work (issue 9)
    from streamvisor.actors.actor_outlet import ActorOutlet
except ImportError:
    from streamvisor.actors.outlets import ActorOutlet  # type: ignore[no-redef]
from streamvisor.buffers.memory import MemoryBuffer
from streamvisor.cli.tail import TailSink
from streamvisor.policy.dedup import digest
from streamvisor.policy.flow import START, BufferSettings, Position, WhenFull
from streamvisor.sinks.file import FileSink
from streamvisor.sse import Decoder, Event, format_timestamp

try:
    import orjson
except ImportError:  # optional
    orjson = None


def _best(fn: Callable[[], Any], events: int, repeat: int) -> float:
    """Best µs per event of ``fn`` (which handles ``events`` events) over ``repeat`` runs."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best / events * 1e6


class _Control:
    def abandoned(self) -> bool:
        return False

    def pause(self, outlet: str) -> None:
        pass

    def resume(self) -> None:
        pass


class _Ref:
    """Enough of a pykka ActorRef for ActorOutlet: a queue.Queue inbox nobody drains."""

    def __init__(self) -> None:
        self.actor_inbox: queue.Queue[Any] = queue.Queue()

    def is_alive(self) -> bool:
        return True

    def tell(self, message: Any) -> None:
        self.actor_inbox.put(message)


_ESC = json.encoder.c_encode_basestring  # type: ignore[attr-defined]


def to_json_template(ev: Event) -> str:
    """The Event JSON line with the C string escaper; same text as ``Event.to_json``."""
    eid = _ESC(ev.id) if ev.id is not None else "null"
    lid = _ESC(ev.last_event_id) if ev.last_event_id is not None else "null"
    return (
        f'{{"stream":{_ESC(ev.stream)},"id":{eid},"event":{_ESC(ev.event)},'
        f'"data":{_ESC(ev.data)},"last_event_id":{lid},'
        f'"received_at":"{format_timestamp(ev.received_at)}"}}'
    )


def to_json_dumps(ev: Event) -> str:
    """Event.to_json as it was: json.dumps of to_dict() (builds an encoder per call)."""
    return json.dumps(ev.to_dict(), ensure_ascii=False, separators=(",", ":"))


def to_json_orjson(ev: Event) -> bytes:
    assert orjson is not None
    return orjson.dumps(ev.to_dict())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-read", type=int, default=256)
    parser.add_argument("--events", type=int, default=25_600)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--compare", metavar="DIR", help="a folder holding another streamvisor/")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.compare:
        return _compare(args)
    k, total, rep = args.per_read, args.events // args.per_read * args.per_read, args.repeat
    reads = [b"".join(make_event(i) for i in range(s + 1, s + k + 1)) for s in range(0, total, k)]
    if args.json:
        import streamvisor

        print(f"streamvisor from {os.path.dirname(streamvisor.__file__)}", file=sys.stderr)
    else:
        print(f"hotpath: {total} events, {k} per read ({len(reads[0])} B); {machine_note()}")
    rows: list[list[str]] = []

    def row(thread: str, step: str, us: float, note: str = "") -> None:
        rows.append([thread, step, f"{us:.3f}", f"{1e6 / us:,.0f}" if us else "", note])

    # -- stream thread ----------------------------------------------------------------
    def decode() -> list[list[Event]]:
        dec = Decoder("bench")
        return [dec.feed(r) for r in reads]

    batches = decode()
    row("stream", "Decoder.feed (bytes -> Events)", _best(decode, total, rep))
    flat = [ev for b in batches for ev in b]

    def build() -> None:
        new = tuple.__new__
        for ev in flat:
            new(Event, (ev.stream, ev.id, ev.event, ev.data, ev.last_event_id, 0.0))

    row("stream", "  of which: building the Event tuples", _best(build, total, rep))

    def admit() -> None:
        book = StreamBook(4096)
        for b in batches:
            book.admit(b)
            book.commit()

    row("stream", "StreamBook.admit + commit (dedup)", _best(admit, total, rep))
    row(
        "stream",
        "  of which: digest() (crc32 + hex)",
        _best(lambda: [digest(e.event, e.data) for e in flat], total, rep),
    )
    ctl = _Control()

    def offer(batch: bool) -> Callable[[], None]:
        def run() -> None:
            outlet = ActorOutlet("o", _Ref(), None, None, WhenFull.BLOCK, 10**9, batch)  # type: ignore[arg-type]
            for i, b in enumerate(batches):
                outlet.offer("bench", b, Position(i, None), START, ctl)

        return run

    row("stream", "ActorOutlet.offer, per-event envelopes", _best(offer(False), total, rep))
    row("stream", "ActorOutlet.offer, batch=True", _best(offer(True), total, rep))

    def put() -> None:
        buf = MemoryBuffer(BufferSettings(max_events=10**9))
        for i, b in enumerate(batches):
            buf.put("bench", b, Position(i, None), START, ctl)

    row("stream", "MemoryBuffer.put (a sink's buffer)", _best(put, total, rep))

    # -- subscriber thread: pykka's loop ------------------------------------------------
    import pykka
    from pykka._envelope import Envelope

    class Counter(pykka.ThreadingActor):
        def __init__(self, per_event: bool, done: threading.Event) -> None:
            super().__init__()
            self.per_event, self.done, self.seen = per_event, done, 0

        def on_receive(self, message: Any) -> Any:
            self.seen += 1 if self.per_event else len(message)
            if self.seen >= total:
                self.done.set()

    from streamvisor.actors.inbox import SimpleInbox

    class SimpleCounter(SimpleInbox, Counter):
        """The same actor with streamvisor's own SimpleQueue inbox (C put/get)."""

    def drain(per_event: bool, actor: type[Counter] = Counter) -> float:
        """Best µs/event for an actor to take pre-filled messages (only the consumer runs)."""
        best = float("inf")
        for _ in range(rep):
            done = threading.Event()
            ref = actor.start(per_event, done)
            items = [Envelope(ev) for ev in flat] if per_event else [Envelope(b) for b in batches]
            inbox = ref.actor_inbox
            t0 = time.perf_counter()
            if isinstance(inbox, queue.Queue):
                with inbox.mutex:
                    inbox.queue.extend(items)
                    inbox.unfinished_tasks += len(items)
                    inbox.not_empty.notify()
            else:  # SimpleQueue: no bulk put; the consumer already runs meanwhile
                for item in items:
                    inbox.put(item)
            done.wait(60)
            best = min(best, time.perf_counter() - t0)
            ref.stop()
        return best / total * 1e6

    row("subscriber", "pykka loop + on_receive, one Event per message", drain(True))
    row("subscriber", "pykka loop + on_receive, one EventBatch per read", drain(False))
    row(
        "subscriber",
        "  what-if: one Event per message, SimpleQueue inbox",
        drain(True, SimpleCounter),
        "puts included",
    )

    # -- sink thread ------------------------------------------------------------------
    # as the decoder stamps them: one received_at per read
    now = time.time()
    stamped = [
        ev._replace(stream="tail", received_at=now + j * 0.001)
        for j, b in enumerate(batches)
        for ev in b
    ]
    sample = stamped[0]
    assert to_json_template(sample) == sample.to_json() == to_json_dumps(sample)
    chunks = [stamped[i : i + 1000] for i in range(0, total, 1000)]  # FileSink's max_batch

    def payload(line: Callable[[Event], str]) -> Callable[[], None]:
        """The bytes of each 1000-event write, as FileSink builds them."""
        return lambda: ["".join([line(e) + "\n" for e in c]).encode("utf-8") for c in chunks]

    row(
        "sink",
        "JSONL payload: json.dumps(to_dict(), ...) (the stdlib way)",
        _best(payload(to_json_dumps), total, rep),
        "stdlib",
    )
    row(
        "sink",
        "JSONL payload: Event.to_json",
        _best(payload(Event.to_json), total, rep),
    )
    row(
        "sink",
        "  of which: to_dict() + format_timestamp (cached)",
        _best(lambda: [e.to_dict() for e in stamped], total, rep),
    )
    import streamvisor.sse as sse_module

    if hasattr(sse_module, "to_jsonl"):  # the sinks' encoder (orjson) since issue 8
        to_jsonl = sse_module.to_jsonl
        row(
            "sink",
            "JSONL payload: sse.to_jsonl (file, stdout, tail sinks)",
            _best(lambda: [to_jsonl(c) for c in chunks], total, rep),
        )
    row(
        "sink",
        "JSONL payload: c_encode_basestring template",
        _best(payload(to_json_template), total, rep),
        "stdlib only, same text",
    )
    if orjson is not None:
        dumps, opt = orjson.dumps, orjson.OPT_APPEND_NEWLINE
        assert json.loads(to_json_orjson(sample)) == json.loads(sample.to_json())
        row(
            "sink",
            "JSONL payload: orjson.dumps(to_dict(), OPT_APPEND_NEWLINE)",
            _best(
                lambda: [b"".join([dumps(e.to_dict(), option=opt) for e in c]) for c in chunks],
                total,
                rep,
            ),
            "same JSON values",
        )
    row(
        "sink",
        "format_timestamp, uncached (a new time per event)",
        _best(lambda: [format_timestamp(1e9 + i * 1e-3) for i in range(total)], total, rep),
    )
    with tempfile.TemporaryDirectory() as tmp:
        sink = FileSink(os.path.join(tmp, "f.jsonl"), max_batch=1000)
        row(
            "sink",
            "FileSink.write (1000 per write)",
            _best(lambda: [sink.write(c) for c in chunks], total, rep),
        )
        sink.close()
        with open(os.path.join(tmp, "t.jsonl"), "w", encoding="utf-8") as out:
            tail = TailSink(out, "jsonl", None, threading.Event())
            row(
                "sink",
                "TailSink.write (one read per write)",
                _best(
                    lambda: [
                        tail.write(b) for b in [stamped[i : i + k] for i in range(0, total, k)]
                    ],
                    total,
                    rep,
                ),
            )
    if args.json:
        print(json.dumps({f"{r[0]}|{r[1]}": float(r[2]) for r in rows}))
        return 0
    print()
    print(table(["thread", "step", "µs/event", "events/s alone", "note"], rows))
    return 0


def _compare(args: argparse.Namespace) -> int:
    """Time this checkout and ``args.compare`` alternately in fresh processes."""
    import subprocess

    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    srcs = {"other (--compare)": os.path.abspath(args.compare), "this checkout": here}
    best: dict[str, dict[str, float]] = {name: {} for name in srcs}
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--json",
        "--per-read",
        str(args.per_read),
        "--events",
        str(args.events),
        "--repeat",
        str(args.repeat),
    ]
    print(f"hotpath --compare {args.compare}: 3 alternating runs each; {machine_note()}")
    for _ in range(3):
        for name, src in srcs.items():
            env = dict(os.environ, HOTPATH_SRC=src)
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
            if out.returncode != 0:
                raise RuntimeError(f"{name}: {out.stderr[-500:]}")
            if not out.stderr.strip().endswith(os.path.join(src, "streamvisor")):
                raise RuntimeError(f"{name}: imported {out.stderr.strip()!r}, not {src}")
            for step, us in json.loads(out.stdout.splitlines()[-1]).items():
                best[name][step] = min(us, best[name].get(step, float("inf")))
    steps = list(dict.fromkeys([*best["this checkout"], *best["other (--compare)"]]))
    rows = []
    for step in steps:
        old, new = best["other (--compare)"].get(step), best["this checkout"].get(step)
        change = f"{new / old:.2f}x" if old and new else ""
        rows.append(
            [*step.split("|"), f"{old:.3f}" if old else "", f"{new:.3f}" if new else "", change]
        )
    print()
    print(table(["thread", "step", "µs/event other", "µs/event this", "this/other"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
