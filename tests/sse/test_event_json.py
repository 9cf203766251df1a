"""Event.to_json: one JSONL line holding exactly to_dict(), whatever the text; the same text
as json.dumps of to_dict() whenever that text is valid UTF-8."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from streamvisor.sse import Event

_ESCAPES = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def _reference(event: Event) -> str:
    """The line as json.dumps writes it, with the three line breaks escaped."""
    text = json.dumps(event.to_dict(), ensure_ascii=False, separators=(",", ":"))
    return text.translate(_ESCAPES)


_text = st.text(
    alphabet=st.characters(codec=None, exclude_categories=()), max_size=30
)  # any code point, lone surrogates and control characters included


@settings(max_examples=300, deadline=None)
@given(
    stream=_text,
    event_id=st.none() | _text,
    event=_text,
    data=_text,
    last_id=st.none() | _text,
    when=st.floats(min_value=0, max_value=4e9, allow_nan=False),
)
def test_to_json_writes_exactly_what_json_dumps_writes(
    stream: str, event_id: str | None, event: str, data: str, last_id: str | None, when: float
) -> None:
    ev = Event(stream, event_id, event, data, last_id, when)
    line = ev.to_json()
    assert json.loads(line) == ev.to_dict()
    assert not set(line) & {"\n", "\r", "\x85", "\u2028", "\u2029"}
    reference = _reference(ev)
    try:
        reference.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: no UTF-8 text to compare with
        return
    assert line == reference


def test_an_event_built_by_hand_with_non_text_ids_still_serialises() -> None:
    ev = Event("s", 7, "tick", "d", 7, 1.5)  # type: ignore[arg-type]
    assert json.loads(ev.to_json())["id"] == 7
