"""A recorded session played back as if it were live: the same screen, without root or BPF."""

from __future__ import annotations

import threading
from collections.abc import Generator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from perftop.formats.recording import RecordingError, iter_recording
from perftop.model.events import EVENTS
from perftop.model.stats import Snapshot
from perftop.profile.aggregate import filter_stacks, with_aggregates
from perftop.sampling.source import SourceError

NOT_IN_REPLAY = "not available in a replay"


class ReplaySource:
    """Plays the snapshots of a recording, one per interval.

    `interval_s` None waits each snapshot's recorded interval; 0 plays as fast as it is read
    (tests). The PID filter is applied to the recorded stacks; the kernel controls (event,
    frequency, stack mode) cannot change what was recorded, and say so in the next snapshot.
    """

    def __init__(self, path: Path, interval_s: float | None = None, loop: bool = False) -> None:
        if interval_s is not None and interval_s < 0:
            raise SourceError(f"replay interval must not be negative, not {interval_s}")
        self.path = path
        self._interval_s = interval_s
        self._loop = loop
        self._closed = threading.Event()
        # Control calls come from the UI thread while next_snapshot runs on the sampler thread.
        self._lock = threading.Lock()
        self._pids: tuple[int, ...] = ()
        self._notices: list[str] = []
        self._snapshots: Generator[Snapshot, None, None] = iter_recording(path)
        # Read the first line now, so a bad file is reported before any screen starts.
        first = next(self._snapshots, None)
        if first is None:
            raise RecordingError(f"{path}: the recording holds no snapshots")
        self._pending: Snapshot | None = first
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

    def next_snapshot(self) -> Snapshot | None:
        snapshot = self._next_recorded()
        if snapshot is None:
            return None
        wait = snapshot.interval_s if self._interval_s is None else self._interval_s
        # The first snapshot shows at once; later ones keep the recorded pace.
        if (self._played and wait > 0 and self._closed.wait(wait)) or self._closed.is_set():
            self._snapshots.close()
            return None
        self._played += 1
        self._current = snapshot
        with self._lock:
            pids = self._pids
            notices = tuple(self._notices)
            self._notices.clear()
        if pids:
            snapshot = self._filtered(snapshot, pids)
        if notices:
            snapshot = replace(snapshot, notices=snapshot.notices + notices)
        return snapshot

    def _next_recorded(self) -> Snapshot | None:
        if self._pending is not None:
            first, self._pending = self._pending, None
            return first
        snapshot: Snapshot | None = next(self._snapshots, None)
        if snapshot is None and self._loop and self._played:
            self._snapshots = self._restart()
            snapshot = next(self._snapshots, None)
        return snapshot

    def _restart(self) -> Generator[Snapshot, None, None]:
        return iter_recording(self.path)

    @staticmethod
    def _filtered(snapshot: Snapshot, pids: tuple[int, ...]) -> Snapshot:
        stacks = filter_stacks(snapshot.stacks, pids=pids)
        infos = {process.pid: process.info for process in snapshot.processes}
        filtered = replace(
            snapshot,
            stacks=stacks,
            samples=sum(stack.samples for stack in stacks),
            pid_filter=pids,
        )
        return with_aggregates(filtered, infos)

    def set_pid_filter(self, pids: Sequence[int]) -> None:
        with self._lock:
            self._pids = tuple(pids)

    def _refuse(self, what: str) -> None:
        with self._lock:
            self._notices.append(f"{what}: {NOT_IN_REPLAY}")

    def set_event(self, event: str) -> None:
        self._refuse(f"switching to event '{event}'")

    def set_frequency(self, hz: int) -> None:
        self._refuse(f"sampling at {hz} Hz")

    def set_stack_mode(self, mode: str) -> None:
        self._refuse(f"{mode} stacks only")

    def interrupt(self) -> None:
        self._closed.set()

    def close(self) -> None:
        self._closed.set()
