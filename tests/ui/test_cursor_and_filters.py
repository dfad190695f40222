"""The functions cursor follows its row's identity, Esc steps back one level, a text filter
keeps live processes live, and a filter change restarts the accumulation (issue 19, 6 and 7).
Each at 80x24 and 120x40, over the recorded synthetic session fed one interval at a time."""

from __future__ import annotations

from dataclasses import replace

import pytest
from textual.pilot import Pilot

from perftop.model.samples import Interval
from perftop.ui.app import PerftopApp
from tests.ui.conftest import FakeSource, screen_text, table_column, wait_for, widget_lines
from tests.ui.test_flame_keys import wait_said
from tests.ui.test_keys import drive, pids, symbols

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]


def without_pid(interval: Interval, pid: int) -> Interval:
    return replace(interval, stacks=tuple(s for s in interval.stacks if s.pid != pid))


def only_pids(interval: Interval, *wanted: int) -> Interval:
    """What the kernel hands out once a PID filter is applied."""
    return replace(interval, stacks=tuple(s for s in interval.stacks if s.pid in wanted))


def shown_pids(app: PerftopApp) -> list[str]:
    """The PID column, without the edge of a toast that may sit over the pane at 120x40."""
    return [pid for pid in pids(app) if pid.isdigit()]


def selected_symbol(app: PerftopApp) -> str | None:
    key = app.dashboard.function_table.selected_function
    return key[0] if key is not None else None


def cursor_line(app: PerftopApp) -> str:
    """The functions pane's highlighted line, as drawn."""
    table = app.dashboard.function_table
    lines = widget_lines(app, table)
    # Border line, title line, then rows from the scroll offset.
    return lines[2 + table.cursor_row - int(table.scroll_offset.y)]


@pytest.mark.parametrize("size", SIZES)
def test_functions_cursor_follows_its_row_and_goes_to_the_top_when_it_leaves(
    recorded: list[Interval], size: tuple[int, int]
) -> None:
    source = FakeSource([recorded[0]])
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: "1001" in pids(app))
        await pilot.press("tab")
        assert symbols(app)[:3] == ["[unknown]", "ggc_collect", "BufferSync"]
        await pilot.press("down", "down")
        assert selected_symbol(app) == "BufferSync"
        assert "BufferSync" in cursor_line(app)
        # BufferSync moves up a row (cc1 went quiet): the cursor moves with it.
        source.push(recorded[3])
        await wait_for(pilot, lambda: symbols(app)[1] == "BufferSync")
        assert selected_symbol(app) == "BufferSync"
        assert "BufferSync" in cursor_line(app)
        # postgres stops: BufferSync leaves the list. The cursor goes to the top row, not to
        # whatever now sits at BufferSync's old index.
        source.push(without_pid(recorded[3], 2002))
        await wait_for(pilot, lambda: "BufferSync" not in symbols(app))
        assert selected_symbol(app) == "[unknown]"
        assert "[unknown]" in cursor_line(app)
        assert app.dashboard.function_table.scroll_offset.y == 0
        # From the top it follows the hottest row again, as before the user moved.
        source.push(recorded[1])
        await wait_for(pilot, lambda: "BufferSync" in symbols(app))
        assert selected_symbol(app) == symbols(app)[0]

    drive(app, script, size=size)
    source.close()


@pytest.mark.parametrize("size", SIZES)
def test_escape_steps_back_one_level(recorded: list[Interval], size: tuple[int, int]) -> None:
    source = FakeSource([recorded[0]])
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: "1001" in pids(app))
        await pilot.press("p", *"1001,2002", "enter")
        source.push(only_pids(recorded[1], 1001, 2002))
        await wait_for(pilot, lambda: source.delivered == 2)
        await pilot.press("slash", *"Buffer", "enter")
        row = shown_pids(app).index("2002")  # postgres, the one process with BufferSync
        await pilot.press("home", *["down"] * row, "enter")
        await wait_for(pilot, lambda: "zoom 2002" in screen_text(app))
        text = screen_text(app)
        assert 'text "Buffer"' in text and "pid 1001,2002" in text
        await pilot.press("escape")
        text = screen_text(app)
        assert "zoom 2002" not in text
        assert 'text "Buffer"' in text and "pid 1001,2002" in text
        await pilot.press("escape")
        text = screen_text(app)
        assert 'text "Buffer"' not in text and "pid 1001,2002" in text
        assert source.calls == [("pid_filter", (1001, 2002))]  # the kernel's filter stays
        await pilot.press("escape")
        assert "pid 1001,2002" not in screen_text(app)
        assert source.calls[-1] == ("pid_filter", ())

    drive(app, script, size=size)
    source.close()


@pytest.mark.parametrize("size", SIZES)
def test_a_text_filter_never_draws_a_live_process_as_exited(
    recorded: list[Interval], size: tuple[int, int]
) -> None:
    source = FakeSource([recorded[0]])
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: "1001" in pids(app))
        await pilot.press("p", *"1001,2002", "enter")
        await pilot.press("slash", *"BufferSync", "enter")
        await wait_for(pilot, lambda: sorted(shown_pids(app)) == ["1001", "2002"])
        # python3 (1001) has no stack with BufferSync: listed quiet, but as what it is.
        assert "(exited)" not in screen_text(app)
        row = shown_pids(app).index("1001")
        assert table_column(app, "#processes", "CPU%")[row] != "0.0"  # psutil's, kept
        if "user" in app.dashboard.process_table.shown_column_ids:  # not at 80 columns
            assert table_column(app, "#processes", "USER")[row] != "?"
        # Enter on it does not zoom into an empty view.
        row = shown_pids(app).index("1001")
        await pilot.press("home", *["down"] * row, "enter")
        await wait_said(pilot, "nothing to zoom into")
        assert "zoom 1001" not in screen_text(app)
        assert app.options.zoom_pid is None

    drive(app, script, size=size)
    source.close()


@pytest.mark.parametrize("size", SIZES)
def test_changing_the_pid_filter_restarts_the_accumulation(
    recorded: list[Interval], size: tuple[int, int]
) -> None:
    source = FakeSource([recorded[0]])
    app = PerftopApp(source)

    def samples_of(pid: str) -> int:
        return int(table_column(app, "#processes", "SAMPLES")[pids(app).index(pid)])

    async def script(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: "1001" in pids(app))
        await app.run_action("toggle_accumulate")
        source.push(recorded[1])
        await wait_for(pilot, lambda: source.delivered == 2 and samples_of("1001") > 188)
        await pilot.press("p", *"2002", "enter")
        source.push(only_pids(recorded[2], 2002))
        await wait_for(pilot, lambda: source.delivered == 3 and app.snapshots_received == 3)
        assert shown_pids(app) == ["2002"]
        assert samples_of("2002") == 94  # this interval's alone: the old ones were dropped
        await pilot.press("escape")
        source.push(recorded[3])
        await wait_for(pilot, lambda: app.snapshots_received == 4 and "1001" in pids(app))
        # Only what was sampled since the filter went: not python3's fading old counts.
        assert samples_of("1001") == 194
        assert samples_of("2002") == 91

    drive(app, script, size=size)
    source.close()
