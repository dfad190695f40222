"""The small ELF reader against binutils on real binaries, and against broken files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from perftop.python.elf import ET_DYN, ET_EXEC, ElfError, read_elf

DEBIAN_PYTHON = "/usr/bin/python3.11"
WANTED = ("_PyRuntime", "Py_Version", "PyCode_Type", "PyUnicode_Type")


def nm_dynamic(path: str) -> dict[str, int]:
    if shutil.which("nm") is None:
        pytest.skip("binutils' nm not installed")
    listing = subprocess.run(["nm", "-D", "--defined-only", path], capture_output=True, text=True)
    symbols = {}
    for line in listing.stdout.splitlines():
        fields = line.split()
        if len(fields) == 3:
            symbols[fields[2].split("@")[0]] = int(fields[0], 16)
    return symbols


def test_debian_python_symbols_match_nm() -> None:
    image = read_elf(DEBIAN_PYTHON, WANTED)
    expected = nm_dynamic(DEBIAN_PYTHON)
    assert image.object_type == ET_EXEC
    assert {name: value for name, (value, _) in image.symbols.items()} == {
        name: expected[name] for name in WANTED
    }
    assert {table for _, table in image.symbols.values()} == {"dynsym"}
    section = image.section(".PyRuntime")
    assert section is not None and section.address == expected["_PyRuntime"]


def test_a_shared_library_is_position_independent() -> None:
    libc = next(
        (p for p in ("/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6")
         if Path(p).exists()),
        None,
    )  # fmt: skip
    if libc is None:
        pytest.skip("no x86-64 libc")
    image = read_elf(libc, ("malloc", "no_such_symbol_anywhere"))
    assert image.object_type == ET_DYN and image.is_position_independent
    assert image.symbols["malloc"][0] == nm_dynamic(libc)["malloc"]
    assert "no_such_symbol_anywhere" not in image.symbols


@pytest.mark.parametrize(
    "content",
    [b"", b"\x7fELF", b"not an elf file at all" * 10, b"\x7fELF\x01\x01" + b"\0" * 58],
    ids=["empty", "magic-only", "text", "elf32"],
)
def test_broken_files_raise_elf_error(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "broken"
    path.write_bytes(content)
    with pytest.raises(ElfError):
        read_elf(str(path), WANTED)


def test_a_truncated_real_binary_raises_elf_error(tmp_path: Path) -> None:
    path = tmp_path / "truncated"
    path.write_bytes(Path(DEBIAN_PYTHON).read_bytes()[:4096])
    with pytest.raises(ElfError):
        read_elf(str(path), WANTED)
