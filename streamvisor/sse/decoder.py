"""Incremental, sans-I/O decoder for ``text/event-stream`` (the ``Event`` value is in ``event``).

Implements WHATWG HTML "interpreting an event stream": LF, CR and CRLF line ends (a CRLF may be
split across feeds), one leading BOM stripped, UTF-8 always (invalid bytes become U+FFFD),
``data``/``event``/``id``/``retry`` fields, comments, one leading space removed from values.

Rules of this module: no I/O, no threads, no clock other than the injectable one. Bytes
already searched are never searched again (the pending partial line is kept as raw bytes and
only new bytes are scanned), and buffered input is capped at ``max_size`` bytes: past it,
``LineTooLongError`` (a ``StreamProtocolError``) is raised.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from streamvisor.errors import LineTooLongError
from streamvisor.sse.event import Event

__all__ = ["DEFAULT_MAX_SIZE", "Decoder"]

DEFAULT_MAX_SIZE = 8 << 20
"""Default cap on buffered input, bytes (as ``StreamSpec.max_event_size``)."""


_new_event = tuple.__new__


class Decoder:
    """Incremental ``text/event-stream`` decoder.

    ``feed(bytes)`` returns the events those bytes completed; any split of the same input
    yields the same events. ``end()`` marks the end of input and discards an unterminated
    block, together with an id it carried that was not dispatched yet.

    Args:
        stream: name put in each event's ``stream`` field.
        last_event_id: a Last-Event-ID to start from (a resumed connection keeps its id
            until the server sends a new one, as browsers do).
        max_size: cap on ``buffered``: the pending partial line (bytes) plus the data of the
            unfinished event (characters).
        clock: returns the time stamped into ``received_at`` (``time.time``).
    """

    __slots__ = (
        "_block_id",
        "_clock",
        "_data",
        "_data_len",
        "_event_type",
        "_id_buffer",
        "_last_id",
        "_max",
        "_pending",
        "_retry",
        "_skip_lf",
        "_started",
        "_stream",
    )

    def __init__(
        self,
        stream: str = "",
        *,
        last_event_id: str | None = None,
        max_size: int = DEFAULT_MAX_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._stream = stream
        self._max = max_size
        self._clock = clock
        self._pending = bytearray()
        self._skip_lf = False
        self._started = False
        self._data: list[str] = []
        self._data_len = 0
        self._event_type = ""
        self._block_id: str | None = None
        self._id_buffer: str | None = last_event_id
        self._last_id: str | None = last_event_id
        self._retry: int | None = None

    @property
    def last_event_id(self) -> str | None:
        """The Last-Event-ID as of the last dispatched block (None if never set)."""
        return self._last_id

    @property
    def retry(self) -> int | None:
        """The last valid ``retry:`` value in milliseconds, or None."""
        return self._retry

    @property
    def buffered(self) -> int:
        """Bytes held for an unfinished line plus data of the unfinished event."""
        return len(self._pending) + self._data_len

    def feed(self, data: bytes) -> list[Event]:
        """Decode more bytes; return the events they completed.

        Raises:
            LineTooLongError: the pending line plus the unfinished event's data grew past
                ``max_size``. The events this call completed are not returned, and
                ``last_event_id`` stays at the last event returned so a reconnect replays them.
        """
        if not data:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if data[0] == 10:
                data = data[1:]
                if not data:
                    return []
        # The last line break in the new bytes: everything before it is complete lines.
        cut = data.rfind(b"\n")
        if cut != len(data) - 1:
            cut = max(cut, data.rfind(b"\r"))
        pending = self._pending
        limit = self._max
        if cut < 0:
            pending += data
            if len(pending) + self._data_len > limit:
                self._rollback(self._last_id)
                raise LineTooLongError(limit)
            return []
        if data[cut] == 13 and cut == len(data) - 1:
            self._skip_lf = True
        if pending:
            complete = bytes(pending) + data[: cut + 1]
            pending.clear()
        elif cut == len(data) - 1:
            complete = data
        else:
            complete = data[: cut + 1]
        if b"\r" in complete:
            # bytes.splitlines() breaks at exactly LF, CR and CRLF (unlike str.splitlines) and
            # is about twice as fast as replacing the two-character "\r\n".
            parts = complete.splitlines()
            parts.append(b"")
            complete = b"\n".join(parts)
        text = complete.decode("utf-8", "replace")
        if not self._started:
            self._started = True
            if text.startswith("\ufeff"):
                text = text[1:]
        lines = text.split("\n")
        lines.pop()  # text ends with a line break: the last piece is always empty
        last_id = self._last_id
        try:
            events = self._lines(lines)
        except LineTooLongError:
            self._rollback(last_id)
            raise
        rest = len(data) - cut - 1
        if rest:
            # The cap holds for the partial line and the unfinished event's data together.
            if rest + self._data_len > limit:
                self._rollback(last_id)
                raise LineTooLongError(limit)
            pending += data[cut + 1 :]
        return events

    def _lines(self, lines: list[str]) -> list[Event]:
        events: list[Event] = []
        append = events.append
        data = self._data
        data_len = self._data_len
        limit = self._max
        event_type = self._event_type
        block_id = self._block_id
        id_buffer = self._id_buffer
        stream = self._stream
        now = self._clock()
        for line in lines:
            if not line:
                # Dispatch: the buffer becomes the stream's Last-Event-ID even with no data.
                self._last_id = id_buffer
                if data:
                    append(
                        _new_event(
                            Event,
                            (
                                stream,
                                block_id,
                                event_type or "message",
                                "\n".join(data),
                                id_buffer,
                                now,
                            ),
                        )
                    )
                    data = []
                    data_len = 0
                event_type = ""
                block_id = None
                continue
            # The field name ends at the first colon, and one space after it is dropped.
            # Splitting at ": " handles the common form in one call; the name must then
            # hold no colon, or the first colon had no space after it.
            name, sep, value = line.partition(": ")
            if not sep or ":" in name:
                name, _, value = line.partition(":")
            if name == "data":
                data.append(value)
                data_len += len(value) + 1
                if data_len > limit:
                    raise LineTooLongError(limit)
            elif name == "id":
                if "\x00" not in value:
                    id_buffer = value
                    block_id = value
            elif name == "event":
                event_type = value
            elif name == "retry" and value.isascii() and value.isdigit():
                # Past Python's int-conversion digit limit int() raises: such a value is
                # absurd anyway, so it is ignored like any other invalid retry.
                with contextlib.suppress(ValueError):
                    self._retry = int(value)
            # Anything else (comments: empty name; unknown fields) is ignored.
        self._data = data
        self._data_len = data_len
        self._event_type = event_type
        self._block_id = block_id
        self._id_buffer = id_buffer
        return events

    def _rollback(self, last_id: str | None) -> None:
        # A feed that raises returns none of the events it completed: put the Last-Event-ID
        # back to the last event the caller actually received, so a reconnect replays them.
        self._last_id = last_id
        self._pending.clear()
        self._reset_block()

    def _reset_block(self) -> None:
        self._data = []
        self._data_len = 0
        self._event_type = ""
        self._block_id = None
        self._id_buffer = self._last_id

    def end(self) -> None:
        """Mark the end of input: discard the unterminated block and its undispatched id."""
        self._pending.clear()
        self._skip_lf = False
        self._reset_block()
