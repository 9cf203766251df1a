"""``streamvisor top``'s keys: bytes from the terminal to key names, and key names to what the
view does (move the selection, edit the filter, run a command, quit). Pure: no I/O.

Terminal input arrives as bytes: printable characters, control bytes, and the ECMA-48 / xterm
sequences that cursor and paging keys send (``ESC [ A`` or, in application mode, ``ESC O A``;
``ESC [ 5 ~`` for Page Up). Unknown sequences are dropped whole, never typed into the filter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["Command", "TopState", "decode_keys", "visible_range"]

_SEQUENCES = {
    b"\x1b[A": "up",
    b"\x1b[B": "down",
    b"\x1bOA": "up",
    b"\x1bOB": "down",
    b"\x1b[5~": "pgup",
    b"\x1b[6~": "pgdn",
    b"\x1b[H": "home",
    b"\x1b[F": "end",
    b"\x1bOH": "home",
    b"\x1bOF": "end",
    b"\x1b[1~": "home",
    b"\x1b[4~": "end",
}
_SINGLE = {b"\r": "enter", b"\n": "enter", b"\x7f": "backspace", b"\x08": "backspace"}


def decode_keys(data: bytes) -> list[str]:
    """Key names in ``data``: ``up``, ``down``, ``pgup``, ``pgdn``, ``home``, ``end``,
    ``enter``, ``backspace``, ``esc``, or the character typed."""
    keys: list[str] = []
    i = 0
    while i < len(data):
        if data[i] == 0x1B:
            for seq, name in _SEQUENCES.items():
                if data.startswith(seq, i):
                    keys.append(name)
                    i += len(seq)
                    break
            else:
                if i + 1 < len(data) and data[i + 1] in b"[O":
                    # An unknown CSI/SS3 sequence: skip to its final byte (0x40-0x7E).
                    j = i + 2
                    while j < len(data) and not 0x40 <= data[j] <= 0x7E:
                        j += 1
                    i = j + 1
                else:
                    keys.append("esc")
                    i += 1
            continue
        byte = data[i : i + 1]
        if byte in _SINGLE:
            keys.append(_SINGLE[byte])
            i += 1
            continue
        # A UTF-8 character: its length comes from its first byte.
        lead = data[i]
        size = 1 if lead < 0x80 else 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
        text = data[i : i + size].decode("utf-8", "replace")
        if text.isprintable():
            keys.append(text)
        i += size
    return keys


@dataclass(frozen=True, slots=True)
class Command:
    """What a key asked for: ``quit``, or a stream command (``reconnect``, ``close``,
    ``start``) on ``stream``."""

    action: str
    stream: str | None = None


@dataclass(slots=True)
class TopState:
    """The view's state between frames.

    Attributes:
        selected: the selected stream's name (kept across refreshes, as rows come and go).
        top: index of the first visible row.
        filter: the filter text (see ``model.matches``).
        editing: True while the filter is being typed (after ``/``).
        message: a line for the footer (the last command's answer).
    """

    selected: str | None = None
    top: int = 0
    filter: str = ""
    editing: bool = False
    message: str = ""
    _keys: dict[str, str] = field(
        default_factory=lambda: {"r": "reconnect", "c": "close", "s": "start"}
    )

    def handle(self, key: str, names: Sequence[str], page: int) -> Command | None:
        """Apply one key; return the command it asks for, if any.

        Args:
            key: a name from ``decode_keys``.
            names: the stream names shown (filtered), in display order.
            page: how many rows fit on the screen (for Page Up and Page Down).
        """
        if self.editing:
            self._edit(key)
            return None
        if key == "q":
            return Command("quit")
        if key == "/":
            self.editing = True
            return None
        if key == "esc":
            self.filter = ""
            return None
        if key in self._keys:
            if self.selected is None or self.selected not in names:
                self.message = "no stream selected"
                return None
            return Command(self._keys[key], self.selected)
        moves = {"up": -1, "down": 1, "pgup": -page, "pgdn": page}
        if names and (key in moves or key in ("home", "end")):
            index = names.index(self.selected) if self.selected in names else 0
            if key == "home":
                index = 0
            elif key == "end":
                index = len(names) - 1
            else:
                index = min(max(index + moves[key], 0), len(names) - 1)
            self.selected = names[index]
        return None

    def _edit(self, key: str) -> None:
        if key == "enter":
            self.editing = False
        elif key == "esc":
            self.editing = False
            self.filter = ""
        elif key == "backspace":
            self.filter = self.filter[:-1]
        elif len(key) == 1:
            self.filter += key

    def settle(self, names: Sequence[str], height: int) -> tuple[int, int]:
        """Keep the selection on a shown stream and in view; return the visible slice.

        Returns:
            ``(start, end)`` indexes into ``names`` of the rows to draw.
        """
        if not names:
            self.top = 0
            return 0, 0
        if self.selected not in names:
            self.selected = names[0]
        index = names.index(self.selected)
        start, end = visible_range(index, self.top, len(names), height)
        self.top = start
        return start, end


def visible_range(selected: int, top: int, count: int, height: int) -> tuple[int, int]:
    """The rows ``[start, end)`` to draw so that row ``selected`` is visible.

    Scrolls as little as possible from the previous first row ``top``; never leaves empty
    lines at the bottom while rows above are hidden.
    """
    height = max(1, height)
    start = min(max(top, selected - height + 1), selected)
    start = max(0, min(start, count - height))
    return start, min(count, start + height)
