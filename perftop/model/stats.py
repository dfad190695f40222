"""What an interval means once filtered and aggregated: the View every consumer reads.

`perftop.profile.view.build_view(interval, filters)` makes it, once per interval or per change
of the filters; the tables, the call-stack pane, the flame graph, exports and batch outputs all
read the same View.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from perftop.model.samples import (
    CgroupInfo,
    CpuStat,
    FrameKind,
    Interval,
    ProcessInfo,
    SamplerCost,
    StackSample,
)


@dataclass(frozen=True, slots=True)
class ProcessStat:
    pid: int
    comm: str
    samples: int
    percent: float  # of the non-idle samples in the snapshot
    info: ProcessInfo
    cgroup: str | None = None  # its cgroup v2 path (the one most of its samples were in)
    container: str | None = None  # the container's name (or short id) when it runs in one


@dataclass(frozen=True, slots=True)
class CgroupStat:
    """One cgroup in a view: its share of the view's samples beside its own CPU figures."""

    cgroup: str  # path, the row's identity
    name: str
    samples: int
    percent: float
    info: CgroupInfo  # the figures (usage, throttling, quota) and the container


@dataclass(frozen=True, slots=True)
class FunctionStat:
    symbol: str
    module: str
    kernel: bool
    self_samples: int
    self_percent: float
    total_samples: int  # inclusive: every stack it appears in, recursion counted once
    total_percent: float
    resolved: bool = True  # False: an address without a symbol, shown dim
    python: bool = False  # a Python function (its module is the code's file)

    @property
    def kind(self) -> FrameKind:
        if self.kernel:
            return FrameKind.KERNEL
        return FrameKind.PYTHON if self.python else FrameKind.NATIVE


@dataclass(frozen=True, slots=True)
class ViewFilter:
    """Which part of an interval a view shows: every process, some PIDs, stacks matching a
    text, one zoomed process."""

    pids: tuple[int, ...] = ()
    text: str = ""
    zoom_pid: int | None = None
    zoom_cgroup: str | None = None  # a cgroup path: its processes, functions and stacks only

    @property
    def active(self) -> bool:
        return bool(
            self.pids or self.text or self.zoom_pid is not None or self.zoom_cgroup is not None
        )


@dataclass(frozen=True, slots=True)
class View:
    """An interval after the filters, with its processes and functions aggregated once. Shares
    are of the view's samples."""

    interval: Interval
    filter: ViewFilter
    stacks: tuple[StackSample, ...]  # after the PID and text filters and the zoom
    samples: int  # non-idle samples in `stacks`
    # After the PID and text filters, before the zoom: the processes table's stacks (the same
    # tuple as `stacks` when not zoomed).
    unzoomed_stacks: tuple[StackSample, ...]
    processes: tuple[ProcessStat, ...]  # hottest first; watched PIDs without samples last
    functions: tuple[FunctionStat, ...]  # hottest self first
    # Of the same stacks as the processes (not narrowed by a cgroup zoom), hottest first.
    cgroups: tuple[CgroupStat, ...] = ()

    # The interval's own facts, read through the view so a consumer needs only the view.
    @property
    def timestamp(self) -> float:
        return self.interval.timestamp

    @property
    def interval_s(self) -> float:
        return self.interval.interval_s

    @property
    def event(self) -> str:
        return self.interval.event

    @property
    def frequency_hz(self) -> int:
        return self.interval.frequency_hz

    @property
    def lost(self) -> Mapping[str, int]:
        return self.interval.lost

    @property
    def lost_total(self) -> int:
        return self.interval.lost_total

    @property
    def cpus(self) -> tuple[CpuStat, ...]:
        return self.interval.cpus

    @property
    def idle_samples(self) -> int:
        return self.interval.idle_samples

    @property
    def cost(self) -> SamplerCost:
        return self.interval.cost

    @property
    def notices(self) -> tuple[str, ...]:
        return self.interval.notices

    @property
    def headers(self) -> str:
        return self.interval.headers

    @property
    def stack_mode(self) -> str:
        return self.interval.stack_mode

    @property
    def unwind(self) -> str:
        return self.interval.unwind

    @property
    def pid_filter(self) -> tuple[int, ...]:
        return self.interval.pid_filter

    @property
    def cgroup_filter(self) -> tuple[str, ...]:
        return self.interval.cgroup_filter

    @property
    def cgroups_unavailable(self) -> str:
        return self.interval.cgroups_unavailable

    @property
    def process_infos(self) -> Mapping[int, ProcessInfo]:
        return self.interval.processes

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.interval_s if self.interval_s > 0 else 0.0
