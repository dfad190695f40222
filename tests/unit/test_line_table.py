"""perftop's own .debug_line decoder: the rows pyelftools' decoder gives, held in arrays, with
none of pyelftools' per-row objects for the cyclic collector to walk, and no crash on a
corrupt line program."""

from __future__ import annotations

import gc
import os
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from elftools.elf.elffile import ELFFile

from perftop.symbols.lines import LineTable, read_line_table

FUNCTIONS = 800
HEADER = "static inline int twice(int x) { return 2 * x; }\n"


def many_functions(directory: Path) -> None:
    """A source of FUNCTIONS functions in src/, calling an inline function of a header in
    include/: rows of two files in two directories, both named relative to the build's."""
    (directory / "src").mkdir(parents=True, exist_ok=True)
    (directory / "include").mkdir(exist_ok=True)
    (directory / "include" / "twice.h").write_text(HEADER)
    body = ['#include "twice.h"', "volatile int sink;"]
    for index in range(FUNCTIONS):
        body.append(f"__attribute__((noinline)) int f{index}(int x) {{")
        body.append(f"    sink += twice(x + {index});")
        body.append("    return sink;")
        body.append("}")
    body.append("int main(void) { return " + " + ".join(f"f{i}(1)" for i in range(8)) + "; }")
    (directory / "src" / "many.c").write_text("\n".join(body) + "\n")


def build(directory: Path, dwarf: str) -> Path:
    many_functions(directory)
    binary = directory / f"many-{dwarf}"
    subprocess.run(
        ["gcc", "-O0", f"-g{dwarf}", "-Iinclude", "-o", binary.name, "src/many.c"],
        cwd=directory,
        check=True,
    )
    return binary


@pytest.fixture(scope="module", params=["dwarf-4", "dwarf-5"])
def binary(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp(request.param), request.param)


def pyelftools_rows(path: Path) -> dict[int, tuple[str, int] | None]:
    """What pyelftools' decoder says at each row's address: the reference (perftop's earlier
    reader, which kept these objects)."""
    rows: list[tuple[int, str, int]] = []
    with path.open("rb") as stream:
        dwarf = ELFFile(stream).get_dwarf_info()
        for unit in dwarf.iter_CUs():
            program = dwarf.line_program_for_CU(unit)
            assert program is not None
            comp_dir = unit.get_top_DIE().attributes["DW_AT_comp_dir"].value.decode()
            version = program.header["version"]
            directories = [d.decode() for d in program.header["include_directory"]]
            if version < 5:
                directories = [comp_dir, *directories]
            names = [] if version >= 5 else [""]
            for entry in program.header["file_entry"]:
                directory = directories[entry.dir_index]
                if not os.path.isabs(directory):
                    directory = os.path.join(comp_dir, directory)
                names.append(os.path.normpath(os.path.join(directory, entry.name.decode())))
            for item in program.get_entries():
                state: Any = item.state
                if state is None:
                    continue
                if state.end_sequence:
                    rows.append((state.address, "", 0))
                else:
                    rows.append((state.address, names[state.file], state.line))
    rows.sort(key=lambda row: (row[0], bool(row[1])))
    places: dict[int, tuple[str, int] | None] = {}
    for address, name, line in rows:
        places[address] = (name, line) if name else None
    return places


def test_the_rows_are_pyelftools_rows(binary: Path) -> None:
    expected = pyelftools_rows(binary)
    with binary.open("rb") as stream:
        table = read_line_table(stream)
    assert table is not None
    assert list(table.addresses) == sorted(expected)
    for address, place in expected.items():
        assert table.line_of(address) == place, hex(address)
        if address + 1 not in expected:
            assert table.line_of(address + 1) == place, hex(address + 1)
    sources = {place[0] for place in expected.values() if place}
    # Both files, each under its own directory, made absolute from the build's directory.
    assert {Path(source).name for source in sources} == {"many.c", "twice.h"}
    assert all(os.path.isabs(source) for source in sources)
    assert len(expected) > FUNCTIONS  # each function has rows of its own


def test_the_table_gives_the_collector_nothing_to_walk(binary: Path) -> None:
    """Collections during the read see about as many objects as before it (pyelftools' reader
    kept three per row alive until it ended)."""
    gc.collect()
    before = len(gc.get_objects())
    seen: list[int] = []

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            seen.append(len(gc.get_objects()))

    thresholds = gc.get_threshold()
    gc.set_threshold(50)  # collect often, so the reader is seen while it works
    gc.callbacks.append(watch)
    try:
        with binary.open("rb") as stream:
            table = read_line_table(stream)
    finally:
        gc.callbacks.remove(watch)
        gc.set_threshold(*thresholds)
    assert table is not None and len(table.addresses) > FUNCTIONS * 3
    assert seen, "no collection ran during the read"
    assert max(seen) - before < len(table.addresses) // 2


def corrupted(data: bytes, start: int, size: int, rng: random.Random) -> Iterator[bytes]:
    for _ in range(40):
        copy = bytearray(data)
        for _ in range(rng.randint(1, 12)):
            copy[start + rng.randrange(size)] = rng.randrange(256)
        yield bytes(copy)


def test_a_corrupt_line_program_gives_a_table_or_none(binary: Path, tmp_path: Path) -> None:
    with binary.open("rb") as stream:
        section = ELFFile(stream).get_section_by_name(".debug_line")
        assert section is not None
        start, size = section["sh_offset"], section["sh_size"]
    data = binary.read_bytes()
    rng = random.Random(1729)
    results = []
    target = tmp_path / "corrupt"
    for copy in corrupted(data, start, size, rng):
        target.write_bytes(copy)
        with target.open("rb") as stream:
            table = read_line_table(stream)
        assert table is None or isinstance(table, LineTable)
        if table is not None:
            assert list(table.addresses) == sorted(set(table.addresses))
            assert all(0 <= index < len(table.names) for index in table.files)
        results.append(table is None)
    assert not all(results)  # a corrupted row here and there still leaves a table


def test_a_header_that_lies_about_its_length_ends_the_programs(tmp_path: Path) -> None:
    binary = build(tmp_path, "dwarf-5")
    with binary.open("rb") as stream:
        section = ELFFile(stream).get_section_by_name(".debug_line")
        assert section is not None
        start = section["sh_offset"]
    data = bytearray(binary.read_bytes())
    data[start : start + 4] = (0xFFFFFFF0).to_bytes(4, "little")  # past the section
    target = tmp_path / "lying"
    target.write_bytes(bytes(data))
    with target.open("rb") as stream:
        assert read_line_table(stream) is None
