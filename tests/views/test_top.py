"""``top``'s screen: only the visible rows are drawn; the footer sums every stream."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from streamvisor.views.controls import TopState
from streamvisor.views.model import RateTracker, Row, build_rows
from streamvisor.views.top import render


def rows_for(n: int) -> list[Row]:
    streams = {f"s{i:04d}": {"state": "connected", "events": i} for i in range(n)}
    return build_rows(streams, RateTracker(), 0.0, 10)


def test_only_the_window_of_1000_streams_is_drawn_and_the_footer_counts_all() -> None:
    rows = rows_for(1000)
    state = TopState(selected="s0500")
    window = state.settle([r.name for r in rows], 20)
    screen = render(rows, rows, window, state, "title", 10)
    table = screen.renderables[1]
    assert isinstance(table, Table)
    assert table.row_count == 20
    console = Console(file=io.StringIO(), width=150, height=30, color_system=None)
    console.print(screen)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "s0500" in text and "s0481" in text
    assert "s0480" not in text and "s0501" not in text
    assert "1000 streams  1000 connected" in text
    assert "499,500 events" in text


def test_the_selected_row_is_reversed_and_the_filter_prompt_shows_while_typing() -> None:
    rows = rows_for(3)
    state = TopState(selected="s0001", filter="s0", editing=True)
    screen = render(rows, rows[:2], (0, 2), state, "title", 0)
    table = screen.renderables[1]
    assert isinstance(table, Table)
    assert [row.style for row in table.rows] == ["", "reverse"]
    console = Console(file=io.StringIO(), width=150, height=30, color_system=None)
    console.print(screen)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "filter: s0" in text
    assert "(2 shown)" in text
    assert "LAST MINUTE" not in text  # no room asked for the sparkline
