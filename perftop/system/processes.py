"""Process details from psutil: user, command line, threads, RSS, CPU%.

CPU% is measured by perftop itself, not by psutil's cpu_percent(): its first call on a process
has nothing to compare with and says 0.0, which made every busy process read 0.0 in
`--batch -n 1`, for one interval after it was first seen, and after a PID filter was cleared
(the filter dropped the others' state). Here every process gets a baseline (its CPU time and
when it was read) as soon as perftop knows of it: all of them when the details start, so the
first interval is measured from its start; one created since started at zero CPU, so its CPU
over its life so far is exact. Baselines outlive a PID filter (they are a few numbers each),
keyed by pid and creation time so a reused pid starts afresh.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psutil

from perftop.model.samples import ProcessInfo
from perftop.system.procfs import is_kernel_thread_ids


@dataclass(frozen=True, slots=True)
class CpuBaseline:
    """A process's CPU time (user + system, seconds) at one moment of the wall clock."""

    create_time: float
    cpu_seconds: float
    at: float  # time.time() when read


def cpu_percent_since(baseline: CpuBaseline, cpu_seconds: float, now: float) -> float:
    """CPU% of one CPU (as top and psutil count it) over the wall time since the baseline."""
    elapsed = now - baseline.at
    if elapsed <= 0:
        return 0.0
    return max(0.0, 100.0 * (cpu_seconds - baseline.cpu_seconds) / elapsed)


class ProcessDetails:
    def __init__(
        self, max_tracked: int = 8192, clock: Callable[[], float] = time.time, scan: bool = True
    ) -> None:
        self._baselines: dict[int, CpuBaseline] = {}
        self._max_tracked = max_tracked
        self._clock = clock
        if scan:
            self.scan()

    def scan(self) -> None:
        """A baseline for every process there is now (~20 ms for 300 processes)."""
        now = self._clock()
        for process in psutil.process_iter(["create_time", "cpu_times"]):
            info = process.info
            times, created = info.get("cpu_times"), info.get("create_time")
            if times is None or created is None:
                continue
            self._remember(
                process.pid, CpuBaseline(created, times.user + times.system, now), touch=False
            )

    def _remember(self, pid: int, baseline: CpuBaseline, touch: bool = True) -> None:
        if touch:
            self._baselines.pop(pid, None)  # most recently read last: evicted last
        self._baselines[pid] = baseline
        while len(self._baselines) > self._max_tracked:
            self._baselines.pop(next(iter(self._baselines)))

    def _cpu_percent(self, pid: int, create_time: float, cpu_seconds: float) -> float:
        now = self._clock()
        baseline = self._baselines.get(pid)
        if baseline is None or abs(baseline.create_time - create_time) > 0.01:
            # Never seen (or the pid was reused): it started after the scan, so all of its CPU
            # time is since its creation (or it was evicted from a table of thousands, and its
            # life's average is the best measure there is).
            baseline = CpuBaseline(create_time, 0.0, min(create_time, now))
        self._remember(pid, CpuBaseline(create_time, cpu_seconds, now))
        return cpu_percent_since(baseline, cpu_seconds, now)

    def lookup(self, pids: Iterable[int]) -> dict[int, ProcessInfo]:
        """Details of each pid; an exited one gets ProcessInfo(exited=True)."""
        return {pid: self._info(pid) for pid in set(pids)}

    def _info(self, pid: int) -> ProcessInfo:
        try:
            process = psutil.Process(pid)
        except psutil.Error:
            self._baselines.pop(pid, None)
            return ProcessInfo(pid=pid, exited=True)
        try:
            with process.oneshot():
                kernel_thread = is_kernel_thread_ids(pid, process.ppid())
                try:
                    cmdline = " ".join(process.cmdline())
                except psutil.AccessDenied:
                    cmdline = ""
                times = process.cpu_times()
                cpu = self._cpu_percent(pid, process.create_time(), times.user + times.system)
                return ProcessInfo(
                    pid=pid,
                    user=process.username(),
                    cmdline=cmdline,
                    threads=process.num_threads(),
                    cpu_percent=cpu,
                    rss_bytes=process.memory_info().rss,
                    kernel_thread=kernel_thread,
                )
        except psutil.NoSuchProcess:
            self._baselines.pop(pid, None)
            return ProcessInfo(pid=pid, exited=True)
        except psutil.Error:
            return ProcessInfo(pid=pid)
