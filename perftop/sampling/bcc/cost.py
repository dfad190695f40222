"""What watching costs: perftop's own CPU and the BPF program's run time, per interval."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from perftop.model.samples import SamplerCost


@dataclass(frozen=True, slots=True)
class MapUse:
    """How full the maps were at the drain."""

    counts_used: int
    counts_size: int
    stacks_used: int
    stacks_size: int
    unwind_rows_used: int = 0
    unwind_rows_size: int = 0


def read_bpf_stats(prog_fd: int) -> tuple[int, int] | None:
    """run_time_ns and run_cnt of the program, which the kernel reports only while
    kernel.bpf_stats_enabled is 1."""
    try:
        text = Path(f"/proc/self/fdinfo/{prog_fd}").read_text()
    except OSError:
        return None
    fields = dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)
    try:
        return int(fields["run_time_ns"]), int(fields["run_cnt"])
    except (KeyError, ValueError):
        return None


class CostMeter:
    """Differences of perftop's CPU time and the program's bpf_stats between drains. Built
    right after attaching, so the first interval's cost starts with its samples."""

    def __init__(self, prog_fd: int) -> None:
        self._prog_fd = prog_fd
        self._self_process = psutil.Process()
        self._last_cpu_time = self._own_cpu_time()
        self._last_bpf_stats = read_bpf_stats(prog_fd)

    def _own_cpu_time(self) -> float:
        times = self._self_process.cpu_times()
        return float(times.user + times.system)

    def measure(self, interval: float, maps: MapUse, started: tuple[float, float]) -> SamplerCost:
        """The cost of the interval of `interval` seconds whose drain began at `started`
        (perf_counter, thread_time)."""
        cpu_time = self._own_cpu_time()
        cpu_percent = 100.0 * (cpu_time - self._last_cpu_time) / interval if interval > 0 else 0.0
        self._last_cpu_time = cpu_time
        stats = read_bpf_stats(self._prog_fd)
        previous, self._last_bpf_stats = self._last_bpf_stats, stats
        run_ns_per_s = ns_per_sample = None
        if stats and previous and stats[1] > previous[1]:
            run_ns = stats[0] - previous[0]
            run_ns_per_s = run_ns / interval if interval > 0 else None
            ns_per_sample = run_ns / (stats[1] - previous[1])
        return SamplerCost(
            cpu_percent=cpu_percent,
            bpf_run_ns_per_s=run_ns_per_s,
            bpf_ns_per_sample=ns_per_sample,
            counts_map_used=maps.counts_used,
            counts_map_size=maps.counts_size,
            stack_map_used=maps.stacks_used,
            unwind_rows_used=maps.unwind_rows_used,
            unwind_rows_size=maps.unwind_rows_size,
            stack_map_size=maps.stacks_size,
            drain_ms=1000.0 * (time.perf_counter() - started[0]),
            drain_cpu_ms=1000.0 * (time.thread_time() - started[1]),
        )
