"""Issue 19, points 8, 9 and 10 on the screen: one `fix:` line per module and reason, the
by-module view (`d`), exited processes of one command as one row, flame siblings that keep
their places, `x` after a flame zoom, the REC mark, and a replay's pause, step and seek keys."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from textual.pilot import Pilot

from perftop.formats.recording import RecordingWriter
from perftop.model.reasons import Unresolved
from perftop.model.samples import Frame, Interval, ProcessInfo, StackSample
from perftop.sampling.replay import ReplaySource
from perftop.ui.app import PerftopApp
from tests.ui.conftest import (
    SYNTHETIC_RECORDING,
    FakeSource,
    screen_text,
    table_column,
    wait_for,
    wait_for_text,
    widget_lines,
)
from tests.ui.test_flame_keys import flame, rows, wait_said
from tests.ui.test_keys import drive, pids, until_ended

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]
FIX = "fix: install debug symbols for libfoo.so"


def stripped(offset: int) -> Frame:
    return Frame(f"libfoo.so+0x{offset:x}", "libfoo.so", False, Unresolved.STRIPPED)


def app_frames(*frames: Frame, samples: int) -> StackSample:
    main = Frame("main", "app", False)
    return StackSample(4004, 4004, "app", (main, *frames), samples, samples * 10_101_010)


def many_stripped_frames(like: Interval) -> Interval:
    """`app` with three stripped frames of one library, each a leaf (unfolded: it has advice)."""
    others = tuple(s for s in like.stacks if s.pid != 4004)
    mine = (
        app_frames(stripped(0x1A2B), samples=300),
        app_frames(stripped(0x2000), samples=200),
        app_frames(stripped(0x3000), samples=150),
    )
    return replace(like, stacks=others + mine)


def stack_pane_text(app: PerftopApp) -> str:
    return "\n".join(widget_lines(app, app.dashboard.stack_tree))


# The stack pane below the tables (120x40) and beside them (200x48: two fifths of the width).
@pytest.mark.parametrize("size", [pytest.param((120, 40), id="120x40"), (200, 48)])
def test_one_fix_line_per_module_and_reason(
    recorded: list[Interval], size: tuple[int, int]
) -> None:
    source = FakeSource([many_stripped_frames(recorded[0])])
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: pids(app)[:1] == ["4004"])
        await wait_for_text(pilot, "Call stacks: PID 4004 app")
        text = stack_pane_text(app)
        # Each frame still says why it has no name; the advice is given once.
        assert text.count("libfoo.so+0x") == 3, text
        assert text.count("← strip") == 3, text
        assert text.count(FIX[:20]) == 1, text  # cut at the pane's edge at 120 columns

    drive(app, script, size=size)
    source.close()


@pytest.mark.parametrize("size", SIZES)
def test_d_shows_the_functions_by_module_and_back(
    recorded: list[Interval], size: tuple[int, int]
) -> None:
    source = FakeSource([recorded[0]])
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: "1001" in pids(app))
        await pilot.press("d")
        await wait_for_text(pilot, "Modules")
        modules = table_column(app, "#functions", "MODULE")
        # As perf top --sort dso: self time by module, hottest first, one row each.
        assert modules[:3] == ["[anon:jit]", "cc1", "postgres"]
        assert len(modules) == len(set(modules))
        counts = table_column(app, "#functions", "SYMBOL")  # "N functions", N first
        assert counts and all(count.isdigit() for count in counts)
        postgres = app.dashboard.function_table
        assert "Modules" in str(postgres.border_title)
        await pilot.press("d")
        await wait_for(pilot, lambda: "Modules" not in screen_text(app))
        assert table_column(app, "#functions", "SYMBOL")[0] == "[unknown]"

    drive(app, script, size=size)
    source.close()


def fork_loop(like: Interval, count: int = 24) -> Interval:
    """`like` plus `count` short-lived `sh` processes, each gone before it was looked up."""
    forks = tuple(
        StackSample(7000 + n, 7000 + n, "sh", (Frame("main", "dash", False),), 2, 2 * 10_101_010)
        for n in range(count)
    )
    infos = dict(like.processes)
    infos.update({7000 + n: ProcessInfo(7000 + n, exited=True) for n in range(count)})
    return replace(like, stacks=like.stacks + forks, processes=infos)


@pytest.mark.parametrize("size", SIZES)
def test_a_fork_loop_is_one_rolled_up_row(recorded: list[Interval], size: tuple[int, int]) -> None:
    source = FakeSource([fork_loop(recorded[0])])
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: "×24" in pids(app))
        assert "Processes (7)" in screen_text(app)  # six, and one row for the 24 exited `sh`
        assert not any(pid.startswith("70") for pid in pids(app))
        assert "sh (24 exited)" in screen_text(app)
        assert table_column(app, "#processes", "SAMPLES")[pids(app).index("×24")] == "48"

    drive(app, script, size=size)
    source.close()


def postgres_scaled(like: Interval, factor: float) -> Interval:
    return replace(
        like,
        stacks=tuple(
            s._replace(samples=round(s.samples * factor)) if s.pid == 2002 else s
            for s in like.stacks
        ),
    )


@pytest.mark.parametrize("size", SIZES)
def test_the_selected_flame_frame_stays_where_it_was(
    recorded: list[Interval], size: tuple[int, int]
) -> None:
    source = FakeSource([recorded[0]])
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: "1001" in pids(app))
        await pilot.press("f", "right")  # postgres, beside the hotter python3
        graph = flame(app).graph
        before = graph.selected_box
        assert before is not None and before.frame.symbol == "postgres [2002]"
        # postgres now a little hotter than python3 (190 and 185 samples): hottest-first put
        # it leftmost, and the selection jumped across the screen with it.
        source.push(postgres_scaled(recorded[1], 1.96))
        await wait_for(pilot, lambda: source.delivered == 2 and app.snapshots_received == 2)
        await pilot.pause(0.05)
        after = graph.selected_box
        assert after is not None and after.frame.symbol == "postgres [2002]"
        # Still right of python3 (its edge moves with the shares, the order does not).
        assert after.x > 0 and rows(app)[0].startswith("python3 [1001]")
        # Clearly hotter (over 1.25 times): it moves left then.
        source.push(postgres_scaled(recorded[2], 3.0))
        await wait_for(pilot, lambda: app.snapshots_received == 3)
        await pilot.pause(0.05)
        assert rows(app)[0].startswith("postgres [2002]")

    drive(app, script, size=size)
    source.close()


def test_x_after_a_flame_zoom_writes_the_zoom(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    source = ReplaySource(SYNTHETIC_RECORDING, interval_s=0)
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await until_ended(pilot)
        await pilot.press("f", "right", "down", "down", "enter")  # postgres › main › Postmaster…
        assert rows(app)[0].rstrip() == "PostmasterMain"
        await pilot.press("x")
        text = screen_text(app)
        assert "› PostmasterMain" in text, text
        await pilot.press("ctrl+u", *"zoom.folded", "enter")  # the first format: folded
        await wait_said(pilot, f"to {tmp_path / 'zoom.folded'}")

    drive(app, script, size=(120, 40))
    source.close()
    lines = (tmp_path / "zoom.folded").read_text().splitlines()
    assert lines and all(line.startswith("postgres;main;PostmasterMain") for line in lines)
    assert not any("python3" in line for line in lines)


@pytest.mark.parametrize("size", SIZES)
def test_rec_is_marked_while_recording(
    recorded: list[Interval], size: tuple[int, int], tmp_path: Path
) -> None:
    source = FakeSource([recorded[0]])
    recorder = RecordingWriter(tmp_path / "session.jsonl")
    app = PerftopApp(source, recorder=recorder)

    async def script(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: app.snapshots_received > 0 and bool(pids(app)))
        header = "\n".join(widget_lines(app, app.dashboard.header_bar))
        assert "● REC" in header

    drive(app, script, size=size)
    recorder.close()
    source.close()
    plain = FakeSource([recorded[0]])
    app = PerftopApp(plain)

    async def unmarked(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: app.snapshots_received > 0 and bool(pids(app)))
        assert "REC" not in screen_text(app)

    drive(app, unmarked, size=size)
    plain.close()


# 80x32: the processes pane holds its six rows from 32 lines (at 24 it holds four).
@pytest.mark.parametrize("size", [pytest.param((80, 32), id="80x32"), SIZES[1]])
def test_a_replay_pauses_steps_and_seeks(size: tuple[int, int]) -> None:
    source = ReplaySource(SYNTHETIC_RECORDING, interval_s=0)
    app = PerftopApp(source)

    def cc1_samples() -> str:
        shown = pids(app)  # the pane grows to its rows a frame after them: "" until it has
        return (
            table_column(app, "#processes", "SAMPLES")[shown.index("6006")]
            if "6006" in shown
            else ""
        )

    async def cc1_shows(samples: str) -> None:
        await wait_for(pilot_of[0], lambda: cc1_samples() == samples)

    pilot_of: list[Pilot[None]] = []

    async def script(pilot: Pilot[None]) -> None:
        pilot_of.append(pilot)
        await until_ended(pilot)
        await cc1_shows("20")  # the fourth and last interval
        await pilot.press("comma")  # pause, one back
        await wait_for_text(pilot, "REPLAY 3")
        assert "PAUSED" in screen_text(app)
        await cc1_shows("90")
        await pilot.press("comma")
        await wait_for_text(pilot, "REPLAY 2")
        await pilot.press("full_stop")
        await wait_for_text(pilot, "REPLAY 3")
        await pilot.pause(0.2)
        assert "REPLAY 3" in screen_text(app)  # paused: nothing plays on by itself
        await pilot.press("full_stop")
        await wait_for_text(pilot, "REPLAY 4")
        await cc1_shows("20")
        await pilot.press("left_square_bracket")  # ten back: the first
        await wait_for_text(pilot, "REPLAY 1")
        await pilot.press("right_square_bracket")  # ten on: the last there is
        await wait_for_text(pilot, "REPLAY 4")
        await pilot.press("left_square_bracket", "space")  # from the start, playing again
        await until_ended(pilot)
        assert "PAUSED" not in screen_text(app)

    drive(app, script, size=size)
    source.close()
