"""Unwind tables for the BPF program: which binaries' tables are in `unwind_rows`, and which
address ranges of which process use them (`unwind_mappings`).

A process is registered the first time it is sampled (or when perftop is filtered to it): one
trie entry covering the whole process says "walk it with tables", and the ranges of mappings
whose tables are already in the kernel are added. Tables are built only for binaries that are
on sampled stacks: when the walk meets an address of a registered process that no table covers,
the program records it in `unwind_misses` (and takes a frame-pointer step); every quarter
second a background thread loads the table of the mapping holding each missed address
(perftop.unwind: built from `.eh_frame` once per build id, then read from perftop's cache),
uploads it in one batch, and adds that mapping's ranges (only those: the process's other
entries are in already). A chain through four libraries is whole after about as many rounds. A
miss outside every known mapping re-reads the process's maps, so a library loaded with dlopen
gets its table as soon as it is sampled; exited processes are removed. Where no table can exist
(JIT code) the frame-pointer step is what the walk does.

What is known of a file is kept by its identity, for every process that maps it: its rows, its
PT_LOAD segments (a process's load bias comes from them and its mapping, with no file opened),
and the vDSO's by its content, which every process shares (built once, not once a process).

Rows are shared by every process that maps the same file, and are never moved: the array is
filled from the start, and when it is full new binaries go without tables (said once, in the
notices). Memory is the array's, fixed when the program loads.
"""

from __future__ import annotations

import ctypes as ct
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from perftop.sampling.bcc.abi import MappingKey, MappingValue
from perftop.sampling.bcc.program import Maps, lib
from perftop.system.procfs import process_start_time
from perftop.unwind.cache import load_unwind_info
from perftop.unwind.eh_frame import read_call_frame_info
from perftop.unwind.elf import ElfError, LoadSegment, open_elf, parse_elf
from perftop.unwind.table import ROW_SIZE, build_table
from perftop.unwind.walk import VDSO, ExecutableMapping, executable_mappings, segments_bias

RECHECK_S = 1.0  # how often a registered process's mappings are compared again
MAX_PENDING = 256  # processes waiting to be registered; more wait for a later interval
# The trie's whole-process entry: any address of a registered process without a table of its
# own matches it, and the program takes a frame-pointer step there.
PROCESS_PREFIX = 32
ADDRESS_BITS = 64

FileKey = tuple[int, int, int]  # (st_dev, st_ino, st_mtime_ns) of the mapped file


@dataclass(frozen=True, slots=True)
class LoadedTable:
    row_start: int
    row_count: int


@dataclass(slots=True)
class _Process:
    start_time: int | None
    maps: str
    keys: list[bytes] = field(default_factory=list)  # trie keys inserted, to delete them
    checked: float = 0.0
    needed: set[str] = field(default_factory=set)  # mapped files its stacks went through


def _read_maps(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return None


def _holder(mappings: list[ExecutableMapping], address: int) -> ExecutableMapping | None:
    return next((m for m in mappings if m.start <= address < m.end), None)


def range_prefixes(start: int, end: int) -> list[tuple[int, int]]:
    """[start, end) as aligned power-of-two blocks: (block start, prefix length in bits)."""
    blocks = []
    while start < end:
        size = start & -start if start else 1 << ADDRESS_BITS
        while size > end - start:
            size >>= 1
        blocks.append((start, ADDRESS_BITS - size.bit_length() + 1))
        start += size
    return blocks


def mapping_key(tgid: int, address: int, prefix_bits: int) -> MappingKey:
    big_endian = int.from_bytes(address.to_bytes(8, "big"), "little")
    return MappingKey(prefixlen=PROCESS_PREFIX + prefix_bits, tgid=tgid, address=big_endian)


class UnwindTables:
    """Registers processes' tables in the kernel from a background thread."""

    def __init__(self, maps: Maps, rows_capacity: int) -> None:
        self._rows = maps.unwind_rows
        self._trie = maps.unwind_mappings
        self._capacity = rows_capacity
        self._next_row = 0
        self._tables: dict[FileKey, LoadedTable | None] = {}
        self._segments: dict[FileKey, tuple[LoadSegment, ...]] = {}
        # The vDSO's image (its content) -> its PT_LOAD segments and its rows
        self._vdso: dict[bytes, tuple[tuple[LoadSegment, ...], LoadedTable | None]] = {}
        self._processes: dict[int, _Process] = {}
        self._lock = threading.Lock()  # _processes and the notices, shared with the thread
        self._misses = maps.unwind_misses
        self._queue: queue.Queue[tuple[int, int | None] | None] = queue.Queue()
        self._pending: set[int] = set()
        self._notices: list[str] = []
        self._full_said = False
        self.build_seconds = 0.0  # spent loading tables (building or reading the cache)
        self._thread = threading.Thread(target=self._run, name="perftop-unwind", daemon=True)
        self._thread.start()

    # -- from the sampler thread -------------------------------------------------------------

    def observe(self, pids: Iterable[int]) -> None:
        """Queue the processes of an interval that are not registered, and those due for a
        look at their mappings."""
        now = time.monotonic()
        with self._lock:
            for pid in pids:
                if pid <= 0 or pid in self._pending or len(self._pending) >= MAX_PENDING:
                    continue
                known = self._processes.get(pid)
                if known is not None and now - known.checked < RECHECK_S:
                    continue
                self._pending.add(pid)
                self._queue.put((pid, None))

    def take_misses(self) -> None:
        """Queue the table for each address the walk found without one (on the sampler thread,
        between drains: the map is small and emptied each time)."""
        table = self._misses
        fd = table.map_fd
        address = ct.c_uint64()
        for key in list(table.keys()):
            found = lib.bpf_lookup_elem(fd, ct.byref(key), ct.byref(address)) == 0
            lib.bpf_delete_elem(fd, ct.byref(key))
            with self._lock:
                if not found or key.tgid not in self._processes:
                    continue
                if len(self._pending) >= MAX_PENDING:
                    continue
                self._pending.add(key.tgid)
            self._queue.put((key.tgid, address.value))

    def forget_exited(self, start_time: Callable[[int], int | None] = process_start_time) -> None:
        with self._lock:
            registered = list(self._processes.items())
        # Read outside the lock: the registering thread must not wait on /proc reads.
        gone = [pid for pid, process in registered if start_time(pid) != process.start_time]
        for pid in gone:
            self._unregister(pid)

    def notices(self) -> list[str]:
        with self._lock:
            notices, self._notices = self._notices, []
        return notices

    @property
    def rows_used(self) -> int:
        return self._next_row

    @property
    def rows_capacity(self) -> int:
        return self._capacity

    @property
    def registered(self) -> set[int]:
        with self._lock:
            return set(self._processes)

    def wait_idle(self, timeout: float) -> bool:
        """For tests and start-up: True once every queued process is registered."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._pending:
                    return True
            time.sleep(0.01)
        return False

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=2.0)

    # -- the background thread ---------------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            pid, missed = item
            try:
                self._register(pid, missed)
            except Exception as error:  # a process that lies or vanishes must not end the thread
                with self._lock:
                    self._notices.append(f"unwind tables for pid {pid}: {error}")
            finally:
                with self._lock:
                    self._pending.discard(pid)

    def _register(self, pid: int, missed: int | None = None) -> None:
        """(Re)write the process's trie entries: the whole process, and each mapping whose
        table is loaded or is wanted (it holds `missed`, or the process's stacks went through
        it before)."""
        maps_text = _read_maps(pid)
        if maps_text is None:
            return
        with self._lock:
            known = self._processes.get(pid)
        if known is not None and known.maps == maps_text:
            # Its mappings are as registered (addresses and inodes alike): so are its entries,
            # whatever process has the pid now (forget_exited compares start times), and
            # /proc/PID/stat (slow for a process of many threads) need not be read.
            if missed is None:
                known.checked = time.monotonic()
                return
            mappings = executable_mappings(maps_text)
            holder = _holder(mappings, missed)
            if holder is not None and holder.path not in known.needed:
                # The process's other entries are in: this file's ranges are all to write.
                self._add_file(pid, known, holder.path, mappings)
            return  # (or an address in no mapping, or in a gap of a table that is in)
        start_time = process_start_time(pid)
        maps_text = _read_maps(pid)  # read after the start time: both of the same process
        if maps_text is None:
            return
        now = time.monotonic()
        mappings = executable_mappings(maps_text)
        if known is not None and known.start_time != start_time:
            known = None  # another process under a reused pid
        needed = set(known.needed) if known is not None else set()
        if missed is not None:
            holder = _holder(mappings, missed)
            if holder is None:
                return  # an address in no mapping: a frame-pointer step into garbage
            needed.add(holder.path)
        entries: list[tuple[MappingKey, MappingValue]] = [
            # The whole process: frame pointers, and a miss where it is not covered.
            (mapping_key(pid, 0, 0), MappingValue(0, 0, 0, 0, 0))
        ]
        for mapping in mappings:
            if mapping.path not in needed and not self._loaded(pid, mapping):
                continue
            entries += self._entries(pid, mapping)
        keys = self._write(entries)
        new_keys = set(keys)
        fd = self._trie.map_fd
        with self._lock:
            old = self._processes.get(pid)
            self._processes[pid] = _Process(start_time, maps_text, keys, now, needed)
        if old is not None:
            for raw in old.keys:
                if raw not in new_keys:  # a range unmapped since
                    stale = MappingKey.from_buffer_copy(raw)
                    lib.bpf_delete_elem(fd, ct.byref(stale))

    def _add_file(
        self, pid: int, known: _Process, path: str, mappings: list[ExecutableMapping]
    ) -> None:
        """Add the ranges of the file at `path` to a registered process's entries."""
        entries = []
        for mapping in mappings:
            if mapping.path == path:
                entries += self._entries(pid, mapping)
        keys = self._write(entries)
        with self._lock:
            registered = self._processes.get(pid) is known
            if registered:
                known.keys += keys
                known.needed.add(path)
        if not registered:  # unregistered meanwhile (it exited): take the entries back out
            for raw in keys:
                lib.bpf_delete_elem(self._trie.map_fd, ct.byref(MappingKey.from_buffer_copy(raw)))

    def _entries(
        self, pid: int, mapping: ExecutableMapping
    ) -> list[tuple[MappingKey, MappingValue]]:
        """The trie entries that walk `mapping` with its file's table (none when it has none)."""
        located = self._mapping_table(pid, mapping)
        if located is None:
            return []
        bias, table = located
        value = MappingValue(bias, mapping.start, mapping.end, table.row_start, table.row_count)
        return [
            (mapping_key(pid, block, bits), value)
            for block, bits in range_prefixes(mapping.start, mapping.end)
        ]

    def _write(self, entries: list[tuple[MappingKey, MappingValue]]) -> list[bytes]:
        """Put `entries` in the trie; the keys of those that went in."""
        keys = []
        fd = self._trie.map_fd
        for key, value in entries:
            if lib.bpf_update_elem(fd, ct.byref(key), ct.byref(value), 0) == 0:
                keys.append(bytes(key))
        return keys

    def _loaded(self, pid: int, mapping: ExecutableMapping) -> bool:
        """Whether the mapping's table is in the kernel already (another process mapped it)."""
        if mapping.path == VDSO:
            return bool(self._vdso)
        try:
            status = os.stat(f"/proc/{pid}/root{mapping.path}")
        except OSError:
            return False
        return self._tables.get((status.st_dev, status.st_ino, status.st_mtime_ns)) is not None

    def _mapping_table(
        self, pid: int, mapping: ExecutableMapping
    ) -> tuple[int, LoadedTable] | None:
        path = mapping.path
        if path == VDSO:
            return self._vdso_table(pid, mapping)
        file_path = Path(f"/proc/{pid}/root{path}")
        try:
            status = os.stat(file_path)
        except OSError:
            return None
        key = (status.st_dev, status.st_ino, status.st_mtime_ns)
        segments = self._segments.get(key)
        if segments is None:
            try:
                image = open_elf(file_path)
            except (OSError, ElfError):
                return None
            try:
                segments = self._segments[key] = image.segments
            finally:
                image.close()
        bias = segments_bias(segments, mapping)
        if bias is None:
            return None
        if key not in self._tables:
            started = time.perf_counter()
            try:
                info = load_unwind_info(file_path)
            except (OSError, ElfError):
                self._tables[key] = None
            else:
                self._tables[key] = self._upload(info.table.packed)
            self.build_seconds += time.perf_counter() - started
        table = self._tables[key]
        return (bias, table) if table is not None else None

    def _vdso_table(self, pid: int, mapping: ExecutableMapping) -> tuple[int, LoadedTable] | None:
        """The vDSO has no file: its image (8 KB here) is read from the process's memory, and
        its table built the first time that image is seen. One vDSO per kernel: processes share
        its rows as they share a file's."""
        try:
            with open(f"/proc/{pid}/mem", "rb", buffering=0) as memory:
                content = os.pread(memory.fileno(), mapping.end - mapping.start, mapping.start)
        except OSError:
            return None
        known = self._vdso.get(content)
        if known is None:
            try:
                image = parse_elf(Path(VDSO), content)
                built = build_table(read_call_frame_info(image), image.is_executable_address)
            except (OSError, ElfError):
                return None
            known = self._vdso[content] = (image.segments, self._upload(built.table.packed))
        segments, table = known
        bias = segments_bias(segments, mapping)
        return (bias, table) if bias is not None and table is not None else None

    def _upload(self, packed: bytes) -> LoadedTable | None:
        count = len(packed) // ROW_SIZE
        if count == 0:
            return None
        if self._next_row + count > self._capacity:
            if not self._full_said:
                self._full_said = True
                with self._lock:
                    self._notices.append(
                        f"unwind tables full ({self._capacity} rows): binaries seen from now "
                        "on are walked by frame pointers"
                    )
            return None
        start = self._next_row
        keys = (ct.c_uint32 * count)(*range(start, start + count))
        values = ct.create_string_buffer(packed, len(packed))
        done = ct.c_uint32(count)
        if lib.bpf_update_batch(self._rows.map_fd, ct.byref(keys), values, ct.byref(done)) != 0:
            error = ct.get_errno()
            with self._lock:
                self._notices.append(f"unwind tables not loaded: {os.strerror(error)}")
            return None
        self._next_row += count
        return LoadedTable(start, count)

    def _unregister(self, pid: int) -> None:
        with self._lock:
            process = self._processes.pop(pid, None)
        if process is None:
            return
        fd = self._trie.map_fd
        for raw in process.keys:
            key = MappingKey.from_buffer_copy(raw)
            lib.bpf_delete_elem(fd, ct.byref(key))
