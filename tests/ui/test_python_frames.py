"""Python frames on the screen: their own mark and style, and `y` to turn them off and on."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from rich.style import Style
from textual.pilot import Pilot

from perftop.model.samples import Interval, StackSample
from perftop.sampling.replay import ReplaySource
from perftop.ui.app import PerftopApp
from perftop.ui.widgets.flame_view import PYTHON_PALETTE, box_colour
from perftop.ui.widgets.frame_style import mark_style
from perftop.ui.widgets.help_screen import HelpScreen
from perftop.ui.widgets.stack_tree import node_parts
from perftop.viewmodel import stack_tree
from tests.ui.conftest import (
    SYNTHETIC_RECORDING,
    FakeSource,
    screen_text,
    wait_for,
    wait_for_text,
    widget_lines,
)
from tests.ui.test_flame_keys import detail, flame, rows, wait_said
from tests.ui.test_keys import drive, symbols, until_ended
from tests.unit.factories import py, user

WORK = "/srv/app/work.py"
EVIL = "\x1b[31mevil"
MARKUP = "[bold]x[/bold]"


def python_stacks() -> tuple[StackSample, ...]:
    """A pure-Python workload as the sampler merges it: the interpreter's callers, then the
    Python frames in place of its eval loop (outer -> middle -> inner_spin), and two functions
    with names no one should trust."""
    callers = (user("_start", "python3.11"), user("Py_RunMain", "python3.11"))
    outer, middle = py("outer", WORK, 10), py("middle", WORK, 20)
    return (
        StackSample(
            1001, 1001, "python3", (*callers, outer, middle, py("inner_spin", WORK, 30)), 60, 0
        ),
        StackSample(1001, 1001, "python3", (*callers, outer, py(EVIL, WORK, 40)), 25, 0),
        StackSample(1001, 1001, "python3", (*callers, outer, py(MARKUP, WORK, 50)), 15, 0),
    )


def python_interval(base: Interval, **fields: object) -> Interval:
    return replace(base, stacks=python_stacks(), **fields)  # type: ignore[arg-type]


def stack_pane(app: PerftopApp) -> str:
    return "\n".join(widget_lines(app, app.query_one("#stacks")))


def functions_table(app: PerftopApp) -> str:
    return "\n".join(widget_lines(app, app.query_one("#functions")))


async def until_shown(pilot: Pilot[None]) -> None:
    """The first interval drawn: the table and the stack pane show the Python stacks."""
    app = pilot.app
    assert isinstance(app, PerftopApp)
    await wait_for(
        pilot, lambda: "inner_spin" in functions_table(app) and "outer" in stack_pane(app)
    )


@pytest.fixture
def replay() -> Iterator[PerftopApp]:
    source = ReplaySource(SYNTHETIC_RECORDING, interval_s=0)
    yield PerftopApp(source)
    source.close()


# The key -----------------------------------------------------------------------------------


def test_y_turns_python_frames_off_then_on_from_the_next_interval(
    recorded: list[Interval],
) -> None:
    source = FakeSource([python_interval(recorded[0])])
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: source.delivered == 1)
        await pilot.press("y")
        assert source.calls == [("python_frames", False)]
        await wait_said(pilot, "Python frames off from the next interval")
        await pilot.press("y")
        assert source.calls == [("python_frames", False), ("python_frames", True)]
        await wait_said(pilot, "Python frames on from the next interval")

    drive(app, script)
    source.close()


def test_the_key_starts_from_what_the_command_line_chose(recorded: list[Interval]) -> None:
    """perftop --no-python: the first interval says so, and `y` then turns them on."""
    source = FakeSource([python_interval(recorded[0], python_frames=False)])
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: source.delivered == 1)
        await pilot.press("y")
        assert source.calls == [("python_frames", True)]

    drive(app, script)
    source.close()


def test_y_in_a_replay_says_why_not(replay: PerftopApp) -> None:
    async def script(pilot: Pilot[None]) -> None:
        await until_ended(pilot)
        await pilot.press("y")
        await wait_said(pilot, "Python frames off: not available in a replay")
        assert replay.options.python_frames  # nothing changed
        assert "no Python frames" not in screen_text(replay)

    drive(replay, script)


def test_the_header_says_when_python_frames_are_off(recorded: list[Interval]) -> None:
    source = FakeSource([python_interval(recorded[0])])
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: source.delivered == 1)
        header = app.query_one("#header")
        assert "no Python frames" not in "\n".join(widget_lines(app, header))
        source.push(python_interval(recorded[1], python_frames=False))
        await wait_for(pilot, lambda: "no Python frames" in "\n".join(widget_lines(app, header)))

    drive(app, script)  # 80x24: the piece fits beside the others
    source.close()


def test_the_key_is_in_the_help_and_the_command_palette(replay: PerftopApp) -> None:
    async def script(pilot: Pilot[None]) -> None:
        await pilot.press("question_mark")
        assert isinstance(replay.screen, HelpScreen)
        assert "y              Toggle Python frames" in screen_text(replay)
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await pilot.press(*"Python")
        await wait_for_text(pilot, "Toggle Python frames / the interpreter's own C frames (y)")

    drive(replay, script, size=(120, 50))


# What the screen shows ---------------------------------------------------------------------


def test_python_functions_are_marked_in_the_table_and_the_stack_pane(
    recorded: list[Interval],
) -> None:
    source = FakeSource([python_interval(recorded[0])])
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await until_shown(pilot)
        table = functions_table(app)
        assert "[py]  inner_spin (work.py:30)" in table
        assert "python3.11" in table and "[.]   Py_RunMain" in table
        pane = stack_pane(app)
        assert "[.] Py_RunMain  python3.11" in pane
        # No path after a Python frame: its symbol names the file already.
        (outer,) = [line.rstrip() for line in pane.splitlines() if "outer" in line]
        assert outer.endswith("[py] outer (work.py:10)")
        assert "[py] inner_spin (work.py:30)  self 60.0%" in pane
        await pilot.press("tab")  # the functions table: the pane shows the hottest function
        await wait_for(
            pilot, lambda: "Call stacks: [py] inner_spin (work.py:30)" in screen_text(app)
        )

    drive(app, script, size=(200, 48))
    source.close()


def test_python_frames_in_the_flame_graph(recorded: list[Interval]) -> None:
    source = FakeSource([python_interval(recorded[0])])
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await until_shown(pilot)
        await pilot.press("f", "down", "down", "down")  # process, _start, Py_RunMain, outer
        assert "[py] outer (work.py:10) in /srv/app/work.py 100 samples" in detail(app)
        assert rows(app)[3].startswith("outer (work.py:10)")
        assert flame(app).graph.selected_box is not None

    drive(app, script, size=(120, 40))
    source.close()


def test_hostile_python_names_are_text_everywhere(recorded: list[Interval]) -> None:
    """A Python function's name is the target's to choose: an escape sequence is shown, not
    sent, and markup is shown as written, in the table, the stack pane and the flame graph."""
    source = FakeSource([python_interval(recorded[0])])
    app = PerftopApp(source)
    evil, markup = "\\x1b[31mevil (work.py:40)", "[bold]x[/bold] (work.py:50)"

    async def script(pilot: Pilot[None]) -> None:
        await until_shown(pilot)
        assert "\\x1b[31mevil" in symbols(app)  # the column's first word
        table = functions_table(app)
        assert evil in table and markup in table
        pane = stack_pane(app)
        assert f"[py] {evil}  self 25.0%" in pane
        assert f"[py] {markup}  self 15.0%" in pane
        assert "\x1b" not in screen_text(app)
        await pilot.press("f", "down", "down", "down", "down", "right")  # under outer: evil
        assert f"[py] {evil} in /srv/app/work.py 25 samples" in detail(app)
        await pilot.press("right")
        assert f"[py] {markup} in /srv/app/work.py 15 samples" in detail(app)
        assert any(markup in row for row in rows(app))
        assert "\x1b" not in screen_text(app)

    drive(app, script, size=(200, 48))
    source.close()


def test_python_frames_have_a_style_of_their_own() -> None:
    """A green mark in the stack pane (the others are dim) and a green box in the flame graph
    (native boxes are warm, the kernel's blue)."""
    tree = stack_tree(python_stacks(), "t")
    python = tree.children[0].children[0].children[0]  # _start > Py_RunMain > outer
    native = tree.children[0]
    assert python.mark == "[py]" and native.mark == "[.]"
    assert ("[py] ", mark_style(python.kind)) in node_parts(python)  # type: ignore[arg-type]
    assert mark_style(python.kind) == Style(color="green")  # type: ignore[arg-type]
    assert ("[.] ", Style(dim=True)) in node_parts(native)
    greens = {colour for pair in PYTHON_PALETTE for colour in pair}
    assert box_colour(py("outer", WORK, 10)) in greens
    assert box_colour(user("Py_RunMain", "python3.11")) not in greens
