"""The raw data a source hands out: frames, stacks, process details, one Interval.

Everything here is frozen: an interval is built once, on the sampler thread, and then only read.
Strings that came from other processes (comm, cmdline, symbols, paths, user names) are kept as
they were decoded; making them safe to show is the job of `perftop.sanitize` at the edge.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, NamedTuple
from weakref import WeakValueDictionary

from perftop.model.annotate import LeafHistograms
from perftop.model.reasons import Unresolved

KERNEL_MODULE = "[kernel]"
KERNEL_IMAGE = "[kernel.kallsyms]"  # the kernel's image as perf names it (pprof's Mapping)
INFORMATIONAL_LOST = frozenset({"user_stack_missing", "python_stack_missing", "unwind_incomplete"})


class FrameKind(StrEnum):
    """What ran in a frame. The value is what the JSON output writes as "kind"."""

    NATIVE = "native"
    KERNEL = "kernel"
    PYTHON = "python"

    @property
    def mark(self) -> str:
        """perf's marks, [k] kernel and [.] user space, and [py] for a Python function."""
        return _MARKS[self]


_MARKS = {FrameKind.NATIVE: "[.]", FrameKind.KERNEL: "[k]", FrameKind.PYTHON: "[py]"}


class PythonCode(NamedTuple):
    """Where a Python frame was: its function and the line it was executing."""

    qualname: str  # co_qualname (3.11+), as the target holds it
    filename: str  # co_filename
    first_line: int  # co_firstlineno: the function's own line, part of its identity
    line: int | None  # the line being executed, None when the location table has none


class NativeCode:
    """Where a native function is: the binary it is in and its place there, the same in every
    process that maps the file. Per-process load addresses are `ProcessMapping`s.

    Interned, not a NamedTuple: a Frame holds one and frames are hashed and compared millions
    of times an interval (the merge hashes every frame of every stack). Equal values are one
    object, so the default identity hash and equality, done in C, stand for the values' (a
    five-field tuple hashed with each frame made the merge ~1.5x slower). The table is weak:
    an object goes when no frame holds it."""

    __slots__ = ("__weakref__", "build_id", "line", "offset", "path", "source")
    _interned: ClassVar[WeakValueDictionary[tuple[str, str, int, str, int], NativeCode]] = (
        WeakValueDictionary()
    )
    path: str  # the binary's full path as the process saw it
    build_id: str  # its GNU build id in hex, "" when it has none
    offset: int  # the function's start as an offset into the file
    source: str  # the source file, from DWARF line info; "" when not known
    line: int  # the function's first line in `source`; 0 when not known

    def __new__(
        cls, path: str, build_id: str, offset: int, source: str = "", line: int = 0
    ) -> NativeCode:
        key = (path, build_id, offset, source, line)
        found = cls._interned.get(key)
        if found is None:
            made = super().__new__(cls)
            for name, value in zip(
                ("path", "build_id", "offset", "source", "line"), key, strict=True
            ):
                object.__setattr__(made, name, value)
            found = cls._interned.setdefault(key, made)  # another thread may have made it
        return found

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"NativeCode is frozen: cannot set {name}")

    def __iter__(self) -> Iterator[str | int]:
        return iter((self.path, self.build_id, self.offset, self.source, self.line))

    def __reduce__(self) -> tuple[type[NativeCode], tuple[str, str, int, str, int]]:
        return NativeCode, (self.path, self.build_id, self.offset, self.source, self.line)

    def __repr__(self) -> str:
        return (
            f"NativeCode({self.path!r}, {self.build_id!r}, {self.offset:#x}, "
            f"{self.source!r}, {self.line})"
        )


class ProcessMapping(NamedTuple):
    """Where one process mapped a binary's code: what pprof's Mapping says."""

    path: str  # as the process saw it
    build_id: str
    start: int  # memory_start
    limit: int  # memory_limit (exclusive)
    offset: int  # the file offset mapped at `start`


class Frame(NamedTuple):
    """One symbolized stack frame. A NamedTuple, not a dataclass: frames are hashed and compared
    millions of times per interval (merging, aggregation) and tuples do that in C.

    A Python frame has `python` set; its symbol reads as py-spy prints a function,
    "qualname (file.py:first_line)", and its module is the code's file name, so every table,
    tree and format that keys functions by (symbol, module, kernel) keys Python functions too.

    A native frame's module names its binary uniquely: the basename, or, for a second binary
    of the same basename, enough of its path (and build id) to tell them apart (see
    `perftop.symbols.user.ModuleNames`), so (symbol, module, kernel) never merges two programs'
    `main`. `native` says where the function is, for formats that locate it (pprof)."""

    symbol: str  # function name, or "module+0xoffset" when there is no symbol (as perf prints it)
    # basename of the binary or library (more of its path when two collide), "[kernel]" for
    # the kernel, a Python file
    module: str
    kernel: bool
    # Why there is no symbol, when there is none (Unresolved.STRIPPED, Unresolved.JIT, ...).
    unresolved_reason: Unresolved | None = None
    python: PythonCode | None = None
    native: NativeCode | None = None

    @property
    def resolved(self) -> bool:
        return self.unresolved_reason is None

    @property
    def kind(self) -> FrameKind:
        if self.kernel:
            return FrameKind.KERNEL
        return FrameKind.NATIVE if self.python is None else FrameKind.PYTHON


def python_frame(code: PythonCode) -> Frame:
    """The frame of one named Python code object."""
    basename = code.filename.rpartition("/")[2] or code.filename
    return Frame(
        f"{code.qualname} ({basename}:{code.first_line})", code.filename, False, None, code
    )


FunctionKey = tuple[str, str, bool]  # (symbol, module, kernel): a function's identity


class StackSample(NamedTuple):
    """Samples that shared one thread and one call chain in an interval. A NamedTuple like
    Frame: tens of thousands are made per interval (drain, merge, the decaying accumulation),
    and a frozen dataclass's __init__ took twice as long (py-spy: 8% of the TUI's samples)."""

    pid: int  # thread-group id
    tid: int
    comm: str
    frames: tuple[Frame, ...]  # outermost first (main ... leaf), user frames then kernel frames
    samples: int
    period: int  # summed sample_period: an estimate of the event count (ns for the clocks)
    # The thread's cgroup v2 id (bpf_get_current_cgroup_id(): the cgroup directory's inode on
    # the cgroup2 mount); 0 when not known (a recording made before cgroups were sampled).
    cgroup_id: int = 0


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """What psutil says about a process; every field may be unknown once it exits."""

    pid: int
    user: str = ""
    cmdline: str = ""
    threads: int = 0
    cpu_percent: float = 0.0
    rss_bytes: int = 0
    exited: bool = False
    kernel_thread: bool = False
    name: str = ""  # psutil's name, for a process listed without samples (the preview)


@dataclass(frozen=True, slots=True)
class CgroupInfo:
    """What user space knows of one cgroup id in an interval: its path (relative to the
    cgroup2 mount, as /proc/PID/cgroup prints it; "cgroup id N" when no walk could see it), a
    readable name (systemd unit, container, pod; else the path), the container's name or id
    when it is one, and the cgroup's own CPU figures over the interval (from cpu.stat and
    cpu.max; None where the files or keys are absent or there is no delta yet). Names and paths
    are chosen by whoever made the cgroup: kept literally, made printable at the edge."""

    cgroup_id: int
    path: str
    name: str
    container: str | None = None
    usage_percent: float | None = None  # of one CPU, like top: two busy CPUs are 200
    throttled_usec: int | None = None  # throttled during the interval
    quota: float | None = None  # cpu.max in CPUs; None: no limit, or no cpu controller
    removed: bool = False  # the directory is gone; kept for its last counts


@dataclass(frozen=True, slots=True)
class CpuStat:
    cpu: int
    samples: int  # non-idle
    idle_samples: int

    @property
    def busy_fraction(self) -> float:
        total = self.samples + self.idle_samples
        return self.samples / total if total else 0.0


@dataclass(frozen=True, slots=True)
class SamplerCost:
    """perftop's own footprint, shown so users can see what watching costs."""

    cpu_percent: float = 0.0  # perftop's process CPU over the interval
    bpf_run_ns_per_s: float | None = None  # None when kernel.bpf_stats_enabled is off
    bpf_ns_per_sample: float | None = None
    counts_map_used: int = 0
    counts_map_size: int = 0
    stack_map_used: int = 0
    stack_map_size: int = 0
    drain_ms: float = 0.0  # drain + symbolize + aggregate time of the interval (wall clock)
    drain_cpu_ms: float = 0.0  # the same work in CPU time of the sampler thread
    unwind_rows_used: int = 0  # rows of unwind tables in the kernel (16 bytes each)
    unwind_rows_size: int = 0


@dataclass(frozen=True, slots=True)
class Interval:
    """One interval as the source saw it (or an accumulation of several): the raw counts and
    what was known of each sampled process, never aggregated. `samples` and `idle_samples` are
    derived here, once, so no producer rebuilds them by hand."""

    timestamp: float  # wall clock at the end of the interval
    interval_s: float  # measured, not nominal
    event: str
    frequency_hz: int
    lost: Mapping[str, int]  # counter name -> count in this interval
    cpus: tuple[CpuStat, ...]
    stacks: tuple[StackSample, ...]
    processes: Mapping[int, ProcessInfo]  # pid -> what psutil said (sampled and watched PIDs)
    stack_mode: str = "both"  # "kernel", "user" or "both"
    python_frames: bool = True  # CPython processes' Python frames walked (in user stacks)
    # How user stacks were walked: "table" (.eh_frame tables, frame pointers where a binary
    # has none), "fp", or "fp (table walker refused)" when the kernel would not load it;
    # "" when not known (a recording made before perftop walked tables, the preview).
    unwind: str = ""
    pid_filter: tuple[int, ...] = ()
    headers: str = ""  # which kernel headers the BPF program was compiled with
    # The cgroup ids of the stacks (and of the filtered cgroups), with their paths, names and
    # CPU figures; empty when not known.
    cgroups: Mapping[int, CgroupInfo] = field(default_factory=dict)
    cgroup_filter: tuple[str, ...] = ()  # cgroup paths counted (and their descendants)
    # Why there are no per-cgroup rows (cgroup v1 only); "" when there are.
    cgroups_unavailable: str = ""
    cost: SamplerCost = field(default_factory=SamplerCost)
    notices: tuple[str, ...] = ()  # one-line messages for the user (event switch failed, ...)
    # psutil's busiest processes while the BPF program loads: no samples yet, so the view
    # ranks `processes` by their CPU% instead of by samples.
    preview: bool = False
    # Where in each leaf function its samples landed (perftop.model.annotate), per process.
    leaf_offsets: LeafHistograms = field(default_factory=dict)
    # pid -> where it mapped the binaries its native frames are in (pprof's Mappings).
    mappings: Mapping[int, tuple[ProcessMapping, ...]] = field(default_factory=dict)
    samples: int = field(init=False)  # non-idle, from the stacks
    idle_samples: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "samples", sum(stack.samples for stack in self.stacks))
        object.__setattr__(self, "idle_samples", sum(cpu.idle_samples for cpu in self.cpus))

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.interval_s if self.interval_s > 0 else 0.0

    @property
    def lost_total(self) -> int:
        """Samples not counted, or counted without a stack they should have had. A user stack
        missing outright (paged out, or a thread in a state the unwinder cannot read) is
        reported in `lost` too, but it is not a loss of perftop's making."""
        return sum(count for name, count in self.lost.items() if name not in INFORMATIONAL_LOST)
