"""Unwind tables against readelf's interpretation of the same CFI (the oracle), plus the rules
readelf cannot show: PLT entries, `_start`'s end, the signal trampoline, function starts."""

from __future__ import annotations

import itertools
import os
import subprocess
from pathlib import Path

import pytest

from perftop.unwind.cache import build_unwind_info
from perftop.unwind.eh_frame import read_call_frame_info
from perftop.unwind.elf import gnu_build_id, open_elf
from perftop.unwind.table import (
    ROW_FORMAT,
    CfaRuleKind,
    RbpRuleKind,
    UnwindRow,
    UnwindTable,
    build_table,
    pack_rows,
)
from perftop.unwind.walk import VDSO, executable_mappings, vdso_table
from tests.unit.unwind_support import (
    CHAIN_FUNCTIONS,
    built,
    compile_chain,
    expected_rules,
    readelf_frames,
    rules_of,
    shared_chain,
    symbols,
)

LIBC = Path("/lib/x86_64-linux-gnu/libc.so.6")


@pytest.fixture
def chain_binary() -> Path:
    return shared_chain()


def assert_agrees_with_readelf(binary: Path, table: UnwindTable) -> int:
    """Every row boundary and the middle of every row, and each FDE's end; returns how many
    pcs were checked."""
    fdes = readelf_frames(binary)
    starts = {fde.start for fde in fdes}
    checked = 0
    mismatches = []
    for fde in fdes:
        if fde.start == fde.end or fde.start == 0:
            continue
        bounds = [row[0] for row in fde.rows[1:]] + [fde.end]
        for row, next_pc in zip(fde.rows, bounds, strict=True):
            allowed = expected_rules(*row[1:])
            for pc in sorted({row[0], (row[0] + next_pc) // 2, next_pc - 1}):
                got = rules_of(table.lookup(pc))
                checked += 1
                if allowed is None:
                    kinds = {CfaRuleKind.PLT, CfaRuleKind.SIGNAL, CfaRuleKind.UNDEFINED}
                    if got is None or got[0] not in kinds:
                        mismatches.append((hex(pc), row, got))
                elif got not in allowed:
                    mismatches.append((hex(pc), row, got))
        if fde.end not in starts:
            got = rules_of(table.lookup(fde.end))
            checked += 1
            if got is None or got[0] != CfaRuleKind.UNDEFINED:
                mismatches.append((hex(fde.end), "end of FDE", got))
    assert mismatches == [], f"{len(mismatches)} of {checked} pcs disagree: {mismatches[:5]}"
    return checked


def test_chain_table_agrees_with_readelf_at_every_row(chain_binary: Path) -> None:
    info = built(chain_binary)

    checked = assert_agrees_with_readelf(chain_binary, info.table)

    assert info.errors == ()
    assert checked > 60
    rules = {row.cfa_rule for row in info.table.rows()}
    assert {CfaRuleKind.RSP, CfaRuleKind.RBP, CfaRuleKind.PLT, CfaRuleKind.END} <= rules


def test_libc_table_agrees_with_readelf_at_every_row() -> None:
    info = built(LIBC)

    checked = assert_agrees_with_readelf(LIBC, info.table)

    assert checked > 50_000  # 25,212 DWARF rows, three pcs each
    assert info.errors == ()


def test_debug_frame_is_read_when_there_is_no_eh_frame_for_a_function(tmp_path: Path) -> None:
    binary = compile_chain(tmp_path, "-g", "-fno-asynchronous-unwind-tables", "-fno-exceptions")
    image = open_elf(binary)
    info = read_call_frame_info(image)
    image.close()
    sections = {fde.section_name for fde in info.fdes}
    table = build_unwind_info(binary).table

    assert sections == {".eh_frame", ".debug_frame"}  # crt files keep .eh_frame for _start
    assert_agrees_with_readelf(binary, table)
    a4 = symbols(binary)["a4"]
    assert table.lookup(a4 + 8) is not None
    assert table.lookup(a4 + 8).cfa_rule == CfaRuleKind.RBP  # type: ignore[union-attr]


def test_plt_entries_get_the_plt_rule_with_its_threshold(chain_binary: Path) -> None:
    image = open_elf(chain_binary)
    plt = image.section(".plt")
    image.close()
    assert plt is not None and plt.size >= 32
    table = built(chain_binary).table

    first_entry = plt.address + 16  # the PLT0 stub is 16 bytes of pushes and a jump
    rows = [table.lookup(first_entry + offset) for offset in range(16)]

    assert {rules_of(row) for row in rows} == {(CfaRuleKind.PLT, 8, RbpRuleKind.UNCHANGED, 11)}
    # PLT0 itself is described by plain rows: rsp+16 after its first push, rsp+24 after two.
    assert rules_of(table.lookup(plt.address)) == (CfaRuleKind.RSP, 16, RbpRuleKind.UNCHANGED, 0)
    assert rules_of(table.lookup(plt.address + 6)) == (CfaRuleKind.RSP, 24, 0, 0)


def test_start_ends_the_walk_because_its_cie_leaves_the_return_address_undefined(
    chain_binary: Path,
) -> None:
    image = open_elf(chain_binary)
    entry = image.entry_point
    image.close()
    table = built(chain_binary).table

    assert table.lookup(entry) == UnwindRow(entry, CfaRuleKind.END)
    assert table.lookup(entry + 10).cfa_rule == CfaRuleKind.END  # type: ignore[union-attr]


def test_libc_signal_trampoline_gets_the_signal_rule() -> None:
    image = open_elf(LIBC)
    info = read_call_frame_info(image)
    image.close()
    signal_fdes = [fde for fde in info.fdes if fde.cie.is_signal_frame]
    table = built(LIBC).table

    assert len(signal_fdes) == 1  # __restore_rt, with its 'zRS' CIE
    trampoline = signal_fdes[0]
    for pc in range(trampoline.start, trampoline.start + trampoline.size):
        assert rules_of(table.lookup(pc)) == (CfaRuleKind.SIGNAL, 160, RbpRuleKind.UNCHANGED, 120)


def test_identical_consecutive_rows_are_merged_and_every_pc_is_increasing() -> None:
    table = built(LIBC).table
    rows = table.rows()

    assert all(a.pc < b.pc for a, b in itertools.pairwise(rows))
    assert all(a.rules() != b.rules() for a, b in itertools.pairwise(rows))
    assert len(table.packed) == 16 * len(rows)


def test_row_layout_is_sixteen_little_endian_bytes() -> None:
    row = UnwindRow(0x1122334455667788, CfaRuleKind.RBP, -24, RbpRuleKind.AT_CFA_OFFSET, -16)

    packed = pack_rows([row]).packed

    assert ROW_FORMAT.size == 16
    assert packed.hex() == "8877665544332211" + "e8ffffff" + "f0ff" + "02" + "01"
    assert UnwindTable.from_packed(packed).row(0) == row


def test_a_table_with_unsorted_rows_is_refused() -> None:
    rows = [UnwindRow(0x20, CfaRuleKind.RSP, 8), UnwindRow(0x10, CfaRuleKind.RSP, 16)]
    packed = b"".join(ROW_FORMAT.pack(row.pc, row.cfa_offset, 0, row.cfa_rule, 0) for row in rows)

    with pytest.raises(ValueError, match="sorted"):
        UnwindTable.from_packed(packed)


def test_function_starts_name_every_chain_function_and_no_gap(chain_binary: Path) -> None:
    functions = built(chain_binary).functions
    sized = subprocess.run(
        ["nm", "-S", "--defined-only", str(chain_binary)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    sizes = {
        parts[3]: (int(parts[0], 16), int(parts[1], 16))
        for parts in (line.split() for line in sized.splitlines())
        if len(parts) == 4
    }

    for name in CHAIN_FUNCTIONS:
        start, size = sizes[name]
        assert functions.function_start(start) == (start, size), name
        assert functions.function_start(start + size - 1) == (start, size), name
    spin_start, spin_size = sizes["spin"]
    after_spin = spin_start + spin_size
    if after_spin not in {start for start, _ in sizes.values()}:
        assert functions.function_start(after_spin) is None
    assert functions.function_start(0) is None


def test_python_function_starts_cover_its_fdes() -> None:
    info = built(Path("/usr/bin/python3.11"))
    image = open_elf(Path("/usr/bin/python3.11"))
    build_id = gnu_build_id(image)
    image.close()

    assert len(info.functions) > 10_000  # 10,221 FDEs in Debian's 3.11.2
    start, size = info.functions.starts[5000], info.functions.sizes[5000]
    assert info.functions.function_start(start + size // 2) == (start, size)
    assert build_id is not None and len(build_id) == 20


def test_build_table_keeps_going_past_an_fde_it_cannot_evaluate(chain_binary: Path) -> None:
    image = open_elf(chain_binary)
    info = read_call_frame_info(image)
    image.close()
    broken = info.fdes[3]
    garbled = type(broken)(
        broken.offset,
        broken.cie,
        broken.start,
        broken.size,
        b"\x0b",  # DW_CFA_restore_state with nothing remembered
        broken.instructions_address,
        broken.data_base,
        broken.section_name,
    )
    fdes = (*info.fdes[:3], garbled, *info.fdes[4:])

    built = build_table(type(info)(fdes, ()))

    assert len(built.errors) == 1 and "restore_state" in built.errors[0]
    assert built.fde_count == len(info.fdes) - 1


def test_vdso_table_read_from_memory_agrees_with_readelf(tmp_path: Path) -> None:
    maps_text = Path("/proc/self/maps").read_text()
    (mapping,) = [m for m in executable_mappings(maps_text) if m.path == VDSO]
    vdso = vdso_table(os.getpid(), mapping)
    assert vdso is not None
    image_file = tmp_path / "vdso.so"
    with open("/proc/self/mem", "rb", buffering=0) as memory:
        image_file.write_bytes(
            os.pread(memory.fileno(), mapping.end - mapping.start, mapping.start)
        )

    checked = assert_agrees_with_readelf(image_file, vdso.table)

    assert vdso.load_bias == mapping.start  # the vDSO is linked at 0
    assert checked > 20
