"""PLT stubs named `symbol@plt` from the relocations, checked against objdump, in every layout
binutils makes (classic .plt, IBT's .plt + .plt.sec, .plt.got) and in the real pyenv Python and
libc; zero-size symbols (`_init`) never absorb the .plt after them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from perftop.symbols.elf import ElfCache

# Calls through the PLT only: a shared helper library makes every call an import, and taking
# `helper_a`'s address as well puts it in .plt.got (a GLOB_DAT slot) instead of .plt.
LIBRARY = r"""
int helper_a(int x) { return x * 3 + 1; }
int helper_b(int x) { return x ^ 0x55; }
int helper_c(int x) { return x + 7; }
"""
PROGRAM = r"""
#include <string.h>
extern int helper_a(int), helper_b(int), helper_c(int);
int (*volatile taken)(int) = helper_a;
int main(int argc, char **argv) {
    volatile int total = 0;
    for (long i = 0; i < (argc > 1 ? 2000000000L : 1000L); i++)
        total += helper_a(i) + helper_b(i) + helper_c(i) + (int)strlen(argv[0]);
    return total == 42;
}
"""
LAYOUTS = {
    "classic": ["-fcf-protection=none"],
    "ibt": ["-fcf-protection=full", "-Wl,-z,ibtplt"],
    "ibt_now": ["-fcf-protection=full", "-Wl,-z,ibtplt,-z,now"],
    "lazy_nopie": ["-fcf-protection=none", "-no-pie", "-Wl,-z,lazy"],
}
PLT_SECTIONS = ["-j", ".plt", "-j", ".plt.sec", "-j", ".plt.got"]


def build_plt_program(directory: Path, flags: list[str], name: str = "pltprog") -> Path:
    (directory / "helpers.c").write_text(LIBRARY)
    (directory / "prog.c").write_text(PROGRAM)
    library = directory / "libhelpers.so"
    subprocess.run(
        ["gcc", "-O1", "-shared", "-fPIC", "-o", str(library), str(directory / "helpers.c")],
        check=True,
    )
    binary = directory / name
    subprocess.run(
        [
            *("gcc", "-O1", *flags, "-o", str(binary), str(directory / "prog.c")),
            *(f"-L{directory}", "-lhelpers", f"-Wl,-rpath,{directory}"),
        ],
        check=True,
    )
    return binary


def objdump_plt_names(path: Path) -> dict[int, str]:
    """Address -> `name@plt` as objdump -d labels each stub."""
    output = subprocess.run(
        ["objdump", "-d", *PLT_SECTIONS, str(path)], capture_output=True, text=True, check=True
    ).stdout
    return {
        int(match[1], 16): match[2]
        for match in re.finditer(r"^([0-9a-f]+) <([^>]+@plt)>:", output, re.MULTILINE)
    }


def perftop_plt_names(path: Path) -> dict[int, str]:
    table = ElfCache().table(str(path))
    assert table is not None and table.error is None
    symbols = table.symbols
    return {
        symbols.starts[index]: symbols.name(index)
        for index in range(len(symbols))
        if symbols.name(index).endswith("@plt")
    }


def assert_names_match_objdump(path: Path) -> int:
    expected = objdump_plt_names(path)
    found = perftop_plt_names(path)
    table = ElfCache().table(str(path))
    assert table is not None
    for address, name in expected.items():
        if name.startswith("*ABS*+0x"):
            # objdump cannot name an IRELATIVE slot; perftop names it by the IFUNC there.
            assert found.get(address, "").endswith("@plt"), (hex(address), name)
        else:
            assert found.get(address) == name, (hex(address), name, found.get(address))
        # Every byte of the stub is charged to it, not to `_init` or to the stub before.
        for inside in (address, address + 5):
            looked = table.lookup(table.vaddr_of(inside) or inside)
            assert looked is not None and looked[0] == found[address], (hex(inside), looked)
    return len(expected)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_plt_stubs_named_as_objdump_names_them(tmp_path: Path, layout: str) -> None:
    binary = build_plt_program(tmp_path, LAYOUTS[layout])
    sections = subprocess.run(
        ["readelf", "-SW", str(binary)], capture_output=True, text=True, check=True
    ).stdout
    if layout.startswith("ibt"):
        assert ".plt.sec" in sections  # the layout under test really is the IBT one
    names = set(perftop_plt_names(binary).values())
    assert {"helper_b@plt", "helper_c@plt", "strlen@plt"} <= names
    assert assert_names_match_objdump(binary) >= 3


def test_init_zero_size_stops_at_its_section(tmp_path: Path) -> None:
    """`_init` (size 0 in crti.o) used to reach to the next symbol, over all of .plt."""
    binary = build_plt_program(tmp_path, LAYOUTS["classic"])
    table = ElfCache().table(str(binary))
    assert table is not None
    headers = subprocess.run(
        ["readelf", "-SW", str(binary)], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"\] \.plt\s+PROGBITS\s+([0-9a-f]+) [0-9a-f]+ ([0-9a-f]+)", headers)
    assert match is not None
    plt_start, plt_size = int(match[1], 16), int(match[2], 16)
    for address in range(plt_start, plt_start + plt_size):
        found = table.lookup(address)
        assert found is None or found[0] != "_init", hex(address)


PYENV_ROOT = Path("/root/.pyenv")


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(Path("/lib/x86_64-linux-gnu/libc.so.6"), id="libc"),
        pytest.param(
            next(iter(sorted(PYENV_ROOT.glob("versions/3.12*/lib/libpython3.12.so*"))), None),
            id="pyenv-libpython3.12",
        ),
    ],
)
def test_plt_names_of_real_libraries(path: Path | None) -> None:
    if path is None or not path.exists() or shutil.which("objdump") is None:
        pytest.skip("no such library on this machine")
    assert assert_names_match_objdump(path) > 10
