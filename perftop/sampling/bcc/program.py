"""perftop's BPF program through libbcc: compile, load, attach one perf event per CPU, and the
ctypes views of its maps. With perftop.sampling.bcc's other modules, the only code that imports
`bcc`.
"""

from __future__ import annotations

import ctypes as ct
import errno
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from perftop.config import SamplerConfig
from perftop.model.events import Event, unavailable_message
from perftop.sampling.bcc.abi import (
    BPF_SOURCE,
    COUNTS_MAPS,
    GENERATIONS,
    KEY_FORMAT,
    MAX_CGROUPS,
    MAX_STACK_DEPTH,
    SETTING_CGROUP_FILTER,
    SETTING_GENERATION,
    SETTING_PID_FILTER,
    SETTING_PYTHON,
    SETTING_STACKS,
    SETTING_UNWIND,
    VALUE_FORMAT,
    size_cflags,
)
from perftop.sampling.source import EventUnavailable, SourceError
from perftop.system.headers import HeadersError, KernelHeaders, locate_headers
from perftop.system.memory import release_free_memory
from perftop.system.procfs import max_sample_rate, online_cpus
from perftop.system.stdio import captured_fds

# Keep network symbol lookups opt-in: BCC may ask debuginfod and wait a long time.
_DEBUGINFOD_URLS = os.environ.pop("DEBUGINFOD_URLS", None)
# When the kernel cannot give a grace period (a map-in-map update failed): BPF perf-event
# programs run for microseconds with preemption off; 10 ms also covers a vCPU the host
# preempted for a few ticks mid-program.
FALLBACK_GRACE_S = 0.010

try:
    from bcc import BPF
    from bcc.libbcc import lib as lib  # re-exported: drain.py calls the map syscalls too
except ImportError as error:  # pragma: no cover - depends on the machine
    BPF = None
    lib = None  # drain.py imports it; BccSource reports bcc_available() before any use
    _IMPORT_ERROR: ImportError | None = error
else:
    _IMPORT_ERROR = None
    lib.bpf_attach_perf_event.argtypes = [
        ct.c_int,
        ct.c_uint32,
        ct.c_uint32,
        ct.c_uint64,
        ct.c_uint64,
        ct.c_int,
        ct.c_int,
        ct.c_int,
    ]
    lib.bpf_close_perf_event_fd.argtypes = [ct.c_int]
    lib.bpf_lookup_and_delete.restype = ct.c_int
    lib.bpf_lookup_and_delete.argtypes = [ct.c_int, ct.c_void_p, ct.c_void_p]


def bcc_available() -> str | None:
    """None when BCC imports, else why not."""
    if _IMPORT_ERROR is None:
        return None
    return f"BCC is not installed ({_IMPORT_ERROR}): install python3-bpfcc (`make setup`)"


def enable_debuginfod() -> None:
    """Opt in to network symbol lookups (the user's --debuginfod)."""
    if _DEBUGINFOD_URLS:
        os.environ["DEBUGINFOD_URLS"] = _DEBUGINFOD_URLS


def _attach_error(event: Event, code: int, hz: int) -> str:
    if code in (errno.ENOENT, errno.EOPNOTSUPP, errno.ENODEV) or (
        event.hardware and code == errno.EINVAL
    ):
        reason = "not supported by this machine" + (" (no hardware PMU)" if event.hardware else "")
    elif code in (errno.EACCES, errno.EPERM):
        reason = "permission denied (needs root, or CAP_PERFMON and CAP_BPF)"
    elif code == errno.EINVAL:
        limit = max_sample_rate()
        reason = f"{hz} Hz refused" + (f" (kernel limit {limit} Hz)" if limit else "")
    else:
        reason = os.strerror(code)
    return unavailable_message(event.name, reason)


def probe_event(event: Event, hz: int = 99) -> str | None:
    """None when `event` can be opened on this machine, else the reason (a counting event on
    CPU 0, closed at once: no BPF program needed)."""
    if _IMPORT_ERROR is not None:
        return "BCC missing"
    with captured_fds():  # libbcc perror()s the failure
        fd = lib.bpf_open_perf_event(event.type, event.config, -1, online_cpus()[0])
        code = ct.get_errno()
    if fd < 0:
        if code in (errno.ENOENT, errno.EOPNOTSUPP, errno.ENODEV, errno.EINVAL):
            return "not supported by this machine" + (
                " (no hardware PMU)" if event.hardware else ""
            )
        return os.strerror(code)
    os.close(fd)
    return None


def prepare_headers() -> KernelHeaders | None:
    """The kernel headers to compile against, handed to libbcc in BCC_KERNEL_SOURCE."""
    if os.environ.get("BCC_KERNEL_SOURCE"):
        path = Path(os.environ["BCC_KERNEL_SOURCE"])
        return KernelHeaders(path, f"{path} (from BCC_KERNEL_SOURCE)")
    try:
        headers = locate_headers()
    except (HeadersError, OSError) as error:
        raise SourceError(str(error)) from None
    os.environ["BCC_KERNEL_SOURCE"] = str(headers.path)
    return headers


def _load(config: SamplerConfig, tables: bool) -> tuple[Any, int]:
    """Compile and load the program: with the table walker, or without it (frame pointers
    only). The verifier's log goes to the captured fds, never to the screen."""
    if not BPF_SOURCE.is_file():
        raise SourceError(f"BPF program not found at {BPF_SOURCE}")
    cflags = [
        *size_cflags(config.counts_entries, config.stack_entries, config.unwind_rows),
        "-Wno-macro-redefined",
    ]
    if tables:
        cflags += list(config.unwind_cflags)
    else:
        cflags.append("-DPERFTOP_NO_UNWIND")
    bpf: Any = None
    with captured_fds() as captured:
        try:
            bpf = BPF(src_file=str(BPF_SOURCE).encode(), cflags=cflags)
            prog_fd: int = bpf.load_func(b"on_sample", BPF.PERF_EVENT).fd
        except Exception as error:
            failure: Exception | None = error
        else:
            failure = None
    # The compile leaves tens of MB free inside the heap: give them back now.
    release_free_memory()
    if failure is not None:
        if bpf is not None:
            with captured_fds():
                bpf.cleanup()
        detail = captured.summary() or str(failure)
        if os.geteuid() != 0 and "Operation not permitted" in (detail + str(failure)):
            detail = "permission denied: run as root (or with CAP_BPF and CAP_PERFMON)"
        raise SourceError(f"could not load the BPF program: {detail}")
    return bpf, prog_fd


class Maps:
    """ctypes views of the program's maps, with buffers allocated once."""

    def __init__(self, bpf: Any, counts_entries: int) -> None:
        self.counts = tuple(bpf[name] for name in COUNTS_MAPS)  # by generation
        self.stacks = bpf[b"stacks"]
        self.pid_filter = bpf[b"pid_filter"]
        self.cgroup_filter = bpf[b"cgroup_filter"]
        self.settings = bpf[b"settings"]
        self.cpu_totals = bpf[b"cpu_totals"]
        self.lost = bpf[b"lost"]
        self.grace = bpf[b"grace"]
        self.python_procs = bpf[b"python_procs"]
        self.python_stacks = bpf[b"python_stacks"]
        self.python_threads = bpf[b"python_threads"]
        self.unwind_rows = bpf[b"unwind_rows"]
        self.unwind_mappings = bpf[b"unwind_mappings"]
        self.native_stacks = bpf[b"native_stacks"]
        self.unwind_misses = bpf[b"unwind_misses"]
        self.capacity = counts_entries
        counts = self.counts[0]
        if (ct.sizeof(counts.Key), ct.sizeof(counts.Leaf)) != (KEY_FORMAT.size, VALUE_FORMAT.size):
            raise SourceError("the BPF program's count_key/count_value layout changed")
        # One pair of buffers for both generations: only one is drained at a time.
        self.keys = (counts.Key * counts_entries)()
        self.values = (counts.Leaf * counts_entries)()
        self.stack_buffer = (ct.c_uint64 * MAX_STACK_DEPTH)()


class Program:
    """The compiled and loaded program, its maps, and the perf events it is attached to (none
    until `attach`). Construction raises SourceError and leaves nothing loaded on failure."""

    def __init__(self, config: SamplerConfig) -> None:
        self._perf_fds: list[int] = []
        self._bpf: Any = None
        self.generation = 0  # the half of the counters samples go to now
        # Why the table walker is not in the loaded program, when it was wanted and refused.
        self.unwind_problem: str | None = None
        self.tables = config.unwind == "table"
        try:
            loaded = _load(config, self.tables)
        except SourceError as error:
            if not self.tables:
                raise
            # A kernel or verifier that refuses the walker: frame pointers, as before it.
            detail = str(error).removeprefix("could not load the BPF program: ")
            self.unwind_problem = detail.split(" | ")[0]  # the first line, not the log
            self.tables = False
            loaded = _load(config, False)
        self._bpf, self.prog_fd = loaded
        try:
            self.maps = Maps(self._bpf, config.counts_entries)
        except BaseException:
            self.close()
            raise

    def attach(self, event: Event, hz: int) -> None:
        """Open `event` on every online CPU with the loaded program; all or nothing. Raises
        EventUnavailable, with every perf event it opened closed again (BCC's own
        attach_perf_event leaks those)."""
        opened: list[int] = []
        failure: str | None = None
        with captured_fds():
            for cpu in online_cpus():
                fd = lib.bpf_attach_perf_event(
                    self.prog_fd, event.type, event.config, 0, hz, -1, cpu, -1
                )
                if fd < 0:
                    failure = _attach_error(event, ct.get_errno(), hz)
                    break
                opened.append(fd)
            if failure is not None:
                for fd in opened:
                    lib.bpf_close_perf_event_fd(fd)
        if failure is not None:
            raise EventUnavailable(failure)
        old, self._perf_fds = self._perf_fds, opened
        for fd in old:
            lib.bpf_close_perf_event_fd(fd)

    def set_stack_bits(self, bits: int) -> None:
        self.maps.settings[ct.c_int(SETTING_STACKS)] = ct.c_uint32(bits)

    def set_unwind(self, tables: bool) -> None:
        """Walk user stacks with unwind tables where a process has them, or frame pointers."""
        self.maps.settings[ct.c_int(SETTING_UNWIND)] = ct.c_uint32(1 if tables else 0)

    def set_python(self, walk: bool) -> None:
        """Walk the Python frames of registered processes, or not."""
        self.maps.settings[ct.c_int(SETTING_PYTHON)] = ct.c_uint32(1 if walk else 0)

    def set_pid_filter(self, pids: Sequence[int]) -> None:
        """Count only `pids` (all processes when empty)."""
        table = self.maps.pid_filter
        wanted = set(pids)
        for key in list(table.keys()):
            if key.value not in wanted:
                del table[key]
        for pid in wanted:
            table[ct.c_uint32(pid)] = ct.c_uint8(1)
        self.maps.settings[ct.c_int(SETTING_PID_FILTER)] = ct.c_uint32(1 if wanted else 0)

    def set_cgroup_filter(self, directories: Sequence[Path]) -> None:
        """Count only tasks in these cgroups or below them (all tasks when empty). Each is a
        directory on the cgroup2 mount, opened here; the kernel keeps its own reference to the
        cgroup, so the fds are closed at once. Raises SourceError, with the filter as it was,
        when one cannot be opened (removed meanwhile, not a directory)."""
        if len(directories) > MAX_CGROUPS:
            raise SourceError(f"at most {MAX_CGROUPS} cgroups can be filtered at once")
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        fds: list[int] = []
        try:
            for directory in directories:
                try:
                    fds.append(os.open(directory, flags))
                except OSError as error:
                    raise SourceError(
                        f"cannot filter on cgroup {directory}: {error.strerror}"
                    ) from None
            table, settings = self.maps.cgroup_filter, self.maps.settings
            # Off while the slots change, so no sample sees half of the new set.
            settings[ct.c_int(SETTING_CGROUP_FILTER)] = ct.c_uint32(0)
            for slot, fd in enumerate(fds):
                table[ct.c_int(slot)] = fd  # CgroupArray takes the fd; the kernel keeps the cgroup
            # Slots past the set are deleted, so the kernel lets go of cgroups no longer wanted
            # (ArrayBase.__delitem__ would store fd 0 instead).
            for slot in range(len(fds), MAX_CGROUPS):
                lib.bpf_delete_elem(table.map_fd, ct.byref(ct.c_int(slot)))
            settings[ct.c_int(SETTING_CGROUP_FILTER)] = ct.c_uint32(len(fds))
        finally:
            for fd in fds:
                os.close(fd)

    def flip_generation(self) -> int:
        """Send new samples to the other half of the counters and return the half they left,
        once no program can still be writing to it: its counts, per-CPU totals and lost
        counters then hold one interval, as of one instant.

        The wait is the kernel's: an update of a map-in-map returns only after
        synchronize_rcu() (kernel/bpf/syscall.c, maybe_wait_bpf_programs, there so that user
        space knows no program still uses the old value; the BPF selftests' kern_sync_rcu
        relies on it too), and the perf-event overflow handler runs every program inside
        rcu_read_lock(). It costs wall time, not CPU: 8-16 ms here (2 vCPUs, 20 flips), the
        thread asleep. A sleep would be a guess: a vCPU preempted by the host mid-program
        can stay preempted for longer than any fixed grace."""
        old = self.generation
        self.generation = (old + 1) % GENERATIONS
        maps = self.maps
        maps.settings[ct.c_int(SETTING_GENERATION)] = ct.c_uint32(self.generation)
        try:
            maps.grace[ct.c_int(0)] = ct.c_int(maps.settings.map_fd)
        except Exception:  # BCC raises a bare Exception when the update fails
            time.sleep(FALLBACK_GRACE_S)
        return old

    def close(self) -> None:
        """Detach and unload; safe to call more than once."""
        for fd in self._perf_fds:
            lib.bpf_close_perf_event_fd(fd)
        self._perf_fds = []
        bpf, self._bpf = self._bpf, None
        if bpf is not None:
            with captured_fds():
                bpf.cleanup()
