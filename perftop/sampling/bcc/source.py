"""The live source: perftop's BPF program through BCC. The only module that imports `bcc`.

BCC 0.26 traps avoided here, each checked in its source:
- `attach_perf_event` leaks the fds of CPUs already attached when a later CPU fails: perftop
  opens one perf event per CPU itself and closes them all on any failure.
- `StackTrace.clear()` does nothing: perftop deletes the stack ids no sample used in the last
  two intervals, so the stack map holds the working set.
- `BPF.sym()` keeps a symbol cache per pid forever, and libbcc opens /tmp/perf-PID.map with no
  ownership or symlink check: perftop reads user symbols itself (perftop.symbols.process),
  with bounded caches that forget exited processes.
- libbcc prints to fds 1 and 2: compile and attach run inside `captured_fds()`.
- `items_lookup_and_delete_batch` passes one integer as both batch token and count; perftop calls
  the batch syscall itself with separate ones and preallocated buffers.
"""

from __future__ import annotations

import array
import ctypes as ct
import errno
import itertools
import os
import struct
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import psutil

from perftop.config import STACK_MODES, SamplerConfig
from perftop.model.events import EVENTS, Event, unavailable_message
from perftop.model.modes import StackMode
from perftop.model.samples import CpuStat, Frame, Interval, SamplerCost, StackSample
from perftop.sampling.source import EventUnavailable, SourceError
from perftop.sanitize import decode
from perftop.symbols.memo import Generations
from perftop.symbols.user import REASON_KPTR, KernelSymbols, UserSymbols
from perftop.system.capture import captured_fds
from perftop.system.headers import HeadersError, KernelHeaders, locate_headers
from perftop.system.memory import freeze_long_lived_objects, release_free_memory
from perftop.system.processes import ProcessDetails

BPF_SOURCE = Path(__file__).resolve().parents[3] / "bpf" / "profile.bpf.c"
MAX_PIDS = 64
STACK_SKIPPED = -65536
MAX_STACK_DEPTH = 127
STACK_BITS = {"kernel": 1, "user": 2, "both": 3}
# How often freed heap pages go back (malloc_trim: median 0.6 ms, max 6 ms). Every 30 s, the
# RSS swung ~3 MB in a 30 s sawtooth, which hid its trend in the soak (108 KiB/min one run);
# each interval costs ~0.6 ms a second and keeps RSS at what is in use.
TRIM_EVERY_S = 1.0
KERNEL_CHAINS_MAX = 65536  # kernel chains kept symbolized at most (~300 bytes each); aged per drain
LOST_NAMES = (
    "counts_map_full",
    "kernel_stack_collision",
    "user_stack_collision",
    "kernel_stack_map_full",
    "user_stack_map_full",
    "kernel_stack_error",
    "user_stack_error",
)

# Keep network symbol lookups opt-in: BCC may ask debuginfod and wait a long time.
_DEBUGINFOD_URLS = os.environ.pop("DEBUGINFOD_URLS", None)

try:
    from bcc import BPF
    from bcc.libbcc import lib
except ImportError as error:  # pragma: no cover - depends on the machine
    BPF = None
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


def online_cpus() -> list[int]:
    return _parse_cpu_list(Path("/sys/devices/system/cpu/online").read_text())


def possible_cpus() -> list[int]:
    return _parse_cpu_list(Path("/sys/devices/system/cpu/possible").read_text())


def _parse_cpu_list(text: str) -> list[int]:
    cpus: list[int] = []
    for part in text.strip().split(","):
        if "-" in part:
            first, last = part.split("-")
            cpus.extend(range(int(first), int(last) + 1))
        elif part:
            cpus.append(int(part))
    return cpus


def max_sample_rate() -> int | None:
    try:
        return int(Path("/proc/sys/kernel/perf_event_max_sample_rate").read_text())
    except (OSError, ValueError):
        return None


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


# The layouts of struct count_key and struct count_value in bpf/profile.bpf.c.
KEY_FORMAT = struct.Struct("=IIii16s")
VALUE_FORMAT = struct.Struct("=QQ")


class CountEntry(NamedTuple):
    tgid: int
    tid: int
    kernel_stack_id: int
    user_stack_id: int
    comm: bytes
    samples: int
    period: int


def _entry(key: Any, value: Any) -> CountEntry:
    return CountEntry(*KEY_FORMAT.unpack(bytes(key)), *VALUE_FORMAT.unpack(bytes(value)))


def _zero_terminated(buffer: Any) -> tuple[int, ...]:
    """The addresses of a stack map entry (innermost first, zero after the last)."""
    addresses = array.array("Q", bytes(buffer))
    try:
        return tuple(addresses[: addresses.index(0)])
    except ValueError:
        return tuple(addresses)


class _Maps:
    """ctypes views of the program's maps, with buffers allocated once."""

    def __init__(self, bpf: Any, counts_entries: int) -> None:
        self.counts = bpf[b"counts"]
        self.stacks = bpf[b"stacks"]
        self.pid_filter = bpf[b"pid_filter"]
        self.settings = bpf[b"settings"]
        self.cpu_totals = bpf[b"cpu_totals"]
        self.lost = bpf[b"lost"]
        self.capacity = counts_entries
        if (ct.sizeof(self.counts.Key), ct.sizeof(self.counts.Leaf)) != (
            KEY_FORMAT.size,
            VALUE_FORMAT.size,
        ):
            raise SourceError("the BPF program's count_key/count_value layout changed")
        self.keys = (self.counts.Key * counts_entries)()
        self.values = (self.counts.Leaf * counts_entries)()
        self.stack_buffer = (ct.c_uint64 * MAX_STACK_DEPTH)()


class BccSource:
    """Samples with the real BPF program. Construction compiles, loads and attaches; a failure
    raises SourceError (or EventUnavailable) with one line for the user and leaves nothing
    attached."""

    live = True

    def __init__(self, config: SamplerConfig) -> None:
        problem = bcc_available()
        if problem:
            raise SourceError(problem)
        if config.debuginfod:
            enable_debuginfod()
        self._config = config
        self._lock = threading.Lock()
        self._pending: dict[str, Any] = {}
        self._notices: list[str] = []
        self._closed = threading.Event()
        self._perf_fds: list[int] = []
        self._event = EVENTS[config.event]
        self._frequency = config.frequency_hz
        self._stack_mode = config.stack_mode
        self._pids: tuple[int, ...] = ()
        self._event_status: dict[str, str | None] = {}
        self.headers = self._prepare_headers()
        self._bpf = self._compile(config)
        try:
            self._maps = _Maps(self._bpf, config.counts_entries)
            self._prog_fd: int = self._bpf.load_func(b"on_sample", BPF.PERF_EVENT).fd
            self._apply_stack_mode(config.stack_mode)
            self._apply_pid_filter(config.pids)
        except BaseException:
            self._release()
            raise
        self._drain_mode = "batch"
        self._kernel = KernelSymbols()
        if self._kernel.hidden:
            # Said once, in words, wherever the output goes (the frames carry the reason too).
            self._notices.append(
                f"kernel frames are unnamed: {REASON_KPTR} "
                "(perftop needs CAP_SYSLOG, or kernel.kptr_restrict=0)"
            )
        # Imported after the compile (pyelftools is ~25 ms of imports holding the GIL, which
        # the screen's start-up shares while clang runs with it released).
        from perftop.symbols.process import resolver_factory

        self._user = UserSymbols(resolver_factory())
        self._details = ProcessDetails()
        self._self_process = psutil.Process()
        self._stack_cache: dict[int, tuple[int, ...]] = {}  # id -> addresses, as in the map
        self._retired_stacks: dict[int, tuple[int, ...]] = {}  # deleted at the last drain
        self._stacks_used_last: set[int] = set()
        self._kernel_thread: dict[int, bool] = {}
        # hash of addresses -> frames
        self._kernel_chains: Generations[int, tuple[Frame, ...]] = Generations(KERNEL_CHAINS_MAX)
        freeze_long_lived_objects()
        # Attached last, with every baseline read right after: the first interval's samples
        # and its length start together (kallsyms and the collection above took ~0.1-0.2 s, and
        # a quarter-second first interval counted them as its own: 324 samples/s at 99 Hz x 2).
        try:
            self._attach(self._event, self._frequency)
        except BaseException:
            self._release()
            raise
        self._last_cpu_time = self._own_cpu_time()
        self._last_cpu_totals = self._read_cpu_totals()
        self._last_lost = self._read_lost()
        self._last_bpf_stats = self._read_bpf_stats()
        self._last_drain = time.monotonic()
        self._first_interval = True
        self._last_trim = self._last_drain

    # -- setup ---------------------------------------------------------------------------------

    def _prepare_headers(self) -> KernelHeaders | None:
        if os.environ.get("BCC_KERNEL_SOURCE"):
            path = Path(os.environ["BCC_KERNEL_SOURCE"])
            return KernelHeaders(path, f"{path} (from BCC_KERNEL_SOURCE)")
        try:
            headers = locate_headers()
        except (HeadersError, OSError) as error:
            raise SourceError(str(error)) from None
        os.environ["BCC_KERNEL_SOURCE"] = str(headers.path)
        return headers

    def _compile(self, config: SamplerConfig) -> Any:
        if not BPF_SOURCE.is_file():
            raise SourceError(f"BPF program not found at {BPF_SOURCE}")
        cflags = [
            f"-DPERFTOP_COUNTS_ENTRIES={config.counts_entries}",
            f"-DPERFTOP_STACK_ENTRIES={config.stack_entries}",
            f"-DPERFTOP_MAX_PIDS={MAX_PIDS}",
            "-Wno-macro-redefined",
        ]
        with captured_fds() as captured:
            try:
                bpf = BPF(src_file=str(BPF_SOURCE).encode(), cflags=cflags)
            except Exception as error:
                failure: Exception | None = error
            else:
                failure = None
        # The compile leaves tens of MB free inside the heap: give them back now.
        release_free_memory()
        if failure is not None:
            detail = captured.summary() or str(failure)
            if os.geteuid() != 0 and "Operation not permitted" in (detail + str(failure)):
                detail = "permission denied: run as root (or with CAP_BPF and CAP_PERFMON)"
            raise SourceError(f"could not load the BPF program: {detail}")
        return bpf

    def _attach(self, event: Event, hz: int) -> None:
        """Open `event` on every online CPU with the loaded program; all or nothing."""
        opened: list[int] = []
        failure: str | None = None
        with captured_fds():
            for cpu in online_cpus():
                fd = lib.bpf_attach_perf_event(
                    self._prog_fd, event.type, event.config, 0, hz, -1, cpu, -1
                )
                if fd < 0:
                    failure = _attach_error(event, ct.get_errno(), hz)
                    break
                opened.append(fd)
            if failure is not None:
                for fd in opened:
                    lib.bpf_close_perf_event_fd(fd)
        if failure is not None:
            self._event_status[event.name] = failure
            raise EventUnavailable(failure)
        old, self._perf_fds = self._perf_fds, opened
        for fd in old:
            lib.bpf_close_perf_event_fd(fd)

    def _apply_stack_mode(self, mode: StackMode) -> None:
        self._maps.settings[ct.c_int(1)] = ct.c_uint32(STACK_BITS[mode])
        self._stack_mode = mode

    def _apply_pid_filter(self, pids: Sequence[int]) -> None:
        table = self._maps.pid_filter
        wanted = set(pids)
        for key in list(table.keys()):
            if key.value not in wanted:
                del table[key]
        for pid in wanted:
            table[ct.c_uint32(pid)] = ct.c_uint8(1)
        self._maps.settings[ct.c_int(0)] = ct.c_uint32(1 if wanted else 0)
        self._pids = tuple(sorted(wanted))

    # -- the IntervalSource protocol -------------------------------------------------------------

    @property
    def event(self) -> str:
        return self._event.name

    @property
    def frequency_hz(self) -> int:
        return self._frequency

    def events(self) -> Mapping[str, str | None]:
        for name, event in EVENTS.items():
            if name not in self._event_status:
                self._event_status[name] = probe_event(event)
        return dict(self._event_status)

    def set_pid_filter(self, pids: Sequence[int]) -> None:
        if len(pids) > MAX_PIDS:
            raise SourceError(f"at most {MAX_PIDS} pids can be filtered at once")
        with self._lock:
            self._pending["pids"] = tuple(pids)

    def set_event(self, event: str) -> None:
        if event not in EVENTS:
            raise SourceError(f"unknown event '{event}'")
        with self._lock:
            self._pending["event"] = event

    def set_frequency(self, hz: int) -> None:
        with self._lock:
            self._pending["frequency"] = hz

    def set_stack_mode(self, mode: str) -> None:
        if mode not in STACK_MODES:
            raise SourceError(f"unknown stack mode '{mode}'")
        with self._lock:
            self._pending["stacks"] = mode

    def _apply_pending(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        if "pids" in pending:
            self._apply_pid_filter(pending["pids"])
        if "stacks" in pending:
            self._apply_stack_mode(pending["stacks"])
        if "event" in pending or "frequency" in pending:
            event = EVENTS[pending.get("event", self._event.name)]
            hz = pending.get("frequency", self._frequency)
            try:
                self._attach(event, hz)
            except EventUnavailable as error:
                self._notices.append(f"{error}; staying on {self._event.name}")
            else:
                self._event, self._frequency = event, hz

    def next_interval(self) -> Interval | None:
        interval = self._config.interval_s
        if self._first_interval and self._config.first_interval_s is not None:
            interval = min(interval, self._config.first_interval_s)
        deadline = self._last_drain + interval
        if self._closed.wait(max(0.0, deadline - time.monotonic())):
            return None
        return self.drain()

    def interrupt(self) -> None:
        self._closed.set()

    def close(self) -> None:
        self._closed.set()
        self._release()

    def _release(self) -> None:
        for fd in self._perf_fds:
            lib.bpf_close_perf_event_fd(fd)
        self._perf_fds = []
        user = getattr(self, "_user", None)
        if user is not None:
            user.close()
        bpf = getattr(self, "_bpf", None)
        if bpf is not None:
            with captured_fds():
                bpf.cleanup()
            self._bpf = None

    # -- one interval ----------------------------------------------------------------------------

    def drain(self) -> Interval:
        """Read and reset everything the kernel counted since the last drain."""
        now = time.monotonic()
        interval = now - self._last_drain
        self._last_drain = now
        self._first_interval = False
        started = (time.perf_counter(), time.thread_time())
        # What the drained interval was sampled with; changes apply from this instant, just
        # before the drain, so the next interval is sampled wholly with the new settings.
        event, frequency, stack_mode, pids = (
            self._event,
            self._frequency,
            self._stack_mode,
            self._pids,
        )
        self._apply_pending()
        entries = self._drain_counts()
        lost = self._lost_delta()
        stack_ids = {entry.kernel_stack_id for entry in entries} | {
            entry.user_stack_id for entry in entries
        }
        stack_ips = self._read_stacks(stack_ids, lost)
        stacks = tuple(self._symbolize(entries, stack_ips, lost))
        infos = self._details.lookup({stack.pid for stack in stacks})
        self._user.evict_exited()
        self._kernel_chains.age()  # keeps what this interval and the last one used
        cpus = self._cpu_delta()
        notices, self._notices = tuple(self._notices), []
        if now - self._last_trim >= TRIM_EVERY_S:
            # Medium blocks (dict tables, /proc reads) fragment the heap a little each interval;
            # freed pages inside it go back (the soak's RSS crept 173 KiB/min without this).
            self._last_trim = now
            release_free_memory()
        return Interval(
            timestamp=time.time(),
            interval_s=interval,
            event=event.name,
            frequency_hz=frequency,
            lost=lost,
            cpus=cpus,
            stacks=stacks,
            processes=infos,
            stack_mode=stack_mode,
            pid_filter=pids,
            headers=self.headers.description if self.headers else "",
            notices=notices,
            cost=self._cost(interval, len(entries), len(self._stack_cache), started),
        )

    def _drain_counts(self) -> list[CountEntry]:
        if self._drain_mode == "batch":
            try:
                return self._drain_batch()
            except OSError as error:
                if error.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
                    raise
                self._drain_mode = "per-key"
        return self._drain_per_key()

    def _drain_batch(self) -> list[CountEntry]:
        """BPF_MAP_LOOKUP_AND_DELETE_BATCH: every entry read and removed atomically per bucket,
        so a sample landing during the drain is either in this interval or the next, never lost."""
        maps = self._maps
        key_size, value_size = ct.sizeof(maps.counts.Key), ct.sizeof(maps.counts.Leaf)
        in_token, out_token = ct.c_uint32(0), ct.c_uint32(0)
        total = 0
        while total < maps.capacity:
            count = ct.c_uint32(maps.capacity - total)
            result = lib.bpf_lookup_and_delete_batch(
                maps.counts.map_fd,
                ct.byref(in_token) if total else None,
                ct.byref(out_token),
                ct.byref(maps.keys, key_size * total),
                ct.byref(maps.values, value_size * total),
                ct.byref(count),
            )
            code = ct.get_errno()
            total += count.value
            if result != 0:
                if code == errno.ENOENT:
                    break  # reached the end of the map
                raise OSError(code, os.strerror(code))
            in_token.value = out_token.value
        # Views into the buffers: consumed before the next drain overwrites them.
        # Unpacked in C from the raw buffers: ctypes structs per entry cost ~10 µs each.
        keys = memoryview(maps.keys).cast("B")[: total * KEY_FORMAT.size]
        values = memoryview(maps.values).cast("B")[: total * VALUE_FORMAT.size]
        return [
            CountEntry(*key, *value)
            for key, value in zip(
                KEY_FORMAT.iter_unpack(keys), VALUE_FORMAT.iter_unpack(values), strict=True
            )
        ]

    def _drain_per_key(self) -> list[CountEntry]:
        """Fallback for kernels without batch ops: BPF_MAP_LOOKUP_AND_DELETE_ELEM per key
        (atomic per key, kernel 5.14+), else lookup then delete (a sample landing between the
        two for the same key is lost; such kernels also lack the batch call)."""
        counts = self._maps.counts
        drained = []
        for key in list(counts.keys()):
            value = counts.Leaf()
            if self._drain_mode == "per-key":
                if lib.bpf_lookup_and_delete(counts.map_fd, ct.byref(key), ct.byref(value)) == 0:
                    drained.append(_entry(key, value))
                    continue
                if ct.get_errno() == errno.ENOENT:
                    continue
                self._drain_mode = "lookup-then-delete"
            try:
                value = counts[key]
                del counts[key]
            except KeyError:
                continue
            drained.append(_entry(key, value))
        return drained

    def _read_stacks(self, stack_ids: set[int], lost: dict[str, int]) -> dict[int, tuple[int, ...]]:
        """The addresses behind each stack id.

        An id keeps its stack until it is deleted (without BPF_F_REUSE_STACKID a different
        stack in a taken bucket gets -EEXIST), so ids read once are cached and a recurring
        stack costs no syscall. Only ids used in this interval and the last stay in the map
        (at most half of it); the rest are deleted from the map and the cache. The share of
        the map taken is the chance that a new stack collides (-EEXIST: its sample loses that
        stack), and a one-off stack (a leaf caught at a new instruction) kept for another
        interval only takes room: keeping every id of two intervals lost 25% of samples' user
        stacks to collisions at 999 Hz over 3,000 chains in a 4k map, keeping recurring ones
        14%. Recurring stacks are read twice, then cached: the per-interval cost follows the
        stacks that are new (emptying the whole map re-read every hot stack each interval:
        18.5 µs a stack at 45k stacks against 10.2 at 1.5k). An id is its hash bucket, so a
        deleted stack that comes back gets its old id. A sample that took an id just before
        its deletion finds it among the retired ones.
        """
        maps = self._maps
        buffer = maps.stack_buffer
        fd, lookup = maps.stacks.map_fd, lib.bpf_lookup_elem
        cache, retired = self._stack_cache, self._retired_stacks
        stacks: dict[int, tuple[int, ...]] = {}
        for stack_id in stack_ids:
            if stack_id < 0:
                continue
            ips = cache.get(stack_id)
            if ips is None:
                key = ct.c_int(stack_id)
                if lookup(fd, ct.byref(key), buffer) == 0:
                    ips = cache[stack_id] = _zero_terminated(buffer)
                elif stack_id in retired:
                    ips = retired[stack_id]
                else:
                    lost["stack_read_failed"] = lost.get("stack_read_failed", 0) + 1
                    continue
            stacks[stack_id] = ips
        used = stacks.keys()
        keep = used & self._stacks_used_last
        room = self._config.stack_entries // 2
        if len(keep) > room:
            keep = set(itertools.islice(keep, room))
        cold = cache.keys() - keep
        delete = lib.bpf_delete_elem
        for stack_id in cold:
            delete(fd, ct.byref(ct.c_int(stack_id)))
        self._retired_stacks = {stack_id: cache.pop(stack_id) for stack_id in cold}
        self._stacks_used_last = set(used)
        return stacks

    def _is_kernel_thread(self, pid: int) -> bool:
        known = self._kernel_thread.get(pid)
        if known is None:
            from perftop.system.processes import is_kernel_thread

            if len(self._kernel_thread) > 4096:  # under fork churn every PID is new
                self._kernel_thread.clear()
            known = self._kernel_thread[pid] = is_kernel_thread(pid)
        return known

    def _symbolize(
        self,
        entries: list[CountEntry],
        stack_ips: Mapping[int, tuple[int, ...]],
        lost: dict[str, int],
    ) -> list[StackSample]:
        comms: dict[bytes, str] = {}
        # Two stack ids can symbolize alike (two addresses in one function): merged here.
        merged: dict[tuple[int, int, str, tuple[Frame, ...]], list[int]] = {}
        for pid, tid, kernel_id, user_id, raw_comm, count, period in entries:
            frames: tuple[Frame, ...] = ()
            if user_id >= 0 and user_id in stack_ips:
                frames = self._user.chain(pid, stack_ips[user_id])
            elif user_id == -errno.EFAULT and not self._is_kernel_thread(pid):
                lost["user_stack_missing"] = lost.get("user_stack_missing", 0) + count
            if kernel_id >= 0 and kernel_id in stack_ips:
                frames += self._kernel_chain(stack_ips[kernel_id])
            comm = comms.get(raw_comm)
            if comm is None:
                comm = comms[raw_comm] = decode(raw_comm)
            totals = merged.get((pid, tid, comm, frames))
            if totals is None:
                merged[(pid, tid, comm, frames)] = [count, period]
            else:
                totals[0] += count
                totals[1] += period
        return [StackSample(*key, *totals) for key, totals in merged.items()]

    def _kernel_chain(self, addresses: tuple[int, ...]) -> tuple[Frame, ...]:
        # Keyed by the addresses' hash, not the addresses: the tuple can go with the stack id
        # cache (as UserSymbols does; a 64-bit collision among this many chains is ~1e-10).
        key = hash(addresses)
        frames = self._kernel_chains.get(key)
        if frames is None:
            frames = tuple(self._kernel.frame(address) for address in reversed(addresses))
            self._kernel_chains.put(key, frames)
        return frames

    # -- counters --------------------------------------------------------------------------------

    def _read_cpu_totals(self) -> dict[int, tuple[int, int]]:
        per_cpu = self._maps.cpu_totals[ct.c_int(0)]
        return {
            cpu: (per_cpu[cpu].samples, per_cpu[cpu].idle_samples) for cpu in range(len(per_cpu))
        }

    def _cpu_delta(self) -> tuple[CpuStat, ...]:
        current = self._read_cpu_totals()
        previous, self._last_cpu_totals = self._last_cpu_totals, current
        online = set(online_cpus())
        return tuple(
            CpuStat(cpu, busy - previous.get(cpu, (0, 0))[0], idle - previous.get(cpu, (0, 0))[1])
            for cpu, (busy, idle) in sorted(current.items())
            if cpu in online
        )

    def _read_lost(self) -> list[int]:
        table = self._maps.lost
        return [sum(table[ct.c_int(slot)]) for slot in range(len(LOST_NAMES))]

    def _lost_delta(self) -> dict[str, int]:
        current = self._read_lost()
        previous, self._last_lost = self._last_lost, current
        return {
            name: now - before
            for name, now, before in zip(LOST_NAMES, current, previous, strict=True)
        }

    def _own_cpu_time(self) -> float:
        times = self._self_process.cpu_times()
        return float(times.user + times.system)

    def _read_bpf_stats(self) -> tuple[int, int] | None:
        """run_time_ns and run_cnt of the program, which the kernel reports only while
        kernel.bpf_stats_enabled is 1."""
        try:
            text = Path(f"/proc/self/fdinfo/{self._prog_fd}").read_text()
        except OSError:
            return None
        fields = dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)
        try:
            return int(fields["run_time_ns"]), int(fields["run_cnt"])
        except (KeyError, ValueError):
            return None

    def _cost(
        self, interval: float, counts_used: int, stacks_used: int, started: tuple[float, float]
    ) -> SamplerCost:
        cpu_time = self._own_cpu_time()
        cpu_percent = 100.0 * (cpu_time - self._last_cpu_time) / interval if interval > 0 else 0.0
        self._last_cpu_time = cpu_time
        stats = self._read_bpf_stats()
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
            counts_map_used=counts_used,
            counts_map_size=self._config.counts_entries,
            stack_map_used=stacks_used,
            stack_map_size=self._config.stack_entries,
            drain_ms=1000.0 * (time.perf_counter() - started[0]),
            drain_cpu_ms=1000.0 * (time.thread_time() - started[1]),
        )
