"""HTTP/1.1 chunked transfer coding, decoded without I/O (RFC 9112 section 7.1).

Why our own: on a chunked body, ``http.client``'s ``read1`` returns at most one chunk per
call, and web frameworks (Flask, Starlette, Express, Go's ``http.Flusher``) send one chunk
per event. Fed through it, 256 B events reached user code at 0.18-0.45x a bare
launchdarkly-eventsource loop (bench/flow.py ``--chunked``); reading the socket's bytes in
bulk and taking the framing off here does a whole read's chunks at once.

Lenient where ``http.client`` is (blanks around the size, any chunk extension, LF without
CR), strict where a wrong guess would corrupt events: a size line that is not hex, or data
not followed by a line end, is a ``ChunkedError``. Trailer fields are read and ignored.
"""

from __future__ import annotations

import re

__all__ = ["MAX_LINE", "ChunkedDecoder", "ChunkedError"]

MAX_LINE = 4096
"""Longest chunk-size or trailer line accepted, in bytes (extensions included)."""

# The size line, optionally after the previous chunk's line end: "\r\n1a;ext=1\r\n".
_SIZE_LINE = re.compile(rb"[ \t]*([0-9A-Fa-f]{1,16})[ \t]*(?:;[^\n]*)?\r?\n")
_NEXT_SIZE_LINE = re.compile(rb"\r?\n[ \t]*([0-9A-Fa-f]{1,16})[ \t]*(?:;[^\n]*)?\r?\n")

_SIZE, _DATA, _DATA_END, _TRAILER, _DONE = range(5)


class ChunkedError(ValueError):
    """The body breaks the chunked framing (RFC 9112 section 7.1): the stream cannot go on."""


class ChunkedDecoder:
    """Take the chunked framing off a body fed in pieces of any size.

    ``feed(data) -> bytes`` returns the body bytes those pieces complete (possibly
    ``b""``: only framing arrived). ``done`` turns true after the last chunk and its
    trailer; bytes after it are ignored. Broken framing raises ``ChunkedError``, but
    only after the body bytes before it were returned: the events a server sent before
    its framing broke are delivered. Not thread-safe (one reader).
    """

    __slots__ = ("_carry", "_error", "_left", "_state")

    def __init__(self) -> None:
        self._carry = b""  # an incomplete size, line-end or trailer line
        self._left = 0  # _DATA: bytes of the current chunk still to come
        self._state = _SIZE
        self._error: ChunkedError | None = None  # raised at the next feed

    @property
    def done(self) -> bool:
        """True once the last chunk (size 0) and the trailer section ended."""
        return self._state == _DONE

    def check(self) -> None:
        """Raise the ``ChunkedError`` a ``feed`` found after body bytes it returned, if any.

        Call it before waiting for more input: the framing is already broken.
        """
        if self._error is not None:
            raise self._error

    def feed(self, data: bytes) -> bytes:
        """The body bytes in ``data`` (after what earlier calls left over).

        Raises:
            ChunkedError: a size line that is not 1-16 hex digits (with optional
                extensions), chunk data not followed by CRLF, or a line over ``MAX_LINE``;
                raised by the call that found it when no body bytes came before it in
                that call, otherwise by the next call (and by every call after).
        """
        if self._error is not None:
            raise self._error
        if self._carry:
            data, self._carry = self._carry + data, b""
        state, left = self._state, self._left
        out: list[bytes] = []
        pos, end = 0, len(data)
        while pos < end:
            if state == _DATA:
                stop = pos + left
                if stop > end:
                    out.append(data[pos:] if pos else data)
                    left -= end - pos
                    break
                out.append(data[pos:stop])
                pos, left, state = stop, 0, _DATA_END
            elif state in (_DATA_END, _SIZE):
                match = (_NEXT_SIZE_LINE if state == _DATA_END else _SIZE_LINE).match(data, pos)
                if match is None:
                    self._incomplete(data, pos, state, out)
                    break
                pos = match.end()
                left = int(match.group(1), 16)
                state = _DATA if left else _TRAILER
            elif state == _TRAILER:
                newline = data.find(b"\n", pos)
                if newline < 0:
                    self._incomplete(data, pos, state, out)
                    break
                if newline == pos or (newline == pos + 1 and data[pos] == 13):
                    state = _DONE  # the empty line that ends the trailer section
                pos = newline + 1
            else:  # _DONE: anything after the body is not ours
                break
        self._state, self._left = state, left
        if len(out) == 1:
            return out[0]
        return b"".join(out)

    def _incomplete(self, data: bytes, pos: int, state: int, out: list[bytes]) -> None:
        """Keep an unfinished line for the next feed, or fail if it can never be valid:
        raise now when ``out`` is empty, else keep the error for the next feed."""
        try:
            self._check_incomplete(data, pos, state)
        except ChunkedError as exc:
            self._error = exc
            if not out:
                raise

    def _check_incomplete(self, data: bytes, pos: int, state: int) -> None:
        rest = data[pos:]
        line = rest
        if state == _DATA_END:  # the data's line end, then the next size line
            if rest == b"\r":
                self._carry = rest
                return
            if rest.startswith(b"\r\n"):
                line = rest[2:]
            elif rest.startswith(b"\n"):
                line = rest[1:]
            else:
                raise ChunkedError("chunk data is not followed by CRLF")
        if state != _TRAILER and b"\n" in line:
            shown = line[: line.index(b"\n")].rstrip(b"\r")[:40]
            raise ChunkedError(f"invalid chunk size line {shown!r}")
        if len(line) > MAX_LINE:
            kind = "trailer" if state == _TRAILER else "chunk size"
            raise ChunkedError(f"{kind} line longer than {MAX_LINE} bytes")
        self._carry = rest
