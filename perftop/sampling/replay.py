"""A recorded session played back as if it were live: the same screen, without root or BPF."""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from perftop.formats.recording import RecordingError, iter_recording
from perftop.model.events import EVENTS
from perftop.model.samples import Interval
from perftop.profile.aggregate import filter_stacks
from perftop.sampling.source import SourceError
from perftop.system.cgroups import is_same_or_descendant

NOT_IN_REPLAY = "not available in a replay"


class ReplaySource:
    """Plays the intervals of a recording, one per interval.

    `interval_s` None waits each interval's recorded interval; 0 plays as fast as it is read
    (tests). The PID filter is applied to the recorded stacks; the kernel controls (event,
    frequency, stack mode, Python frames) cannot change what was recorded, and say so in the
    next interval.

    A replay can be paused (no interval is skipped meanwhile, unlike the screen's freeze),
    stepped one interval at a time and moved by any number of intervals, from the UI thread.
    The recording is read as a stream, never held whole: a move back reads it again from the
    start up to the interval wanted.
    """

    def __init__(self, path: Path, interval_s: float | None = None, loop: bool = False) -> None:
        if interval_s is not None and interval_s < 0:
            raise SourceError(f"replay interval must not be negative, not {interval_s}")
        self.path = path
        self._interval_s = interval_s
        self._loop = loop
        self._closed = threading.Event()
        # Control calls come from the UI thread while next_interval runs on the sampler thread.
        self._lock = threading.Lock()
        self._controls = threading.Condition(self._lock)  # woken by pause, step, seek, close
        self._paused = False
        self._steps = 0  # intervals to hand out at once (a step while paused)
        self._seek_to: int | None = None  # the index of the interval to hand out next
        self._read = 1  # intervals read from the file (the first one below)
        self._delivered: int | None = None  # index of the last interval handed out
        self._pids: tuple[int, ...] = ()
        self._cgroup_filter: tuple[str, ...] = ()
        self._notices: list[str] = []
        self._recorded: Generator[Interval, None, None] = iter_recording(path)
        # Read the first line now, so a bad file is reported before any screen starts.
        first = next(self._recorded, None)
        if first is None:
            raise RecordingError(f"{path}: the recording holds no snapshots")
        self._pending: Interval | None = first
        self._current = first
        self._played = 0

    @property
    def event(self) -> str:
        return self._current.event

    @property
    def frequency_hz(self) -> int:
        return self._current.frequency_hz

    @property
    def live(self) -> bool:
        return False

    def events(self) -> Mapping[str, str | None]:
        reason = f"the recording holds {self.event} samples only"
        names: dict[str, str | None] = {name: reason for name in EVENTS}
        names[self.event] = None
        return names

    @property
    def position(self) -> int | None:
        """The index of the interval last handed out (0 the first), None before any."""
        return self._delivered

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self, paused: bool) -> None:
        with self._controls:
            self._paused = paused
            self._controls.notify_all()

    def step(self) -> None:
        """Hand out the next interval now (paused or not)."""
        with self._controls:
            self._steps += 1
            self._controls.notify_all()

    def seek(self, delta: int) -> None:
        """Hand out, now, the interval `delta` intervals from the one shown (clamped to the
        first; past the last, the last)."""
        with self._controls:
            base = self._seek_to if self._seek_to is not None else (self._delivered or 0)
            self._seek_to = max(0, base + delta)
            self._controls.notify_all()

    def next_interval(self) -> Interval | None:
        interval = self._next_recorded() if self._seek_to is None else None
        if interval is None and not self._wait_at_the_end():
            return None
        started = time.monotonic()
        while True:
            with self._controls:
                if self._closed.is_set():
                    self._recorded.close()
                    return None
                target, self._seek_to = self._seek_to, None
                now = self._steps > 0
                if now and target is None:
                    self._steps -= 1
                paused = self._paused
                if target is None and not now:
                    assert interval is not None
                    wait = interval.interval_s if self._interval_s is None else self._interval_s
                    # The first interval shows at once; later ones keep the recorded pace.
                    remaining = wait - (time.monotonic() - started) if self._played else 0.0
                    if paused or remaining > 0:
                        self._controls.wait(0.1 if paused else min(remaining, 0.1))
                        continue
            if target is not None:
                interval = self._reposition(target)
                if interval is None:
                    return None
            break
        assert interval is not None
        self._delivered = self._read - 1
        self._played += 1
        self._current = interval
        with self._lock:
            pids = self._pids
            cgroup_filter = self._cgroup_filter
            notices = tuple(self._notices)
            self._notices.clear()
        if pids:
            interval = self._filtered(interval, pids)
        if cgroup_filter:
            interval = self._under_cgroups(interval, cgroup_filter)
        if notices:
            interval = replace(interval, notices=interval.notices + notices)
        return interval

    def _wait_at_the_end(self) -> bool:
        """At the end of the recording: a paused replay waits there for a move back (True),
        or for play to resume, closing, or a step past the end, which end it (False)."""
        with self._controls:
            while True:
                if self._seek_to is not None:
                    return True
                if self._closed.is_set() or not self._paused or self._steps:
                    self._steps = 0
                    return False
                self._controls.wait(0.1)

    def _next_recorded(self) -> Interval | None:
        if self._pending is not None:
            first, self._pending = self._pending, None
            return first
        interval: Interval | None = next(self._recorded, None)
        if interval is None and self._loop and self._played:
            self._recorded = self._restart()
            self._read = 0
            interval = next(self._recorded, None)
        if interval is not None:
            self._read += 1
        return interval

    def _reposition(self, target: int) -> Interval | None:
        """The interval at index `target` (or the last one, when the recording is shorter),
        read next: from where the file is when it lies ahead, else from the start again."""
        self._pending = None
        if target < self._read:
            self._recorded.close()
            self._recorded = self._restart()
            self._read = 0
        last: Interval | None = None
        while self._read <= target:
            interval = next(self._recorded, None)
            if interval is None:
                break
            self._read += 1
            last = interval
        if last is None:
            # Past the end: the last interval again (read from the start, it is the last one).
            if self._delivered is not None and self._delivered + 1 == self._read:
                return self._current
            end = self._read - 1
            return self._reposition(end) if 0 <= end < target else None
        return last

    def _restart(self) -> Generator[Interval, None, None]:
        return iter_recording(self.path)

    @staticmethod
    def _filtered(interval: Interval, pids: tuple[int, ...]) -> Interval:
        """What the kernel's PID filter would have let through."""
        return replace(interval, stacks=filter_stacks(interval.stacks, pids=pids), pid_filter=pids)

    @staticmethod
    def _under_cgroups(interval: Interval, paths: tuple[str, ...]) -> Interval:
        """What the kernel's cgroup filter would have let through: the stacks of those
        cgroups and their descendants, by the recorded paths."""
        ids = {
            cgroup_id
            for cgroup_id, info in interval.cgroups.items()
            if any(is_same_or_descendant(info.path, path) for path in paths)
        }
        stacks = filter_stacks(interval.stacks, cgroup_ids=ids)
        return replace(interval, stacks=stacks, cgroup_filter=paths)

    def set_pid_filter(self, pids: Sequence[int]) -> None:
        with self._lock:
            self._pids = tuple(pids)

    def set_cgroup_filter(self, paths: Sequence[str]) -> None:
        with self._lock:
            self._cgroup_filter = tuple(paths)

    def _refuse(self, what: str) -> None:
        with self._lock:
            self._notices.append(f"{what}: {NOT_IN_REPLAY}")

    def set_event(self, event: str) -> None:
        self._refuse(f"switching to event '{event}'")

    def set_frequency(self, hz: int) -> None:
        self._refuse(f"sampling at {hz} Hz")

    def set_stack_mode(self, mode: str) -> None:
        self._refuse(f"{mode} stacks only")

    def set_python_frames(self, walk: bool) -> None:
        self._refuse(f"Python frames {'on' if walk else 'off'}")

    def interrupt(self) -> None:
        self._closed.set()
        with self._controls:
            self._controls.notify_all()

    def close(self) -> None:
        self.interrupt()
