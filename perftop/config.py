"""The user's choices, frozen once the command line is parsed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from perftop.model.events import DEFAULT_EVENT
from perftop.model.modes import StackMode


@dataclass(frozen=True, slots=True)
class SamplerConfig:
    event: str = DEFAULT_EVENT
    frequency_hz: int = 99
    interval_s: float = 1.0
    pids: tuple[int, ...] = ()
    # --cgroup: cgroup v2 paths (relative to the mount, as /proc/PID/cgroup prints them),
    # checked to exist; only their tasks and their descendants' are counted.
    cgroups: tuple[str, ...] = ()
    stack_mode: StackMode = StackMode.BOTH
    unwind: str = "table"  # "table": .eh_frame tables where a binary has them; "fp": frame pointers
    unwind_rows: int = 524288  # 16-byte rows of unwind tables the kernel holds (8 MiB)
    # Extra -D flags for the table walker's build: for tests that make the verifier refuse it.
    unwind_cflags: tuple[str, ...] = ()
    python_frames: bool = True  # walk CPython frames in the kernel (--no-python turns it off)
    counts_entries: int = 40960
    stack_entries: int = 16384
    debuginfod: bool = False  # network symbol lookups are opt-in
    # The screen's first profile comes this long after the program is attached, not a whole
    # interval: the user has already waited for the compile. None: a whole interval (batch
    # reports keep -d for every interval).
    first_interval_s: float | None = None


@dataclass(frozen=True, slots=True)
class Config:
    sampler: SamplerConfig
    batch: bool = False
    iterations: int | None = None  # None: until interrupted
    output_format: str = "text"
    output_path: Path | None = None
    output_force: bool = False
    folded_pid: bool = False  # folded stacks rooted at `comm-pid` rather than `comm`
    record_path: Path | None = None
    replay_path: Path | None = None
    replay_interval_s: float | None = None  # None: the pace it was recorded at
    top: int = 20  # rows per table in text output
    annotate: str | None = None  # batch: print this function annotated each interval
