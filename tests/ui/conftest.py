"""UI test fixtures: recorded sessions, a scriptable source, and ways to read the screen."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil
import pytest
from textual.app import App
from textual.pilot import Pilot
from textual.widget import Widget

from perftop.formats.recording import read_recording
from perftop.model.events import EVENTS
from perftop.model.samples import Interval
from perftop.sampling.replay import ReplaySource
from perftop.ui.app import PerftopApp

DATA = Path(__file__).parent.parent / "data"
# Fixed data with the hard cases in it (hostile names, stripped and JIT frames, an exit).
SYNTHETIC_RECORDING = DATA / "synthetic.jsonl"
# The session the screenshots are taken from. Switch to DATA / "session.jsonl" when a real
# recording is in, then accept the new screenshots with `pytest tests/ui --snapshot-update`.
SESSION_RECORDING = DATA / "session.jsonl"  # a real recording: 5 s of perftop on busy processes


@pytest.fixture(autouse=True)
def _deterministic(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing on screen may depend on this machine: its processes, its clock, its terminal."""
    live = {1001, 2002, 3003, 4004, 5005, 6006}
    monkeypatch.setattr(psutil, "pid_exists", lambda pid: pid in live)


@pytest.fixture
def recorded() -> list[Interval]:
    return read_recording(SYNTHETIC_RECORDING)


class FakeSource:
    """A live-looking source fed by the test: each `push` is one interval. Control calls are
    recorded so tests can check what would have reached the kernel."""

    live = True

    def __init__(
        self, snapshots: Sequence[Interval] = (), events: Mapping[str, str | None] | None = None
    ) -> None:
        self.event = "cpu-clock"
        self.frequency_hz = 99
        self.calls: list[tuple[str, object]] = []
        self.delivered = 0
        self._events = dict(events) if events is not None else dict.fromkeys(EVENTS)
        self._queue: queue.Queue[Interval | None] = queue.Queue()
        self._closed = threading.Event()
        for snapshot in snapshots:
            self.push(snapshot)

    def push(self, snapshot: Interval) -> None:
        self._queue.put(snapshot)

    def end(self) -> None:
        self._queue.put(None)

    def events(self) -> Mapping[str, str | None]:
        return self._events

    def next_interval(self) -> Interval | None:
        while not self._closed.is_set():
            try:
                snapshot = self._queue.get(timeout=0.05)
            except queue.Empty:
                continue
            if snapshot is not None:
                self.delivered += 1
            return snapshot
        return None

    def set_pid_filter(self, pids: Sequence[int]) -> None:
        self.calls.append(("pid_filter", tuple(pids)))

    def set_cgroup_filter(self, paths: Sequence[str]) -> None:
        self.calls.append(("cgroup_filter", tuple(paths)))

    def set_event(self, event: str) -> None:
        self.calls.append(("event", event))

    def set_frequency(self, hz: int) -> None:
        self.calls.append(("frequency", hz))

    def set_stack_mode(self, mode: str) -> None:
        self.calls.append(("stack_mode", mode))

    def set_python_frames(self, walk: bool) -> None:
        self.calls.append(("python_frames", walk))

    def interrupt(self) -> None:
        self._closed.set()

    def close(self) -> None:
        self._closed.set()


@pytest.fixture
def fake_source(recorded: list[Interval]) -> Iterator[FakeSource]:
    source = FakeSource([recorded[-1]])
    yield source
    source.close()


def with_notices(snapshot: Interval, *notices: str) -> Interval:
    return replace(snapshot, notices=notices)


# Reading the screen -------------------------------------------------------------------------


def screen_lines(app: App[Any]) -> list[str]:
    """The text of every line on the terminal, as the user would read it."""
    # The compositor is private, but it is what export_screenshot renders from too.
    return [strip.text for strip in app.screen._compositor.render_strips()]


def screen_text(app: App[Any]) -> str:
    return "\n".join(screen_lines(app))


def widget_lines(app: App[Any], widget: Widget) -> list[str]:
    """The lines of the terminal inside `widget`'s region."""
    region = widget.region
    lines = screen_lines(app)[region.y : region.bottom]
    return [line[region.x : region.right] for line in lines]


def table_column(app: App[Any], selector: str, title: str) -> list[str]:
    """The first word of each value shown in one column of a table, top to bottom."""
    lines = widget_lines(app, app.query_one(selector))
    for index, line in enumerate(lines):
        if title in [word.rstrip("▼▲") for word in line.split()]:
            start = line.index(title)
            rows = lines[index + 1 :]
            return [row[start:].split()[0] for row in rows if row[start:].split()]
    raise AssertionError(f"no column {title!r} in:\n" + "\n".join(lines))


async def wait_for(pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Let the app run until `condition` holds (snapshots arrive on another thread)."""
    for _ in range(int(timeout / 0.02)):
        await pilot.pause(0.02)
        if condition():
            return
    raise AssertionError("the screen never reached the expected state:\n" + screen_text(pilot.app))


async def wait_for_text(pilot: Pilot[Any], text: str, timeout: float = 5.0) -> None:
    await wait_for(pilot, lambda: text in screen_text(pilot.app), timeout)


def replay_to_end() -> Callable[[Pilot[Any]], Awaitable[None]]:
    """A `run_before` for snap_compare: play the whole recording, then shoot."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_for_text(pilot, "REPLAY ENDED")

    return run_before


class LockstepSource:
    """Hands out the next snapshot only once the app has taken the previous one, so the screen
    draws every interval. Without it, a fast replay lets the app skip intervals (by design), and
    which ones it skips would change column widths from run to run."""

    def __init__(self, inner: ReplaySource) -> None:
        self.inner = inner
        self.app: PerftopApp | None = None
        self._handed_out = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def next_interval(self) -> Interval | None:
        for _ in range(500):
            if self.app is not None and self.app.snapshots_received >= self._handed_out:
                break
            time.sleep(0.01)
        snapshot = self.inner.next_interval()
        if snapshot is not None:
            self._handed_out += 1
        return snapshot


def paced_replay_app(path: Path) -> PerftopApp:
    source = LockstepSource(ReplaySource(path, interval_s=0))
    app = PerftopApp(source)  # type: ignore[arg-type]  # a IntervalSource by delegation
    source.app = app
    return app
