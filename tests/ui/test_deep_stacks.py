"""Deep stacks on the screen (issue 19): a 24-frame chain is one line and its leaf is in view
at 80 columns, Enter shows and hides the chain's frames, `i` turns the pane bottom-up, and
Enter on a line that is not a frame annotates nothing."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from textual import on
from textual.app import App, ComposeResult
from textual.pilot import Pilot

from perftop.model.reasons import Unresolved
from perftop.model.samples import Frame, Interval, StackSample
from perftop.ui.app import PerftopApp
from perftop.ui.widgets.annotate_view import AnnotateRequested
from perftop.ui.widgets.help_screen import HelpScreen
from perftop.ui.widgets.stack_tree import StackTree
from perftop.viewmodel import stack_tree
from tests.ui.conftest import FakeSource, screen_lines, screen_text, wait_for, widget_lines
from tests.ui.test_keys import drive

PID = 1001
CHAIN = tuple(f"c{index:02d}" for index in range(1, 24))  # 23 frames that call one function
LEAF = "the_leaf_function"
RUN_LINE = "⋯ 23 frames: c01 → … → c23"


def deep_stacks() -> tuple[StackSample, ...]:
    """One process's 24-frame chain: 23 frames that each call the next, the leaf spinning."""
    frames = tuple(Frame(symbol, "app", False) for symbol in (*CHAIN, LEAF))
    return (StackSample(PID, PID, "deep", frames, 90, 0),)


def deep_interval(base: Interval) -> Interval:
    return replace(base, stacks=deep_stacks())


def pane(app: PerftopApp) -> list[str]:
    """The lines of the call-stack pane under its title."""
    region = app.query_one(StackTree).content_region
    return [line[region.x : region.right] for line in screen_lines(app)[region.y : region.bottom]]


def pane_text(app: PerftopApp) -> str:
    return "\n".join(pane(app))


def title(app: PerftopApp) -> str:
    """The call-stack pane's title line, the line above its region."""
    tree = app.query_one(StackTree)
    region = tree.region
    line = screen_lines(app)[region.y]
    return line[region.x : region.right]


async def focus_stacks(pilot: Pilot[None]) -> StackTree:
    """Tab to the call-stack pane, as the user does (under 32 lines it is then given room)."""
    app = pilot.app
    tree = app.query_one(StackTree)
    for _ in range(5):
        if app.focused is tree:
            break
        await pilot.press("tab")
        await pilot.pause()
    assert app.focused is tree
    return tree


async def cursor_on(pilot: Pilot[None], tree: StackTree, text: str) -> None:
    app = pilot.app
    assert isinstance(app, PerftopApp)
    await pilot.press("home")
    await pilot.pause()
    for _ in range(tree.line_count):
        if text in cursor_line(app, tree):
            return
        await pilot.press("down")
    raise AssertionError(f"no line with {text!r}:\n{pane_text(app)}")


def cursor_line(app: PerftopApp, tree: StackTree) -> str:
    """The text of the pane's line under the cursor."""
    return pane(app)[tree.cursor_line - int(tree.scroll_offset.y)]


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_a_deep_chain_is_one_line_and_enter_shows_its_frames(
    recorded: list[Interval], size: tuple[int, int]
) -> None:
    source = FakeSource([deep_interval(recorded[0])])
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        # The title first: under 32 lines the pane may show only its title until focused.
        await wait_for(pilot, lambda: "Call stacks: PID 1001 deep" in title(app))
        tree = await focus_stacks(pilot)
        await wait_for(pilot, lambda: RUN_LINE in pane_text(app))
        text = pane_text(app)
        run = next(line for line in text.splitlines() if RUN_LINE in line)
        assert "▷ 100.0% ⋯ 23 frames" in run, text
        leaf = next(line for line in text.splitlines() if f"% [.] {LEAF}" in line)
        assert f"100.0% [.] {LEAF}" in leaf, text  # the leaf, on screen, its name whole
        assert "c05" not in text and "c22 " not in text
        # Enter unfolds the run into its frames; the leaf is still there, at the end.
        await cursor_on(pilot, tree, RUN_LINE)
        await pilot.press("enter")
        await pilot.pause()
        assert "▼ 100.0% ⋯ 23 frames" in cursor_line(app, tree)
        assert "[.] c01" in pane_text(app) and "[.] c02" in pane_text(app)
        await pilot.press("end")
        await pilot.pause()
        text = pane_text(app)
        leaf = next(line for line in text.splitlines() if f"% [.] {LEAF}" in line)
        assert f"100.0% [.] {LEAF}" in leaf and leaf.lstrip().startswith("⋯"), text
        assert "[.] c23" in text
        # Left goes up the chain a frame at a time; back on the run, Enter folds it again.
        await pilot.press("left")
        assert "[.] c23" in cursor_line(app, tree)
        await cursor_on(pilot, tree, RUN_LINE)
        await pilot.press("enter")
        await pilot.pause()
        assert "[.] c01" not in pane_text(app) and LEAF in pane_text(app)
        assert "▷" in cursor_line(app, tree)
        # Right unfolds it too; Left folds it.
        await pilot.press("right")
        await pilot.pause()
        assert "[.] c01" in pane_text(app)
        await pilot.press("left")
        await pilot.pause()
        assert "[.] c01" not in pane_text(app)

    drive(app, script, size=size)
    source.close()


@pytest.mark.parametrize("size", [(80, 40), (120, 40)])
def test_i_turns_the_pane_bottom_up_and_the_title_says_so(
    recorded: list[Interval], size: tuple[int, int]
) -> None:
    source = FakeSource([deep_interval(recorded[0])])
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: "Call stacks: PID 1001 deep" in title(app))
        await wait_for(pilot, lambda: LEAF in pane_text(app))
        await pilot.press("i")  # from the processes table: the leaves of the process
        await wait_for(pilot, lambda: "Callers (bottom-up): PID 1001 deep" in title(app))
        text = pane_text(app)
        assert f"▼ 100.0% [.] {LEAF}" in text, text  # the leaf at the top, unfolded
        assert "⋯ 22 frames: c23 → … → c02" in text, text
        assert "[.] c01" in text, text
        # A function: its callers, with its name in the title.
        tree = app.query_one(StackTree)
        await pilot.press("tab")  # the functions table, the leaf first (the hottest)
        await wait_for(pilot, lambda: "Callers (bottom-up) of [.] the_leaf" in title(app))
        assert "⋯ 22 frames: c23 → … → c02" in pane_text(app)
        # In the pane, the footer offers the key; i again: top-down.
        await focus_stacks(pilot)
        assert app.focused is tree
        await wait_for(pilot, lambda: "i Callers" in screen_lines(app)[-1])
        await pilot.press("i")
        await wait_for(pilot, lambda: "Call stacks: [.] the_leaf" in title(app))
        assert RUN_LINE in pane_text(app)

    drive(app, script, size=size)
    source.close()


def test_the_help_lists_the_key(recorded: list[Interval]) -> None:
    source = FakeSource([deep_interval(recorded[0])])
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        await wait_for(pilot, lambda: "callers of the selection" in screen_text(app))

    drive(app, script, size=(120, 40))
    source.close()


# Enter on lines that are not frames -------------------------------------------------------


class RecordingApp(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.annotated: list[object] = []

    def compose(self) -> ComposeResult:
        yield StackTree()

    @on(AnnotateRequested)
    def _annotate(self, message: AnnotateRequested) -> None:
        self.annotated.append(message)


def test_enter_on_a_fix_line_or_a_more_line_annotates_nothing() -> None:
    """The remedy line (`fix: ...`) and the `… n more` line have no function to annotate:
    Enter on them did post one, for a made-up key. On a leaf frame it still annotates."""
    stripped = Frame("libfoo.so+0x1a2b", "libfoo.so", False, Unresolved.STRIPPED)
    stacks = [
        StackSample(1, 1, "app", (Frame("main", "app", False), stripped), 500, 0),
        StackSample(1, 1, "app", (Frame("main", "app", False), Frame("hot", "app", False)), 499, 0),
        *(
            StackSample(
                1, 1, "app", (Frame("main", "app", False), Frame(f"f{i}", "app", False)), 1, 0
            )
            for i in range(3)
        ),
    ]

    async def main() -> None:
        app = RecordingApp()
        async with app.run_test(size=(100, 20)) as pilot:
            tree = app.query_one(StackTree)
            tree.show_stacks(stack_tree(stacks, "PID 1 app"), subject=1)
            tree.focus()
            await pilot.pause()
            lines = widget_lines(app, tree)
            for text in ("fix: ", "… 3 more under 0.5%"):
                tree.cursor_line = next(i for i, line in enumerate(lines) if text in line)
                await pilot.press("enter")
                await pilot.pause()
                assert app.annotated == [], text
                assert widget_lines(app, tree) == lines  # nothing folded or unfolded
            tree.cursor_line = next(i for i, line in enumerate(lines) if " hot " in line)
            await pilot.press("enter")
            await pilot.pause()
            assert [message.function for message in app.annotated] == [("hot", "app", False)]  # type: ignore[attr-defined]

    asyncio.run(main())


def test_an_unfolded_run_stays_unfolded_when_its_chain_grows() -> None:
    """The next interval's chain is two frames longer: the run is the same line (by its first
    frame), still unfolded, the cursor still on it."""

    def chain_of(length: int) -> tuple[StackSample, ...]:
        frames = tuple(Frame(f"g{index:02d}", "app", False) for index in range(length))
        return (StackSample(1, 1, "app", frames, 10, 0),)

    async def main() -> None:
        app = RecordingApp()
        async with app.run_test(size=(100, 30)) as pilot:
            tree = app.query_one(StackTree)
            tree.show_stacks(stack_tree(chain_of(10), "PID 1 app"), subject=1)
            tree.focus()
            await pilot.pause()
            assert "⋯ 9 frames: g00 → … → g08" in "\n".join(widget_lines(app, tree))
            tree.cursor_line = 1
            await pilot.press("enter")
            await pilot.pause()
            tree.show_stacks(stack_tree(chain_of(12), "PID 1 app"), subject=1)
            await pilot.pause()
            lines = widget_lines(app, tree)
            assert "▼ 100.0% ⋯ 11 frames: g00 → … → g10" in lines[tree.cursor_line]
            assert any("[.] g05" in line for line in lines), "\n".join(lines)

    asyncio.run(main())


def test_a_cold_run_unfolds_into_all_its_frames() -> None:
    """A run of 5% of the time: its frames would each stay folded by the rule for cold
    branches; the user asked to see them, so Enter shows them all, down to what it calls."""
    cold = tuple(Frame(f"cold{index}", "app", False) for index in range(8))
    stacks = [
        StackSample(1, 1, "app", (Frame("main", "app", False), Frame("hot", "app", False)), 95, 0),
        StackSample(1, 1, "app", (Frame("main", "app", False), *cold), 5, 0),
    ]

    async def main() -> None:
        app = RecordingApp()
        async with app.run_test(size=(100, 30)) as pilot:
            tree = app.query_one(StackTree)
            tree.show_stacks(stack_tree(stacks, "PID 1 app"), subject=1)
            tree.focus()
            await pilot.pause()
            lines = widget_lines(app, tree)
            tree.cursor_line = next(i for i, line in enumerate(lines) if "⋯ 7 frames" in line)
            await pilot.press("enter")
            await pilot.pause()
            text = "\n".join(widget_lines(app, tree))
            for index in range(8):
                assert f"[.] cold{index}" in text, text

    asyncio.run(main())


def test_a_big_callers_tree_is_built_off_the_ui_thread(
    recorded: list[Interval], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past THREADED_TREE_STACKS the bottom-up tree goes through the worker thread too, and
    reaches the pane with its title."""
    import threading

    from perftop.ui.widgets.dashboard import Dashboard
    from tests.ui.test_keys import big_snapshot

    built_in: list[tuple[str, bool]] = []
    build = Dashboard._stack_model

    def recording_build(*args: object) -> object:
        built_in.append((threading.current_thread().name, bool(args[-1])))
        return build(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(Dashboard, "_stack_model", staticmethod(recording_build))
    source = FakeSource([big_snapshot(recorded[0])])
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: "Call stacks: PID 1001 python3" in title(app))
        await pilot.press("i")
        await wait_for(pilot, lambda: "Callers (bottom-up): PID 1001" in title(app))
        await wait_for(pilot, lambda: "[.] leaf_7  big  self" in pane_text(app))
        main = threading.main_thread().name
        assert [callers for _, callers in built_in] == [False, True]
        assert all(thread != main for thread, _ in built_in)

    drive(app, script, size=(160, 48))
    source.close()
