"""The screen, driven by keys over recorded data: each key does what the help says it does."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace

import pytest
from textual.pilot import Pilot

from perftop.model.samples import Interval
from perftop.sampling.replay import ReplaySource
from perftop.ui.app import PerftopApp
from perftop.ui.widgets.event_picker import EventPicker
from perftop.ui.widgets.filter_input import FilterInput
from perftop.ui.widgets.help_screen import HelpScreen
from tests.ui.conftest import (
    SYNTHETIC_RECORDING,
    FakeSource,
    screen_text,
    table_column,
    wait_for,
    wait_for_text,
    widget_lines,
)

Script = Callable[[Pilot[None]], Awaitable[None]]
# 80 columns with room for every process of the recording: below 32 lines the processes pane
# holds 4 rows (tests/ui/test_layout.py), and these tests read all six.
TALL_80 = (80, 40)


def drive(app: PerftopApp, script: Script, size: tuple[int, int] = (80, 24)) -> None:
    async def main() -> None:
        async with app.run_test(size=size, notifications=True) as pilot:
            try:
                await script(pilot)
            finally:
                # The app exits only once the sampler thread leaves next_interval (asyncio joins
                # its threads), and a fake source waits for more pushes until it is closed.
                app.source.close()

    asyncio.run(main())


@pytest.fixture
def replay() -> Iterator[PerftopApp]:
    source = ReplaySource(SYNTHETIC_RECORDING, interval_s=0)
    yield PerftopApp(source)
    source.close()


async def until_ended(pilot: Pilot[None]) -> None:
    await wait_for_text(pilot, "REPLAY ENDED")


def pids(app: PerftopApp) -> list[str]:
    return table_column(app, "#processes", "PID")


def symbols(app: PerftopApp) -> list[str]:
    return table_column(app, "#functions", "SYMBOL")


def test_hostile_names_are_shown_as_text_not_run(replay: PerftopApp) -> None:
    async def script(pilot: Pilot[None]) -> None:
        await until_ended(pilot)
        text = screen_text(pilot.app)
        # Markup is not interpreted and the escape sequence is shown, not sent to the terminal.
        assert "[bold red]x[/]\\x1b]0;owned\\x07" in text
        assert "evil[/]\\x1b[31m" in text
        assert "\x1b" not in text and "\x07" not in text

    drive(replay, script, size=(200, 48))


def test_processes_sort_by_the_next_column_and_reverse(replay: PerftopApp) -> None:
    async def script(pilot: Pilot[None]) -> None:
        await until_ended(pilot)
        by_samples = ["1001", "2002", "4004", "3003", "6006", "5005"]
        # The processes pane grows to its rows a frame after them.
        await wait_for(pilot, lambda: pids(replay) == by_samples)
        await pilot.press("s", "s")  # samples -> share -> CPU%
        assert "CPU%▼" in screen_text(replay)
        assert pids(replay) == ["1001", "2002", "3003", "4004", "5005", "6006"]
        await pilot.press("r")
        assert "CPU%▲" in screen_text(replay)
        assert pids(replay) == ["6006", "5005", "4004", "3003", "2002", "1001"]
        await pilot.press("less_than_sign")  # back to share, largest first again
        assert "SHARE%▼" in screen_text(replay)
        assert pids(replay) == by_samples

    drive(replay, script, size=TALL_80)


def test_htop_keys_sort_too(replay: PerftopApp) -> None:
    async def script(pilot: Pilot[None]) -> None:
        await until_ended(pilot)
        await pilot.press("greater_than_sign", "greater_than_sign")  # like s s
        assert "CPU%▼" in screen_text(replay)
        await pilot.press("I")  # like r
        assert "CPU%▲" in screen_text(replay)
        assert pids(replay)[0] == "6006"

    drive(replay, script)


def test_clicking_a_column_title_sorts_by_it(replay: PerftopApp) -> None:
    async def script(pilot: Pilot[None]) -> None:
        await until_ended(pilot)
        table = replay.query_one("#processes")
        header = widget_lines(replay, table)[1]
        await pilot.click("#processes", offset=(header.index("RSS") + 1, 1))
        assert pids(replay) == ["4004", "2002", "1001", "3003", "6006", "5005"]
        await pilot.click("#processes", offset=(header.index("RSS") + 1, 1))
        assert "RSS▲" in screen_text(replay)
        assert pids(replay)[:2] == ["6006", "5005"]  # no memory: exited, kernel thread

    drive(replay, script, size=(120, 40))


def test_sort_keys_act_on_the_focused_table(replay: PerftopApp) -> None:
    async def script(pilot: Pilot[None]) -> None:
        await until_ended(pilot)
        await pilot.press("tab")  # to the functions table
        await pilot.press("s")
        assert "TOTAL%▼" in screen_text(replay)
        assert symbols(replay)[:2] == ["Py_RunMain", "_start"]

    drive(replay, script)


def test_enter_zooms_into_a_process_and_escape_clears(replay: PerftopApp) -> None:
    async def script(pilot: Pilot[None]) -> None:
        await until_ended(pilot)
        await pilot.press("down", "enter")  # postgres
        text = screen_text(replay)
        assert "zoom 2002 postgres" in text
        assert "Functions of PID 2002 postgres" in text
        assert symbols(replay)[0] == "BufferSync"
        assert "[unknown]" not in symbols(replay)
        await pilot.press("escape")
        assert "zoom" not in screen_text(replay)
        assert symbols(replay)[0] == "[unknown]"

    drive(replay, script)


def test_text_filter_keeps_matching_stacks(replay: PerftopApp) -> None:
    async def script(pilot: Pilot[None]) -> None:
        await until_ended(pilot)
        await pilot.press("slash")
        assert isinstance(replay.screen, FilterInput)
        await pilot.press(*"malloc", "enter")
        assert pids(replay) == ["1001"]
        assert 'text "malloc"' in screen_text(replay)
        await pilot.press("escape")
        assert len(pids(replay)) == 6

    drive(replay, script, size=TALL_80)


def test_pid_filter_goes_to_the_source(fake_source: FakeSource) -> None:
    app = PerftopApp(fake_source)

    async def script(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: fake_source.delivered == 1 and "1001" in pids(app))
        await pilot.press("p", *"2002, 4004", "enter")
        assert fake_source.calls == [("pid_filter", (2002, 4004))]
        assert pids(app) == ["2002", "4004"]
        assert "pid 2002,4004" in screen_text(app)
        await pilot.press("escape")
        assert fake_source.calls[-1] == ("pid_filter", ())
        assert len(pids(app)) == 6

    drive(app, script, size=TALL_80)


@pytest.mark.parametrize(
    ("typed", "error"),
    [("abc", "'abc' is not a PID"), ("2002, 999999", "no process with PID 999999")],
)
def test_bad_pid_filter_is_refused_and_the_prompt_stays(
    fake_source: FakeSource, typed: str, error: str
) -> None:
    app = PerftopApp(fake_source)

    async def script(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: fake_source.delivered == 1)
        await pilot.press("p", *typed, "enter")
        await wait_for_text(pilot, error)
        assert isinstance(app.screen, FilterInput)
        assert fake_source.calls == []

    drive(app, script)


def pane_fitted(app: PerftopApp) -> bool:
    fitted = app.dashboard._fitted_height
    return fitted is not None and app.dashboard.process_table.region.height == fitted[0]


def test_pause_freezes_the_view_while_snapshots_keep_coming(recorded: list[Interval]) -> None:
    source = FakeSource([recorded[0]])
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: "1001" in pids(app))
        # The processes pane grows to its rows a frame after them: read it once it has.
        await wait_for(pilot, lambda: pane_fitted(app))
        before = table_column(app, "#processes", "SAMPLES")
        await pilot.press("space")
        assert "PAUSED" in screen_text(app)
        source.push(recorded[3])
        await wait_for(pilot, lambda: source.delivered == 2)
        await pilot.pause(0.1)
        assert table_column(app, "#processes", "SAMPLES") == before
        await pilot.press("space")
        assert "PAUSED" not in screen_text(app)
        assert table_column(app, "#processes", "SAMPLES") != before

    drive(app, script)
    source.close()


def test_help_lists_every_key(replay: PerftopApp) -> None:
    async def script(pilot: Pilot[None]) -> None:
        await pilot.press("question_mark")
        assert isinstance(replay.screen, HelpScreen)
        text = screen_text(replay)
        for expected in ("Sort the focused table", "Freeze the display", "Zero the accumulated"):
            assert expected in text
        await pilot.press("escape")
        assert not isinstance(replay.screen, HelpScreen)

    drive(replay, script, size=(120, 40))


def test_event_picker_marks_unsupported_events_and_refuses_them(recorded: list[Interval]) -> None:
    events = {"cpu-clock": None, "cycles": "no hardware PMU in this VM", "task-clock": None}
    source = FakeSource([recorded[-1]], events=events)
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: source.delivered == 1)
        await pilot.press("e")
        assert isinstance(app.screen, EventPicker)
        assert "✗ unsupported: no hardware PMU in this VM" in screen_text(app)
        await pilot.press("down", "enter")  # cycles
        await wait_for_text(pilot, "cycles cannot be sampled here")
        assert isinstance(app.screen, EventPicker)
        assert source.calls == []
        await pilot.press("down", "enter")  # task-clock
        assert not isinstance(app.screen, EventPicker)
        assert source.calls == [("event", "task-clock")]

    drive(app, script)
    source.close()


def test_kernel_controls_reach_the_source(fake_source: FakeSource) -> None:
    app = PerftopApp(fake_source)

    async def script(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: fake_source.delivered == 1)
        await pilot.press("k", "k", "k", "plus", "plus", "minus")
        assert fake_source.calls == [
            ("stack_mode", "kernel"),
            ("stack_mode", "user"),
            ("stack_mode", "both"),
            ("frequency", 199),
            ("frequency", 499),
            ("frequency", 199),
        ]

    drive(app, script)


def test_kernel_controls_in_a_replay_say_why_not(replay: PerftopApp) -> None:
    async def script(pilot: Pilot[None]) -> None:
        await until_ended(pilot)
        await pilot.press("k")
        await wait_for_text(pilot, "kernel stacks: not available")

    drive(replay, script)


def test_source_notices_are_shown(recorded: list[Interval]) -> None:
    from tests.ui.conftest import with_notices

    notice = "event 'cycles' cannot be sampled here: no PMU"
    source = FakeSource([with_notices(recorded[0], notice), recorded[1]])
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await wait_for_text(pilot, "cannot be sampled here: no PMU")

    drive(app, script, size=(120, 30))
    source.close()


def test_the_loading_toast_goes_with_the_first_profile(recorded: list[Interval]) -> None:
    """'loading the BPF program: processes from psutil...' stayed up its 8 s after the first
    profile had replaced those processes."""
    from perftop.sampling.deferred import LOADING_NOTICE
    from tests.ui.conftest import with_notices

    placeholder = replace(with_notices(recorded[0], LOADING_NOTICE), cpus=(), stacks=())
    quiet = replace(placeholder, notices=())
    source = FakeSource([placeholder, quiet])
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await wait_for_text(pilot, "loading the BPF program")
        await wait_for(pilot, lambda: source.delivered == 2)
        await pilot.pause(0.2)
        assert "loading the BPF program" in screen_text(app)  # still loading: still said
        source.push(recorded[1])
        await wait_for(pilot, lambda: app.snapshots_received == 3)
        await pilot.pause(0.2)
        assert "loading the BPF program" not in screen_text(app)

    drive(app, script, size=(120, 30))
    source.close()


def test_accumulate_and_zero(replay: PerftopApp) -> None:
    async def script(pilot: Pilot[None]) -> None:
        await until_ended(pilot)
        await pilot.press("a")
        assert "accumulated (decaying)" in screen_text(replay)
        # Decayed over four intervals, gcc's earlier samples still outweigh its last interval.
        assert pids(replay)[:3] == ["1001", "2002", "6006"]
        await pilot.press("z")
        assert pids(replay) == []
        await pilot.press("a")
        assert "last interval" in screen_text(replay)
        assert len(pids(replay)) == 6

    drive(replay, script, size=TALL_80)


def test_exited_process_is_marked_and_the_screen_goes_on(replay: PerftopApp) -> None:
    async def script(pilot: Pilot[None]) -> None:
        await until_ended(pilot)
        # The processes pane grows to its rows in the next layout, a frame after the rows.
        await wait_for_text(pilot, "cc1 (exited)")

    drive(replay, script, size=(160, 48))


def test_call_stacks_follow_the_selection_and_explain_missing_symbols(replay: PerftopApp) -> None:
    async def script(pilot: Pilot[None]) -> None:
        await until_ended(pilot)
        text = screen_text(replay)
        assert "Call stacks: PID 1001 python3" in text
        assert "[unknown]  ← JIT without a perf map  [anon:jit]  self 66.5%" in text
        assert "fix: Python 3.12+: run it with `python -X perf`" in text
        await pilot.press("down", "down")  # app, with a stripped library
        text = screen_text(replay)
        assert "Call stacks: PID 4004 app" in text
        assert "libfoo.so+0x1a2b" in text
        assert "libfoo.so+0x1a2b  ← stripped binary  libfoo.so  self 76.0%" in text
        assert "fix: install debug symbols for libfoo.so" in text

    drive(replay, script, size=(200, 48))  # the stack pane beside the tables, 80 wide


def test_selection_follows_its_process_across_refreshes(recorded: list[Interval]) -> None:
    source = FakeSource([recorded[0]])
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: "1001" in pids(app))
        await pilot.press("down", "down")  # the third row: gcc (cc1)
        assert "Call stacks: PID 6006 cc1" in screen_text(app)
        source.push(recorded[3])  # cc1 drops to the bottom
        await wait_for(pilot, lambda: pids(app)[-2:] == ["6006", "5005"] or pids(app)[-1] == "6006")
        assert "Call stacks: PID 6006 cc1" in screen_text(app)

    drive(app, script)
    source.close()


def test_quit_exits_cleanly(replay: PerftopApp) -> None:
    async def script(pilot: Pilot[None]) -> None:
        await pilot.press("q")

    drive(replay, script)
    assert replay.return_code == 0


def test_command_palette_offers_the_actions(replay: PerftopApp) -> None:
    async def script(pilot: Pilot[None]) -> None:
        await pilot.press("ctrl+p")
        await pilot.press(*"Reverse")
        await wait_for_text(pilot, "Reverse the sort order")

    drive(replay, script, size=(120, 30))


def test_a_filtered_process_that_exits_stays_on_screen_marked(
    recorded: list[Interval], monkeypatch: pytest.MonkeyPatch
) -> None:
    source = FakeSource([recorded[0]])
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: "1001" in pids(app))
        await pilot.press("p", *"2002", "enter")
        assert pids(app) == ["2002"]
        monkeypatch.setattr("psutil.pid_exists", lambda pid: pid != 2002)
        without = replace(recorded[1], stacks=tuple(s for s in recorded[1].stacks if s.pid != 2002))
        source.push(without)
        await wait_for_text(pilot, "postgres (exited)")
        assert pids(app) == ["2002"]
        assert "REPLAY" not in screen_text(app)  # still running, nothing crashed

    drive(app, script)


def big_snapshot(like: Interval) -> Interval:
    """`like` with more stacks than the UI thread builds a tree for (leaf_7 the hot one)."""
    from perftop.model.samples import Frame, StackSample
    from perftop.ui.widgets.dashboard import THREADED_TREE_STACKS

    stacks = tuple(
        StackSample(
            1001,
            1001,
            "python3",
            (Frame("main", "big", False), Frame(f"leaf_{index}", "big", False)),
            1 + (index == 7) * 5000,
            0,
        )
        for index in range(THREADED_TREE_STACKS + 500)
    )
    return replace(like, stacks=stacks)


def test_a_big_call_stack_tree_is_built_off_the_ui_thread(
    recorded: list[Interval], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past THREADED_TREE_STACKS the tree is built in a worker thread and still reaches the
    pane; a sort key meanwhile does not rebuild it."""
    import threading

    from perftop.ui.widgets.dashboard import Dashboard

    built_in: list[str] = []
    build = Dashboard._stack_model

    def recording_build(*args: object) -> object:
        built_in.append(threading.current_thread().name)
        return build(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(Dashboard, "_stack_model", staticmethod(recording_build))
    # Nothing may format the whole view as text on the way (Textual named workers after the
    # repr of their arguments: a 10k-stack Interval every interval).
    reprs: list[str] = []
    monkeypatch.setattr(Interval, "__repr__", lambda self: reprs.append("view") or "view")

    source = FakeSource([big_snapshot(recorded[0])])
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await wait_for_text(pilot, "Call stacks: PID 1001 python3")
        await wait_for_text(pilot, "leaf_7")
        assert len(built_in) == 1 and built_in[0] != threading.main_thread().name
        assert reprs == []
        await pilot.press("r")  # the same interval, sorted the other way
        await pilot.pause()
        assert len(built_in) == 1
        assert "leaf_7" in screen_text(app)

    drive(app, script, size=(160, 48))
    source.close()


def test_a_finished_call_stack_worker_holds_no_interval(recorded: list[Interval]) -> None:
    """A finished Textual worker stays in a reference cycle with its Task until a full
    collection, with everything it holds. That may not be an interval's Interval: under 20 kHz
    each held ~37k stacks, kept alive ~10 s, and the full collections that freed them held the
    GIL for 280-720 ms (a keypress waited as long)."""
    import gc

    from textual.dom import DOMNode
    from textual.worker import Worker, WorkerState

    source = FakeSource([big_snapshot(recorded[0])])
    app = PerftopApp(source)
    held: list[list[str]] = []

    def snapshots_held_by(worker: Worker[object]) -> list[str]:
        """The paths (by type) from `worker` to a Interval, not through a widget or the app."""
        paths, frontier = [], [(worker, [type(worker).__qualname__])]
        for _depth in range(5):
            reached = []
            for holder, path in frontier:
                for item in gc.get_referents(holder):
                    step = [*path, type(item).__qualname__]
                    if isinstance(item, Interval):
                        paths.append(" -> ".join(step))
                    elif not isinstance(item, DOMNode | type):
                        reached.append((item, step))
            frontier = reached
        return paths

    def finished_workers() -> list[Worker[object]]:
        return [
            worker
            for worker in gc.get_objects()
            if isinstance(worker, Worker)
            and worker.group == "stack-model"
            and worker.state == WorkerState.SUCCESS
        ]

    async def script(pilot: Pilot[None]) -> None:
        await wait_for_text(pilot, "leaf_7")  # built in the worker and shown
        # The pane shows the tree from inside the worker (call_from_thread), so the worker is
        # marked finished a moment after the text appears: wait for that, not for luck.
        await wait_for(pilot, lambda: bool(finished_workers()))
        finished = finished_workers()
        assert finished, "no call-stack worker ran"
        held.extend(snapshots_held_by(worker) for worker in finished)

    try:
        drive(app, script, size=(160, 48))
    finally:
        source.close()
    assert held == [[]] * len(held)
