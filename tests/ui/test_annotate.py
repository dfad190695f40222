"""The annotate view on the real app, fed by a scripted source: `a` on a function opens it on
the hottest instruction, arrows move, Tab goes to the next hot one, Esc goes back; a Python
function's hostile source line is shown as text."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from perftop.model.annotate import CodeKind, CodeSite, OffsetHistogram
from perftop.model.samples import Interval
from perftop.ui.app import PerftopApp
from perftop.ui.widgets.annotate_view import AnnotatePane, AnnotateScreen
from tests.ui.conftest import FakeSource, screen_text, wait_for, wait_for_text
from tests.unit.factories import python, stack, user
from tests.unit.test_annotate import HOT_C, symbol_range

Script = Callable[[Pilot[None]], Awaitable[None]]


def drive(app: PerftopApp, script: Script, size: tuple[int, int] = (120, 40)) -> None:
    async def main() -> None:
        async with app.run_test(size=size, notifications=True) as pilot:
            try:
                await script(pilot)
            finally:
                app.source.close()

    asyncio.run(main())


@pytest.fixture(scope="module")
def hot_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    binary = tmp_path_factory.mktemp("hot") / "hot"
    subprocess.run(["gcc", "-O1", "-g", "-o", str(binary), str(HOT_C)], check=True)
    return binary


def hot_interval(binary: Path) -> tuple[Interval, dict[str, int]]:
    """`hot` is the leaf of 100 samples: 70 on the instruction after the div, 20 on the div's
    setup, 10 at the function's entry; `main` has none of its own."""
    start, end = symbol_range(binary, "hot")
    objdump = subprocess.run(
        [
            "objdump",
            "-d",
            "--no-show-raw-insn",
            f"--start-address={start}",
            f"--stop-address={end}",
            str(binary),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    offsets = []
    texts = {}
    for line in objdump.splitlines():
        parts = line.strip().split(":\t", 1)
        if len(parts) == 2 and all(c in "0123456789abcdef" for c in parts[0]):
            offsets.append(int(parts[0], 16) - start)
            texts[int(parts[0], 16) - start] = parts[1].split()[0]
    div = next(offset for offset in offsets if texts[offset] == "div")
    after = offsets[offsets.index(div) + 1]
    before = offsets[offsets.index(div) - 1]
    site = CodeSite(CodeKind.NATIVE, (str(binary),), str(binary), start, end)
    frames = (user("main", "hot"), user("hot", "hot"))
    interval = Interval(
        1.0,
        1.0,
        "cpu-clock",
        99,
        {},
        (),
        (stack(*frames, pid=1001, comm="hot", samples=100),),
        {},
        leaf_offsets={
            (1001, ("hot", "hot", False)): OffsetHistogram(site, {after: 70, before: 20, 0: 10})
        },
    )
    return interval, {"after": after, "before": before, "entry": 0}


def pane(app: PerftopApp) -> AnnotatePane:
    assert isinstance(app.screen, AnnotateScreen), app.screen
    return app.screen.pane


def test_a_opens_annotate_on_the_hottest_and_tab_esc_work(hot_binary: Path) -> None:
    interval, offsets = hot_interval(hot_binary)
    source = FakeSource([interval])
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await wait_for_text(pilot, "hot")
        await pilot.press("tab")  # to the functions pane: hot is its first row
        await wait_for(pilot, lambda: app.dashboard.function_table.selected_function is not None)
        assert app.dashboard.function_table.selected_function == ("hot", "hot", False)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, AnnotateScreen))
        # The code arrives from the worker: instructions with their shares, the source line.
        await wait_for_text(pilot, "div")
        text = screen_text(app)
        assert "Annotate [.] hot" in text and "100 samples" in text
        assert "70.00%" in text and "20.00%" in text and "10.00%" in text
        assert "the hot line" in text  # hot.c:7 interleaved
        await wait_for(
            pilot,
            lambda: pane(app).current is not None and pane(app).current.offset == offsets["after"],
        )
        assert pane(app).current.hottest
        await pilot.press("down")
        assert pane(app).current.offset != offsets["after"]
        await pilot.press("up")
        assert pane(app).current.offset == offsets["after"]
        await pilot.press("tab")  # the next hot: 20%
        assert pane(app).current.offset == offsets["before"]
        await pilot.press("tab")  # then 10%
        assert pane(app).current.offset == offsets["entry"]
        await pilot.press("tab")  # and round again
        assert pane(app).current.offset == offsets["after"]
        # Live: the next interval moves the heat, the cursor stays on its instruction.
        moved = {
            k: OffsetHistogram(v.site, {offsets["entry"]: 50})
            for k, v in interval.leaf_offsets.items()
        }
        source.push(
            Interval(
                2.0,
                1.0,
                "cpu-clock",
                99,
                {},
                (),
                (stack(user("main", "hot"), user("hot", "hot"), pid=1001, comm="hot", samples=50),),
                {},
                leaf_offsets=moved,
            )
        )
        await wait_for_text(pilot, "50 samples")
        assert pane(app).current.offset == offsets["after"]
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, AnnotateScreen))
        assert "Functions" in screen_text(app)

    drive(app, script)


def test_enter_on_a_leaf_of_the_call_stack_pane_annotates_it(hot_binary: Path) -> None:
    interval, _ = hot_interval(hot_binary)
    app = PerftopApp(FakeSource([interval]))

    async def script(pilot: Pilot[None]) -> None:
        await wait_for_text(pilot, "hot")
        await pilot.press("tab")  # functions: hot
        await pilot.press("enter")  # to the stacks through it
        tree = app.dashboard.stack_tree
        await wait_for(pilot, lambda: tree.has_focus and tree.line_count > 1)
        while tree.cursor_path is None or tree.cursor_path[-1:] != (("hot", "hot", False),):
            await pilot.press("down")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, AnnotateScreen))
        assert app.screen.function == ("hot", "hot", False)

    drive(app, script)


def test_a_python_source_line_is_shown_literally(tmp_path: Path) -> None:
    script_file = tmp_path / "evil.py"
    script_file.write_text("def slow():\n    x = '\x1b[2J[bold red]not markup[/]'\n    return x\n")
    frame = python("slow", str(script_file), first_line=1, line=2)
    key = (frame.symbol, frame.module, False)
    site = CodeSite(CodeKind.PYTHON, (str(script_file),), str(script_file), 1, 0)
    interval = Interval(
        1.0,
        1.0,
        "cpu-clock",
        99,
        {},
        (),
        (stack(user("main", "python3.11"), frame, pid=1001, comm="py", samples=10),),
        {},
        leaf_offsets={(1001, key): OffsetHistogram(site, {2: 9, 3: 1})},
    )
    app = PerftopApp(FakeSource([interval]))

    async def script(pilot: Pilot[None]) -> None:
        await wait_for_text(pilot, "slow")
        await pilot.press("tab", "a")
        await wait_for(pilot, lambda: isinstance(app.screen, AnnotateScreen))
        await wait_for_text(pilot, "not markup")
        text = screen_text(app)
        assert "\\x1b[2J[bold red]not markup[/]" in text  # the escape shown, the markup kept
        assert "\x1b" not in text
        assert "90.00%" in text and pane(app).current.offset == 2

    drive(app, script)
