"""The accumulated view: intervals added up, older samples fading, as `perf top` settles."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from perftop.model.samples import CgroupInfo, Interval, ProcessInfo, ProcessMapping, StackSample
from perftop.profile.aggregate import StackTotals
from perftop.profile.leaf_offsets import HistogramBuilder

DEFAULT_DECAY_KEEP = 0.8


class DecayingStacks:
    """An exponentially decaying accumulation of stacks: each interval the old weights are
    multiplied by `keep` and the new interval's samples added. Weights are kept as floats and
    shown rounded; a chain whose weight falls below one sample is dropped, so what is held is
    bounded by what is still hot. (Rounding the weights themselves each interval kept them
    forever: round(1 * 0.8) == 1, round(2 * 0.8) == 2.)"""

    def __init__(self, keep: float) -> None:
        self.keep = keep
        self._weights = StackTotals()

    def __len__(self) -> int:
        return len(self._weights)

    def clear(self) -> None:
        self._weights = StackTotals()

    def add(self, latest: Iterable[StackSample]) -> tuple[StackSample, ...]:
        self._weights.fade(self.keep)
        return self._weights.add_stacks(latest).stacks()


class DecayingAccumulation:
    """Each interval adds its samples and older ones fade by `keep`, so the view settles like
    `perf top` but still follows a workload that changes. The result is an Interval like any
    other (the latest one's counters, the accumulated stacks), aggregated only when a view of
    it is built."""

    def __init__(self, keep: float = DEFAULT_DECAY_KEEP) -> None:
        self.keep = keep
        self._decaying = DecayingStacks(keep)
        self._infos: dict[int, ProcessInfo] = {}
        self._cgroups: dict[int, CgroupInfo] = {}
        # The wall time the weights stand for, faded alike: the accumulation's interval_s, so
        # an export of it states the time its samples took (a pprof said `Duration: 1s` and
        # 233% CPU for one thread: five seconds of decayed samples over the last second).
        self._duration_s = 0.0
        self._leaf_offsets = HistogramBuilder()
        self._mappings: dict[int, tuple[ProcessMapping, ...]] = {}

    def reset(self) -> None:
        self._decaying.clear()
        self._infos = {}
        self._cgroups = {}
        self._duration_s = 0.0
        self._leaf_offsets.clear()
        self._mappings = {}

    def add(self, interval: Interval) -> Interval:
        self._duration_s = self._duration_s * self.keep + interval.interval_s
        stacks = self._decaying.add(interval.stacks)
        live_pids = {stack.pid for stack in stacks}
        self._infos.update(interval.processes)
        # What psutil last said about a process that faded out of view is no longer needed.
        self._infos = {pid: info for pid, info in self._infos.items() if pid in live_pids}
        # A cgroup's name stays while its samples fade; the CPU figures are the latest
        # interval's (a cgroup not measured in it has none: its rows age out with its stacks).
        live_cgroups = {stack.cgroup_id for stack in stacks}
        self._cgroups = {
            cgroup_id: replace(info, usage_percent=None, throttled_usec=None)
            for cgroup_id, info in self._cgroups.items()
            if cgroup_id in live_cgroups
        }
        self._cgroups.update(interval.cgroups)
        self._leaf_offsets.fade(self.keep)
        self._leaf_offsets.add_histograms(interval.leaf_offsets)
        self._mappings.update(interval.mappings)
        self._mappings = {pid: m for pid, m in self._mappings.items() if pid in live_pids}
        return replace(
            interval,
            stacks=stacks,
            processes=dict(self._infos),
            cgroups=dict(self._cgroups),
            interval_s=self._duration_s,
            leaf_offsets=self._leaf_offsets.histograms(),
            mappings=dict(self._mappings),
        )
