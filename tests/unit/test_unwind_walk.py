"""The reference walker: on hand-built stacks (each stop reason), then on real stacks of live
children, checked frame by frame against `perf record --call-graph dwarf` (the oracle)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from perftop.unwind.elf import open_elf
from perftop.unwind.table import CfaRuleKind, RbpRuleKind, UnwindRow, pack_rows
from perftop.unwind.walk import (
    MappedTable,
    StopReason,
    TableSet,
    Walk,
    executable_mappings,
    load_bias,
    process_table_set,
    walk_stack,
)
from tests.unit.unwind_support import (
    CHAIN_FUNCTIONS,
    built,
    most_common_chain,
    perf_chains,
    shared_chain,
    snapshot,
    symbols,
    wait_until_running,
)

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="ptrace and perf on a child need root here"
)


def one_function_tables(*rows: UnwindRow, bias: int = 0x1000) -> TableSet:
    """A fake process with one mapping [0x1000, 0x9000) holding `rows`."""
    return TableSet.of([MappedTable(0x1000, 0x9000, bias, pack_rows(list(rows)), "/fake")])


# --- hand-built stacks ---------------------------------------------------------------------


def test_rsp_rows_walk_to_the_end_row() -> None:
    # 0x1000-0x10ff: leaf (CFA rsp+16); 0x1100-: caller (CFA rsp+8); 0x1200: _start (END).
    tables = one_function_tables(
        UnwindRow(0x0, CfaRuleKind.RSP, 16),
        UnwindRow(0x100, CfaRuleKind.RSP, 8),
        UnwindRow(0x200, CfaRuleKind.END),
        bias=0x1000,
    )
    stack = {0x7000 + 8: 0x1150, 0x7010 + 0: 0x1205}  # [CFA-8] of each frame

    walk = walk_stack(tables, ip=0x1010, sp=0x7000, bp=0, read_u64=stack.get)

    assert walk == Walk((0x1010, 0x1150, 0x1205), StopReason.END)


def test_return_addresses_are_looked_up_at_ip_minus_one() -> None:
    # A call as the caller's last instruction returns to the next function's first byte:
    # 0x1100 must be unwound with the first function's row (ip - 1), not the END row at 0x100.
    tables = one_function_tables(
        UnwindRow(0x0, CfaRuleKind.RSP, 8),
        UnwindRow(0x100, CfaRuleKind.END),
    )

    walk = walk_stack(tables, ip=0x1010, sp=0x7000, bp=0, read_u64={0x7000: 0x1100}.get)

    assert walk == Walk((0x1010, 0x1100), StopReason.UNREADABLE)  # [0x7008] is not mapped


def test_rbp_rows_use_and_restore_rbp() -> None:
    tables = one_function_tables(
        UnwindRow(0x0, CfaRuleKind.RBP, 16, RbpRuleKind.AT_CFA_OFFSET, -16),
        UnwindRow(0x100, CfaRuleKind.RBP, 16, RbpRuleKind.AT_CFA_OFFSET, -16),
        UnwindRow(0x200, CfaRuleKind.END),
    )
    # frame 0: bp 0x7100 -> CFA 0x7110, ra at 0x7108, saved bp at 0x7100 = 0x7200
    # frame 1: bp 0x7200 -> CFA 0x7210, ra at 0x7208
    stack = {0x7108: 0x1180, 0x7100: 0x7200, 0x7208: 0x1210, 0x7200: 0}

    walk = walk_stack(tables, ip=0x1010, sp=0x7000, bp=0x7100, read_u64=stack.get)

    assert walk == Walk((0x1010, 0x1180, 0x1210), StopReason.END)


def test_rbp_row_after_rbp_became_unknown_stops() -> None:
    tables = one_function_tables(
        UnwindRow(0x0, CfaRuleKind.RSP, 8, RbpRuleKind.UNDEFINED),
        UnwindRow(0x100, CfaRuleKind.RBP, 16),
    )

    walk = walk_stack(tables, ip=0x1010, sp=0x7000, bp=0x7100, read_u64={0x7000: 0x1180}.get)

    assert walk == Walk((0x1010, 0x1180), StopReason.RBP_UNKNOWN)


def test_plt_rule_adds_eight_from_the_threshold_on() -> None:
    tables = one_function_tables(
        UnwindRow(0x0, CfaRuleKind.PLT, 8, RbpRuleKind.UNCHANGED, 11),
        UnwindRow(0x100, CfaRuleKind.END),
    )
    stack = {0x7000: 0x1150, 0x7008: 0x1160}

    before_push = walk_stack(tables, ip=0x1026, sp=0x7000, bp=0, read_u64=stack.get)
    after_push = walk_stack(tables, ip=0x102B, sp=0x7000, bp=0, read_u64=stack.get)

    assert before_push.frames[1] == 0x1150  # (ip & 15) = 6 < 11: CFA = rsp + 8
    assert after_push.frames[1] == 0x1160  # (ip & 15) = 11: CFA = rsp + 16


def test_signal_rule_reloads_registers_and_the_next_ip_is_exact() -> None:
    tables = one_function_tables(
        UnwindRow(0x0, CfaRuleKind.SIGNAL, 160, RbpRuleKind.UNCHANGED, 120),
        UnwindRow(0x100, CfaRuleKind.RSP, 8),  # the interrupted function
        UnwindRow(0x180, CfaRuleKind.END),
    )
    # The interrupted ip 0x1100 is the first byte of its function: looked up as is, not - 1.
    stack = {0x7000 + 160: 0x7800, 0x7000 + 168: 0x1100, 0x7000 + 120: 0xBB, 0x7800: 0x1190}

    walk = walk_stack(tables, ip=0x1001, sp=0x7000, bp=0, read_u64=stack.get)

    assert walk == Walk((0x1001, 0x1100, 0x1190), StopReason.END)


@pytest.mark.parametrize(
    ("stack", "stop"),
    [
        ({}, StopReason.UNREADABLE),
        ({0x7008: 0}, StopReason.RETURN_ADDRESS_ZERO),
        ({0x7008: 0xDEAD0000}, StopReason.NO_TABLE),
        ({0x7008: 0x1A00}, StopReason.UNDEFINED_RULE),
    ],
)
def test_each_stop_reason(stack: dict[int, int], stop: StopReason) -> None:
    tables = one_function_tables(
        UnwindRow(0x0, CfaRuleKind.RSP, 16),
        UnwindRow(0x800, CfaRuleKind.UNDEFINED),
    )

    assert walk_stack(tables, 0x1010, 0x7000, 0, stack.get).stop == stop


def test_a_stack_that_does_not_grow_stops_the_walk() -> None:
    tables = one_function_tables(UnwindRow(0x0, CfaRuleKind.RBP, 16))

    walk = walk_stack(tables, ip=0x1010, sp=0x7000, bp=0x6000, read_u64={0x6008: 0x1020}.get)

    assert walk == Walk((0x1010,), StopReason.STACK_NOT_GROWING)


def test_the_walk_stops_at_128_frames() -> None:
    tables = one_function_tables(UnwindRow(0x0, CfaRuleKind.RSP, 8))

    class Recursion(dict[int, int]):
        def __missing__(self, address: int) -> int:
            return 0x1010

    walk = walk_stack(tables, 0x1010, 0x7000, 0, Recursion().__getitem__)

    assert walk.stop == StopReason.MAX_FRAMES and len(walk.frames) == 128


def test_executable_mappings_and_their_load_bias() -> None:
    binary = shared_chain()
    image = open_elf(binary)
    text = next(segment for segment in image.segments if segment.executable)
    page = text.file_offset & ~0xFFF
    maps_text = (
        f"555555554000-555555555000 r--p 00000000 08:01 42 {binary}\n"
        f"555555555000-555555556000 r-xp {page:08x} 08:01 42 {binary}\n"
        "7ffff7fc1000-7ffff7fc3000 r-xp 00000000 00:00 0 [vdso]\n"
    )

    mapping, vdso = executable_mappings(maps_text)

    assert load_bias(image, mapping) == 0x555555554000  # a PIE's vaddrs start at 0
    assert (mapping.path, vdso.path) == (str(binary), "[vdso]")  # the r--p mapping is left out
    image.close()


# --- real stacks of live children ----------------------------------------------------------


@pytest.fixture
def chain_binary() -> Path:
    return shared_chain()


@contextlib.contextmanager
def running(*command: str) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(command)
    try:
        wait_until_running(process)
        yield process
    finally:
        process.kill()
        process.wait()


@dataclass(frozen=True, slots=True)
class LiveWalk:
    walk: Walk
    ours: list[tuple[str, int]]  # our frames, in perf's terms (see `perf_style`)
    perf_chain: list[tuple[str, int]]  # the most common of `perf_chains`
    perf_chains: list[list[tuple[str, int]]]


def live_walk(pid: int) -> LiveWalk:
    """perf's most common chain for `pid`, then our walk of a snapshot of the same process."""
    chains = perf_chains(pid) or perf_chains(pid, seconds=2.0)  # a starved child: try longer
    assert chains, "perf recorded no samples of the child"
    state = snapshot(pid)
    tables = process_table_set(pid, lambda path: built(path.resolve()).table, open_elf)
    walk = walk_stack(tables, state.ip, state.sp, state.bp, state.read_u64)
    ours = perf_style(tables, state.maps_text, walk.frames)
    return LiveWalk(walk, ours, most_common_chain(chains), chains)


def perf_style(tables: TableSet, maps_text: str, ips: tuple[int, ...]) -> list[tuple[str, int]]:
    """(file name, address relative to the file) as perf prints frames: a return address
    minus one (the call instruction's last byte), but frame 0 and the frame a signal
    interrupted as they are."""
    mappings = executable_mappings(maps_text)
    relative = []
    exact = True
    for ip in ips:
        mapping = next(m for m in mappings if m.start <= ip < m.end)
        address = ip if exact else ip - 1
        relative.append((Path(mapping.path).name, address - mapping.start + mapping.file_offset))
        table = tables.find(ip)
        row = table.table.lookup(address - table.load_bias) if table else None
        exact = row is not None and row.cfa_rule == CfaRuleKind.SIGNAL
    return relative


def same_frames(ours: list[tuple[str, int]], perfs: list[tuple[str, int]]) -> bool:
    """perf labels some frames "(inlined)" instead of their file: compare addresses there."""
    return len(ours) == len(perfs) and all(
        address == perf_address and (perf_file == "inlined" or file == perf_file)
        for (file, address), (perf_file, perf_address) in zip(ours, perfs, strict=True)
    )


@needs_root
def test_live_chain_walk_matches_perf_frame_for_frame(chain_binary: Path) -> None:
    with running(str(chain_binary)) as process:
        live = live_walk(process.pid)
    walk, ours, perf_chain = live.walk, live.ours, live.perf_chain
    in_binary = [name for file, name in chain_names(chain_binary, ours) if file != "libc.so.6"]

    assert walk.stop == StopReason.END
    assert in_binary == [*CHAIN_FUNCTIONS, "_start"]
    assert [file for file, _ in ours[-3:]] == ["libc.so.6", "libc.so.6", chain_binary.name]
    assert same_frames(ours[1:], perf_chain[1:]), (ours, perf_chain)  # frame 0 spins


def chain_names(binary: Path, frames: list[tuple[str, int]]) -> list[tuple[str, str]]:
    """(file, function) per frame: the chain binary's symbols, libc's frames left unnamed."""
    by_address = sorted((address, name) for name, address in symbols(binary).items())
    named = []
    for file, address in frames:
        if file != binary.name:
            named.append((file, "?"))
            continue
        below = [entry for entry in by_address if entry[0] <= address]
        named.append((file, below[-1][1] if below else "?"))
    return named


@needs_root
def test_live_walk_through_a_signal_handler_matches_perf(chain_binary: Path) -> None:
    with running(str(chain_binary), "signal") as process:
        live = live_walk(process.pid)
    walk, ours, perf_chain = live.walk, live.ours, live.perf_chain
    named = chain_names(chain_binary, ours)

    assert walk.stop == StopReason.END
    assert same_frames(ours[1:], perf_chain[1:]), (ours, perf_chain)
    # spin <- on_signal <- __restore_rt (libc, SIGNAL row) <- the interrupted raise (libc)
    # <- leaf <- a7 ... main <- libc's start-up <- _start
    chain = chain_binary.name
    assert named[:3] == [(chain, "spin"), (chain, "on_signal"), ("libc.so.6", "?")]
    in_binary = [name for file, name in named if file != "libc.so.6"]
    assert in_binary == ["spin", "on_signal", *CHAIN_FUNCTIONS[1:], "_start"]


@needs_root
def test_live_walk_of_debians_python_reaches_start_as_perf_does() -> None:
    python = "/usr/bin/python3.11"
    with running(python, "-c", "while True: pass") as process:
        live = live_walk(process.pid)
    walk, ours, perf_chain = live.walk, live.ours, live.perf_chain
    image = open_elf(Path(python))
    entry = image.entry_point
    image.close()
    functions = built(Path(python)).functions
    start_offset = ours[-1][1] + 0x400000  # non-PIE: file offset + 0x400000 is the vaddr

    assert walk.stop == StopReason.END
    assert functions.function_start(start_offset) == functions.function_start(entry)
    assert [file for file, _ in ours[-3:-1]] == ["libc.so.6", "libc.so.6"]
    assert len(ours) >= 10
    # The interpreter's frame 0 moves, and with it frame 1 at times: any of perf's samples.
    assert any(same_frames(ours[1:], chain[1:]) for chain in live.perf_chains), (ours, perf_chain)
