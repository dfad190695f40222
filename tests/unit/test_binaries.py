"""Where a native frame comes from: its binary (path, build id), its function's offset and
source line (DWARF), the process's mapping; and two binaries of one name never one function."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from perftop.model.samples import StackSample
from perftop.profile.aggregate import function_stats
from perftop.symbols.elf import ElfCache
from perftop.symbols.lines import MAX_LINE_PROGRAM_BYTES, read_line_table
from perftop.symbols.process import NativeResolver
from perftop.symbols.user import ModuleNames, UserSymbols
from perftop.system.procfs import read_maps

SPIN_SOURCE = """\
#include <stdlib.h>
volatile unsigned long sink;

__attribute__((noinline)) void c_spin(double seconds) {
    for (unsigned long i = 0; i < (unsigned long)(seconds * 4e8); i++)
        sink += i;
}

int main(int argc, char **argv) {
    c_spin(argc > 1 ? atof(argv[1]) : 30.0);
    return 0;
}
"""
SPIN_LINE = 4  # the line `c_spin` is defined on (its opening brace there too: its first row)


def build(directory: Path, *flags: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    source = directory / "spin.c"
    source.write_text(SPIN_SOURCE)
    binary = directory / "chain"
    subprocess.run(["gcc", "-O0", *flags, "-o", str(binary), str(source)], check=True)
    return binary


def symbol_value(binary: Path, name: str) -> int:
    with binary.open("rb") as stream:
        symtab = ELFFile(stream).get_section_by_name(".symtab")
        return next(s["st_value"] for s in symtab.iter_symbols() if s.name == name)  # type: ignore[union-attr]


def runtime_address(pid: int, binary: Path, vaddr: int) -> int:
    """Where `vaddr` of `binary` is in process `pid`."""
    table = ElfCache().table(str(binary))
    assert table is not None
    offset = table.file_offset_of(vaddr)
    assert offset is not None
    mapping = next(
        m
        for m in read_maps(pid) or []
        if m.path == str(binary) and m.offset <= offset < m.offset + (m.end - m.start)
    )
    return mapping.start + offset - mapping.offset


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    binary = build(tmp_path / "a", "-g")
    process = subprocess.Popen([str(binary), "30"])
    time.sleep(0.1)
    try:
        yield binary, process
    finally:
        process.kill()
        process.wait()


def test_line_table_of_a_g_build_gives_the_function_line(tmp_path: Path) -> None:
    binary = build(tmp_path, "-g")
    with binary.open("rb") as stream:
        table = read_line_table(stream)
    assert table is not None
    source, line = table.line_of(symbol_value(binary, "c_spin")) or ("", 0)
    assert source == str(tmp_path / "spin.c") and line == SPIN_LINE


def test_no_line_table_without_g_and_hostile_files_mean_none(tmp_path: Path) -> None:
    binary = build(tmp_path, "-g0")
    with binary.open("rb") as stream:
        assert read_line_table(stream) is None
    hostile = tmp_path / "hostile"
    hostile.write_bytes(b"\x7fELF\x02\x01\x01" + b"\xff" * 300)
    with hostile.open("rb") as stream:
        assert read_line_table(stream) is None
    assert MAX_LINE_PROGRAM_BYTES <= 16 << 20  # bounded: the sampler thread parses it


def test_a_resolved_frame_knows_its_binary_offset_source_and_mapping(
    running: tuple[Path, subprocess.Popen[bytes]],
) -> None:
    binary, process = running
    start = symbol_value(binary, "c_spin")
    resolver = NativeResolver(process.pid, ElfCache())
    resolution = resolver.resolve(runtime_address(process.pid, binary, start + 4))
    assert resolution.symbol == "c_spin" and resolution.native is not None
    native = resolution.native
    build_id = (
        subprocess.run(["readelf", "-n", str(binary)], capture_output=True, text=True, check=True)
        .stdout.split("Build ID:")[1]
        .split()[0]
    )
    assert (native.path, native.build_id) == (str(binary), build_id)
    table = ElfCache().table(str(binary))
    assert table is not None and native.offset == table.file_offset_of(start)
    assert (native.source, native.line) == (str(binary.parent / "spin.c"), SPIN_LINE)
    (mapping,) = resolver.mappings()
    assert mapping.path == str(binary) and mapping.build_id == build_id
    assert mapping.start <= runtime_address(process.pid, binary, start) < mapping.limit


def test_module_names_tell_binaries_of_one_basename_apart() -> None:
    names = ModuleNames()
    assert names.name("/opt/a/bin/chain", "aa") == "chain"
    assert names.name("/opt/b/bin/chain", "bb") == "b/bin/chain"
    assert names.name("/opt/a/bin/chain", "aa") == "chain"  # kept for the session
    assert names.name("/srv/chain", "cc") == "srv/chain"
    # The same path rebuilt (an old process still runs the old one): told by build id.
    assert names.name("/opt/a/bin/chain", "dd") == "chain [dd]"
    assert names.name("/usr/lib/libc.so.6", "ee") == "libc.so.6"
    # A build id not read (another user's file) is the same path's binary, either way round.
    assert names.name("/usr/lib/libc.so.6", "") == "libc.so.6"
    assert names.name("/opt/denied/tool", "") == "tool"
    assert names.name("/opt/denied/tool", "ff") == "tool"


def test_two_binaries_of_one_name_are_two_functions(tmp_path: Path) -> None:
    first = build(tmp_path / "one")
    second = build(tmp_path / "two")
    processes = [subprocess.Popen([str(binary), "30"]) for binary in (first, second)]
    time.sleep(0.1)
    try:
        symbols = UserSymbols(lambda pid: NativeResolver(pid, ElfCache()))
        stacks = []
        for process, binary in zip(processes, (first, second), strict=True):
            address = runtime_address(process.pid, binary, symbol_value(binary, "main") + 4)
            (frame,) = symbols.chain(process.pid, (address,))
            assert frame.symbol == "main"
            stacks.append(StackSample(process.pid, process.pid, "chain", (frame,), 5, 50))
        rows = function_stats(stacks)
        assert [(row.symbol, row.module, row.self_samples) for row in rows] == [
            ("main", "chain", 5),
            ("main", "two/chain", 5),
        ]
    finally:
        for process in processes:
            process.kill()
            process.wait()


def test_a_stripped_function_is_one_frame_at_its_start(tmp_path: Path) -> None:
    full = build(tmp_path / "full")
    start = symbol_value(full, "c_spin")
    stripped = tmp_path / "stripped" / "chain"
    stripped.parent.mkdir()
    subprocess.run(["strip", "-o", str(stripped), str(full)], check=True)
    process = subprocess.Popen([str(stripped), "30"])
    time.sleep(0.1)
    try:
        symbols = UserSymbols(lambda pid: NativeResolver(pid, ElfCache()))
        frames = {
            symbols.frame(process.pid, runtime_address(process.pid, stripped, start + inside))
            for inside in (4, 12, 20)
        }
        (frame,) = frames  # three addresses, one function: one frame, one pprof Location
        table = ElfCache().table(str(stripped))
        assert table is not None and frame.native is not None
        assert frame.native.offset == table.file_offset_of(start)
        assert frame.symbol == f"chain+0x{frame.native.offset:x}" and not frame.resolved
    finally:
        process.kill()
        process.wait()


def test_native_code_is_interned_so_frames_hash_it_by_identity() -> None:
    from perftop.model.samples import NativeCode

    first = NativeCode("/opt/a/chain", "aa", 0x1100, "/opt/a/chain.c", 4)
    assert NativeCode("/opt/a/chain", "aa", 0x1100, "/opt/a/chain.c", 4) is first
    assert NativeCode("/opt/a/chain", "bb", 0x1100, "/opt/a/chain.c", 4) is not first
    assert list(first) == ["/opt/a/chain", "aa", 0x1100, "/opt/a/chain.c", 4]
    with pytest.raises(AttributeError):
        first.offset = 0  # type: ignore[misc]


def test_compressed_debug_sections_are_not_inflated(tmp_path: Path) -> None:
    """A compressed .debug_* section says its own inflated size: a binary in a watched process
    could make perftop inflate gigabytes, so such a file gives no line table."""
    binary = build(tmp_path, "-g", "-gz=zlib")
    with binary.open("rb") as stream:
        flags = [s["sh_flags"] for s in ELFFile(stream).iter_sections() if s.name == ".debug_info"]
        assert flags and flags[0] & 0x800  # SHF_COMPRESSED: the build did compress
        stream.seek(0)
        assert read_line_table(stream) is None


def test_one_binary_in_two_processes_is_one_place_and_a_copy_another(tmp_path: Path) -> None:
    """Processes of one binary name an address by the same place (file identity, path,
    offset), so UserSymbols names it once for all of them; a copy of the binary (another
    inode) is another place, and its frames are its own."""
    binary = build(tmp_path / "one")
    copy = tmp_path / "copy" / "chain"
    copy.parent.mkdir()
    copy.write_bytes(binary.read_bytes())
    copy.chmod(0o755)
    processes = [subprocess.Popen([str(path), "30"]) for path in (binary, binary, copy)]
    time.sleep(0.1)
    try:
        cache = ElfCache()
        start = symbol_value(binary, "c_spin")
        places = []
        for process, path in zip(processes, (binary, binary, copy), strict=True):
            resolver = NativeResolver(process.pid, cache)
            places.append(resolver.place(runtime_address(process.pid, path, start + 4)))
            assert [mapping.path for mapping in resolver.mappings()] == [str(path)]
        assert places[0] is not None and places[0] == places[1]
        assert places[2] is not None and places[2] != places[0]
    finally:
        for process in processes:
            process.kill()
            process.wait()


def test_a_stripped_binary_takes_its_function_starts_from_the_unwind_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a stripped binary whose unwind table perftop built (and cached by build id),
    when its symbols need the function starts, then they are read back from that cache, not
    decoded from its .eh_frame a second time; and they are the same starts."""
    from perftop.symbols import elf
    from perftop.unwind import cache

    full = build(tmp_path / "full")
    start = symbol_value(full, "c_spin")
    stripped = tmp_path / "stripped" / "chain"
    stripped.parent.mkdir()
    subprocess.run(["strip", "-o", str(stripped), str(full)], check=True)
    decoded = ElfCache().table(str(stripped))
    assert decoded is not None and decoded.function_start(start + 4) == start
    root = tmp_path / "cache"
    root.mkdir(mode=0o700)
    built = cache.load_unwind_info(stripped, root)
    assert not built.from_cache
    monkeypatch.setattr(cache, "default_cache_root", lambda: root)

    def refused(*args: object) -> None:
        raise AssertionError(".eh_frame decoded again")

    monkeypatch.setattr(elf, "_function_starts", refused)
    table = ElfCache().table(str(stripped))
    assert table is not None and table.function_start(start + 4) == start
    assert table.function_starts == decoded.function_starts


def test_a_damaged_unwind_cache_file_is_not_where_function_starts_come_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from perftop.unwind import cache

    full = build(tmp_path / "full")
    start = symbol_value(full, "c_spin")
    stripped = tmp_path / "stripped" / "chain"
    stripped.parent.mkdir()
    subprocess.run(["strip", "-o", str(stripped), str(full)], check=True)
    root = tmp_path / "cache"
    root.mkdir(mode=0o700)
    built = cache.load_unwind_info(stripped, root)
    assert built.build_id is not None
    cache_file = root / "unwind" / f"{built.build_id.hex()}.bin"
    content = bytearray(cache_file.read_bytes())
    content[-16:-8] = (1).to_bytes(8, "little")  # the last function now starts at 1
    cache_file.write_bytes(bytes(content))
    monkeypatch.setattr(cache, "default_cache_root", lambda: root)
    assert cache.cached_function_starts(built.build_id.hex()) is None  # its checksum fails
    table = ElfCache().table(str(stripped))
    assert table is not None and table.function_start(start + 4) == start
