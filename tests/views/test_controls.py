"""``top``'s keys as tables: bytes to key names, and key names to what the view does."""

from __future__ import annotations

import pytest

from streamvisor.views.controls import Command, TopState, decode_keys, visible_range


@pytest.mark.parametrize(
    ("data", "keys"),
    [
        (b"q", ["q"]),
        (b"rc/", ["r", "c", "/"]),
        (b"\x1b[A\x1b[B", ["up", "down"]),
        (b"\x1bOA\x1bOB", ["up", "down"]),  # application cursor mode
        (b"\x1b[5~\x1b[6~", ["pgup", "pgdn"]),
        (b"\x1b[H\x1b[F\x1b[1~\x1b[4~", ["home", "end", "home", "end"]),
        (b"\r\n\x7f\x08", ["enter", "enter", "backspace", "backspace"]),
        (b"\x1b", ["esc"]),
        (b"\x1bq", ["esc", "q"]),
        (b"\x1b[15~x", ["x"]),  # F5: an unknown sequence is dropped whole
        (b"\x1b[1;5Ay", ["y"]),  # ctrl+up: unknown, dropped
        ("é✓".encode(), ["é", "✓"]),
        (b"\x03\x00", []),  # control bytes are not typed
    ],
)
def test_terminal_bytes_decode_to_key_names(data: bytes, keys: list[str]) -> None:
    assert decode_keys(data) == keys


NAMES = ["a", "b", "c", "d", "e"]


def press(state: TopState, *keys: str, names: list[str] = NAMES) -> list[Command]:
    commands = []
    for key in keys:
        command = state.handle(key, names, page=2)
        if command is not None:
            commands.append(command)
    return commands


@pytest.mark.parametrize(
    ("keys", "selected"),
    [
        ((), "a"),
        (("down",), "b"),
        (("down", "down", "up"), "b"),
        (("up",), "a"),
        (("pgdn",), "c"),
        (("pgdn", "pgdn", "pgdn"), "e"),
        (("end", "pgup"), "c"),
        (("end", "home"), "a"),
        (("end", "down"), "e"),
    ],
)
def test_arrows_and_paging_move_the_selection_within_the_rows(
    keys: tuple[str, ...], selected: str
) -> None:
    state = TopState()
    state.settle(NAMES, 3)
    press(state, *keys)
    assert state.selected == selected


def test_r_c_and_s_ask_for_commands_on_the_selected_stream_and_q_quits() -> None:
    state = TopState(selected="c")
    assert press(state, "r", "c", "s", "x", "q") == [
        Command("reconnect", "c"),
        Command("close", "c"),
        Command("start", "c"),
        Command("quit"),
    ]


def test_a_command_without_a_shown_selection_asks_for_nothing() -> None:
    state = TopState(selected="gone")
    assert press(state, "c") == []
    assert state.message == "no stream selected"
    assert press(TopState(), "c", names=[]) == []


def test_slash_edits_the_filter_until_enter_and_esc_clears_it() -> None:
    state = TopState()
    assert press(state, "/", "a", "b", "q", "c", "backspace", "backspace", "c") == []
    assert (state.filter, state.editing) == ("abc", True)
    press(state, "enter")
    assert (state.filter, state.editing) == ("abc", False)
    assert press(state, "q") == [Command("quit")]
    press(state, "esc")
    assert state.filter == ""
    press(state, "/", "x", "esc")
    assert (state.filter, state.editing) == ("", False)


@pytest.mark.parametrize(
    ("selected", "top", "count", "height", "window"),
    [
        (0, 0, 5, 3, (0, 3)),
        (2, 0, 5, 3, (0, 3)),
        (3, 0, 5, 3, (1, 4)),  # scroll down just enough
        (4, 1, 5, 3, (2, 5)),
        (1, 2, 5, 3, (1, 4)),  # scroll up just enough
        (4, 4, 5, 3, (2, 5)),  # no empty lines at the bottom while rows are hidden above
        (0, 0, 2, 10, (0, 2)),
        (999, 990, 1000, 40, (960, 1000)),
        (0, 0, 0, 5, (0, 0)),
    ],
)
def test_the_visible_rows_follow_the_selection(
    selected: int, top: int, count: int, height: int, window: tuple[int, int]
) -> None:
    assert visible_range(selected, top, count, height) == window


def test_settle_keeps_a_selection_that_is_shown_and_picks_the_first_otherwise() -> None:
    state = TopState(selected="d")
    assert state.settle(NAMES, 2) == (2, 4)
    assert state.selected == "d"
    assert state.settle(["x", "y"], 2) == (0, 2)
    assert state.selected == "x"
    assert state.settle([], 2) == (0, 0)
