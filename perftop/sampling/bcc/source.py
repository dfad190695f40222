"""The live source: perftop's BPF program through BCC. Only perftop.sampling.bcc imports `bcc`.

BCC 0.26 traps avoided here, each checked in its source:
- `attach_perf_event` leaks the fds of CPUs already attached when a later CPU fails: perftop
  opens one perf event per CPU itself and closes them all on any failure (program.py).
- `StackTrace.clear()` does nothing: perftop deletes the stack ids no sample used in the last
  two intervals, so the stack map holds the working set (drain.StackIds).
- `BPF.sym()` keeps a symbol cache per pid forever, and libbcc opens /tmp/perf-PID.map with no
  ownership or symlink check: perftop reads user symbols itself (perftop.symbols.process),
  with bounded caches that forget exited processes.
- libbcc prints to fds 1 and 2: compile and attach run inside `captured_fds()`.
- `items_lookup_and_delete_batch` passes one integer as both batch token and count; perftop calls
  the batch syscall itself with separate ones and preallocated buffers (drain.CountsDrain).
- `table.increment()` is a lookup and a plain add, not atomic across CPUs, and on a new key a
  lookup, an update and a lookup again: the program's counts are keyed by thread (current on
  one CPU at a time), so its plain adds lose nothing, and a new key is inserted with its first
  sample in it (count_sample).
- The program is compiled against kernel headers, where `current` is a macro (get_current()):
  a C variable of that name fails the compile with "conflicting types for 'get_current'".

One interval, as plainly as BCC's tools/profile.py reads: flip the generation (the program now
counts into the other half of its maps), wait out the programs still running, read and reset
the old half (counts, per-CPU totals, lost counters: one instant), read the stacks, symbolize.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from perftop.config import SamplerConfig
from perftop.model.events import EVENTS, Event
from perftop.model.modes import StackMode
from perftop.model.samples import Interval
from perftop.profile.leaf_offsets import HistogramBuilder
from perftop.sampling.bcc.abi import MAX_CGROUPS, MAX_PIDS, STACK_BITS
from perftop.sampling.bcc.cost import CostMeter, MapUse
from perftop.sampling.bcc.drain import (
    CGROUP_ID,
    KERNEL_STACK_ID,
    NATIVE_STACK,
    TGID,
    USER_STACK_ID,
    CountsDrain,
    NativeStacks,
    StackIds,
    take_counters,
)
from perftop.sampling.bcc.program import (
    Program,
    bcc_available,
    enable_debuginfod,
    prepare_headers,
    probe_event,
)
from perftop.sampling.cgroups import CgroupCatalog
from perftop.sampling.source import EventUnavailable, SourceError
from perftop.system.memory import freeze_long_lived_objects, release_free_memory
from perftop.system.processes import ProcessDetails
from perftop.system.procfs import StartTimes, online_cpus

if TYPE_CHECKING:
    from perftop.sampling.bcc.drain import CountEntry
    from perftop.sampling.bcc.symbolize import Symbolizer

# How often freed heap pages go back (malloc_trim: median 0.6 ms, max 6 ms). Every 30 s, the
# RSS swung ~3 MB in a 30 s sawtooth, which hid its trend in the soak (108 KiB/min one run);
# each interval costs ~0.6 ms a second and keeps RSS at what is in use.
TRIM_EVERY_S = 1.0
# How often new Python stacks are read and named between drains: a process that lives less
# than an interval is named before it exits.
PREFETCH_EVERY_S = 0.25


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
        self._event = EVENTS[config.event]
        self._frequency = config.frequency_hz
        self._stack_mode = config.stack_mode
        self._python = config.python_frames
        self._pids: tuple[int, ...] = ()
        self._cgroup_filter: tuple[str, ...] = ()
        self._cgroups = CgroupCatalog()
        self._event_status: dict[str, str | None] = {}
        self.headers = prepare_headers()
        self._program = Program(config)
        try:
            self._apply_stack_mode(config.stack_mode)
            self._python_walk_on: bool | None = None  # as last written to the program
            self._program.set_unwind(self._program.tables)
            self._apply_pid_filter(config.pids)
            self._apply_cgroup_filter(config.cgroups)
            self._counts = CountsDrain(self._program.maps)
            self._stack_ids = StackIds(self._program.maps, config.stack_entries)
            # Imported after the compile: see Symbolizer.
            from perftop.sampling.bcc import symbolize
            from perftop.sampling.bcc.python_frames import PythonFrames
            from perftop.sampling.bcc.unwind_tables import UnwindTables

            self._native_stacks = NativeStacks(self._program.maps)
            self._unwind: UnwindTables | None = None
            if self._program.unwind_problem is not None:
                self._notices.append(
                    "user stacks by frame pointers: the kernel refused the table walker "
                    f"({self._program.unwind_problem[:160]})"
                )
            if self._program.tables:
                self._unwind = UnwindTables(self._program.maps, config.unwind_rows)
                # The filtered pids at once; others when first sampled (building a table can
                # take a second of pure Python: only for binaries that are sampled).
                self._unwind.observe(config.pids)

            # One /proc/PID/stat read per pid per drain, however many parts ask.
            self._start_times = StartTimes()
            self._python_frames = PythonFrames(self._program.maps, start_time=self._start_times)
            if config.python_frames:
                # The filtered pids at once, so their first interval has Python frames; any
                # other process is classified when it is first sampled (at the first drain:
                # the screen's first interval is a quarter second).
                self._python_frames.observe(config.pids)
            self._sync_python_walk()
            self._symbols: Symbolizer = symbolize.Symbolizer(
                self._python_frames, start_time=self._start_times
            )
            notice = self._symbols.notice()
            if notice:
                # Said once, in words, wherever the output goes (the frames carry the reason too).
                self._notices.append(notice)
            self._details = ProcessDetails()
            freeze_long_lived_objects()
            # Attached last, with every baseline read right after: the first interval's samples
            # and its length start together (kallsyms and the collection above took ~0.1-0.2 s,
            # and a quarter-second first interval counted them as its own: 324 samples/s at
            # 99 Hz x 2). The counters start at zero in the maps, so they need no baseline.
            self._attach(self._event, self._frequency)
        except BaseException:
            self._release()
            raise
        self._cost = CostMeter(self._program.prog_fd)
        self._last_drain = time.monotonic()
        self._first_interval = True
        self._last_trim = self._last_drain

    # -- settings --------------------------------------------------------------------------------

    def _attach(self, event: Event, hz: int) -> None:
        try:
            self._program.attach(event, hz)
        except EventUnavailable as error:
            self._event_status[event.name] = str(error)
            raise

    def _apply_stack_mode(self, mode: StackMode) -> None:
        self._program.set_stack_bits(STACK_BITS[mode])
        self._stack_mode = mode

    def _apply_pid_filter(self, pids: Sequence[int]) -> None:
        self._program.set_pid_filter(pids)
        self._pids = tuple(sorted(set(pids)))
        python = getattr(self, "_python_frames", None)
        if python is not None and self._python:
            python.observe(pids)  # so the first interval of a PID filtered to has its frames
        unwind = getattr(self, "_unwind", None)
        if unwind is not None:
            unwind.observe(pids)

    def _apply_cgroup_filter(self, paths: Sequence[str]) -> None:
        if paths and self._cgroups.mount is None:
            raise SourceError(f"cannot filter by cgroup: {self._cgroups.unavailable}")
        self._program.set_cgroup_filter(self._cgroups.directories(paths))
        self._cgroup_filter = tuple(paths)

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

    def set_cgroup_filter(self, paths: Sequence[str]) -> None:
        """Count only the tasks in these cgroups (paths relative to the cgroup2 mount) or
        below them, from the next interval; () counts every task."""
        if len(paths) > MAX_CGROUPS:
            raise SourceError(f"at most {MAX_CGROUPS} cgroups can be filtered at once")
        with self._lock:
            self._pending["cgroups"] = tuple(paths)

    def set_event(self, event: str) -> None:
        if event not in EVENTS:
            raise SourceError(f"unknown event '{event}'")
        with self._lock:
            self._pending["event"] = event

    def set_frequency(self, hz: int) -> None:
        with self._lock:
            self._pending["frequency"] = hz

    def set_stack_mode(self, mode: str) -> None:
        try:
            stack_mode = StackMode(mode)
        except ValueError:
            raise SourceError(f"unknown stack mode '{mode}'") from None
        with self._lock:
            self._pending["stacks"] = stack_mode

    @property
    def unwinder(self) -> str:
        """How user stacks are walked: "table" (.eh_frame tables where a binary has them,
        frame pointers elsewhere), "fp", or "fp (table walker refused)"."""
        if self._program.tables:
            return "table"
        return "fp (table walker refused)" if self._program.unwind_problem else "fp"

    @property
    def python_frames(self) -> bool:
        return self._python

    def set_python_frames(self, walk: bool) -> None:
        with self._lock:
            self._pending["python"] = walk

    def _sync_python_walk(self) -> None:
        """Switch the program's Python walk on only while a process is registered for it:
        otherwise every sample would look its process up in python_procs for nothing."""
        frames = getattr(self, "_python_frames", None)
        walk = self._python and frames is not None and frames.any_walked
        if walk != self._python_walk_on:
            self._program.set_python(walk)
            self._python_walk_on = walk

    def _apply_pending(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        if "pids" in pending:
            self._apply_pid_filter(pending["pids"])
        if "cgroups" in pending:
            try:
                self._apply_cgroup_filter(pending["cgroups"])
            except SourceError as error:  # removed since it was checked: the filter stays
                self._notices.append(str(error))
        if "stacks" in pending:
            self._apply_stack_mode(pending["stacks"])
        if "python" in pending:
            self._python = pending["python"]
        self._sync_python_walk()
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
        while True:
            left = deadline - time.monotonic()
            if self._closed.wait(max(0.0, min(left, PREFETCH_EVERY_S))):
                return None
            if left <= PREFETCH_EVERY_S:
                return self.drain()
            if self._python:
                self._python_frames.prefetch()
            if self._unwind is not None:
                self._unwind.take_misses()

    def interrupt(self) -> None:
        self._closed.set()

    def close(self) -> None:
        self._closed.set()
        self._release()

    def _release(self) -> None:
        unwind = getattr(self, "_unwind", None)
        if unwind is not None:
            unwind.close()
        symbols = getattr(self, "_symbols", None)
        if symbols is not None:
            symbols.close()
        program = getattr(self, "_program", None)
        if program is not None:
            program.close()

    # -- one interval ----------------------------------------------------------------------------

    def drain(self) -> Interval:
        """Read and reset everything the kernel counted since the last drain."""
        started = (time.perf_counter(), time.thread_time())
        # What the drained interval was sampled with; changes apply from this instant, just
        # before the flip, so the next interval is sampled wholly with the new settings.
        event, frequency, stack_mode, python, pids, cgroup_filter = (
            self._event,
            self._frequency,
            self._stack_mode,
            self._python,
            self._pids,
            self._cgroup_filter,
        )
        self._start_times.forget()
        self._apply_pending()
        now = time.monotonic()  # the interval ends at the flip, not after the grace
        generation = self._program.flip_generation()
        interval, self._last_drain, self._first_interval = now - self._last_drain, now, False

        entries = self._counts.drain(self._program.maps.counts[generation])
        cpus, lost = take_counters(self._program.maps, generation, set(online_cpus()))
        # Read beside the flip: the cgroups' own cpu.stat deltas cover the interval's seconds.
        cgroups = self._cgroups.describe({entry[CGROUP_ID] for entry in entries}, cgroup_filter)
        stack_ips = self._stack_ids.read(_stack_ids_of(entries), lost)
        native_ips = self._native_stacks.read(
            {entry[NATIVE_STACK] for entry in entries if entry[NATIVE_STACK]}, lost
        )
        if self._unwind is not None:
            self._unwind.observe(dict.fromkeys(entry[TGID] for entry in entries))
            self._unwind.take_misses()
            self._unwind.forget_exited(self._start_times)
            self._notices += self._unwind.notices()
        leaf_offsets = HistogramBuilder()
        stacks = self._symbols.stacks(entries, stack_ips, lost, python, native_ips, leaf_offsets)
        sampled = {stack.pid for stack in stacks}
        processes = self._details.lookup(sampled)
        mappings = self._symbols.mappings(sampled)
        self._symbols.forget_unused()
        self._sync_python_walk()
        self._trim_heap(now)

        notices, self._notices = tuple(self._notices), []
        maps = MapUse(
            len(entries),
            self._config.counts_entries,
            len(self._stack_ids),
            self._config.stack_entries,
            self._unwind.rows_used if self._unwind is not None else 0,
            self._config.unwind_rows if self._unwind is not None else 0,
        )
        return Interval(
            timestamp=time.time(),
            interval_s=interval,
            event=event.name,
            frequency_hz=frequency,
            lost=lost,
            cpus=cpus,
            stacks=stacks,
            processes=processes,
            stack_mode=stack_mode,
            python_frames=python,
            unwind=self.unwinder,
            pid_filter=pids,
            headers=self.headers.description if self.headers else "",
            cgroups=cgroups,
            cgroup_filter=cgroup_filter,
            cgroups_unavailable=self._cgroups.unavailable,
            cost=self._cost.measure(interval, maps, started),
            notices=notices,
            leaf_offsets=leaf_offsets.histograms(),
            mappings=mappings,
        )

    def _trim_heap(self, now: float) -> None:
        if now - self._last_trim >= TRIM_EVERY_S:
            # Medium blocks (dict tables, /proc reads) fragment the heap a little each interval;
            # freed pages inside it go back (the soak's RSS crept 173 KiB/min without this).
            self._last_trim = now
            release_free_memory()


def _stack_ids_of(entries: Sequence[CountEntry]) -> set[int]:
    return {entry[KERNEL_STACK_ID] for entry in entries} | {
        entry[USER_STACK_ID] for entry in entries
    }
