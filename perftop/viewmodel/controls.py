"""The user's choices (filters, sort, modes) and the small rules for changing them."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace

from perftop.model.modes import StackMode
from perftop.model.samples import ProcessInfo, StackSample
from perftop.model.stats import Snapshot
from perftop.profile.aggregate import DecayingStacks, function_stats, process_stats
from perftop.viewmodel.tables import DEFAULT_FUNCTION_SORT, DEFAULT_PROCESS_SORT

FREQUENCY_STEPS = (49, 99, 199, 499, 999)
DEFAULT_DECAY_KEEP = 0.8


@dataclass(frozen=True, slots=True)
class ViewOptions:
    """Everything the user chose about the view; the screen is a function of this and a snapshot."""

    process_sort: str = DEFAULT_PROCESS_SORT
    process_reverse: bool = False
    function_sort: str = DEFAULT_FUNCTION_SORT
    function_reverse: bool = False
    text_filter: str = ""
    pids: tuple[int, ...] = ()
    zoom_pid: int | None = None
    accumulated: bool = False
    paused: bool = False
    stack_mode: StackMode = StackMode.BOTH

    @property
    def filtered(self) -> bool:
        return bool(self.pids or self.text_filter or self.zoom_pid is not None)

    def cleared(self) -> ViewOptions:
        return replace(self, text_filter="", pids=(), zoom_pid=None)


def next_frequency(current: int, step: int) -> int | None:
    """The next sampling frequency up (step 1) or down (step -1), None at either end."""
    if step > 0:
        higher = [hz for hz in FREQUENCY_STEPS if hz > current]
        return higher[0] if higher else None
    lower = [hz for hz in FREQUENCY_STEPS if hz < current]
    return lower[-1] if lower else None


# Accumulated view ---------------------------------------------------------------------------


class Accumulated:
    """The accumulation as of one interval, aggregated into a Snapshot on first use: the screen
    mostly shows the last interval, and aggregating every held stack each second for nothing
    was 5% of the TUI's own CPU. Thread-safe: the sampler thread may build it ahead."""

    __slots__ = ("_base", "_infos", "_lock", "_snapshot", "_stacks")

    def __init__(
        self, base: Snapshot, stacks: tuple[StackSample, ...], infos: Mapping[int, ProcessInfo]
    ) -> None:
        self._base = base
        self._stacks = stacks
        self._infos = infos
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()

    def snapshot(self) -> Snapshot:
        with self._lock:
            if self._snapshot is None:
                stacks = self._stacks
                self._snapshot = replace(
                    self._base,
                    stacks=stacks,
                    samples=sum(stack.samples for stack in stacks),
                    processes=process_stats(stacks, self._infos),
                    functions=function_stats(stacks),
                )
            return self._snapshot


class DecayingAccumulation:
    """The accumulated view: each interval adds its samples and older ones fade by `keep`, so
    the view settles like `perf top` but still follows a workload that changes."""

    def __init__(self, keep: float = DEFAULT_DECAY_KEEP) -> None:
        self.keep = keep
        self._decaying = DecayingStacks(keep)
        self._infos: dict[int, ProcessInfo] = {}

    def reset(self) -> None:
        self._decaying.clear()
        self._infos = {}

    def add(self, snapshot: Snapshot) -> Accumulated:
        stacks = self._decaying.add(snapshot.stacks)
        live_pids = {stack.pid for stack in stacks}
        self._infos.update((process.pid, process.info) for process in snapshot.processes)
        # What psutil last said about a process that faded out of view is no longer needed.
        self._infos = {pid: info for pid, info in self._infos.items() if pid in live_pids}
        return Accumulated(snapshot, stacks, self._infos)
