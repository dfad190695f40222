"""Process details from psutil: user, command line, threads, RSS, CPU%.

psutil.Process objects are kept between intervals because cpu_percent() measures since the
previous call on the same object; they are keyed by pid and creation time so a reused pid starts
afresh, and dropped when the process is gone or no longer sampled.
"""

from __future__ import annotations

from collections.abc import Iterable

import psutil

from perftop.model.samples import ProcessInfo
from perftop.system.procfs import is_kernel_thread_ids


class ProcessDetails:
    def __init__(self, max_tracked: int = 4096) -> None:
        self._tracked: dict[int, psutil.Process] = {}
        self._max_tracked = max_tracked

    def _process(self, pid: int) -> psutil.Process | None:
        process = self._tracked.get(pid)
        if process is not None:
            try:
                if process.is_running():  # also compares creation time: catches pid reuse
                    return process
            except psutil.Error:
                pass
            del self._tracked[pid]
        try:
            process = psutil.Process(pid)
            process.cpu_percent(None)  # prime: the first call has nothing to compare with
        except psutil.Error:
            return None
        if len(self._tracked) >= self._max_tracked:
            self._tracked.pop(next(iter(self._tracked)))
        self._tracked[pid] = process
        return process

    def lookup(self, pids: Iterable[int]) -> dict[int, ProcessInfo]:
        """Details of each pid; an exited one gets ProcessInfo(exited=True)."""
        wanted = set(pids)
        for stale in [pid for pid in self._tracked if pid not in wanted]:
            del self._tracked[stale]
        return {pid: self._info(pid) for pid in wanted}

    def _info(self, pid: int) -> ProcessInfo:
        process = self._process(pid)
        if process is None:
            return ProcessInfo(pid=pid, exited=True)
        try:
            with process.oneshot():
                kernel_thread = is_kernel_thread_ids(pid, process.ppid())
                try:
                    cmdline = " ".join(process.cmdline())
                except psutil.AccessDenied:
                    cmdline = ""
                return ProcessInfo(
                    pid=pid,
                    user=process.username(),
                    cmdline=cmdline,
                    threads=process.num_threads(),
                    cpu_percent=process.cpu_percent(None),
                    rss_bytes=process.memory_info().rss,
                    kernel_thread=kernel_thread,
                )
        except psutil.NoSuchProcess:
            self._tracked.pop(pid, None)
            return ProcessInfo(pid=pid, exited=True)
        except psutil.Error:
            return ProcessInfo(pid=pid)
