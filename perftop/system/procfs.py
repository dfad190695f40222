"""What perftop reads from /proc and /sys, parsed once and given named predicates.

Readers return None (or a neutral value) for a process that is gone: a sampled process may exit
between any two lines of perftop. Only the BPF side (sampling/bcc) keeps its own few reads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

KTHREADD_PID = 2  # every kernel thread is kthreadd's child (or kthreadd itself)
DELETED = " (deleted)"
VDSO_PATH = "[vdso]"
# Shared anonymous memory and memfds have a path but no ELF behind it: JIT code lives there too.
ANONYMOUS_FILES = ("/dev/zero", "/memfd:", "/SYSV")


# /proc/PID/stat ---------------------------------------------------------------------------


def is_kernel_thread_ids(pid: int, parent_pid: int) -> bool:
    """The one kernel-thread rule, for callers that already know the parent (psutil)."""
    return pid == KTHREADD_PID or parent_pid == KTHREADD_PID


@dataclass(frozen=True, slots=True)
class ProcessStat:
    """The fields perftop uses from /proc/PID/stat."""

    pid: int
    parent_pid: int
    start_time: int  # clock ticks since boot: with the pid, names one process for good

    @property
    def is_kernel_thread(self) -> bool:
        return is_kernel_thread_ids(self.pid, self.parent_pid)


def read_stat(pid: int) -> ProcessStat | None:
    """None when the process is gone (or the line cannot be parsed)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat_file:
            stat = stat_file.read()
    except OSError:
        return None
    # comm may contain spaces and parentheses: the fields start after the last ')'.
    fields = stat[stat.rfind(b")") + 2 :].split()
    try:
        return ProcessStat(pid, int(fields[1]), int(fields[19]))
    except (IndexError, ValueError):
        return None


def process_start_time(pid: int) -> int | None:
    """Start time in clock ticks (field 22 of /proc/PID/stat), None when the process is gone."""
    stat = read_stat(pid)
    return stat.start_time if stat is not None else None


class StartTimes:
    """process_start_time read at most once per pid between two `forget()` calls. A drain asks
    about each sampled or registered pid from several places (user symbols, Python frames,
    unwind tables): one /proc/PID/stat read per pid per drain answers them all, and a process
    that exits after it is noticed at the next drain."""

    def __init__(self) -> None:
        self._known: dict[int, int | None] = {}

    def __call__(self, pid: int) -> int | None:
        try:
            return self._known[pid]
        except KeyError:
            start_time = self._known[pid] = process_start_time(pid)
            return start_time

    def forget(self) -> None:
        self._known.clear()


def is_kernel_thread(pid: int) -> bool:
    """Kernel threads have no user stack; missing user stacks there are expected."""
    if pid == KTHREADD_PID:
        return True
    stat = read_stat(pid)
    return stat is not None and stat.is_kernel_thread


# /proc/PID/status -------------------------------------------------------------------------


class ProcessIds(NamedTuple):
    namespace_pid: int  # the pid inside its own pid namespace (the last NSpid entry)
    uid: int | None  # effective uid, None when unknown


def process_ids(pid: int) -> ProcessIds:
    """(pid inside its own pid namespace, effective uid), from /proc/PID/status."""
    namespace_pid, uid = pid, None
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"NSpid:"):
                    namespace_pid = int(line.split()[-1])
                elif line.startswith(b"Uid:"):
                    uid = int(line.split()[2])
    except (OSError, ValueError, IndexError):
        pass
    return ProcessIds(namespace_pid, uid)


# /proc/PID/maps ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mapping:
    start: int
    end: int
    offset: int
    path: str  # "" for anonymous memory, "[vdso]", "[heap]", or a file path

    @property
    def is_vdso(self) -> bool:
        return self.path == VDSO_PATH

    @property
    def is_deleted(self) -> bool:
        """Its file was deleted or replaced since it was mapped (an upgrade, a rebuild)."""
        return self.path.endswith(DELETED)

    @property
    def is_file_backed(self) -> bool:
        """An ELF file may be behind it: a real path, not shared anonymous memory or a memfd."""
        return self.path.startswith("/") and not self.path.startswith(ANONYMOUS_FILES)

    @property
    def file_path(self) -> str:
        """The path the file was mapped from, without the kernel's " (deleted)" mark."""
        return self.path.removesuffix(DELETED)


def read_maps(pid: int | str) -> list[Mapping] | None:
    """The executable mappings of a process, by start address; None when it is gone.
    Raises PermissionError when it is there but perftop may not read its maps."""
    try:
        with open(f"/proc/{pid}/maps", "rb") as maps:
            data = maps.read()
    except PermissionError:
        raise
    except OSError:
        return None
    mappings = []
    for line in data.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 5 or b"x" not in parts[1]:
            continue
        try:
            start, end = (int(value, 16) for value in parts[0].split(b"-"))
            offset = int(parts[2], 16)
        except ValueError:
            continue
        path = parts[5].decode("utf-8", errors="surrogateescape") if len(parts) > 5 else ""
        mappings.append(Mapping(start, end, offset, path))
    mappings.sort(key=lambda mapping: mapping.start)
    return mappings


# /sys/devices/system/cpu ------------------------------------------------------------------


def parse_cpu_list(text: str) -> list[int]:
    """`0-3,8` -> [0, 1, 2, 3, 8] (the kernel's cpulist format)."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if "-" in part:
            first, last = part.split("-")
            cpus.extend(range(int(first), int(last) + 1))
        elif part:
            cpus.append(int(part))
    return cpus


def online_cpus(root: Path = Path("/sys/devices/system/cpu")) -> list[int]:
    return parse_cpu_list((root / "online").read_text())


def possible_cpus(root: Path = Path("/sys/devices/system/cpu")) -> list[int]:
    return parse_cpu_list((root / "possible").read_text())


def max_sample_rate() -> int | None:
    """kernel.perf_event_max_sample_rate, the highest frequency a perf event may ask for."""
    try:
        return int(Path("/proc/sys/kernel/perf_event_max_sample_rate").read_text())
    except (OSError, ValueError):
        return None


def running_pids(root: str = "/proc") -> list[int]:
    """The thread-group ids in /proc now."""
    try:
        names = os.listdir(root)
    except OSError:
        return []
    return [int(name) for name in names if name.isdigit()]
