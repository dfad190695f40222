"""The flame graph (`f`) and the export dialog (`x`), driven by keys over recorded data."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from rich.style import Style
from textual.pilot import Pilot

from perftop.model.samples import Frame, Interval, StackSample
from perftop.profile.aggregate import PROCESS_MODULE
from perftop.profile.flame import FlameBox, flame_root
from perftop.sampling.replay import ReplaySource
from perftop.ui.app import PerftopApp
from perftop.ui.widgets.dashboard import Dashboard
from perftop.ui.widgets.export_dialog import ConfirmOverwrite, ExportDialog, with_extension
from perftop.ui.widgets.flame_view import (
    KERNEL_COLOURS,
    SELECTED_BACKGROUND,
    FlameScreen,
    box_colour,
    row_strip,
)
from perftop.ui.widgets.help_screen import HelpScreen
from tests.ui.conftest import (
    SYNTHETIC_RECORDING,
    FakeSource,
    screen_text,
    wait_for,
    widget_lines,
)
from tests.ui.test_keys import drive, until_ended


@pytest.fixture
def replay() -> Iterator[PerftopApp]:
    source = ReplaySource(SYNTHETIC_RECORDING, interval_s=0)
    yield PerftopApp(source)
    source.close()


def flame(app: PerftopApp) -> FlameScreen:
    screen = app.screen
    assert isinstance(screen, FlameScreen), type(screen)
    return screen


def rows(app: PerftopApp) -> list[str]:
    """The flame graph's rows as the user reads them (below its title line)."""
    return widget_lines(app, flame(app).graph)[1:]


def title(app: PerftopApp) -> str:
    return widget_lines(app, flame(app).graph)[0]


def said(app: PerftopApp, message: str) -> bool:
    """Whether a notification on screen says `message` (toasts wrap long paths anywhere)."""
    from textual.widgets._toast import Toast

    shown = "".join(
        "".join(widget_lines(app, toast)) for toast in app.screen.query(Toast) if toast.region
    )
    return "".join(message.split()) in "".join(shown.replace("▌", "").split())  # its left edge


async def wait_said(pilot: Pilot[None], message: str) -> None:
    await wait_for(pilot, lambda: said(pilot.app, message))  # type: ignore[arg-type]


def detail(app: PerftopApp) -> str:
    """The detail line, its runs of spaces made one (it may wrap over several lines)."""
    return " ".join(" ".join(widget_lines(app, flame(app).detail)).split())


# Pure parts ---------------------------------------------------------------------------------


def test_processes_are_the_top_row_so_programs_never_merge() -> None:
    main = Frame("main", "app", False)
    stacks = [
        StackSample(1, 1, "a", (main,), 3, 0),
        StackSample(2, 2, "b", (main,), 1, 0),
    ]
    root = flame_root(stacks, {1: "alpha"})
    tops = [node.frame for node in root.sorted_children()]
    assert [(f.symbol, f.module) for f in tops if f] == [
        ("alpha [1]", PROCESS_MODULE),
        ("b [2]", PROCESS_MODULE),  # no name known: the stack's comm
    ]
    assert all(len(node.children) == 1 for node in root.children.values())


def test_colours_are_stable_per_module_and_kernel_apart() -> None:
    libc = Frame("memcpy", "libc.so.6", False)
    assert box_colour(libc) == box_colour(Frame("memcpy", "libc.so.6", False))
    assert box_colour(Frame("vfs_read", "[kernel]", True)) in KERNEL_COLOURS
    assert all(
        box_colour(Frame(name, "libc.so.6", False)) not in KERNEL_COLOURS
        for name in ("memcpy", "malloc", "free", "read")
    )
    # Every colour is one of the 256-colour palette: no truecolor needed.
    assert all(16 <= box_colour(Frame(str(n), f"lib{n}.so", False)) <= 255 for n in range(50))


def test_a_row_names_each_box_inside_it_cut_to_fit() -> None:
    frames = [Frame("a_long_function_name", "app", False), Frame("b", "app", False)]
    boxes = [
        FlameBox(0, 0, 10, frames[0], 5, 50.0, (frames[0][:3],)),
        FlameBox(0, 10, 4, frames[1], 3, 30.0, (frames[1][:3],)),
        FlameBox(0, 14, 2, Frame("tiny", "app", False), 2, 20.0, (("tiny", "app", False),)),
    ]
    strip = row_strip(boxes, 20, boxes[1], Style())
    assert strip.cell_length == 20
    # One cell of background after each box keeps neighbours apart; a box under three cells
    # inside has no name (two letters would read as a different name).
    assert strip.text == "a_long_f… b" + " " * 9
    styles = [segment.style for segment in strip if segment.text.strip()]
    assert styles[1] is not None and styles[1].bgcolor is not None
    assert styles[1].bgcolor.number == SELECTED_BACKGROUND  # the selected box
    assert styles[0] is not None and styles[0].bgcolor is not None
    assert styles[0].bgcolor.number == box_colour(frames[0])


def test_a_format_swaps_the_extension_it_recognises() -> None:
    assert with_extension("perftop-1.folded", "pprof") == "perftop-1.pb.gz"
    assert with_extension("x.speedscope.json", "folded") == "x.folded"
    assert with_extension("mine.txt", "pprof") == "mine.txt"


# Keys ---------------------------------------------------------------------------------------


def test_f_shows_every_process_hottest_first_and_f_again_goes_back(
    replay: PerftopApp,
) -> None:
    async def script(pilot: Pilot[None]) -> None:
        await until_ended(pilot)
        await pilot.press("f")
        assert "Flame graph: all processes" in title(replay)
        top = rows(replay)[0]
        # Hottest process leftmost, the widest box; each box named inside it.
        assert top.startswith("python3 [1001]")
        assert top.index("python3") < top.index("postgres [2002]") < top.index("app [4")
        assert rows(replay)[1].startswith("_start")
        assert "process python3 [1001]" in detail(replay)
        assert "% of the view" in detail(replay)
        await pilot.press("f")
        assert not isinstance(replay.screen, FlameScreen)
        assert isinstance(replay.screen.query_one(Dashboard), Dashboard)

    drive(replay, script)


def test_arrows_move_between_frames_and_the_detail_follows(
    replay: PerftopApp,
) -> None:
    async def script(pilot: Pilot[None]) -> None:
        await until_ended(pilot)
        await pilot.press("f", "right")
        assert "process postgres [2002]" in detail(replay)
        await pilot.press("down", "down", "down")  # main, PostmasterMain, its hottest callee
        assert "[.] BufferSync in postgres" in detail(replay)
        await pilot.press("right")  # the frame beside it
        assert "[.] __libc_write in libc.so.6" in detail(replay)
        await pilot.press("down")
        assert "[k] entry_SYSCALL_64_after_hwframe in [kernel]" in detail(replay)
        await pilot.press("up", "up")
        assert "[.] PostmasterMain in postgres" in detail(replay)
        await pilot.press("left", "left", "left")  # along the row, across parents, to the edge
        assert "[.] Py_RunMain in python3.12" in detail(replay)
        await pilot.press("up", "up", "up", "up")  # stops at the top
        assert "process python3 [1001]" in detail(replay)

    drive(replay, script)


def test_enter_zooms_esc_zooms_out_then_leaves(replay: PerftopApp) -> None:
    async def script(pilot: Pilot[None]) -> None:
        await until_ended(pilot)
        await pilot.press("f", "right", "down", "down", "enter")
        assert title(replay).startswith("─Flame graph: all processes › postgres [2002] › main")
        assert "PostmasterMain" in title(replay)
        assert rows(replay)[0].rstrip() == "PostmasterMain"  # the whole width is its own
        assert "100.0% of the zoom" in detail(replay)
        await pilot.press("down", "enter")  # deeper: BufferSync
        assert rows(replay)[0].rstrip() == "BufferSync"
        await pilot.press("escape")  # one level out, the frame zoomed into still selected
        assert rows(replay)[0].rstrip() == "PostmasterMain"
        assert "[.] BufferSync in postgres" in detail(replay)
        await pilot.press("escape")
        assert "Flame graph: all processes─" in title(replay)
        assert "[.] PostmasterMain in postgres" in detail(replay)
        await pilot.press("escape")  # at the top: back to the tables
        assert not isinstance(replay.screen, FlameScreen)

    drive(replay, script)


def test_hostile_names_are_text_in_boxes_and_detail(replay: PerftopApp) -> None:
    async def script(pilot: Pilot[None]) -> None:
        await until_ended(pilot)
        await pilot.press("f", "right", "right", "right")
        assert "process [bold red]x[/]\\x1b]0;owned\\x07 [3003]" in detail(replay)
        await pilot.press("down", "down")
        assert "evil[/]\\x1b[31m in libevil.so" in detail(replay)
        text = screen_text(replay)
        assert "[bold red]x[/]\\x1b]0…" in rows(replay)[0]  # the box: as much as fits
        assert "evil[/]\\x1b[31m" in text
        assert "\x1b" not in text and "\x07" not in text

    drive(replay, script, size=(200, 48))


def test_a_click_selects_the_box_under_it(replay: PerftopApp) -> None:
    async def script(pilot: Pilot[None]) -> None:
        await until_ended(pilot)
        await pilot.press("f")
        column = rows(replay)[3].index("BufferSync")
        await pilot.click("#flame", offset=(column + 2, 4))  # below the title line
        assert "[.] BufferSync in postgres" in detail(replay)
        await pilot.click("#flame", offset=(column + 2, 3), times=2)  # double: zoom
        assert rows(replay)[0].rstrip() == "PostmasterMain"

    drive(replay, script)


def test_flame_shows_the_zoomed_process_and_the_filters(replay: PerftopApp) -> None:
    async def script(pilot: Pilot[None]) -> None:
        await until_ended(pilot)
        await pilot.press("down", "enter", "f")  # zoom into postgres in the table, then f
        assert "Flame graph: PID 2002 postgres" in title(replay)
        assert rows(replay)[0].rstrip() == "postgres [2002]"
        assert "100.0% of the view" in detail(replay)
        await pilot.press("f", "escape", "down", "down", "enter", "f")  # a name that is markup
        assert "Flame graph: PID 3003 [bold red]x[/]\\x1b]0;ow" in title(replay)
        await pilot.press("f", "escape", "slash", *"malloc", "enter", "f")
        assert rows(replay)[0].rstrip() == "python3 [1001]"
        assert 'text "malloc"' in screen_text(replay)
        await pilot.press("down", "down", "down", "down")
        assert "PyObject_Malloc" in detail(replay)

    drive(replay, script)


def test_flame_follows_the_accumulated_view(replay: PerftopApp) -> None:
    async def script(pilot: Pilot[None]) -> None:
        await until_ended(pilot)
        await pilot.press("f", "right")
        last = detail(replay)
        assert "process postgres [2002] 91 samples" in last  # 61 + 30 in the last interval
        await pilot.press("a")
        assert "accumulated (decaying)" in screen_text(replay)
        assert detail(replay) != last and "process postgres [2002]" in detail(replay)

    drive(replay, script)


def test_selection_stays_on_its_frame_across_refreshes(recorded: list[Interval]) -> None:
    source = FakeSource([recorded[0]])
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: source.delivered == 1)
        await pilot.press("f", "right", "down", "down", "down")
        assert "[.] BufferSync in postgres 70 samples" in detail(app)
        source.push(recorded[3])  # BufferSync shrinks, other boxes move
        await wait_for(pilot, lambda: "BufferSync in postgres 61 samples" in detail(app))
        gone = tuple(s for s in recorded[3].stacks if "BufferSync" not in str(s.frames))
        source.push(replace(recorded[3], stacks=gone))  # gone: its caller is selected
        await wait_for(pilot, lambda: "[.] PostmasterMain in postgres" in detail(app))

    drive(app, script)
    source.close()


def deep_snapshot(base: Interval, depth: int) -> Interval:
    frames = tuple(Frame(f"level_{n}", "deep", False) for n in range(depth))
    return replace(base, stacks=(StackSample(4242, 4242, "deep", frames, 50, 0),))


def test_a_deep_stack_scrolls_at_80x24(recorded: list[Interval]) -> None:
    source = FakeSource([deep_snapshot(recorded[0], 60)])
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: source.delivered == 1)
        await pilot.press("f")
        visible = len(rows(app))
        assert 10 <= visible < 60
        await pilot.press(*["down"] * 40)
        assert "[.] level_39 in deep" in detail(app)
        # The selected frame was scrolled into view; the top of the stack scrolled away.
        assert any(row.startswith("level_39") for row in rows(app))
        assert not any(row.startswith("deep [4242]") for row in rows(app))
        await pilot.press("home")
        assert rows(app)[0].startswith("deep [4242]")

    drive(app, script)
    source.close()


def test_help_tells_the_flame_and_export_keys(replay: PerftopApp) -> None:
    async def script(pilot: Pilot[None]) -> None:
        await pilot.press("question_mark")
        assert isinstance(replay.screen, HelpScreen)
        text = screen_text(replay)
        assert "Flame graph of the current view" in text
        assert "folded stacks, speedscope or pprof" in text
        assert "zoom out one level; at the top, back to the tables" in text

    drive(replay, script, size=(120, 50))


# Export -------------------------------------------------------------------------------------


async def export(pilot: Pilot[None], format_downs: int, name: str) -> None:
    await pilot.press("x")
    assert isinstance(pilot.app.screen, ExportDialog)
    await pilot.press(*["down"] * format_downs, "ctrl+u", *name, "enter")


@pytest.mark.parametrize(
    ("downs", "name"), [(0, "out.folded"), (1, "out.speedscope.json"), (2, "out.pb.gz")]
)
def test_x_writes_the_filtered_view_and_says_where(
    replay: PerftopApp,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    downs: int,
    name: str,
) -> None:
    monkeypatch.chdir(tmp_path)

    async def script(pilot: Pilot[None]) -> None:
        await until_ended(pilot)
        await pilot.press("slash", *"malloc", "enter")
        await export(pilot, downs, name)
        await wait_said(pilot, f"to {tmp_path / name}")
        assert not isinstance(replay.screen, ExportDialog)

    drive(replay, script, size=(160, 40))
    content = (tmp_path / name).read_bytes()
    if name.endswith(".folded"):
        assert content.decode().splitlines() == [
            "python3;_start;Py_RunMain;_PyEval_EvalFrameDefault;PyObject_Malloc 40"
        ]
    elif name.endswith(".json"):
        profiles = json.loads(content)["profiles"]
        # The whole view first (issue 18), then one profile per process.
        names = [profile["name"] for profile in profiles]
        assert names[1:] == ["python3 (pid 1001)"]
        assert names[0].startswith("perftop cpu-clock: ")
    else:
        assert gzip.decompress(content)


def test_x_in_the_flame_graph_writes_the_zoomed_process(
    replay: PerftopApp,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)

    async def script(pilot: Pilot[None]) -> None:
        await until_ended(pilot)
        await pilot.press("down", "enter", "f")
        await pilot.press("x")
        assert "PID 2002 postgres, last interval: 91 samples in 2 stacks" in screen_text(replay)
        await pilot.press("ctrl+u", *"pg.folded", "enter")
        await wait_said(pilot, f"to {tmp_path / 'pg.folded'}")
        assert isinstance(replay.screen, FlameScreen)

    drive(replay, script, size=(120, 40))
    lines = (tmp_path / "pg.folded").read_text().splitlines()
    assert all(line.startswith("postgres;") for line in lines) and len(lines) == 2


def test_an_existing_file_is_replaced_only_after_yes(
    replay: PerftopApp,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    existing = tmp_path / "out.folded"
    existing.write_text("keep")

    async def script(pilot: Pilot[None]) -> None:
        await until_ended(pilot)
        await export(pilot, 0, "out.folded")
        assert isinstance(replay.screen, ConfirmOverwrite)
        await pilot.pause()
        question = " ".join(widget_lines(replay, replay.screen.query_one("#confirm-text")))
        assert "out.folded already exists. Replace it? (y/n)" in " ".join(question.split())
        await pilot.press("n")
        assert isinstance(replay.screen, ExportDialog)  # still open: pick another name
        assert existing.read_text() == "keep"
        await pilot.press("enter", "y")
        await wait_said(pilot, f"to {existing}")

    drive(replay, script, size=(160, 40))
    replaced = existing.read_text()
    assert "keep" not in replaced and "postgres;main;PostmasterMain;BufferSync 61" in replaced


def test_a_symlink_is_refused_and_the_dialog_stays(
    replay: PerftopApp,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "precious"
    target.write_text("precious")
    (tmp_path / "out.pb.gz").symlink_to(target)

    async def script(pilot: Pilot[None]) -> None:
        await until_ended(pilot)
        await export(pilot, 2, "out.pb.gz")
        await wait_said(pilot, f"{tmp_path / 'out.pb.gz'} is a symlink: perftop never writes")
        assert isinstance(replay.screen, ExportDialog)
        await pilot.press("escape")
        assert not isinstance(replay.screen, ExportDialog)

    drive(replay, script, size=(160, 40))
    assert target.read_text() == "precious"


def test_the_default_name_is_in_the_working_directory(
    replay: PerftopApp,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)

    async def script(pilot: Pilot[None]) -> None:
        await until_ended(pilot)
        await pilot.press("x", "down", "down")  # pprof: the name follows the format
        dialog = replay.screen
        assert isinstance(dialog, ExportDialog)
        assert dialog.export_format == "pprof"
        await pilot.press("up", "down", "down")  # stops at the last
        assert dialog.export_format == "pprof"
        await pilot.press("enter")
        await wait_said(pilot, "wrote pprof")

    drive(replay, script, size=(160, 40))
    written = list(tmp_path.iterdir())
    assert len(written) == 1 and written[0].name.startswith("perftop-")
    assert written[0].name.endswith(".pb.gz")
