"""``Normaliser``: the bytes of one upstream MCP response (a listening GET, a 2026
subscription, an HTTP+SSE stream) into the normalised event stream the actor reads.

Each JSON-RPC message becomes one SSE event (``event:`` its method or ``response``,
``data:`` the raw JSON, ``id:`` the upstream id, on the last message of a 2025-03-26 batch);
housekeeping is absorbed: server ``ping`` requests are answered and not published, other
server requests are answered -32601 and published, responses waited for by a call are
handed over, the 2026 acknowledgment and the subscription's graceful end are noted. On
the 2025-era GET the stream's cursor (Last-Event-ID, ``retry``) is tracked, and an id
that came without a published message is passed on as an id-only block.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streamvisor.sse import Decoder, Event
from streamvisor.upstream.mcp import jsonrpc, modern
from streamvisor.upstream.mcp.session import Era

if TYPE_CHECKING:
    from streamvisor.upstream.mcp.stream import McpStream

__all__ = ["Normaliser"]


class Normaliser:
    """Per-response translation state.

    Attributes:
        decoder: the upstream SSE decoder.
        received: a message or an id arrived (comments and non-JSON events excluded).
        acked: the 2026 ``notifications/subscriptions/acknowledged`` arrived.
        graceful: the 2026 listen request got its response (the server ended it).
    """

    def __init__(
        self,
        stream: McpStream,
        *,
        last_event_id: str | None = None,
        sent_cursor: bool = False,
        listen_id: str | None = None,
    ) -> None:
        self._st = stream
        self.decoder = Decoder(last_event_id=last_event_id)
        self.sent_cursor = sent_cursor
        self.listen_id = listen_id
        self.received = False
        self.acked = False
        self.graceful = False
        self._counted_resume = False

    def feed(self, chunk: bytes) -> bytes:
        """Decode one chunk of the upstream stream into normalised event bytes."""
        return self.convert(self.decoder.feed(chunk))

    def convert(self, events: list[Event]) -> bytes:
        """Normalise already decoded upstream events."""
        s = self._st.session
        out = bytearray()
        emitted_id: str | None = None
        for ev in events:
            method = jsonrpc.notification_method(ev.data)
            if method is not None and (self.listen_id is None or method != modern.ACK_METHOD):
                # The common case, without parsing the JSON: a plain notification.
                self.received = True
                out += jsonrpc.encode_event(method, ev.data, ev.id)
                if ev.id is not None:
                    emitted_id = ev.id
                continue
            messages = jsonrpc.parse_messages(ev.data)
            if messages is None:
                continue  # keep-alive events with non-JSON data (go-sdk#1175)
            self.received = True
            last = len(messages) - 1
            for i, msg in enumerate(messages):
                if self._absorb(msg):
                    continue
                data = ev.data if last == 0 else jsonrpc.dumps(msg)
                eid = ev.id if i == last else None
                out += jsonrpc.encode_event(jsonrpc.event_name(msg), data, eid)
                emitted_id = eid if eid is not None else emitted_id
        if s.era is Era.STREAMABLE:
            lid = self.decoder.last_event_id
            if (lid or None) != s.cursor:
                if self.sent_cursor and not self._counted_resume:
                    s.resumed()
                    self._counted_resume = True
                self.received = True
                s.saw(lid)
                if emitted_id != lid:
                    out += f"id: {lid}\n\n".encode() if lid else b"id\n\n"
            retry = self.decoder.retry
            if retry is not None and retry != s.retry_ms:
                s.retry_ms = retry
                out += f"retry: {retry}\n\n".encode()
        return bytes(out)

    def _absorb(self, msg: dict[str, Any]) -> bool:
        """Handle housekeeping messages; True when ``msg`` is not to be published."""
        st = self._st
        if jsonrpc.is_request(msg):
            st.answer(msg)
            return msg.get("method") == "ping"
        if jsonrpc.is_response(msg):
            if self.listen_id is not None and modern.is_graceful_end(msg, self.listen_id):
                self.graceful = True
                return True
            return st.mail.resolve(msg)
        if self.listen_id is not None and msg.get("method") == modern.ACK_METHOD:
            self.acked = True
            return True
        return False
