"""The live screen shares its room as issue 19 asks: the functions get it.

Fed by the real recording (tests/data/session.jsonl: perftop_chain, dd and python3 busy on
2 CPUs); each test reads what is drawn, not the widgets' sizes alone."""

from __future__ import annotations

from dataclasses import replace

from textual.pilot import Pilot

from perftop.formats.recording import read_recording
from perftop.model.samples import Interval
from perftop.ui.app import PerftopApp
from tests.ui.conftest import SESSION_RECORDING, FakeSource, screen_lines, wait_for, widget_lines
from tests.ui.test_keys import drive

# A C++-sized symbol, as perf top shows them: at 120x40 it was cut to 22 cells.
LONG_SYMBOL = "std::vector<Widget>::_M_realloc_insert_with_a_long_tail_of_templates"


def session() -> Interval:
    """The recording's last interval, its hottest stack's leaf renamed to LONG_SYMBOL."""
    interval = read_recording(SESSION_RECORDING)[-1]
    hottest = max(interval.stacks, key=lambda s: s.samples)
    leaf = hottest.frames[-1]._replace(symbol=LONG_SYMBOL)
    stacks = tuple(
        s._replace(frames=(*s.frames[:-1], leaf)) if s is hottest else s for s in interval.stacks
    )
    return replace(interval, stacks=stacks)


def rows_drawn(app: PerftopApp, selector: str) -> list[str]:
    """The table's lines under its title and column titles that show a row."""
    lines = widget_lines(app, app.query_one(selector))
    return [line for line in lines[2:] if line.strip()]


async def shown(pilot: Pilot[None], app: PerftopApp) -> None:
    await wait_for(pilot, lambda: any(LONG_SYMBOL[:12] in line for line in screen_lines(app)))
    await pilot.pause(0.1)


def test_80x24_shows_12_function_rows_and_no_diagnostics_line() -> None:
    """perf top shows 21 rows here; perftop showed 3, under 9 lines of chrome."""
    source = FakeSource([session()])
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await shown(pilot, app)
        assert len(rows_drawn(app, "#functions")) >= 12
        lines = screen_lines(app)
        # The header's second line said only the defaults: left out.
        assert app.dashboard.header_bar.region.height == 1
        assert not any("? help" in line for line in lines[:3])
        # The kernel headers are a token of the cost bar, not a description on a line.
        assert not any("merged in" in line for line in lines)
        cost = widget_lines(app, app.dashboard.cost_bar)[0]
        assert "headers 6.1.0-56 generic" in cost
        # Processes: 4 rows at most below 32 lines (the recording has 4).
        assert len(rows_drawn(app, "#processes")) == 4
        # COMMAND is readable, not one cell: at least 20 of /root/.pyenv/versions/3.11.7/...
        assert any("/root/.pyenv/versions/" in line for line in lines)

    drive(app, script, size=(80, 24))
    source.close()


def test_80x24_the_call_stacks_are_a_title_line_until_focused() -> None:
    source = FakeSource([session()])
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await shown(pilot, app)
        stacks = app.dashboard.stack_tree
        assert stacks.region.height == 1
        assert "Tab to open" in widget_lines(app, stacks)[0]
        await pilot.press("tab")  # processes -> functions
        await pilot.press("tab")  # -> call stacks
        await pilot.pause(0.1)
        assert app.focused is stacks
        tree = widget_lines(app, stacks)
        # The stacks of the function selected (the functions pane was the last in use).
        assert len(tree) >= 10 and LONG_SYMBOL[:20] in tree[1], tree
        assert sum("100.0%" in line for line in tree) >= 2, tree  # single-callee runs are one line
        assert "Tab to open" not in tree[0]
        await pilot.press("tab")  # away again: back to its title line
        await pilot.pause(0.1)
        assert stacks.region.height == 1
        # Enter on a function opens the stacks that pass through it.
        app.dashboard.function_table.focus()
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert app.focused is stacks and stacks.region.height >= 10
        assert any(LONG_SYMBOL[:20] in line for line in widget_lines(app, stacks))

    drive(app, script, size=(80, 24))
    source.close()


def test_a_filter_brings_the_header_line_back() -> None:
    source = FakeSource([session()])
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await shown(pilot, app)
        await pilot.press("slash", *"leaf", "enter")
        await wait_for(pilot, lambda: app.dashboard.header_bar.region.height == 2)
        assert 'text "leaf"' in widget_lines(app, app.dashboard.header_bar)[1]

    drive(app, script, size=(80, 24))
    source.close()


def test_120x40_stacks_the_panes_and_gives_symbol_40_cells() -> None:
    source = FakeSource([session()])
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await shown(pilot, app)
        functions, stacks = app.dashboard.function_table, app.dashboard.stack_tree
        assert stacks.region.y >= functions.region.bottom  # below, not beside
        assert functions.region.width >= 118
        lines = widget_lines(app, functions)
        assert any(LONG_SYMBOL[:40] in line for line in lines), "\n".join(lines)
        title = next(line for line in lines if "SYMBOL" in line)
        assert "MODULE" in title  # MODULE kept, cut before SYMBOL would be
        assert len(rows_drawn(app, "#functions")) >= 15

    drive(app, script, size=(120, 40))
    source.close()


def test_200x50_puts_the_panes_side_by_side_and_fits_the_processes_pane() -> None:
    """The processes pane had 22 lines for 8 processes: now as tall as its rows."""
    source = FakeSource([session()])
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await shown(pilot, app)
        processes, stacks = app.dashboard.process_table, app.dashboard.stack_tree
        assert stacks.region.x >= processes.region.right  # beside
        assert processes.region.height == 4 + 2  # 4 rows, the title, the column titles
        assert len(rows_drawn(app, "#processes")) == 4
        lines = widget_lines(app, app.dashboard.function_table)
        # The tables have three fifths of the width: SYMBOL more than 60 of them.
        assert any(LONG_SYMBOL[:60] in line for line in lines)

    drive(app, script, size=(200, 50))
    source.close()


def test_the_help_says_what_this_session_samples_with() -> None:
    source = FakeSource([session()])
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await shown(pilot, app)
        await pilot.press("question_mark")
        await pilot.pause(0.2)
        text = "\n".join(screen_lines(app))
        assert "This session" in text
        assert "linux-headers-6.1.0-56-common merged in" in text
        assert "perftop doctor" in text

    drive(app, script, size=(120, 40))
    source.close()
