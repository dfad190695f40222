"""The compact unwind table: sorted fixed-size rows that a BPF array can hold as they are.

Row layout (16 bytes, little-endian, no padding; C: `struct { u64 pc; s32 cfa_offset;
s16 rbp_offset; u8 cfa_rule; u8 rbp_rule; }`):

    offset 0  u64 pc          first address the row covers, in the ELF's own virtual addresses
                              (add the mapping's load bias for a running process)
    offset 8  s32 cfa_offset
    offset 12 s16 rbp_offset
    offset 14 u8  cfa_rule    a `CfaRuleKind`
    offset 15 u8  rbp_rule    a `RbpRuleKind`

A row covers `pc` up to the next row's `pc`. Rules, with `sp`/`bp`/`ip` the frame's registers:

    UNDEFINED (0) no rule: a gap between FDEs, or a CFA no rule here can express; the walker
                  stops (or tries frame pointers)
    RSP (1)       CFA = sp + cfa_offset
    RBP (2)       CFA = bp + cfa_offset
    PLT (3)       CFA = sp + cfa_offset + ((ip & 15) >= rbp_offset ? 8 : 0): the expression ld
                  writes for `.plt` entries (rbp_offset holds the threshold, 11 for lazy PLTs)
    SIGNAL (4)    a signal trampoline (`__restore_rt`): sp points at the kernel's ucontext; the
                  interrupted rsp is at [sp + cfa_offset], rip at [sp + cfa_offset + 8], rbp at
                  [sp + rbp_offset] (160, 168, 120 on x86-64; rbp_rule is ignored), and the
                  next ip is exact, not a return address
    END (5)       the outermost frame (`_start`, `clone`): the CIE marks the return address
                  undefined, so the walk is complete

Unless the rule is SIGNAL, the return address is at [CFA - 8] (every x86-64 CIE says so; a row
that says otherwise becomes UNDEFINED) and the caller's rsp is the CFA. `rbp_rule` AT_CFA_OFFSET
means the caller's rbp is at [CFA + rbp_offset]; UNCHANGED keeps bp; UNDEFINED makes it unknown.
"""

from __future__ import annotations

import bisect
import enum
import struct
from array import array
from collections.abc import Callable
from dataclasses import dataclass

from perftop.unwind.cfi import (
    RBP,
    RSP,
    CfaRule,
    CfiRow,
    CieState,
    RegisterRule,
    RuleKind,
    evaluate_fde,
)
from perftop.unwind.eh_frame import CallFrameInfo, CfiError, Cie, Fde

ROW_FORMAT = struct.Struct("<QihBB")
ROW_SIZE = ROW_FORMAT.size  # 16

_S16_RANGE = range(-(1 << 15), 1 << 15)
_S32_RANGE = range(-(1 << 31), 1 << 31)


class CfaRuleKind(enum.IntEnum):
    UNDEFINED = 0
    RSP = 1
    RBP = 2
    PLT = 3
    SIGNAL = 4
    END = 5


class RbpRuleKind(enum.IntEnum):
    UNCHANGED = 0
    AT_CFA_OFFSET = 1
    UNDEFINED = 2


@dataclass(frozen=True, slots=True)
class UnwindRow:
    pc: int
    cfa_rule: CfaRuleKind
    cfa_offset: int = 0
    rbp_rule: RbpRuleKind = RbpRuleKind.UNCHANGED
    rbp_offset: int = 0

    def rules(self) -> tuple[int, int, int, int]:
        return (self.cfa_rule, self.cfa_offset, self.rbp_rule, self.rbp_offset)


@dataclass(frozen=True, slots=True)
class UnwindTable:
    """Rows packed in `ROW_FORMAT`, sorted by pc, strictly increasing; `pcs` mirrors them for
    the binary search (it is rebuilt from `packed`, never stored)."""

    packed: bytes
    pcs: array[int]

    @classmethod
    def from_packed(cls, packed: bytes) -> UnwindTable:
        if len(packed) % ROW_SIZE:
            raise ValueError(f"{len(packed)} bytes is not a whole number of {ROW_SIZE}-byte rows")
        pcs = array("Q", memoryview(packed).cast("Q")[0::2])  # every other u64 is a pc
        if any(pcs[index] >= pcs[index + 1] for index in range(len(pcs) - 1)):
            raise ValueError("rows are not sorted by strictly increasing pc")
        if any(packed[index + 14] > CfaRuleKind.END for index in range(0, len(packed), 16)):
            raise ValueError("a row has an unknown CFA rule")
        if any(packed[index + 15] > RbpRuleKind.UNDEFINED for index in range(0, len(packed), 16)):
            raise ValueError("a row has an unknown rbp rule")
        return cls(packed, pcs)

    def __len__(self) -> int:
        return len(self.pcs)

    def row(self, index: int) -> UnwindRow:
        pc, cfa_offset, rbp_offset, cfa_rule, rbp_rule = ROW_FORMAT.unpack_from(
            self.packed, index * ROW_SIZE
        )
        return UnwindRow(pc, CfaRuleKind(cfa_rule), cfa_offset, RbpRuleKind(rbp_rule), rbp_offset)

    def rows(self) -> list[UnwindRow]:
        return [self.row(index) for index in range(len(self))]

    def lookup(self, pc: int) -> UnwindRow | None:
        """The last row whose pc is <= `pc` (what the BPF binary search finds), or None."""
        index = bisect.bisect_right(self.pcs, pc) - 1
        return self.row(index) if index >= 0 else None


@dataclass(frozen=True, slots=True)
class TableBuild:
    table: UnwindTable
    fde_count: int  # FDEs that made rows
    skipped_fdes: int  # empty, outside executable code, or overlapping an earlier FDE
    errors: tuple[str, ...]  # entries and FDE programs that could not be decoded


def build_table(info: CallFrameInfo, is_code: Callable[[int], bool] | None = None) -> TableBuild:
    """Evaluate every FDE and pack the rows; `is_code(address)` drops FDEs of discarded code
    (the linker leaves them at address 0 after --gc-sections)."""
    errors = list(info.errors)
    builder = _RowPacker()
    cie_states: dict[tuple[str, int], CieState] = {}
    # python3.11's 61,382 DWARF rows hold 335 distinct (CFA, rbp, RA) rule sets: reducing each
    # once instead of once per row took the whole build from 0.54 to 0.38 s of CPU.
    reduced: dict[tuple[CfaRule, RegisterRule, RegisterRule, bool], _Rules] = {}
    used = skipped = 0
    covered_until = 0
    for fde in info.fdes:
        if fde.size == 0 or fde.start < covered_until or (is_code and not is_code(fde.start)):
            skipped += 1
            continue
        try:
            cfi_rows = evaluate_fde(fde, cie_states)
        except (CfiError, struct.error, IndexError) as error:
            errors.append(f"{fde.section_name}+{fde.offset:#x} (FDE at {fde.start:#x}): {error}")
            continue
        if used and covered_until != fde.start:
            builder.add(covered_until, _GAP)  # the previous FDE's end: no rule until here
        used += 1
        covered_until = fde.start + fde.size
        signal = fde.cie.is_signal_frame
        for cfi_row in cfi_rows:
            key = (cfi_row.cfa, cfi_row.rbp, cfi_row.return_address, signal)
            rules = reduced.get(key)
            if rules is None:
                rules = unwind_row(cfi_row, fde.cie).rules()
                reduced[key] = rules
            builder.add(cfi_row.address, rules)
    if used:
        builder.add(covered_until, _GAP)
    return TableBuild(builder.table(), used, skipped, tuple(errors))


_Rules = tuple[int, int, int, int]  # cfa_rule, cfa_offset, rbp_rule, rbp_offset
_GAP: _Rules = (CfaRuleKind.UNDEFINED, 0, RbpRuleKind.UNCHANGED, 0)


class _RowPacker:
    """Packs rows as they come, dropping a row whose rules repeat the previous row's (the lookup
    result is the same): python3.11's 71,603 rows with FDE ends become 64,575."""

    def __init__(self) -> None:
        self._packed = bytearray()
        self._pcs: array[int] = array("Q")
        self._previous: _Rules | None = None

    def add(self, pc: int, rules: _Rules) -> None:
        if rules == self._previous:
            return
        if self._pcs and self._pcs[-1] >= pc:
            raise CfiError(f"rows out of order at {pc:#x}")  # the FDE sort makes this rare
        cfa_rule, cfa_offset, rbp_rule, rbp_offset = rules
        self._packed += ROW_FORMAT.pack(pc, cfa_offset, rbp_offset, cfa_rule, rbp_rule)
        self._pcs.append(pc)
        self._previous = rules

    def table(self) -> UnwindTable:
        return UnwindTable(bytes(self._packed), self._pcs)


def merge_rows(rows: list[UnwindRow]) -> list[UnwindRow]:
    """Drop rows whose rules repeat the previous row's: the lookup result is the same."""
    merged: list[UnwindRow] = []
    previous: _Rules | None = None
    for row in rows:
        rules = row.rules()
        if rules != previous:
            merged.append(row)
            previous = rules
    return merged


def pack_rows(rows: list[UnwindRow]) -> UnwindTable:
    packer = _RowPacker()
    for row in rows:
        packer.add(row.pc, row.rules())
    return packer.table()


def unwind_row(cfi_row: CfiRow, cie: Cie) -> UnwindRow:
    """Reduce a row of DWARF rules to what the walker can do."""
    pc = cfi_row.address
    return_address = cfi_row.return_address
    if return_address.kind == RuleKind.UNDEFINED:
        return UnwindRow(pc, CfaRuleKind.END)
    cfa = cfi_row.cfa
    if cie.is_signal_frame:
        return _signal_row(cfi_row)
    if return_address.kind != RuleKind.AT_CFA_OFFSET or return_address.offset != -8:
        return UnwindRow(pc, CfaRuleKind.UNDEFINED)
    if cfa.register == RSP:
        cfa_rule = CfaRuleKind.RSP
        cfa_offset = cfa.offset
    elif cfa.register == RBP:
        cfa_rule = CfaRuleKind.RBP
        cfa_offset = cfa.offset
    elif cfa.register < 0:
        plt = plt_expression(cfa.expression)
        if plt is None:
            return UnwindRow(pc, CfaRuleKind.UNDEFINED)
        return UnwindRow(pc, CfaRuleKind.PLT, plt[0], RbpRuleKind.UNCHANGED, plt[1])
    else:
        return UnwindRow(pc, CfaRuleKind.UNDEFINED)
    rbp = cfi_row.rbp
    if rbp.kind == RuleKind.UNCHANGED:
        rbp_rule, rbp_offset = RbpRuleKind.UNCHANGED, 0
    elif rbp.kind == RuleKind.AT_CFA_OFFSET and rbp.offset in _S16_RANGE:
        rbp_rule, rbp_offset = RbpRuleKind.AT_CFA_OFFSET, rbp.offset
    else:
        rbp_rule, rbp_offset = RbpRuleKind.UNDEFINED, 0
    if cfa_offset not in _S32_RANGE:
        return UnwindRow(pc, CfaRuleKind.UNDEFINED)
    return UnwindRow(pc, cfa_rule, cfa_offset, rbp_rule, rbp_offset)


# ld's `.plt`/`.plt.sec` CFA, `DW_OP_breg7 (rsp): 8; DW_OP_breg16 (rip): 0; DW_OP_lit15;
# DW_OP_and; DW_OP_lit11; DW_OP_ge; DW_OP_lit3; DW_OP_shl; DW_OP_plus`: within each 16-byte
# entry, the push of the relocation index has happened once (rip & 15) reaches 11.
_PLT_PREFIX = bytes([0x77])  # DW_OP_breg7, then the uleb128 base offset
_PLT_MIDDLE = bytes([0x80, 0x00, 0x3F, 0x1A])  # DW_OP_breg16 0, DW_OP_lit15, DW_OP_and
_PLT_SUFFIX = bytes([0x2A, 0x33, 0x24, 0x22])  # DW_OP_ge, DW_OP_lit3, DW_OP_shl, DW_OP_plus


def plt_expression(expression: bytes) -> tuple[int, int] | None:
    """(base offset, threshold) if `expression` is ld's PLT CFA, else None."""
    if len(expression) != 11 or not expression.startswith(_PLT_PREFIX):
        return None
    base = expression[1]
    literal = expression[6]
    if (
        base >= 0x40  # a one-byte sleb128, positive
        or expression[2:6] != _PLT_MIDDLE
        or not 0x30 <= literal <= 0x3F  # DW_OP_lit0..lit15
        or expression[7:] != _PLT_SUFFIX
    ):
        return None
    return base, literal - 0x30


# The kernel's rt_sigframe on x86-64: rsp points at the ucontext when `__restore_rt` runs;
# uc_mcontext starts 40 bytes in, and rbp, rsp, rip are gregs 10, 15 and 16.
_SIGNAL_RBP = 40 + 10 * 8
_SIGNAL_RSP = 40 + 15 * 8
_SIGNAL_RIP = 40 + 16 * 8


def _breg7(offset: int) -> bytes:
    encoded = bytearray([0x77])
    while True:
        byte = offset & 0x7F
        offset >>= 7
        if (offset == 0 and not byte & 0x40) or (offset == -1 and byte & 0x40):
            encoded.append(byte)
            return bytes(encoded)
        encoded.append(byte | 0x80)


def _signal_row(cfi_row: CfiRow) -> UnwindRow:
    """glibc's `__restore_rt` CFI reads every register from the sigcontext; recognise exactly
    that layout and give it the SIGNAL rule, else UNDEFINED rather than guess."""
    expected_cfa = _breg7(_SIGNAL_RSP) + b"\x06"  # DW_OP_deref: CFA = the saved rsp
    rbp = cfi_row.rbp
    return_address = cfi_row.return_address
    if (
        cfi_row.cfa.register < 0
        and cfi_row.cfa.expression == expected_cfa
        and rbp.kind == RuleKind.EXPRESSION
        and rbp.expression == _breg7(_SIGNAL_RBP)
        and return_address.kind == RuleKind.EXPRESSION
        and return_address.expression == _breg7(_SIGNAL_RIP)
    ):
        return UnwindRow(
            cfi_row.address,
            CfaRuleKind.SIGNAL,
            _SIGNAL_RSP,
            RbpRuleKind.UNCHANGED,  # ignored: SIGNAL always reloads rbp from the sigcontext
            _SIGNAL_RBP,
        )
    return UnwindRow(cfi_row.address, CfaRuleKind.UNDEFINED)


def fde_rows(fde: Fde) -> list[UnwindRow]:
    """One FDE's rows as the table would hold them (for tests and diagnostics)."""
    return [unwind_row(cfi_row, fde.cie) for cfi_row in evaluate_fde(fde)]
