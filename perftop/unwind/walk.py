"""The reference stack walker: what the BPF program will do, step for step, in Python.

Tests feed it real register states and stack bytes; the BPF walker is written against it. Per
frame: find the mapping that holds ip, binary-search its table for the last row with
`pc <= ip - bias` (ip - 1 for return addresses, which point after the call and may be past the
function's end), compute the CFA, read the return address at CFA - 8 and, when the row says so,
rbp at CFA + offset; the caller's rsp is the CFA. The walk stops at an END row, at a row or
address with no rule, at a zero return address, when the stack stops growing, or after
`max_frames` (128, as the BPF program's bound).
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from perftop.unwind.eh_frame import read_call_frame_info
from perftop.unwind.elf import ElfError, ElfImage, LoadSegment, parse_elf
from perftop.unwind.table import CfaRuleKind, RbpRuleKind, UnwindTable, build_table

MAX_FRAMES = 128
VDSO = "[vdso]"
_PAGE_SIZE = 4096
_MAPS_LINE = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) ([0-9a-f]+) \S+ \d+\s*(.*)$")

ReadU64 = Callable[[int], int | None]  # None: the address cannot be read


class StopReason(enum.Enum):
    END = "outermost frame (return address undefined)"
    UNDEFINED_RULE = "no unwind rule for this address"
    NO_TABLE = "address in no mapping with an unwind table"
    RBP_UNKNOWN = "CFA is rbp-based but rbp could not be restored"
    RETURN_ADDRESS_ZERO = "return address is 0"
    STACK_NOT_GROWING = "CFA is not above the stack pointer"
    UNREADABLE = "stack memory could not be read"
    MAX_FRAMES = "frame limit reached"


@dataclass(frozen=True, slots=True)
class MappedTable:
    """One executable mapping of a file: [start, end) in the process, and its table."""

    start: int
    end: int
    load_bias: int  # process address = ELF virtual address + load_bias
    table: UnwindTable
    path: str


@dataclass(frozen=True, slots=True)
class TableSet:
    mappings: tuple[MappedTable, ...]  # sorted by start, disjoint

    @classmethod
    def of(cls, mappings: Iterable[MappedTable]) -> TableSet:
        return cls(tuple(sorted(mappings, key=lambda mapping: mapping.start)))

    def find(self, address: int) -> MappedTable | None:
        for mapping in self.mappings:  # a process maps tens of files: a scan is enough here
            if mapping.start <= address < mapping.end:
                return mapping
        return None


@dataclass(frozen=True, slots=True)
class Walk:
    frames: tuple[int, ...]  # instruction pointers, innermost first (frame 0 is the sample's)
    stop: StopReason


def walk_stack(
    tables: TableSet, ip: int, sp: int, bp: int, read_u64: ReadU64, max_frames: int = MAX_FRAMES
) -> Walk:
    frames = [ip]
    exact_ip = True  # frame 0, and the frame a signal interrupted, are not return addresses
    bp_known = True
    while len(frames) < max_frames:
        mapping = tables.find(ip)
        if mapping is None:
            return Walk(tuple(frames), StopReason.NO_TABLE)
        row = mapping.table.lookup((ip if exact_ip else ip - 1) - mapping.load_bias)
        if row is None or row.cfa_rule == CfaRuleKind.UNDEFINED:
            return Walk(tuple(frames), StopReason.UNDEFINED_RULE)
        if row.cfa_rule == CfaRuleKind.END:
            return Walk(tuple(frames), StopReason.END)
        if row.cfa_rule == CfaRuleKind.SIGNAL:
            saved_sp = read_u64(sp + row.cfa_offset)
            saved_ip = read_u64(sp + row.cfa_offset + 8)
            saved_bp = read_u64(sp + row.rbp_offset)
            if saved_sp is None or saved_ip is None or saved_bp is None:
                return Walk(tuple(frames), StopReason.UNREADABLE)
            ip, sp, bp, bp_known, exact_ip = saved_ip, saved_sp, saved_bp, True, True
            if ip == 0:
                return Walk(tuple(frames), StopReason.RETURN_ADDRESS_ZERO)
            frames.append(ip)
            continue
        if row.cfa_rule == CfaRuleKind.RSP:
            cfa = sp + row.cfa_offset
        elif row.cfa_rule == CfaRuleKind.RBP:
            if not bp_known:
                return Walk(tuple(frames), StopReason.RBP_UNKNOWN)
            cfa = bp + row.cfa_offset
        else:  # PLT: the push of the relocation index has happened from byte `threshold` on
            cfa = sp + row.cfa_offset + (8 if (ip & 15) >= row.rbp_offset else 0)
        if cfa <= sp:
            return Walk(tuple(frames), StopReason.STACK_NOT_GROWING)
        return_address = read_u64(cfa - 8)
        if return_address is None:
            return Walk(tuple(frames), StopReason.UNREADABLE)
        if row.cfa_rule != CfaRuleKind.PLT and row.rbp_rule == RbpRuleKind.AT_CFA_OFFSET:
            saved_bp = read_u64(cfa + row.rbp_offset)
            if saved_bp is None:
                return Walk(tuple(frames), StopReason.UNREADABLE)
            bp = saved_bp
        elif row.rbp_rule == RbpRuleKind.UNDEFINED:
            bp_known = False
        if return_address == 0:
            return Walk(tuple(frames), StopReason.RETURN_ADDRESS_ZERO)
        ip, sp, exact_ip = return_address, cfa, False
        frames.append(ip)
    return Walk(tuple(frames), StopReason.MAX_FRAMES)


@dataclass(frozen=True, slots=True)
class ExecutableMapping:
    start: int
    end: int
    file_offset: int
    path: str


def executable_mappings(maps_text: str) -> list[ExecutableMapping]:
    """File-backed executable mappings, and the vDSO, from the text of `/proc/PID/maps`."""
    mappings = []
    for line in maps_text.splitlines():
        match = _MAPS_LINE.match(line)
        path = match.group(5) if match else ""
        if match is None or "x" not in match.group(3):
            continue
        if not path.startswith("/") and path != VDSO:
            continue
        start, end, offset = (int(match.group(index), 16) for index in (1, 2, 4))
        mappings.append(ExecutableMapping(start, end, offset, path))
    return mappings


def load_bias(image: ElfImage, mapping: ExecutableMapping) -> int | None:
    """The amount added to the ELF's virtual addresses in this mapping, from the PT_LOAD
    segment the mapping's file offset falls in (mmap offsets are page-aligned, p_offset not)."""
    return segments_bias(image.segments, mapping)


def segments_bias(segments: Iterable[LoadSegment], mapping: ExecutableMapping) -> int | None:
    """`load_bias` from a file's PT_LOAD segments alone (kept per file: no need to open it
    again for each process that maps it)."""
    for segment in segments:
        aligned_offset = segment.file_offset - segment.file_offset % _PAGE_SIZE
        if aligned_offset <= mapping.file_offset < segment.file_offset + max(segment.file_size, 1):
            virtual_at_start = segment.virtual_address - (segment.file_offset - mapping.file_offset)
            return mapping.start - virtual_at_start
    return None


def process_table_set(
    pid: int,
    table_for: Callable[[Path], UnwindTable | None],
    open_image: Callable[[Path], ElfImage],
) -> TableSet:
    """Tables for every executable file mapping of `pid`, each file opened through
    `/proc/PID/root` (so a process in another mount namespace gets its own files), and for
    its vDSO."""
    maps_text = Path(f"/proc/{pid}/maps").read_text()
    mapped = []
    for mapping in executable_mappings(maps_text):
        if mapping.path == VDSO:
            vdso = vdso_table(pid, mapping)
            if vdso is not None:
                mapped.append(vdso)
            continue
        file_path = Path(f"/proc/{pid}/root{mapping.path}")
        try:
            image = open_image(file_path)
        except (OSError, ElfError):
            continue
        try:
            bias = load_bias(image, mapping)
        finally:
            image.close()
        table = table_for(file_path)
        if bias is not None and table is not None:
            mapped.append(MappedTable(mapping.start, mapping.end, bias, table, mapping.path))
    return TableSet.of(mapped)


def vdso_table(pid: int, mapping: ExecutableMapping) -> MappedTable | None:
    """The vDSO has no file: its ELF image (8 KB here, with its own .eh_frame) is read from
    the process's memory. A sample in `clock_gettime` would otherwise end the walk at frame 0."""
    try:
        with open(f"/proc/{pid}/mem", "rb", buffering=0) as memory:
            content = os.pread(memory.fileno(), mapping.end - mapping.start, mapping.start)
        image = parse_elf(Path(VDSO), content)
        built = build_table(read_call_frame_info(image), image.is_executable_address)
    except (OSError, ElfError):
        return None
    bias = load_bias(image, mapping)
    if bias is None:
        return None
    return MappedTable(mapping.start, mapping.end, bias, built.table, VDSO)
