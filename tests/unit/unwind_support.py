"""Fixtures for the unwind tests: a C program with a known call chain, readelf's and perf's
views of the same code (the oracles), and a register + stack snapshot of a live child."""

from __future__ import annotations

import atexit
import collections
import ctypes
import functools
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from perftop.unwind.cache import UnwindInfo, build_unwind_info
from perftop.unwind.table import CfaRuleKind, RbpRuleKind, UnwindRow

CHAIN_SOURCE = r"""
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

volatile unsigned long sink;
volatile int keep_spinning = 1;
static int use_signal;

NOINLINE void spin(void) { while (keep_spinning) sink++; }
static void on_signal(int signo) { spin(); sink += signo; }  /* not a tail call either */

/* Each caller does work after its call, so none of them is a tail call. */
NOINLINE void leaf(int n) {
    if (use_signal) raise(SIGUSR1);
    spin();
    sink += n;
}
NOINLINE void a7(int n) { volatile char pad[40]; pad[0] = n; leaf(n + 1); sink += pad[0]; }
NOINLINE void a6(int n) { a7(n + 1); sink += n; }
NOINLINE void a5(int n) { volatile char pad[200]; pad[3] = n; a6(n + 1); sink += pad[3]; }
/* alloca makes gcc keep an rbp-based CFA even with -fomit-frame-pointer */
NOINLINE void a4(int n) {
    char *buf = __builtin_alloca(n + 32);
    memset(buf, n, n + 32);
    a5(n + 1);
    sink += buf[n];
}
NOINLINE void a3(int n) { a4(n + 1); sink += n; }
NOINLINE void a2(int n) { a3(n + 1); sink += n; }
NOINLINE void a1(int n) { a2(n + 1); sink += n; }

int main(int argc, char **argv) {
    use_signal = argc > 1 && strcmp(argv[1], "signal") == 0;
    signal(SIGUSR1, on_signal);
    a1(argc);
    return 0;
}
"""

# Innermost first, as a walk from a sample in `spin` returns them.
CHAIN_FUNCTIONS = ["spin", "leaf", "a7", "a6", "a5", "a4", "a3", "a2", "a1", "main"]


@functools.cache
def shared_chain() -> Path:
    """The chain compiled once per test session (compiling took 3-17 s on a loaded machine)."""
    directory = Path(tempfile.mkdtemp(prefix="perftop-unwind-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return compile_chain(directory)


@functools.cache
def built(path: Path) -> UnwindInfo:
    """A binary's tables, built once per session: libc and python3.11 are read by many tests."""
    return build_unwind_info(path)


def compile_chain(directory: Path, *flags: str) -> Path:
    source = directory / "chain.c"
    source.write_text(CHAIN_SOURCE)
    binary = directory / "chain"
    subprocess.run(
        ["cc", "-O2", "-fomit-frame-pointer", *flags, "-o", str(binary), str(source)], check=True
    )
    return binary


def symbols(binary: Path) -> dict[str, int]:
    """Function name -> address, from the unstripped test binary's symbol table."""
    output = subprocess.run(
        ["nm", "--defined-only", str(binary)], check=True, capture_output=True, text=True
    ).stdout
    found = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tTW":
            found[parts[2]] = int(parts[0], 16)
    return found


# --- readelf --debug-dump=frames-interp, the oracle for tables -----------------------------


@dataclass(frozen=True, slots=True)
class ReadelfFde:
    start: int
    end: int
    rows: tuple[tuple[int, str, str, str], ...]  # (pc, CFA column, rbp column, ra column)


def readelf_frames(binary: Path) -> list[ReadelfFde]:
    """Every FDE of `readelf -wF`; an FDE printed without rows gets its CIE's rows."""
    # readelf exits 1 on libc after warning about an FDE it cannot lay out; the rest is fine.
    output = subprocess.run(
        ["readelf", "--debug-dump=frames-interp", str(binary)],
        check=False,
        capture_output=True,
        text=True,
    ).stdout
    assert "Contents of the" in output, f"readelf printed no frames for {binary}"
    cie_rows: dict[str, list[tuple[int, str, str, str]]] = {}
    fdes: list[ReadelfFde] = []
    current_rows: list[tuple[int, str, str, str]] = []
    columns: list[str] = []
    current: tuple[str, str, int, int] | None = None  # ("cie"|"fde", cie id, start, end)

    def finish() -> None:
        if current is None:
            return
        kind, key, start, end = current
        if kind == "cie":
            cie_rows[key] = list(current_rows)
        else:
            rows = current_rows or [(start, *row[1:]) for row in cie_rows.get(key, [])[:1]]
            fdes.append(ReadelfFde(start, end, tuple(rows)))

    section = ""
    for line in output.splitlines():
        if line.startswith("Contents of the "):
            section = line.split()[3]
            continue
        cie = re.match(r"^([0-9a-f]+) [0-9a-f]+ [0-9a-f]+ CIE", line)
        fde = re.match(
            r"^[0-9a-f]+ [0-9a-f]+ [0-9a-f]+ FDE cie=([0-9a-f]+) pc=(\w+)\.\.(\w+)", line
        )
        if cie or fde:
            finish()
            current_rows = []
            columns = []
            if cie:
                current = ("cie", section + cie.group(1), 0, 0)
            elif fde:
                current = (
                    "fde",
                    section + fde.group(1),
                    int(fde.group(2), 16),
                    int(fde.group(3), 16),
                )
            continue
        if line.strip().startswith("LOC"):
            columns = line.split()
            continue
        row = re.match(r"^([0-9a-f]{16}) (.*)$", line)
        if row and columns:
            cells = re.findall(r"r\d+ \(\w+\)|\S+", row.group(2))  # "r10 (r10)" is one cell
            values = dict(zip(columns[1:], cells, strict=True))
            current_rows.append(
                (int(row.group(1), 16), values["CFA"], values.get("rbp", "u"), values["ra"])
            )
    finish()
    return fdes


def expected_rules(cfa: str, rbp: str, ra: str) -> set[tuple[int, int, int, int]] | None:
    """The table rules readelf's columns allow (None: readelf cannot say, e.g. "exp")."""
    if "exp" in (cfa, ra):
        return None
    if ra == "u":
        return {(CfaRuleKind.END, 0, RbpRuleKind.UNCHANGED, 0)}
    if ra != "c-8":
        return {(CfaRuleKind.UNDEFINED, 0, RbpRuleKind.UNCHANGED, 0)}
    match = re.fullmatch(r"(rsp|rbp)\+(\d+)", cfa)
    if match is None:
        return {(CfaRuleKind.UNDEFINED, 0, RbpRuleKind.UNCHANGED, 0)}
    cfa_rule = CfaRuleKind.RSP if match.group(1) == "rsp" else CfaRuleKind.RBP
    offset = int(match.group(2))
    saved = re.fullmatch(r"c([+-]\d+)", rbp)
    if saved:
        return {(cfa_rule, offset, RbpRuleKind.AT_CFA_OFFSET, int(saved.group(1)))}
    if rbp == "u":  # readelf prints "u" both before rbp is saved and for DW_CFA_undefined
        return {
            (cfa_rule, offset, RbpRuleKind.UNCHANGED, 0),
            (cfa_rule, offset, RbpRuleKind.UNDEFINED, 0),
        }
    return {(cfa_rule, offset, RbpRuleKind.UNDEFINED, 0)}


def rules_of(row: UnwindRow | None) -> tuple[int, int, int, int] | None:
    return row.rules() if row is not None else None


# --- perf record --call-graph dwarf, the oracle for walks ----------------------------------


def perf_chains(pid: int, seconds: float = 0.5) -> list[list[tuple[str, int]]]:
    """Callchains of `pid` as perf's DWARF unwinder sees them: (dso basename, address as perf
    prints it, i.e. relative to the file), innermost first."""
    perf = shutil.which("perf")
    assert perf, "perf is needed for the unwinding oracle"
    data = Path(f"/tmp/perftop-unwind-{os.getpid()}-{pid}.data")
    try:
        # --no-bpf-event and -B: perf 6.1 otherwise reads every loaded BPF program and every
        # sampled file's build id, seconds on a busy machine.
        record = [perf, "record", "-q", "--no-bpf-event", "-B", "-N", "-o", str(data)]
        sampling = ["-e", "cpu-clock", "-F", "99", "--call-graph", "dwarf,8192"]
        subprocess.run(
            [*record, *sampling, "-p", str(pid), "--", "sleep", str(seconds)],
            check=True,
            capture_output=True,
        )
        output = subprocess.run(
            [perf, "script", "-i", str(data), "-F", "ip,dso"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        data.unlink(missing_ok=True)
    chains: list[list[tuple[str, int]]] = []
    chain: list[tuple[str, int]] = []
    for line in [*output.splitlines(), ""]:
        entry = re.match(r"^\s+([0-9a-f]+) \((.*)\)$", line)
        if entry:
            address = int(entry.group(1), 16)
            if not chain or chain[-1][1] != address:  # perf repeats an address per inlined call
                chain.append((Path(entry.group(2)).name, address))
        elif chain:
            chains.append(chain)
            chain = []
    return chains


def most_common_chain(chains: list[list[tuple[str, int]]]) -> list[tuple[str, int]]:
    counts = collections.Counter(tuple(chain) for chain in chains)
    return list(counts.most_common(1)[0][0])


# --- a register and stack snapshot of a live child, through ptrace -------------------------

_PTRACE_GETREGS = 12
_PTRACE_DETACH = 17
_PTRACE_SEIZE = 0x4206
_PTRACE_INTERRUPT = 0x4207
_WALL = 0x40000000
# struct user_regs_struct: r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax
# rip cs eflags rsp ss fs_base gs_base ds es fs gs
_RBP, _RIP, _RSP = 4, 16, 19


@dataclass(frozen=True, slots=True)
class Snapshot:
    ip: int
    sp: int
    bp: int
    stack_base: int
    stack: bytes  # memory from `stack_base` up to the end of the [stack] mapping
    maps_text: str

    def read_u64(self, address: int) -> int | None:
        offset = address - self.stack_base
        if 0 <= offset <= len(self.stack) - 8:
            return int.from_bytes(self.stack[offset : offset + 8], "little")
        return None


def snapshot(pid: int) -> Snapshot:
    """Stop `pid` for a moment (test children only: perftop never stops a process), copy its
    registers and the live part of its stack, and let it go."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    libc.ptrace.restype = ctypes.c_long
    if libc.ptrace(_PTRACE_SEIZE, pid, None, None) != 0:
        raise OSError(ctypes.get_errno(), "PTRACE_SEIZE")
    try:
        if libc.ptrace(_PTRACE_INTERRUPT, pid, None, None) != 0:
            raise OSError(ctypes.get_errno(), "PTRACE_INTERRUPT")
        os.waitpid(pid, _WALL)
        registers = (ctypes.c_ulonglong * 27)()
        if libc.ptrace(_PTRACE_GETREGS, pid, None, ctypes.addressof(registers)) != 0:
            raise OSError(ctypes.get_errno(), "PTRACE_GETREGS")
        maps_text = Path(f"/proc/{pid}/maps").read_text()
        sp = registers[_RSP]
        stack_end = _stack_end(maps_text, sp)
        with open(f"/proc/{pid}/mem", "rb", buffering=0) as memory:
            stack = os.pread(memory.fileno(), stack_end - sp, sp)
    finally:
        libc.ptrace(_PTRACE_DETACH, pid, None, None)
    return Snapshot(registers[_RIP], sp, registers[_RBP], sp, stack, maps_text)


def _stack_end(maps_text: str, sp: int) -> int:
    for line in maps_text.splitlines():
        start, end = (int(part, 16) for part in line.split()[0].split("-"))
        if start <= sp < end:
            return end
    raise AssertionError(f"sp {sp:#x} is in no mapping")


def wait_until_running(process: subprocess.Popen[bytes], seconds: float = 0.3) -> None:
    time.sleep(seconds)
    assert process.poll() is None, "the test child exited early"
