"""Names for code in stripped binaries: the function an FDE starts, and MiniDebugInfo."""

from __future__ import annotations

import lzma
import subprocess
from pathlib import Path

import pytest

from perftop.symbols.elf import ElfCache
from perftop.unwind.eh_frame import read_call_frame_info
from perftop.unwind.elf import open_elf

SOURCE = r"""
volatile unsigned long sink;
static __attribute__((noinline)) void hidden_work(void) {
    for (int i = 0; i < 1000; i++) sink += i;
}
int main(void) { hidden_work(); return 0; }
"""


@pytest.fixture(scope="module")
def binaries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("stripped")
    source = directory / "prog.c"
    source.write_text(SOURCE)
    full = directory / "prog"
    subprocess.run(["gcc", "-O2", "-o", str(full), str(source)], check=True)
    stripped = directory / "prog.stripped"
    subprocess.run(["strip", "-o", str(stripped), str(full)], check=True)
    # MiniDebugInfo as Fedora makes it: the function symbols .dynsym lacks, in an
    # xz-compressed ELF in .gnu_debugdata of the stripped binary.
    mini = directory / "mini.debug"
    subprocess.run(
        [
            "objcopy",
            "-S",
            "--remove-section",
            ".gdb_index",
            "--remove-section",
            ".comment",
            "--keep-symbol=hidden_work",
            str(full),
            str(mini),
        ],
        check=True,
    )
    compressed = directory / "mini.debug.xz"
    compressed.write_bytes(lzma.compress(mini.read_bytes()))
    with_mini = directory / "prog.mini"
    subprocess.run(
        ["objcopy", f"--add-section=.gnu_debugdata={compressed}", str(stripped), str(with_mini)],
        check=True,
    )
    return {"full": full, "stripped": stripped, "mini": with_mini}


def hidden_work_range(path: Path) -> tuple[int, int]:
    output = subprocess.run(["nm", "-S", str(path)], capture_output=True, text=True, check=True)
    for line in output.stdout.splitlines():
        fields = line.split()
        if fields[-1] == "hidden_work":
            return int(fields[0], 16), int(fields[1], 16)
    raise AssertionError("hidden_work not in nm's output")


def test_a_stripped_function_is_named_by_its_fde_start(binaries: dict[str, Path]) -> None:
    start, size = hidden_work_range(binaries["full"])
    table = ElfCache().table(str(binaries["stripped"]))
    assert table is not None and table.lookup(start + 4) is None  # no symbol covers it
    # Every address inside the function answers with the function's start.
    assert {table.function_start(start + offset) for offset in range(0, size, 3)} == {start}
    image = open_elf(binaries["stripped"])
    try:
        assert start in {fde.start for fde in read_call_frame_info(image).fdes}
    finally:
        image.close()
    assert table.file_offset_of(start) == start  # a PIE's first segment starts at 0


def test_mini_debug_info_names_what_dynsym_does_not(binaries: dict[str, Path]) -> None:
    start, _ = hidden_work_range(binaries["full"])
    table = ElfCache().table(str(binaries["mini"]))
    assert table is not None
    assert table.lookup(start + 4) == ("hidden_work", 4)


def test_damaged_mini_debug_info_means_no_symbols_from_it(
    binaries: dict[str, Path], tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.xz"
    garbage.write_bytes(b"\xfd7zXZ\x00" + b"\x00" * 64)  # an xz header and nothing sane
    damaged = tmp_path / "prog.damaged"
    subprocess.run(
        [
            "objcopy",
            f"--add-section=.gnu_debugdata={garbage}",
            str(binaries["stripped"]),
            str(damaged),
        ],
        check=True,
    )
    table = ElfCache().table(str(damaged))
    assert table is not None and table.error is None  # the rest of the file still reads
    start, _ = hidden_work_range(binaries["full"])
    assert table.function_start(start + 4) == start
    assert table.lookup(start) is None  # not a crash, not a wrong name


def test_a_debug_file_under_usr_lib_debug_build_id_names_a_stripped_binary(
    binaries: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from perftop.symbols import elf as symbols_elf

    debug_root = tmp_path / "debug"
    monkeypatch.setattr(symbols_elf, "DEBUG_ROOT", str(debug_root))
    start, _ = hidden_work_range(binaries["full"])
    without = ElfCache().table(str(binaries["stripped"]))
    assert without is not None and without.lookup(start + 4) is None
    # As Debian's -dbgsym packages install it: the symbols in a file named by the build id.
    build_id = without.build_id
    assert len(build_id) == 40
    debug_file = debug_root / ".build-id" / build_id[:2] / f"{build_id[2:]}.debug"
    debug_file.parent.mkdir(parents=True)
    subprocess.run(
        ["objcopy", "--only-keep-debug", str(binaries["full"]), str(debug_file)], check=True
    )
    table = ElfCache().table(str(binaries["stripped"]))
    assert table is not None
    assert table.lookup(start + 4) == ("hidden_work", 4)
