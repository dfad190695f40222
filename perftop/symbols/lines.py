"""Source lines of native code from DWARF `.debug_line`, for the formats that show them
(pprof's Function.filename, Line.line, `pprof -list`).

Read with pyelftools' line program decoder, once per binary (the ElfCache's SymbolTable holds
the result, so it is shared and evicted with the symbols), on the sampler thread that resolves
the frames: never on the UI thread, which only encodes what the frames already carry. Bounded:
a `.debug_line` larger than MAX_LINE_PROGRAM_BYTES is not read (pyelftools decodes ~1 MB/s,
so the first sample of a big -g binary costs at most a few seconds of that thread once), and
at most MAX_LINE_ROWS rows are kept. Any parse failure means "no lines", never a crash: the
file may be hostile.
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from elftools.elf.elffile import ELFFile

MAX_LINE_PROGRAM_BYTES = 4 << 20
MAX_LINE_ROWS = 1 << 20
MAX_PATH = 4096


@dataclass(slots=True)
class LineTable:
    """Rows of the line programs, by address: (file, line) from each row's address on."""

    addresses: list[int] = field(default_factory=list)
    places: list[tuple[str, int]] = field(default_factory=list)  # ("", 0) past a sequence

    def line_of(self, vaddr: int) -> tuple[str, int] | None:
        index = bisect.bisect_right(self.addresses, vaddr) - 1
        if index < 0:
            return None
        place = self.places[index]
        return None if not place[0] else place


def _attribute(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _file_names(program: Any, comp_dir: str) -> list[str]:
    """The line program's file table as paths, indexed as its rows name them (DWARF 5 from
    0, earlier versions from 1: index 0 of the list is then unused)."""
    version = program.header["version"]
    directories = [_attribute(d) for d in program.header["include_directory"]]
    if version < 5:
        directories = [comp_dir, *directories]  # directory 0 is the compilation's
    names = [] if version >= 5 else [""]
    for entry in program.header["file_entry"]:
        name = _attribute(entry.name)
        index = entry.dir_index
        directory = directories[index] if 0 <= index < len(directories) else ""
        if directory and not os.path.isabs(directory) and comp_dir:
            directory = os.path.join(comp_dir, directory)
        path = name if os.path.isabs(name) else os.path.join(directory, name)
        names.append(os.path.normpath(path)[:MAX_PATH] if path else "")
    return names


# get_dwarf_info() reads every .debug_* section whole (and inflates compressed ones): what a
# binary in a watched process may make perftop hold is bounded before it is asked to.
MAX_DEBUG_SECTIONS_BYTES = 64 << 20
SHF_COMPRESSED = 0x800


def _debug_sections_bounded(elf: ELFFile) -> bool:
    """No compressed debug section (its inflated size is the file's word) and all of them
    together under MAX_DEBUG_SECTIONS_BYTES."""
    total = 0
    for section in elf.iter_sections():
        name = section.name
        if not name.startswith((".debug_", ".zdebug_")):
            continue
        if name.startswith(".zdebug_") or section["sh_flags"] & SHF_COMPRESSED:
            return False
        total += section["sh_size"]
    return total <= MAX_DEBUG_SECTIONS_BYTES


def read_line_table(stream: BinaryIO) -> LineTable | None:
    """The line table of an open ELF file, or None when it has none (or too large a one)."""
    try:
        elf = ELFFile(stream)
        section = elf.get_section_by_name(".debug_line")
        if section is None or section["sh_size"] > MAX_LINE_PROGRAM_BYTES:
            return None
        if not _debug_sections_bounded(elf):
            return None
        dwarf = elf.get_dwarf_info()
        rows: list[tuple[int, str, int]] = []
        for unit in dwarf.iter_CUs():
            program = dwarf.line_program_for_CU(unit)
            if program is None:
                continue
            comp_dir = _attribute(
                getattr(unit.get_top_DIE().attributes.get("DW_AT_comp_dir"), "value", "")
            )
            names = _file_names(program, comp_dir)
            for entry in program.get_entries():
                state = entry.state
                if state is None:
                    continue
                if state.end_sequence:
                    rows.append((state.address, "", 0))
                    continue
                name = names[state.file] if 0 <= state.file < len(names) else ""
                rows.append((state.address, name, state.line))
                if len(rows) > MAX_LINE_ROWS:
                    return None
    except Exception:  # hostile or truncated DWARF: pyelftools raises many kinds
        return None
    if not rows:
        return None
    # A sequence's end and the next one's start may share an address: the start wins.
    rows.sort(key=lambda row: (row[0], bool(row[1])))
    table = LineTable()
    for address, name, line in rows:
        if table.addresses and table.addresses[-1] == address:
            table.places[-1] = (name, line)
            continue
        table.addresses.append(address)
        table.places.append((name, line))
    return table
