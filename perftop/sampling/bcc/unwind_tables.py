"""Unwind tables for the BPF program: which binaries' tables are in `unwind_rows`, and which
address ranges of which process use them (`unwind_mappings`).

A process is registered the first time it is sampled (or when perftop is filtered to it): a
background thread reads its executable mappings, loads each file's table (perftop.unwind: built
from `.eh_frame` once per build id, then read from perftop's cache), uploads tables not in the
kernel yet in one batch each, and inserts the process's ranges into the trie. Until then, and
for any address without a table (JIT code, a table that did not fit), the program walks frame
pointers. A registered process's mappings are compared again every `RECHECK_S`, so a library
loaded with dlopen is unwound within about that long; exited processes are removed.

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
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from perftop.sampling.bcc.abi import MappingKey, MappingValue
from perftop.sampling.bcc.program import Maps, lib
from perftop.system.procfs import process_start_time
from perftop.unwind.cache import load_unwind_info
from perftop.unwind.elf import ElfError, open_elf
from perftop.unwind.table import ROW_SIZE
from perftop.unwind.walk import (
    VDSO,
    ExecutableMapping,
    executable_mappings,
    load_bias,
    vdso_table,
)

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
        self._vdso: dict[int, LoadedTable | None] = {}  # by the hash of its rows
        self._processes: dict[int, _Process] = {}
        self._lock = threading.Lock()  # _processes and the notices, shared with the thread
        self._queue: queue.Queue[int | None] = queue.Queue()
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
                self._queue.put(pid)

    def forget_exited(self) -> None:
        with self._lock:
            gone = [
                pid
                for pid, process in self._processes.items()
                if process_start_time(pid) != process.start_time
            ]
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
            pid = self._queue.get()
            if pid is None:
                return
            try:
                self._register(pid)
            except Exception as error:  # a process that lies or vanishes must not end the thread
                with self._lock:
                    self._notices.append(f"unwind tables for pid {pid}: {error}")
            finally:
                with self._lock:
                    self._pending.discard(pid)

    def _register(self, pid: int) -> None:
        start_time = process_start_time(pid)
        try:
            maps_text = Path(f"/proc/{pid}/maps").read_text()
        except OSError:
            return
        now = time.monotonic()
        with self._lock:
            known = self._processes.get(pid)
            if known is not None and known.maps == maps_text and known.start_time == start_time:
                known.checked = now
                return
        entries: list[tuple[MappingKey, MappingValue]] = [
            (mapping_key(pid, 0, 0), MappingValue(0, 0, 0))  # the whole process: frame pointers
        ]
        for mapping in executable_mappings(maps_text):
            located = self._mapping_table(pid, mapping)
            if located is None:
                continue
            bias, table = located
            value = MappingValue(bias, table.row_start, table.row_count)
            for block, bits in range_prefixes(mapping.start, mapping.end):
                entries.append((mapping_key(pid, block, bits), value))
        keys = []
        fd = self._trie.map_fd
        for key, value in entries:
            if lib.bpf_update_elem(fd, ct.byref(key), ct.byref(value), 0) == 0:
                keys.append(bytes(key))
        new_keys = set(keys)
        with self._lock:
            old = self._processes.get(pid)
            self._processes[pid] = _Process(start_time, maps_text, keys, now)
        if old is not None:
            for raw in old.keys:
                if raw not in new_keys:  # a range unmapped since
                    stale = MappingKey.from_buffer_copy(raw)
                    lib.bpf_delete_elem(fd, ct.byref(stale))

    def _mapping_table(
        self, pid: int, mapping: ExecutableMapping
    ) -> tuple[int, LoadedTable] | None:
        path = mapping.path
        if path == VDSO:
            mapped = vdso_table(pid, mapping)
            if mapped is None:
                return None
            # One vDSO per kernel: processes share its rows as they share a file's.
            content = hash(mapped.table.packed)
            if content not in self._vdso:
                self._vdso[content] = self._upload(mapped.table.packed)
            table = self._vdso[content]
            return (mapped.load_bias, table) if table is not None else None
        file_path = Path(f"/proc/{pid}/root{path}")
        try:
            status = os.stat(file_path)
            image = open_elf(file_path)
        except (OSError, ElfError):
            return None
        try:
            bias = load_bias(image, mapping)
        finally:
            image.close()
        if bias is None:
            return None
        key = (status.st_dev, status.st_ino, status.st_mtime_ns)
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
