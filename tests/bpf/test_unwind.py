"""User stacks walked with .eh_frame tables in the kernel, on binaries without frame pointers:
programs built here with -fomit-frame-pointer, Debian's python3.11, the distro's stripped gzip,
a library loaded with dlopen while perftop runs, and binaries whose tables lie."""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from perftop.config import SamplerConfig
from perftop.model.samples import Interval, StackSample

pytestmark = [pytest.mark.bpf, pytest.mark.usefixtures("require_bpf")]

CHAIN = ["main", *(f"kestrel_{letter}" for letter in "abcdefg"), "leaf_spin"]

CHAIN_C = r"""
#include <stdlib.h>
#include <time.h>
volatile unsigned long sink;
__attribute__((noinline)) void leaf_spin(void) {
    for (int i = 0; i < 1000000; i++) sink += i * 7;
}
/* `sink++` after each call: no tail calls, every level keeps a frame of its own. */
#define LEVEL(name, next) __attribute__((noinline)) void name(void) { next(); sink++; }
LEVEL(kestrel_g, leaf_spin)
LEVEL(kestrel_f, kestrel_g)
LEVEL(kestrel_e, kestrel_f)
LEVEL(kestrel_d, kestrel_e)
LEVEL(kestrel_c, kestrel_d)
LEVEL(kestrel_b, kestrel_c)
LEVEL(kestrel_a, kestrel_b)
int main(int argc, char **argv) {
    time_t end = time(NULL) + (argc > 1 ? atoi(argv[1]) : 3600);
    while (time(NULL) < end) kestrel_a();
    return 0;
}
"""


def build(directory: Path, name: str, source: str, *flags: str) -> Path:
    source_file = directory / f"{name}.c"
    source_file.write_text(textwrap.dedent(source))
    binary = directory / name
    command = ["gcc", "-O2", "-fomit-frame-pointer", *flags, "-o", str(binary), str(source_file)]
    subprocess.run(command, check=True)
    return binary


@pytest.fixture(scope="module")
def source() -> Iterator[object]:
    from perftop.sampling.bcc.source import BccSource

    sampler = BccSource(SamplerConfig(interval_s=1.0, frequency_hz=499, pids=(os.getpid(),)))
    assert sampler.unwinder == "table"
    yield sampler
    sampler.close()


@pytest.fixture
def spawn() -> Iterator[list[subprocess.Popen[bytes]]]:
    children: list[subprocess.Popen[bytes]] = []
    yield children
    for child in children:
        child.kill()
        child.wait()


def sample(source: object, pids: list[int], intervals: int = 1) -> list[StackSample]:
    """The stacks of `pids` over whole intervals, once their tables are in the kernel."""
    source.set_pid_filter(pids)  # type: ignore[attr-defined]
    unwind = source._unwind  # type: ignore[attr-defined]
    # Tables are loaded as the walks need them, one binary further each round (a leaf in
    # python3.11 asks for python3.11's table; with it, the walk reaches libc and asks for
    # libc's): three rounds, each waited out, cover the chains here.
    for _ in range(3):
        source.next_interval()  # type: ignore[attr-defined]
        assert unwind.wait_idle(60), "tables not built within 60 s"
    stacks: list[StackSample] = []
    for _ in range(intervals):
        interval = source.next_interval()  # type: ignore[attr-defined]
        assert isinstance(interval, Interval) and interval.unwind == "table"
        stacks += [stack for stack in interval.stacks if stack.pid in pids]
    assert stacks, f"no samples of {pids}"
    return stacks


def symbols(stack: StackSample) -> list[str]:
    return [frame.symbol for frame in stack.frames if not frame.kernel]


def share(stacks: list[StackSample], wanted: object) -> float:
    total = sum(stack.samples for stack in stacks)
    return sum(stack.samples for stack in stacks if wanted(symbols(stack))) / total


def contains_run(haystack: list[str], needle: list[str]) -> bool:
    return any(haystack[i : i + len(needle)] == needle for i in range(len(haystack)))


def test_a_chain_without_frame_pointers_is_whole(
    source: object, spawn: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    binary = build(tmp_path, "kestrel", CHAIN_C)
    spawn.append(subprocess.Popen([str(binary)]))
    stacks = sample(source, [spawn[0].pid])
    # The whole chain, in order, from main to the leaf, and below main the C runtime's start.
    assert share(stacks, lambda chain: contains_run(chain, CHAIN)) >= 0.9, [
        (symbols(s), s.samples) for s in stacks[:5]
    ]
    assert share(stacks, lambda chain: chain[:1] == ["_start"]) >= 0.9


def test_recurring_table_stacks_stay_in_the_map(
    source: object,
    spawn: list[subprocess.Popen[bytes]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A table-unwound stack that recurs every interval stays in native_stacks: the program
    stores it once and the drain neither reads nor deletes it again. (Deleting every stack at
    each drain made the program copy each recurring stack into the map anew every interval,
    and the drain pay a syscall per stack.)"""
    from perftop.sampling.bcc import program

    binary = build(tmp_path, "kestrel", CHAIN_C)
    spawn.append(subprocess.Popen([str(binary)]))
    sample(source, [spawn[0].pid], intervals=2)  # tables in, the stacks seen twice
    native = source._native_stacks  # type: ignore[attr-defined]
    native_fd = source._program.maps.native_stacks.map_fd  # type: ignore[attr-defined]
    calls: Counter[str] = Counter()
    real_read, real_lookup, real_delete = (
        native.read,
        program.lib.bpf_lookup_elem,
        program.lib.bpf_delete_elem,
    )

    def counting_read(keys: set[int], lost: dict[str, int]) -> object:
        calls["used"] += len(keys)
        return real_read(keys, lost)

    def counting_lookup(fd: int, key: object, value: object) -> int:
        calls["lookup"] += fd == native_fd
        return int(real_lookup(fd, key, value))

    def counting_delete(fd: int, key: object) -> int:
        calls["delete"] += fd == native_fd
        return int(real_delete(fd, key))

    monkeypatch.setattr(native, "read", counting_read)
    monkeypatch.setattr(program.lib, "bpf_lookup_elem", counting_lookup)
    monkeypatch.setattr(program.lib, "bpf_delete_elem", counting_delete)
    for _ in range(3):
        source.next_interval()  # type: ignore[attr-defined]
    assert calls["used"] >= 3, calls  # stacks of the chain each interval
    assert native.kept > 0, calls
    # Only one-off stacks (the leaf caught at a new instruction) are read and deleted.
    assert calls["delete"] <= calls["used"] // 2, calls
    assert calls["lookup"] <= calls["used"] // 2, calls


def test_frame_pointers_alone_break_the_same_chain(
    spawn: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    """The comparison --unwind fp exists for: the same program, walked by frame pointers."""
    from perftop.sampling.bcc.source import BccSource

    binary = build(tmp_path, "kestrel", CHAIN_C)
    spawn.append(subprocess.Popen([str(binary)]))
    sampler = BccSource(SamplerConfig(frequency_hz=199, pids=(spawn[0].pid,), unwind="fp"))
    try:
        interval = sampler.next_interval()
    finally:
        sampler.close()
    assert interval is not None and interval.unwind == "fp"
    stacks = [s for s in interval.stacks if s.pid == spawn[0].pid]
    assert stacks and share(stacks, lambda chain: contains_run(chain, CHAIN)) < 0.1


DEEP_C = r"""
#include <stdlib.h>
volatile unsigned long sink;
__attribute__((noinline)) void deep_leaf(void) {
    for (int i = 0; i < 1000000; i++) sink += i * 5;
}
/* `sink++` after the call: not a tail call, so every level is a frame of its own. */
__attribute__((noinline)) void descend(int levels) {
    if (levels > 0) descend(levels - 1); else deep_leaf();
    sink++;
}
int main(int argc, char **argv) {
    for (;;) descend(argc > 1 ? atoi(argv[1]) : 100);
}
"""


def test_a_walk_goes_sixty_four_frames_deep_and_counts_what_it_cuts(
    source: object, spawn: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    from perftop.sampling.bcc.abi import UNWIND_FRAMES

    binary = build(tmp_path, "deep", DEEP_C)
    spawn.append(subprocess.Popen([str(binary), "100"]))
    stacks = sample(source, [spawn[0].pid])
    interval = source.next_interval()  # type: ignore[attr-defined]
    assert UNWIND_FRAMES >= 64

    # 100 levels of descend: the walk keeps the innermost 64 frames, all of them this
    # program's, and says the outermost were cut.
    def deep(chain: list[str]) -> bool:
        return chain[1:] == ["descend"] * (UNWIND_FRAMES - 1) + ["deep_leaf"]

    assert share(stacks, deep) >= 0.9, [(symbols(s)[:3], len(s.frames)) for s in stacks[:5]]
    assert share(stacks, lambda chain: chain[:1] == ["[more frames]"]) >= 0.9
    assert interval.lost["native_stack_truncated"] > 0, interval.lost


WORK = """
    def inner_spin(n):
        total = 0
        for i in range(n):
            total += i * i
        return total

    def outer():
        return inner_spin(100000)

    while True:
        outer()
"""


def test_debian_python_reaches_main(
    source: object, spawn: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    script = tmp_path / "work.py"
    script.write_text(textwrap.dedent(WORK))
    spawn.append(subprocess.Popen(["/usr/bin/python3.11", str(script)]))
    stacks = sample(source, [spawn[0].pid])
    reaches_main = share(stacks, lambda chain: "main" in chain or "Py_BytesMain" in chain)
    assert reaches_main >= 0.95, [(symbols(s), s.samples) for s in stacks[:5]]
    # With the Python frames in the eval loop's place: native callers ; Python ; leaf.
    chain = max(stacks, key=lambda s: s.samples)
    names = symbols(chain)
    assert names[:3] == ["_start", "__libc_start_main_impl", "__libc_start_call_main"], names
    assert names.index("Py_BytesMain") < names.index("<module> (work.py:1)")
    assert names[-2:] == ["outer (work.py:8)", "inner_spin (work.py:2)"], names


def test_a_stripped_distro_binary_reaches_libc_start_and_has_one_row_per_function(
    source: object, spawn: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    from perftop.unwind.eh_frame import read_call_frame_info
    from perftop.unwind.elf import open_elf

    gzip = shutil.which("gzip")
    assert gzip is not None
    # One gzip for the whole test, compressing random bytes as fast as it can.
    feed = subprocess.Popen(["head", "-c", "16G", "/dev/urandom"], stdout=subprocess.PIPE)
    spawn.append(feed)
    assert feed.stdout is not None
    child = subprocess.Popen([gzip, "-9", "-c"], stdin=feed.stdout, stdout=subprocess.DEVNULL)
    feed.stdout.close()
    spawn.append(child)
    stacks = sample(source, [child.pid], intervals=2)
    mine = [s for s in stacks if s.comm == "gzip"]
    assert mine
    assert share(mine, lambda chain: "__libc_start_call_main" in chain) >= 0.9, [
        (symbols(s), s.samples) for s in mine[:5]
    ]
    # Every gzip address is named by the start of the function its FDE covers.
    image = open_elf(Path(os.path.realpath(gzip)))
    try:
        # File offsets of the FDEs' starts: what "gzip+0x..." names.
        starts = set()
        for fde in read_call_frame_info(image).fdes:
            for segment in image.segments:
                if (
                    segment.virtual_address
                    <= fde.start
                    < segment.virtual_address + segment.file_size
                ):
                    starts.add(fde.start - segment.virtual_address + segment.file_offset)
    finally:
        image.close()
    leaf_rows: Counter[str] = Counter()
    for stack in mine:
        leaf = stack.frames[-1] if stack.frames else None
        if leaf is not None and leaf.module == "gzip":
            leaf_rows[leaf.symbol] += stack.samples
    assert leaf_rows, mine[:3]
    offsets = {int(symbol.rsplit("+0x", 1)[1], 16) for symbol in leaf_rows if "+0x" in symbol}
    assert offsets and offsets <= starts, sorted(offsets - starts)[:5]
    # One row per function: deflate's hot loop is one row, not one per instruction.
    _, count = leaf_rows.most_common(1)[0]
    assert count / sum(leaf_rows.values()) > 0.3, leaf_rows.most_common(5)
    assert len(leaf_rows) <= 20, leaf_rows.most_common(25)


def test_code_without_a_table_is_stepped_over_by_its_frame_pointer(
    source: object, tmp_path: Path
) -> None:
    """JIT code has no table: the walk takes a frame-pointer step there (the JIT's code pushes
    rbp) and goes on with the tables of the binary that called it, down to _start."""
    binary = tmp_path / "perftop_jit"
    here = Path(__file__).parent
    subprocess.run(["gcc", "-O2", "-o", str(binary), str(here / "jit.c")], check=True)
    child = subprocess.Popen([str(binary)], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        stacks = sample(source, [child.pid])
        # -O2 makes run_jitted a tail jump: main called the JIT's code, as far as the stack says.
        whole = ["main", "jitted_spin_loop"]
        assert share(stacks, lambda chain: chain[-2:] == whole) >= 0.9, [
            (symbols(s), s.samples) for s in stacks[:5]
        ]
        assert share(stacks, lambda chain: chain[:1] == ["_start"]) >= 0.9
    finally:
        child.kill()
        child.wait()
        Path(f"/tmp/perf-{child.pid}.map").unlink(missing_ok=True)


LIBRARY_C = r"""
volatile unsigned long sink;
__attribute__((noinline)) void plugin_leaf(void) {
    for (int i = 0; i < 1000000; i++) sink += i * 3;
}
__attribute__((noinline)) void plugin_entry(void) { plugin_leaf(); sink++; }
"""

LOADER_C = r"""
#include <dlfcn.h>
#include <stdio.h>
#include <unistd.h>
volatile unsigned long sink;
__attribute__((noinline)) void before_load(void) { for (int i = 0; i < 100000; i++) sink++; }
__attribute__((noinline)) void call_plugin(void (*entry)(void)) { entry(); sink++; }
int main(int argc, char **argv) {
    printf("ready\n");
    fflush(stdout);
    /* Busy (so it is sampled and registered) until told to load the library. */
    while (access(argv[2], F_OK) != 0) before_load();
    void *handle = dlopen(argv[1], RTLD_NOW);
    if (!handle) return 2;
    void (*entry)(void) = (void (*)(void))dlsym(handle, "plugin_entry");
    printf("loaded\n");
    fflush(stdout);
    for (;;) call_plugin(entry);
}
"""


def test_a_library_loaded_later_is_unwound_within_two_seconds(
    source: object, tmp_path: Path
) -> None:
    library = tmp_path / "libplugin.so"
    library_source = tmp_path / "plugin.c"
    library_source.write_text(LIBRARY_C)
    subprocess.run(
        [
            "gcc",
            "-O2",
            "-fomit-frame-pointer",
            "-shared",
            "-fPIC",
            "-o",
            str(library),
            str(library_source),
        ],
        check=True,
    )
    loader = build(tmp_path, "loader", LOADER_C, "-ldl")
    go = tmp_path / "go"
    child = subprocess.Popen(
        [str(loader), str(library), str(go)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        sample(source, [child.pid])  # registered, and walked, before the library exists
        go.touch()
        assert child.stdout.readline() == "loaded\n"
        loaded_at = time.monotonic()
        whole = ["main", "call_plugin", "plugin_entry", "plugin_leaf"]
        found_after = None
        while time.monotonic() - loaded_at < 4:
            interval = source.next_interval()  # type: ignore[attr-defined]
            stacks = [s for s in interval.stacks if s.pid == child.pid]
            if stacks and share(stacks, lambda chain: contains_run(chain, whole)) > 0.5:
                found_after = time.monotonic() - loaded_at
                break
        # Within 2 s of the dlopen plus the interval that reports it.
        assert found_after is not None and found_after <= 3.0, found_after
    finally:
        child.kill()
        child.wait()


BAD_CFI_S = r"""
    .text
    .globl main
    .type main, @function
main:
    .cfi_startproc
    /* A CFA far above the stack: the walk must stop, not read wild memory as frames. */
    .cfi_def_cfa_offset 1048576
    .cfi_offset %rbp, -524288
1:  addq $1, %rax
    jmp 1b
    .cfi_endproc
    .section .note.GNU-stack,"",@progbits
"""


def test_binaries_whose_tables_lie_are_survived(
    source: object, spawn: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    assembly = tmp_path / "badcfi.s"
    assembly.write_text(BAD_CFI_S)
    lying = tmp_path / "badcfi"
    subprocess.run(["gcc", "-o", str(lying), str(assembly)], check=True)
    # And a chain whose .eh_frame is garbage bytes of the same size.
    corrupt = build(tmp_path, "corrupt", CHAIN_C)
    section = tmp_path / "eh_frame.bin"
    subprocess.run(
        ["objcopy", "-O", "binary", "--only-section=.eh_frame", str(corrupt), str(section)],
        check=True,
    )
    section.write_bytes(os.urandom(section.stat().st_size))
    subprocess.run(["objcopy", f"--update-section=.eh_frame={section}", str(corrupt)], check=True)
    spawn.append(subprocess.Popen([str(lying)]))
    spawn.append(subprocess.Popen([str(corrupt)]))
    pids = [child.pid for child in spawn]
    stacks = sample(source, pids, intervals=2)
    for child in spawn:
        assert child.poll() is None  # never stopped, never harmed
        mine = [s for s in stacks if s.pid == child.pid]
        assert sum(s.samples for s in mine) > 100
        # No wild frames: every frame is the binary's own, libc's, the kernel's, or a marker.
        for stack in mine:
            assert len(stack.frames) < 64, symbols(stack)
    interval = source.next_interval()  # type: ignore[attr-defined]
    assert interval is not None  # sampling goes on
    # The CFA far above the stack cannot be read: each of those walks is an unwind failure,
    # said on the stack and counted, not a one-frame stack that claims to be whole.
    lying_stacks = [s for s in interval.stacks if s.pid == spawn[0].pid]
    assert share(lying_stacks, lambda chain: chain[:1] == ["[unwind stopped]"]) >= 0.9, [
        (symbols(s), s.samples) for s in lying_stacks[:5]
    ]
    assert interval.lost["unwind_incomplete"] > 0, interval.lost


def test_a_kernel_that_refuses_the_walker_gets_frame_pointers_and_says_so(
    busy_chain: subprocess.Popen[bytes],
) -> None:
    from perftop.sampling.bcc.source import BccSource

    # A walker too big for any verifier: 1024 frames of 64-step searches.
    refused = ("-DPERFTOP_UNWIND_FRAMES=1024", "-DUNWIND_SEARCH_STEPS=64")
    sampler = BccSource(SamplerConfig(frequency_hz=99, unwind_cflags=refused))
    try:
        interval = sampler.next_interval()
    finally:
        sampler.close()
    assert interval is not None
    assert interval.unwind == "fp (table walker refused)"
    assert any("refused the table walker" in notice for notice in interval.notices)
    assert interval.samples > 0


def test_doctor_says_whether_this_kernel_loads_the_table_walker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from perftop import config
    from perftop.cli.doctor import check_unwinder

    check = check_unwinder()
    assert (check.name, check.status) == ("user stacks", "ok"), check
    assert ".eh_frame unwind tables" in check.detail
    # The same walker too big for any verifier, as in the test above.
    refused = ("-DPERFTOP_UNWIND_FRAMES=1024", "-DUNWIND_SEARCH_STEPS=64")
    wanted = config.SamplerConfig
    monkeypatch.setattr(
        config, "SamplerConfig", lambda **fields: wanted(unwind_cflags=refused, **fields)
    )
    check = check_unwinder()
    assert (check.name, check.status) == ("user stacks", "warn"), check
    assert check.detail.startswith("frame pointers only: the kernel refused the table walker")
    assert check.remedy
