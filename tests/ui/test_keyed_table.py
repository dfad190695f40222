"""The process and function tables: only changed lines are drawn again, the cursor stays on the
hottest row until the user moves it and then follows its row's key, and untrusted cells are cut
to their column, never interpreted."""

from __future__ import annotations

import asyncio
from typing import Any

from textual.app import App, ComposeResult
from textual.geometry import Region

from perftop.ui.widgets.keyed_table import KeyedTable
from perftop.viewmodel import PROCESS_COLUMNS, TableRow
from tests.ui.conftest import screen_lines


def row(pid: int, samples: int, user: str = "root") -> TableRow:
    cells = [str(pid), user, str(samples), "1.0", "2.0", "1", "1.0M", "proc", "proc"]
    return TableRow(str(pid), tuple(cells[: len(PROCESS_COLUMNS)]))


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield KeyedTable(PROCESS_COLUMNS, id="table")


def run(script: Any, size: tuple[int, int] = (100, 12)) -> None:
    async def main() -> None:
        app = TableApp()
        async with app.run_test(size=size) as pilot:
            await script(app, app.query_one(KeyedTable), pilot)

    asyncio.run(main())


def test_one_changed_row_redraws_one_line() -> None:
    async def script(app: App[None], table: KeyedTable, pilot: Any) -> None:
        rows = [row(pid, 100 - pid) for pid in range(1, 30)]
        table.show_rows(rows)
        await pilot.pause()
        asked: list[Region] = []
        original = table.refresh

        def spy(*regions: Region, **kwargs: Any) -> Any:
            asked.extend(regions)
            return original(*regions, **kwargs)

        table.refresh = spy  # type: ignore[method-assign]
        changed = list(rows)
        changed[3] = row(4, 500)  # same key and place, new count
        table.show_rows(changed)
        assert [(r.y, r.height) for r in asked] == [(4, 1)]  # row 3 is under the title line
        await pilot.pause()
        assert "500" in screen_lines(app)[4]
        asked.clear()
        table.show_rows(list(changed))  # equal rows: nothing to draw
        assert asked == []

    run(script)


def test_the_cursor_follows_its_key_and_stays_visible() -> None:
    async def script(app: App[None], table: KeyedTable, pilot: Any) -> None:
        table.focus()
        table.show_rows([row(pid, 100 - pid) for pid in range(1, 40)])
        await pilot.press("down", "down")
        assert table.selected_key == "3"
        # pid 3 cools down to the bottom: the cursor goes with it, scrolled into view.
        table.show_rows([row(pid, 100 - pid) for pid in range(1, 40) if pid != 3] + [row(3, 0)])
        await pilot.pause()
        assert table.selected_key == "3" and table.cursor_row == 38
        assert screen_lines(app)[-1].split()[0] == "3"
        # Gone: back to the top, scrolled to it, never onto whatever now sits at its index
        # (issue 19: the stack pane showed another function every second).
        table.show_rows([row(pid, 100 - pid) for pid in range(1, 40) if pid != 3])
        await pilot.pause()
        assert table.selected_key == "1" and table.scroll_offset.y == 0
        await pilot.press("home")
        assert table.selected_key == "1" and screen_lines(app)[1].split()[0] == "1"
        await pilot.press("pagedown")
        assert table.cursor_row == 10  # a page is the visible rows less one

    run(script)


def test_until_the_user_moves_the_cursor_it_stays_on_the_hottest_row() -> None:
    """At start-up the rows are psutil's (perftop itself, compiling, on top); the first profile
    re-sorts them, and the call-stack pane must follow the hottest process, not perftop."""

    async def script(app: App[None], table: KeyedTable, pilot: Any) -> None:
        table.focus()
        table.show_rows([row(1, 90), row(2, 50), row(3, 10)])
        table.show_rows([row(3, 99), row(2, 50), row(1, 1)])
        await pilot.pause()
        assert table.selected_key == "3" and table.cursor_row == 0
        await pilot.press("down", "up")  # the user's own choice, on the first row
        table.show_rows([row(2, 60), row(3, 50), row(1, 1)])
        await pilot.pause()
        assert table.selected_key == "3" and table.cursor_row == 1

    run(script)


def test_hostile_cells_are_cut_to_their_column_and_shown_literally() -> None:
    async def script(app: App[None], table: KeyedTable, pilot: Any) -> None:
        table.show_rows([row(7, 1, user="ev[/]il" + "x" * 300)])  # a fixed-width column
        await pilot.pause()
        cell = screen_lines(app)[1].split()[1]
        assert cell.startswith("ev[/]il") and cell.endswith("…")
        assert len(cell) == next(c.width for c in PROCESS_COLUMNS if c.id == "user")

    run(script)
