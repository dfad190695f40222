"""Reading one generation of the program's maps and resetting it: the counts (in one of three
drain modes), the per-CPU totals and lost counters, and the stack ids the counts refer to.

Every read here is of a generation no program writes to any more (Program.flip_generation), so
each drain mode is exact and the counters agree with the counts.
"""

from __future__ import annotations

import array
import ctypes as ct
import errno
import itertools
import os
from collections.abc import Collection, Iterable
from enum import Enum
from typing import Any, Final

from perftop.model.samples import CpuStat
from perftop.sampling.bcc.abi import (
    KEY_FORMAT,
    LOST_NAMES,
    NATIVE_STACK_ENTRIES_DEFAULT,
    VALUE_FORMAT,
    NativeStack,
    lost_slot,
)
from perftop.sampling.bcc.program import Maps, lib


class DrainMode(Enum):
    """How the counts map is read and emptied; each falls back to the next where the kernel
    lacks the call."""

    BATCH = "batch"  # BPF_MAP_LOOKUP_AND_DELETE_BATCH (kernel 5.6+)
    PER_KEY = "per-key"  # BPF_MAP_LOOKUP_AND_DELETE_ELEM per key (kernel 5.14+ for hashes)
    LOOKUP_THEN_DELETE = "lookup-then-delete"


# One drained count: a plain tuple of the key's fields (KEY_FORMAT) and then the value's
# (VALUE_FORMAT), read by position (the fields below). Not a NamedTuple: CPython's cyclic
# collector untracks an exact tuple of ints and bytes at its first collection, never a
# subclass's instance, and a heavy interval drains ~38,000 of them, which every full collection
# during the drain then walked.
CountEntry = tuple[int, int, int, int, bytes, int, int, int, int, int]
TGID: Final = 0
TID: Final = 1
KERNEL_STACK_ID: Final = 2
USER_STACK_ID: Final = 3
COMM: Final = 4
PYTHON_STACK: Final = 5  # key of the thread's Python frames in python_stacks; 0: none
NATIVE_STACK: Final = 6  # key of the table-unwound user stack in native_stacks; 0: none
CGROUP_ID: Final = 7  # the task's cgroup v2 id (its directory's inode on the cgroup2 mount)
SAMPLES: Final = 8
PERIOD: Final = 9


def _entry(key: Any, value: Any) -> CountEntry:
    entry: CountEntry = KEY_FORMAT.unpack(bytes(key)) + VALUE_FORMAT.unpack(bytes(value))
    return entry


class CountsDrain:
    """Reads and empties a counts map, starting in batch mode and falling back once."""

    def __init__(self, maps: Maps) -> None:
        self._maps = maps
        self.mode = DrainMode.BATCH

    def drain(self, counts: Any) -> list[CountEntry]:
        if self.mode is DrainMode.BATCH:
            try:
                return self._drain_batch(counts)
            except OSError as error:
                if error.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
                    raise
                self.mode = DrainMode.PER_KEY
        return self._drain_per_key(counts)

    def _drain_batch(self, counts: Any) -> list[CountEntry]:
        """BPF_MAP_LOOKUP_AND_DELETE_BATCH: every entry read and removed in a few syscalls,
        into buffers allocated once. (BCC's items_lookup_and_delete_batch passes one integer
        as both batch token and count.)"""
        maps = self._maps
        key_size, value_size = ct.sizeof(counts.Key), ct.sizeof(counts.Leaf)
        in_token, out_token = ct.c_uint32(0), ct.c_uint32(0)
        total = 0
        while total < maps.capacity:
            count = ct.c_uint32(maps.capacity - total)
            result = lib.bpf_lookup_and_delete_batch(
                counts.map_fd,
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
            key + value
            for key, value in zip(
                KEY_FORMAT.iter_unpack(keys), VALUE_FORMAT.iter_unpack(values), strict=True
            )
        ]

    def _drain_per_key(self, counts: Any) -> list[CountEntry]:
        """Fallback for kernels without batch ops: BPF_MAP_LOOKUP_AND_DELETE_ELEM per key, else
        lookup then delete (exact too, since no sample writes the drained generation)."""
        drained = []
        for key in list(counts.keys()):
            value = counts.Leaf()
            if self.mode is DrainMode.PER_KEY:
                if lib.bpf_lookup_and_delete(counts.map_fd, ct.byref(key), ct.byref(value)) == 0:
                    drained.append(_entry(key, value))
                    continue
                if ct.get_errno() == errno.ENOENT:
                    continue
                self.mode = DrainMode.LOOKUP_THEN_DELETE
            try:
                value = counts[key]
                del counts[key]
            except KeyError:
                continue
            drained.append(_entry(key, value))
        return drained


def take_counters(
    maps: Maps, generation: int, online: Collection[int]
) -> tuple[tuple[CpuStat, ...], dict[str, int]]:
    """The per-CPU totals and lost counters of `generation`, reset to zero for its next turn.
    A CPU that went offline during the interval still shows if it counted samples, so the
    per-CPU samples always sum to the counts."""
    table = maps.cpu_totals
    key = ct.c_int(generation)
    per_cpu = table[key]
    cpus = tuple(
        CpuStat(cpu, totals.samples, totals.idle_samples)
        for cpu, totals in enumerate(per_cpu)
        if cpu in online or totals.samples or totals.idle_samples
    )
    table.clearitem(key)
    lost: dict[str, int] = {}
    for slot, name in enumerate(LOST_NAMES):
        key = ct.c_int(lost_slot(generation, slot))
        lost[name] = sum(maps.lost[key])
        maps.lost.clearitem(key)
    return cpus, lost


def _zero_terminated(buffer: Any) -> tuple[int, ...]:
    """The addresses of a stack map entry (innermost first, zero after the last)."""
    addresses = array.array("Q", bytes(buffer))
    try:
        return tuple(addresses[: addresses.index(0)])
    except ValueError:
        return tuple(addresses)


class StackIds:
    """The addresses behind each stack id, and which ids stay in the stack map.

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

    The stack map is not double-buffered: ids outlive intervals, and BCC's
    StackTrace.clear() does nothing, so this deletion is what keeps the map to the working set.
    """

    def __init__(self, maps: Maps, stack_entries: int) -> None:
        self._maps = maps
        self._room = stack_entries // 2
        self.cached: dict[int, tuple[int, ...]] = {}  # id -> addresses, as in the map
        self.retired: dict[int, tuple[int, ...]] = {}  # deleted at the last drain
        self._used_last: set[int] = set()

    def __len__(self) -> int:
        """Ids kept in the map after the last read."""
        return len(self.cached)

    def read(self, stack_ids: Iterable[int], lost: dict[str, int]) -> dict[int, tuple[int, ...]]:
        """The addresses of each valid id in `stack_ids`; then the ids not kept are deleted.
        An id that can be read neither from the map nor the retired ones counts in
        lost["stack_read_failed"]."""
        buffer = self._maps.stack_buffer
        fd, lookup = self._maps.stacks.map_fd, lib.bpf_lookup_elem
        cache, retired = self.cached, self.retired
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
        keep = used & self._used_last
        if len(keep) > self._room:
            keep = set(itertools.islice(keep, self._room))
        cold = cache.keys() - keep
        delete = lib.bpf_delete_elem
        for stack_id in cold:
            delete(fd, ct.byref(ct.c_int(stack_id)))
        self.retired = {stack_id: cache.pop(stack_id) for stack_id in cold}
        self._used_last = set(used)
        return stacks


class NativeStacks:
    """The table-unwound user stacks behind each key of native_stacks.

    The program stores a stack once, when its key is new (insert answers -EEXIST otherwise,
    before copying anything). A key is a hash of the stack's addresses, so a stack kept in the
    map stays right for as long as it is there: the stacks used in this interval and the last
    stay (at most half the map, as StackIds keeps stack ids), so a recurring stack costs the
    program no copy and this drain no syscall; the others are deleted, so the map holds the
    working set and room for new stacks. Every stack read is remembered while the last two
    intervals use it: a sample that found its key present just before the deletion is still
    resolved at the next drain."""

    def __init__(self, maps: Maps, entries: int = NATIVE_STACK_ENTRIES_DEFAULT) -> None:
        from perftop.symbols.memo import Generations

        self._map = maps.native_stacks
        self._buffer = NativeStack()
        self._room = entries // 2
        self._known: Generations[int, tuple[tuple[int, ...], int]] = Generations(1 << 16)
        self._in_map: set[int] = set()  # keys kept in the map at the last drain
        self._used_last: set[int] = set()

    def __len__(self) -> int:
        return len(self._known)

    @property
    def kept(self) -> int:
        """Stacks left in the map at the last drain."""
        return len(self._in_map)

    def read(
        self, keys: Iterable[int], lost: dict[str, int]
    ) -> dict[int, tuple[tuple[int, ...], int]]:
        """key -> (addresses innermost first, how the walk ended: abi.UNWIND_*)."""
        fd, buffer = self._map.map_fd, self._buffer
        stacks: dict[int, tuple[tuple[int, ...], int]] = {}
        for stack_key in keys:
            known = self._known.get(stack_key)
            if known is None:
                key = ct.c_uint64(stack_key)
                if lib.bpf_lookup_elem(fd, ct.byref(key), ct.byref(buffer)) != 0:
                    lost["stack_read_failed"] = lost.get("stack_read_failed", 0) + 1
                    continue
                depth = min(buffer.depth, len(buffer.ip))
                known = (tuple(buffer.ip[:depth]), buffer.truncated)
                self._known.put(stack_key, known)
            stacks[stack_key] = known
        used = stacks.keys()
        keep = used & self._used_last
        if len(keep) > self._room:
            keep = set(itertools.islice(keep, self._room))
        delete = lib.bpf_delete_elem
        for stack_key in (self._in_map | used) - keep:
            delete(fd, ct.byref(ct.c_uint64(stack_key)))
        self._in_map = keep
        self._used_last = set(used)
        self._known.age()
        return stacks
