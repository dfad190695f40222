"""Run an FDE's call frame instructions (DW_CFA_*) into rows of unwind rules.

Only the rules perftop's walker uses are kept per row: the CFA, rbp's rule and the return
address's rule (x86-64 DWARF registers 6 and 16). Other registers' rules are still tracked,
because DW_CFA_remember_state/restore_state and DW_CFA_restore act on them, but they are not
copied into rows: that copy was half the evaluation time when every register was kept.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from perftop.unwind.eh_frame import CfiError, Fde, read_pointer, read_sleb128, read_uleb128

RSP = 7
RBP = 6
RETURN_ADDRESS = 16  # DWARF's x86-64 column for rip

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")

# A DW_CFA program is at most a few hundred bytes; a remember_state stack deeper than this is a
# corrupt or hostile program, not a function.
_MAX_REMEMBERED_STATES = 64


class RuleKind(enum.IntEnum):
    UNCHANGED = 0  # DW_CFA_same_value, or never mentioned (callee-saved and untouched)
    UNDEFINED = 1  # DW_CFA_undefined: the value cannot be recovered (the RA of `_start`)
    AT_CFA_OFFSET = 2  # saved in memory at CFA + offset (DW_CFA_offset*)
    IS_CFA_OFFSET = 3  # the value is CFA + offset (DW_CFA_val_offset*)
    IN_REGISTER = 4  # DW_CFA_register
    EXPRESSION = 5  # saved at the address a DWARF expression computes
    VALUE_EXPRESSION = 6  # the value is what a DWARF expression computes


@dataclass(frozen=True, slots=True)
class RegisterRule:
    kind: RuleKind
    offset: int = 0  # for AT_/IS_CFA_OFFSET; the register number for IN_REGISTER
    expression: bytes = b""


@dataclass(frozen=True, slots=True)
class CfaRule:
    register: int  # DWARF register number; -1 when `expression` defines the CFA
    offset: int
    expression: bytes = b""


@dataclass(frozen=True, slots=True)
class CfiRow:
    """The rules from `address` up to the next row's address (or the FDE's end)."""

    address: int
    cfa: CfaRule
    rbp: RegisterRule
    return_address: RegisterRule


UNCHANGED = RegisterRule(RuleKind.UNCHANGED)
_UNDEFINED = RegisterRule(RuleKind.UNDEFINED)

CieState = tuple[CfaRule, dict[int, RegisterRule]]  # a CIE's initial rules, evaluated once


def evaluate_fde(
    fde: Fde, cie_states: dict[tuple[str, int], CieState] | None = None
) -> list[CfiRow]:
    """The FDE's rows, in address order, starting at `fde.start`. `cie_states` caches each
    CIE's initial state across calls (a binary has a handful of CIEs and thousands of FDEs),
    keyed by section and offset: .eh_frame and .debug_frame both start with a CIE at 0."""
    cie = fde.cie
    cie_key = (fde.section_name, cie.offset)
    initial = cie_states.get(cie_key) if cie_states is not None else None
    if initial is None:
        initial_cfa, initial_registers, _ = _run(
            fde, cie.initial_instructions, CfaRule(RSP, 8), {}, None, None
        )
        initial = (initial_cfa, initial_registers)
        if cie_states is not None:
            cie_states[cie_key] = initial
    rows: list[CfiRow] = []
    cfa, registers, address = _run(
        fde, fde.instructions, initial[0], dict(initial[1]), initial[1], rows
    )
    if address < fde.start + fde.size or not rows:
        _append_row(rows, address, cfa, registers, cie.return_address_register)
    return rows


def _append_row(
    rows: list[CfiRow],
    address: int,
    cfa: CfaRule,
    registers: dict[int, RegisterRule],
    return_address_register: int,
) -> None:
    row = CfiRow(
        address,
        cfa,
        registers.get(RBP, UNCHANGED),
        registers.get(return_address_register, _UNDEFINED),
    )
    if rows and rows[-1].address == address:
        rows[-1] = row
    else:
        rows.append(row)


def _run(
    fde: Fde,
    program: bytes,
    cfa: CfaRule,
    registers: dict[int, RegisterRule],
    initial_registers: dict[int, RegisterRule] | None,
    rows: list[CfiRow] | None,
) -> tuple[CfaRule, dict[int, RegisterRule], int]:
    """Interpret `program`; rows are emitted only when `rows` is given (an FDE, not a CIE)."""
    cie = fde.cie
    code_alignment = cie.code_alignment
    data_alignment = cie.data_alignment
    return_address_register = cie.return_address_register
    address = fde.start
    end = fde.start + fde.size
    remembered: list[tuple[CfaRule, dict[int, RegisterRule]]] = []
    position = 0
    length = len(program)
    while position < length:
        opcode = program[position]
        position += 1
        high = opcode & 0xC0
        low = opcode & 0x3F
        delta = -1
        if high == 0x40:  # DW_CFA_advance_loc
            delta = low * code_alignment
        elif high == 0x80:  # DW_CFA_offset
            offset, position = read_uleb128(program, position)
            registers[low] = RegisterRule(RuleKind.AT_CFA_OFFSET, offset * data_alignment)
        elif high == 0xC0:  # DW_CFA_restore
            _restore(registers, initial_registers, low)
        elif opcode == 0x00:  # DW_CFA_nop
            pass
        elif opcode == 0x01:  # DW_CFA_set_loc
            new_address, position = read_pointer(
                program, position, cie.pointer_encoding, fde.instructions_address, fde.data_base
            )
            if new_address < address:
                raise CfiError(f"DW_CFA_set_loc goes backwards to {new_address:#x}")
            delta = new_address - address
        elif opcode == 0x02:  # DW_CFA_advance_loc1
            delta = program[position] * code_alignment
            position += 1
        elif opcode == 0x03:  # DW_CFA_advance_loc2
            delta = _U16.unpack_from(program, position)[0] * code_alignment
            position += 2
        elif opcode == 0x04:  # DW_CFA_advance_loc4
            delta = _U32.unpack_from(program, position)[0] * code_alignment
            position += 4
        elif opcode == 0x1D:  # DW_CFA_MIPS_advance_loc8, which binutils also accepts
            delta = _U64.unpack_from(program, position)[0] * code_alignment
            position += 8
        elif opcode in (0x05, 0x11, 0x2F, 0x14, 0x15):
            # offset_extended, offset_extended_sf, GNU_negative_offset_extended,
            # val_offset, val_offset_sf
            register, position = read_uleb128(program, position)
            if opcode in (0x11, 0x15):
                factored, position = read_sleb128(program, position)
            else:
                factored, position = read_uleb128(program, position)
            if opcode == 0x2F:
                factored = -factored
            kind = RuleKind.IS_CFA_OFFSET if opcode in (0x14, 0x15) else RuleKind.AT_CFA_OFFSET
            registers[register] = RegisterRule(kind, factored * data_alignment)
        elif opcode == 0x06:  # DW_CFA_restore_extended
            register, position = read_uleb128(program, position)
            _restore(registers, initial_registers, register)
        elif opcode == 0x07:  # DW_CFA_undefined
            register, position = read_uleb128(program, position)
            registers[register] = _UNDEFINED
        elif opcode == 0x08:  # DW_CFA_same_value
            register, position = read_uleb128(program, position)
            registers[register] = UNCHANGED
        elif opcode == 0x09:  # DW_CFA_register
            register, position = read_uleb128(program, position)
            source, position = read_uleb128(program, position)
            registers[register] = RegisterRule(RuleKind.IN_REGISTER, source)
        elif opcode == 0x0A:  # DW_CFA_remember_state
            if len(remembered) >= _MAX_REMEMBERED_STATES:
                raise CfiError("DW_CFA_remember_state nested too deep")
            remembered.append((cfa, dict(registers)))
        elif opcode == 0x0B:  # DW_CFA_restore_state (the CFA comes back too, as GCC expects)
            if not remembered:
                raise CfiError("DW_CFA_restore_state with nothing remembered")
            cfa, registers = remembered.pop()
        elif opcode == 0x0C:  # DW_CFA_def_cfa
            register, position = read_uleb128(program, position)
            offset, position = read_uleb128(program, position)
            cfa = CfaRule(register, offset)
        elif opcode == 0x12:  # DW_CFA_def_cfa_sf
            register, position = read_uleb128(program, position)
            offset, position = read_sleb128(program, position)
            cfa = CfaRule(register, offset * data_alignment)
        elif opcode == 0x0D:  # DW_CFA_def_cfa_register
            register, position = read_uleb128(program, position)
            cfa = CfaRule(register, cfa.offset if cfa.register >= 0 else 0)
        elif opcode == 0x0E:  # DW_CFA_def_cfa_offset
            offset, position = read_uleb128(program, position)
            cfa = CfaRule(cfa.register, offset, cfa.expression if cfa.register < 0 else b"")
        elif opcode == 0x13:  # DW_CFA_def_cfa_offset_sf
            offset, position = read_sleb128(program, position)
            cfa = CfaRule(cfa.register, offset * data_alignment)
        elif opcode == 0x0F:  # DW_CFA_def_cfa_expression
            size, position = read_uleb128(program, position)
            cfa = CfaRule(-1, 0, _block(program, position, size))
            position += size
        elif opcode in (0x10, 0x16):  # DW_CFA_expression, DW_CFA_val_expression
            register, position = read_uleb128(program, position)
            size, position = read_uleb128(program, position)
            kind = RuleKind.EXPRESSION if opcode == 0x10 else RuleKind.VALUE_EXPRESSION
            registers[register] = RegisterRule(kind, 0, _block(program, position, size))
            position += size
        elif opcode == 0x2E:  # DW_CFA_GNU_args_size: only matters to exception landing pads
            _, position = read_uleb128(program, position)
        elif opcode == 0x2D:  # DW_CFA_GNU_window_save (SPARC; AArch64 pointer auth)
            pass
        else:
            raise CfiError(f"unknown DW_CFA opcode {opcode:#04x} at {position - 1}")
        if delta >= 0 and rows is not None:
            _append_row(rows, address, cfa, registers, return_address_register)
            address += delta
            if address > end:
                raise CfiError(f"row address {address:#x} beyond the FDE's end {end:#x}")
    return cfa, registers, address


def _restore(
    registers: dict[int, RegisterRule],
    initial_registers: dict[int, RegisterRule] | None,
    register: int,
) -> None:
    initial = initial_registers.get(register) if initial_registers is not None else None
    if initial is None:
        registers.pop(register, None)
    else:
        registers[register] = initial


def _block(program: bytes, position: int, size: int) -> bytes:
    if position + size > len(program):
        raise CfiError("DWARF expression runs past the instructions")
    return program[position : position + size]
