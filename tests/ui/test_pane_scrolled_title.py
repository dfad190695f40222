"""The live panes have no scrollbars: their title says how far they are scrolled, and rows that
cross the pane's height never lay the screen out again."""

from __future__ import annotations

import asyncio
from typing import Any

from textual.app import App, ComposeResult

from perftop.ui.widgets.keyed_table import KeyedTable
from perftop.viewmodel import PROCESS_COLUMNS, TableRow
from tests.ui.conftest import screen_lines


def row(pid: int, samples: int) -> TableRow:
    cells = [str(pid), "root", str(samples), "1.0", "2.0", "1", "1.0M", "proc", "proc"]
    return TableRow(pid, tuple(cells[: len(PROCESS_COLUMNS)]))


class TableApp(App[None]):
    CSS_PATH = "../../perftop/ui/perftop.tcss"

    def compose(self) -> ComposeResult:
        yield KeyedTable(PROCESS_COLUMNS, id="table")


def run(script: Any, size: tuple[int, int] = (100, 12)) -> None:
    async def main() -> None:
        app = TableApp()
        async with app.run_test(size=size) as pilot:
            table = app.query_one(KeyedTable)
            table.set_pane_title("Processes [b]x[/b]")
            table.focus()
            await script(app, table, pilot)

    asyncio.run(main())


def test_a_scrolled_pane_says_how_many_rows_are_above_and_shows_no_scrollbar() -> None:
    async def script(app: App[None], table: KeyedTable, pilot: Any) -> None:
        table.show_rows([row(pid, 1000 - pid) for pid in range(1, 60)])
        await pilot.pause()
        top = screen_lines(app)[0]
        assert "Processes [b]x[/b]" in top  # literal, never markup
        assert "above" not in top
        # No scrollbar column: the last column of every row line is the row's own text.
        assert not table.show_vertical_scrollbar or table.styles.scrollbar_size_vertical == 0
        assert not any(
            line.rstrip().endswith(("▇", "▁", "█", "▌", "▐")) for line in screen_lines(app)
        )
        for _ in range(15):
            await pilot.press("down")
        await pilot.pause()
        above = table.lines_above
        assert above > 0
        assert f"↑{above} above" in screen_lines(app)[0]
        await pilot.press("home")
        await pilot.pause()
        assert "above" not in screen_lines(app)[0]

    run(script)


def test_rows_crossing_the_panes_height_do_not_lay_the_screen_out() -> None:
    async def script(app: App[None], table: KeyedTable, pilot: Any) -> None:
        table.show_rows([row(pid, 100) for pid in range(1, 4)])
        await pilot.pause()
        layouts = 0
        original = app.screen._refresh_layout

        def count(*args: Any, **kwargs: Any) -> Any:
            nonlocal layouts
            layouts += 1
            return original(*args, **kwargs)

        app.screen._refresh_layout = count  # type: ignore[method-assign]
        for many in (3, 40, 4, 50, 2):  # below, above, below the pane's height ...
            table.show_rows([row(pid, 100) for pid in range(1, many + 1)])
            await pilot.pause()
        assert layouts == 0

    run(script)
