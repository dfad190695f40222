"""The Python mirror of bpf/profile.bpf.c: every layout, slot number, size and limit that user
space shares with the BPF program. Nothing else in perftop spells them out.

tests/unit/test_abi.py parses the C file's `#define`s and structs and fails when they disagree
with this module (field order, types, offsets, sizes, slot numbers, counts).
"""

from __future__ import annotations

import ctypes as ct
import struct
from pathlib import Path
from typing import Any, Final

from perftop.model import pids
from perftop.system import cgroup_selection

BPF_SOURCE: Final = Path(__file__).resolve().parents[3] / "bpf" / "profile.bpf.c"

# Sizes and limits. The map sizes are the C file's defaults; perftop passes its own as -D cflags.
COUNTS_ENTRIES_DEFAULT: Final = 40960  # PERFTOP_COUNTS_ENTRIES
STACK_ENTRIES_DEFAULT: Final = 16384  # PERFTOP_STACK_ENTRIES
# PERFTOP_MAX_PIDS: entries of the pid_filter map; the limit the CLI and the screen's prompt
# check is the same number (perftop.model.pids).
MAX_PIDS: Final = pids.MAX_PIDS
# PERFTOP_MAX_CGROUPS: entries of the cgroup_filter map; the limit --cgroup and the screen's
# prompt check is the same number (perftop.system.cgroup_selection).
MAX_CGROUPS: Final = cgroup_selection.MAX_CGROUPS
TASK_COMM_LEN: Final = 16  # linux/sched.h
MAX_STACK_DEPTH: Final = 127  # BPF_STACK_TRACE's value: u64 ips[PERF_MAX_STACK_DEPTH]
PYTHON_FRAMES: Final = 64  # PERFTOP_PYTHON_FRAMES: Python frames walked per sample
PYTHON_THREADS: Final = 32  # PERFTOP_PYTHON_THREADS: PyThreadStates searched per sample
PYTHON_STACK_ENTRIES_DEFAULT: Final = 4096  # PERFTOP_PYTHON_STACK_ENTRIES
PYTHON_PROCS_DEFAULT: Final = 1024  # PERFTOP_PYTHON_PROCS: Python processes walked at once
# PERFTOP_PYTHON_THREAD_ENTRIES: threads whose PyThreadState the program remembers (LRU)
PYTHON_THREAD_ENTRIES_DEFAULT: Final = 4096
# PYTHON_THREAD_RETRY_NS: a thread with no PyThreadState is searched for again after this long
PYTHON_THREAD_RETRY_NS: Final = 100_000_000
UNWIND_ROWS_DEFAULT: Final = 524288  # PERFTOP_UNWIND_ROWS: 16-byte rows
UNWIND_MAPPINGS_DEFAULT: Final = 65536  # PERFTOP_UNWIND_MAPPINGS: trie entries
NATIVE_STACK_ENTRIES_DEFAULT: Final = 16384  # PERFTOP_NATIVE_STACK_ENTRIES
UNWIND_FRAMES: Final = 64  # PERFTOP_UNWIND_FRAMES
UNWIND_SEARCH_STEPS: Final = 24  # binary search steps: a table holds fewer than 2**24 rows
# native_stack.truncated: how the walk ended
UNWIND_WHOLE: Final = 0  # at the outermost frame
UNWIND_TRUNCATED: Final = 1  # at the frame limit
UNWIND_STOPPED: Final = 2  # short of the outermost frame
PYTHON_NO_OFFSET: Final = 0xFFFF  # a python_proc offset the version does not have
PYTHON_NO_OWNER: Final = 0xFF  # python_proc.owner_cstack when no frames are skipped
# PYTHON_HEADER_BYTES: a thread's or frame's header is read whole into a buffer of this size,
# so every offset the walk reads in one must lie below it (python_proc.*_header_size).
PYTHON_HEADER_BYTES: Final = 256

# A stack id that was not asked for (stacks of that kind switched off). Real errors are -errno.
STACK_SKIPPED: Final = -65536  # PERFTOP_STACK_SKIPPED

# settings[SETTING_STACKS] bits
STACKS_KERNEL: Final = 1
STACKS_USER: Final = 2
STACK_BITS: Final = {
    "kernel": STACKS_KERNEL,
    "user": STACKS_USER,
    "both": STACKS_KERNEL | STACKS_USER,
}

# settings[] slots
SETTING_PID_FILTER: Final = 0  # 1: only count thread groups present in pid_filter
SETTING_STACKS: Final = 1  # STACK_BITS of the stacks to collect
SETTING_GENERATION: Final = 2  # which half of the double-buffered counters samples go to
SETTING_PYTHON: Final = 3  # 1: walk the Python frames of processes in python_procs
SETTING_UNWIND: Final = 4  # 1: walk user stacks with unwind tables where a process has them
SETTING_CGROUP_FILTER: Final = 5  # n > 0: only count tasks under cgroup_filter[0..n)
SETTINGS_COUNT: Final = 6

# Every counter of an interval exists twice (counts_0/counts_1, and one slot per generation in
# cpu_totals and lost): the program writes one generation while user space drains the other.
GENERATIONS: Final = 2
COUNTS_MAPS: Final = (b"counts_0", b"counts_1")  # by generation

# lost[] slots within one generation, by name as perftop reports them. The slot of a counter
# in the map is generation * LOST_COUNT + slot.
LOST_NAMES: Final = (
    "counts_map_full",  # LOST_COUNTS_FULL: counts map full, the sample is gone
    "kernel_stack_collision",  # LOST_KERNEL_EEXIST: stack map bucket taken by another stack
    "user_stack_collision",  # LOST_USER_EEXIST
    "kernel_stack_map_full",  # LOST_KERNEL_ENOMEM
    "user_stack_map_full",  # LOST_USER_ENOMEM
    "kernel_stack_error",  # LOST_KERNEL_OTHER
    "user_stack_error",  # LOST_USER_OTHER
    "python_stack_map_full",  # LOST_PYTHON_FULL: counted without its Python frames
    "python_stack_truncated",  # LOST_PYTHON_TRUNCATED: outermost frames past PYTHON_FRAMES cut
    "python_stack_missing",  # LOST_PYTHON_MISSING: a Python process's thread with no frames
    "native_stack_map_full",  # LOST_UNWIND_FULL: counted without a user stack
    "native_stack_truncated",  # LOST_UNWIND_TRUNCATED: outermost frames past UNWIND_FRAMES cut
    "unwind_incomplete",  # LOST_UNWIND_FAILED: the walk stopped short of the outermost frame
)
LOST_SLOTS: Final = {  # the C name of each slot -> its number
    "LOST_COUNTS_FULL": 0,
    "LOST_KERNEL_EEXIST": 1,
    "LOST_USER_EEXIST": 2,
    "LOST_KERNEL_ENOMEM": 3,
    "LOST_USER_ENOMEM": 4,
    "LOST_KERNEL_OTHER": 5,
    "LOST_USER_OTHER": 6,
    "LOST_PYTHON_FULL": 7,
    "LOST_PYTHON_TRUNCATED": 8,
    "LOST_PYTHON_MISSING": 9,
    "LOST_UNWIND_FULL": 10,
    "LOST_UNWIND_TRUNCATED": 11,
    "LOST_UNWIND_FAILED": 12,
}
LOST_COUNT: Final = len(LOST_NAMES)


class CountKey(ct.Structure):
    """struct count_key: one entry of the counts maps."""

    _fields_ = (
        ("tgid", ct.c_uint32),
        ("tid", ct.c_uint32),
        ("kernel_stack_id", ct.c_int32),
        ("user_stack_id", ct.c_int32),
        ("comm", ct.c_char * TASK_COMM_LEN),
        ("python_stack", ct.c_uint64),  # key in python_stacks; 0: no Python frames
        ("native_stack", ct.c_uint64),  # key in native_stacks; 0: not table-unwound
        ("cgroup_id", ct.c_uint64),  # cgroup v2 id: the directory's inode on the cgroup2 mount
    )


class CountValue(ct.Structure):
    """struct count_value."""

    _fields_ = (
        ("samples", ct.c_uint64),
        ("period", ct.c_uint64),  # summed sample_period: with a frequency, the event estimate
    )


class CpuTotals(ct.Structure):
    """struct cpu_totals: one CPU's counters of one generation."""

    _fields_ = (
        ("samples", ct.c_uint64),  # non-idle samples counted into the counts map
        ("period", ct.c_uint64),
        ("idle_samples", ct.c_uint64),
        ("idle_period", ct.c_uint64),
        ("filtered_samples", ct.c_uint64),  # non-idle samples dropped by the pid/cgroup filter
    )


class UnwindRow(ct.Structure):
    """struct unwind_row: perftop.unwind.table's 16-byte row."""

    _fields_ = (
        ("pc", ct.c_uint64),
        ("cfa_offset", ct.c_int32),
        ("rbp_offset", ct.c_int16),
        ("cfa_rule", ct.c_uint8),
        ("rbp_rule", ct.c_uint8),
    )


class MappingKey(ct.Structure):
    """struct mapping_key: (tgid, big-endian address) under a prefix length, for the trie."""

    _fields_ = (
        ("prefixlen", ct.c_uint32),
        ("tgid", ct.c_uint32),
        ("address", ct.c_uint64),
    )


class MappingValue(ct.Structure):
    """struct mapping_value."""

    _fields_ = (
        ("load_bias", ct.c_uint64),
        ("start", ct.c_uint64),  # the mapping's range
        ("end", ct.c_uint64),
        ("row_start", ct.c_uint32),
        ("row_count", ct.c_uint32),  # 0: no table, frame pointers
    )


class UnwindMiss(ct.Structure):
    """struct unwind_miss: an address of a registered process that no table covers yet."""

    _fields_ = (
        ("tgid", ct.c_uint32),
        ("pad", ct.c_uint32),
        ("address", ct.c_uint64),
    )


class NativeStack(ct.Structure):
    """struct native_stack: a table-unwound user stack, innermost first."""

    _fields_ = (
        ("depth", ct.c_uint32),
        ("truncated", ct.c_uint32),
        ("tgid", ct.c_uint32),
        ("pad", ct.c_uint32),
        ("ip", ct.c_uint64 * UNWIND_FRAMES),
    )


class PythonProc(ct.Structure):
    """struct python_proc: how to walk one CPython process (perftop.python.PythonOffsets)."""

    _fields_ = (
        ("runtime", ct.c_uint64),
        ("interpreters_head", ct.c_uint16),
        ("threads_head", ct.c_uint16),
        ("thread_next", ct.c_uint16),
        ("native_thread_id", ct.c_uint16),
        ("current_frame", ct.c_uint16),
        ("cframe_current_frame", ct.c_uint16),
        ("frame_code", ct.c_uint16),
        ("frame_previous", ct.c_uint16),
        ("frame_instruction", ct.c_uint16),
        ("frame_owner", ct.c_uint16),
        ("owner_cstack", ct.c_uint8),
        ("thread_header_size", ct.c_uint8),  # bytes of a PyThreadState read at once
        ("frame_header_size", ct.c_uint8),  # bytes of a _PyInterpreterFrame read at once
        ("pad", ct.c_uint8),
    )


class PythonThread(ct.Structure):
    """struct python_thread: where a thread's PyThreadState was found (python_threads, keyed
    by tgid << 32 | tid); a hint the program checks on every use."""

    _fields_ = (
        ("tstate", ct.c_uint64),  # 0: searched, none found
        ("missed_ns", ct.c_uint64),  # when that search ran (bpf_ktime_get_ns)
    )


class PythonStack(ct.Structure):
    """struct python_stack: one thread's Python frames, innermost first."""

    _fields_ = (
        ("depth", ct.c_uint32),
        ("truncated", ct.c_uint32),
        ("tgid", ct.c_uint32),
        ("pad", ct.c_uint32),
        ("code", ct.c_uint64 * PYTHON_FRAMES),
        ("instruction", ct.c_uint64 * PYTHON_FRAMES),
    )


_STRUCT_CODES: Final[dict[type, str]] = {
    ct.c_uint32: "I",
    ct.c_int32: "i",
    ct.c_uint64: "Q",
    ct.c_int64: "q",
}


def packed_format(structure: type[ct.Structure]) -> struct.Struct:
    """A struct.Struct reading `structure` from a raw buffer in C, fields in order: unpacking
    whole buffers this way costs far less than a ctypes struct per entry (~10 µs each)."""
    codes = []
    for field in structure._fields_:
        field_type: Any = field[1]
        if issubclass(field_type, ct.Array):
            if field_type._type_ is not ct.c_char:
                raise TypeError(f"no struct code for {field_type}")
            codes.append(f"{field_type._length_}s")
        else:
            codes.append(_STRUCT_CODES[field_type])
    layout = struct.Struct("=" + "".join(codes))
    if layout.size != ct.sizeof(structure):  # "=" has no padding: the C struct must have none
        raise TypeError(f"{structure.__name__} has padding")
    return layout


KEY_FORMAT: Final = packed_format(CountKey)
VALUE_FORMAT: Final = packed_format(CountValue)


def size_cflags(
    counts_entries: int, stack_entries: int, unwind_rows: int = UNWIND_ROWS_DEFAULT
) -> list[str]:
    """The -D cflags that size the program's maps."""
    return [
        f"-DPERFTOP_COUNTS_ENTRIES={counts_entries}",
        f"-DPERFTOP_STACK_ENTRIES={stack_entries}",
        f"-DPERFTOP_UNWIND_ROWS={unwind_rows}",
        f"-DPERFTOP_MAX_PIDS={MAX_PIDS}",
        f"-DPERFTOP_MAX_CGROUPS={MAX_CGROUPS}",
        f"-DPERFTOP_PYTHON_THREAD_ENTRIES={PYTHON_THREAD_ENTRIES_DEFAULT}",
    ]


def lost_slot(generation: int, slot: int) -> int:
    """The index in the lost map of counter `slot` of `generation`."""
    return generation * LOST_COUNT + slot
