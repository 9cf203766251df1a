"""``BodyReader``: an SSE response's body bytes, read in sizes that suit the stream.

Two decisions live here, both measured (bench/README.md):

* **Read sizes** (``next_read_size``): a blocked read holds a buffer of the size it asked
  for, so an idle stream asks for 1 KiB; a full read means a burst is waiting, so the next
  asks for 256 KiB (fewer reads, fewer hops to other threads).
* **Chunked bodies** are read from the socket's buffered reader in bulk and de-chunked by
  ``ChunkedDecoder``: ``http.client``'s ``read1`` hands out one chunk per call, and servers
  send one chunk per event (0.18-0.45x a bare client before, 1.3-2.2x after). A body with a
  Content-Encoding stays on urllib3's ``read1``, which decodes it as it arrives.
"""

from __future__ import annotations

import http.client
from typing import Any

import requests

from streamvisor.upstream.chunked import ChunkedDecoder

__all__ = [
    "BUSY_CHUNK_SIZE",
    "CHUNK_SIZE",
    "QUIET_BELOW",
    "QUIET_CHUNK_SIZE",
    "BodyReader",
    "next_read_size",
]

QUIET_CHUNK_SIZE = 1024
"""Chunk a read asks for on an idle stream (after a read of under ``QUIET_BELOW`` bytes,
and first). A blocked read holds a buffer of the size it asked for, for as long as the
stream is idle: with 64 KiB, 1000 idle streams held 4-8 MiB more RSS (bench/memory.py)."""
QUIET_BELOW = 256
"""A read of fewer bytes (a heartbeat comment, one small event) makes the next ask quiet."""
CHUNK_SIZE = 65536
"""Chunk a read asks for while events trickle in."""
BUSY_CHUNK_SIZE = 262144
"""Chunk asked for after a full read: fewer reads and thread hops in a burst (bench/README)."""


def next_read_size(asked: int, got: int) -> int:
    """The size the next read asks for, after a read that asked ``asked`` bytes got ``got``.

    A full read means more is waiting: ``BUSY_CHUNK_SIZE``, kept while reads return over a
    quarter of ``CHUNK_SIZE``. A read under ``QUIET_BELOW`` bytes: ``QUIET_CHUNK_SIZE``
    (an idle stream's blocked read then holds 1 KiB). Otherwise ``CHUNK_SIZE``.
    """
    if got >= asked or (asked == BUSY_CHUNK_SIZE and got > CHUNK_SIZE // 4):
        return BUSY_CHUNK_SIZE
    return QUIET_CHUNK_SIZE if got < QUIET_BELOW else CHUNK_SIZE


class BodyReader:
    """``read() -> bytes`` of one open streaming response; ``b""`` at the end of the body.

    Not thread-safe (one reader). Transport exceptions (timeouts, resets, urllib3's decode
    errors) and ``ChunkedError`` pass through for the caller to classify; ``truncated``
    tells a chunked body that ended before its last chunk from a clean end.
    """

    __slots__ = ("_chunks", "_fp", "_raw", "_size")

    def __init__(self, response: requests.Response) -> None:
        self._raw: Any = response.raw
        self._size = QUIET_CHUNK_SIZE
        self._fp = _chunked_body(response)
        self._chunks = ChunkedDecoder() if self._fp is not None else None

    @property
    def truncated(self) -> bool:
        """True for a chunked body whose last chunk has not come (yet)."""
        return self._chunks is not None and not self._chunks.done

    def read(self) -> bytes:
        """The next body bytes (at most ``BUSY_CHUNK_SIZE`` read), or ``b""`` at the end.

        Raises:
            ChunkedError: the chunked framing is broken.
            Exception: whatever the transport raised (OSError, urllib3 and http.client
                errors), for the caller to classify.
        """
        chunks = self._chunks
        if chunks is None:
            size = self._size
            # read1 hands out whatever has arrived; it decodes gzip/deflate chunk by chunk.
            data: bytes = self._raw.read1(size, decode_content=True)
            if data:
                self._size = next_read_size(size, len(data))
            return data or b""
        while not chunks.done:
            chunks.check()  # broken framing after the last bytes returned: fail now
            size = self._size
            data = self._fp.read1(size)
            if not data:
                return b""  # truncated, unless interrupted: the caller tells
            self._size = next_read_size(size, len(data))
            body = chunks.feed(data)
            if body:
                return body
        return b""  # the last chunk came: a clean end


def _chunked_body(response: requests.Response) -> Any:
    """The buffered socket reader under a chunked body with no Content-Encoding, untouched
    so far (private urllib3/http.client attributes); None otherwise, or if they changed."""
    raw: Any = response.raw
    if not getattr(raw, "chunked", False):
        return None
    if response.headers.get("Content-Encoding", "identity").strip().lower() != "identity":
        return None  # urllib3 decodes gzip/deflate/br; its read1 stays the path
    inner = getattr(raw, "_fp", None)
    if not isinstance(inner, http.client.HTTPResponse) or inner.chunk_left is not None:
        return None
    fp = getattr(inner, "fp", None)
    if fp is None or not callable(getattr(fp, "read1", None)):
        return None
    buffered = getattr(raw, "_decoded_buffer", None)
    if buffered is not None and len(buffered):
        return None  # urllib3 already holds body bytes
    return fp
