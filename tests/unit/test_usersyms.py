"""User symbols read by perftop itself: ELF tables, perf maps, mappings of live processes."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from perftop.model.reasons import Unresolved
from perftop.symbols.elf import ElfCache, demangle, read_symbol_table
from perftop.symbols.perfmap import MAX_MAP_BYTES, PerfMapReader, open_checked, parse_perf_map
from perftop.symbols.process import NativeResolver
from perftop.system.procfs import read_maps

CHAIN_SOURCE = Path(__file__).parents[1] / "bpf" / "chain.c"


def test_demangles_cpp_and_leaves_c_alone() -> None:
    assert demangle("_ZN3foo3barEv") == "foo::bar()"
    assert demangle("main") == "main"
    assert demangle("_Znot_really_mangled") == "_Znot_really_mangled"


def test_resolves_a_libc_function_in_this_process() -> None:
    libc = ctypes.CDLL("libc.so.6")
    address = ctypes.cast(libc.getpid, ctypes.c_void_p).value
    assert address is not None
    resolution = NativeResolver(os.getpid(), ElfCache()).resolve(address)
    assert resolution.symbol in ("getpid", "__getpid")
    assert resolution.offset == 0
    assert resolution.module is not None and "libc" in os.path.basename(resolution.module)


def test_anonymous_memory_without_perf_map_says_jit() -> None:
    import mmap

    protection = mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC
    for flags in (mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, mmap.MAP_SHARED):  # shared: /dev/zero
        region = mmap.mmap(-1, 4096, flags=flags, prot=protection)
        address = ctypes.addressof(ctypes.c_char.from_buffer(region))
        resolution = NativeResolver(os.getpid(), ElfCache()).resolve(address)
        assert resolution.symbol is None and resolution.reason is Unresolved.JIT


def test_a_gone_process() -> None:
    process = subprocess.Popen(["true"])
    process.wait()
    resolution = NativeResolver(process.pid, ElfCache()).resolve(0x401000)
    assert resolution.reason is Unresolved.GONE


@pytest.mark.skipif(os.geteuid() != 0, reason="/proc/PID/map_files needs root")
def test_deleted_binary_still_resolves(tmp_path: Path) -> None:
    binary = tmp_path / "doomed"
    subprocess.run(
        ["gcc", "-O0", "-fno-omit-frame-pointer", "-o", str(binary), str(CHAIN_SOURCE)], check=True
    )
    table = ElfCache().table(str(binary))
    assert table is not None
    leaf = table.symbols.starts[table.symbols.names.index("leaf_spin")]
    process = subprocess.Popen([str(binary), "30"])
    try:
        time.sleep(0.2)
        binary.unlink()  # deleted while it runs (an upgrade, or a hostile process hiding)
        mapping = next(m for m in read_maps(process.pid) or [] if "doomed" in m.path)
        assert mapping.path.endswith("(deleted)")
        base = mapping.start - mapping.offset  # file offset 0 is mapped here
        loaded = next(seg for seg in table.segments if seg[0] <= mapping.offset < seg[0] + seg[1])
        address = base + leaf - loaded[2] + loaded[0]
        resolution = NativeResolver(process.pid, ElfCache()).resolve(address)
        assert resolution.symbol == "leaf_spin"
    finally:
        process.kill()
        process.wait()


@pytest.mark.parametrize(
    "content",
    [b"", b"\x7fELF", b"\x7fELF\x02\x01\x01" + b"\xff" * 200, os.urandom(4096)],
    ids=["empty", "magic-only", "garbage-header", "random"],
)
def test_hostile_elf_means_no_symbols_not_a_crash(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "hostile"
    path.write_bytes(content)
    with path.open("rb") as stream:
        table = read_symbol_table(stream, len(content), str(path))
    assert not table.has_symbols and table.error


def test_perf_map_parsing_skips_malformed_lines() -> None:
    perf_map = parse_perf_map(
        b"1000 10 good_one\nzz 10 bad_hex\n2000 0 zero_size\n3000\n"
        b"4000 20 with spaces in name\n\xff\xfe 1 2\n"
    )
    assert perf_map.names == ["good_one", "with spaces in name"]
    assert perf_map.lookup(0x1008) == ("good_one", 8)
    assert perf_map.lookup(0x1010) is None
    assert len(parse_perf_map(b"1 1 a\n" * 100, max_entries=10).names) == 10


def test_perf_map_symlink_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "secret"
    target.write_text("1000 10 secret\n")
    link = tmp_path / "perf-1.map"
    link.symlink_to(target)
    assert open_checked(str(link), os.geteuid()) == (None, Unresolved.PERF_MAP_SYMLINK)


def test_perf_map_of_another_user_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "perf-1.map"
    path.write_text("1000 10 f\n")
    if os.geteuid() == 0:
        os.chown(path, 12345, 12345)
        data, problem = open_checked(str(path), 999)
        assert data is None and problem is Unresolved.PERF_MAP_FOREIGN_OWNER
        assert open_checked(str(path), 12345)[0] == b"1000 10 f\n"


def test_perf_map_fifo_does_not_block_and_huge_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.map"
    os.mkfifo(fifo)
    started = time.monotonic()
    assert open_checked(str(fifo), os.geteuid()) == (
        None,
        Unresolved.PERF_MAP_NOT_REGULAR,
    )
    assert time.monotonic() - started < 1
    huge = tmp_path / "huge.map"
    with huge.open("wb") as stream:
        stream.truncate(MAX_MAP_BYTES + 1)  # sparse: costs no disk
    data, problem = open_checked(str(huge), os.geteuid())
    assert data is None and problem is Unresolved.PERF_MAP_TOO_LARGE


def test_perf_map_reader_of_a_process(tmp_path: Path) -> None:
    process = subprocess.Popen(["sleep", "30"])
    path = Path(f"/tmp/perf-{process.pid}.map")
    try:
        path.write_text("7f0000001000 100 jitted_function\n")
        reader = PerfMapReader(process.pid)
        assert reader.lookup(0x7F0000001010) == ("jitted_function", 0x10)
    finally:
        path.unlink(missing_ok=True)
        process.kill()
        process.wait()


def test_elf_cache_is_bounded_and_keyed_by_file_identity(tmp_path: Path) -> None:
    cache = ElfCache(max_files=2)
    copies = []
    for index in range(3):
        copy = tmp_path / f"true{index}"
        shutil.copy("/usr/bin/true", copy)
        copies.append(copy)
        cache.table(str(copy))
    assert len(cache) == 2
