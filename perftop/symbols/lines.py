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
from array import array
from dataclasses import dataclass
from typing import Any, BinaryIO

from elftools.elf.elffile import ELFFile

MAX_LINE_PROGRAM_BYTES = 4 << 20
MAX_LINE_ROWS = 1 << 20
MAX_PATH = 4096
MAX_FILES = 1 << 16


@dataclass(frozen=True, slots=True)
class LineTable:
    """Rows of the line programs, by address: (file, line) from each row's address on. Held as
    arrays and one list of file names, which the cyclic collector has nothing to walk in."""

    addresses: array[int]  # sorted
    files: array[int]  # index into names; 0 past a sequence's end
    lines: array[int]
    names: list[str]  # names[0] == ""

    @classmethod
    def from_rows(
        cls, addresses: array[int], files: array[int], lines: array[int], names: list[str]
    ) -> LineTable:
        """Sorted by address. A sequence's end and the next one's start may share an address:
        the start wins."""
        count = len(addresses)
        # One int per row, (address, has a file, row): sorting ints is what CPython does fastest,
        # and the rows of a program are mostly in order already.
        keys = sorted((addresses[row] << 1 | (files[row] != 0)) << 21 | row for row in range(count))
        table = cls(array("Q"), array("I"), array("I"), names)
        mask = (1 << 21) - 1
        for key in keys:
            row = key & mask
            address = addresses[row]
            if table.addresses and table.addresses[-1] == address:
                table.files[-1], table.lines[-1] = files[row], lines[row]
                continue
            table.addresses.append(address)
            table.files.append(files[row])
            table.lines.append(lines[row])
        return table

    def line_of(self, vaddr: int) -> tuple[str, int] | None:
        index = bisect.bisect_right(self.addresses, vaddr) - 1
        if index < 0 or not self.files[index]:
            return None
        name = self.names[self.files[index]]
        return (name, self.lines[index]) if name else None


def _attribute(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


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


# The standard opcodes of the line number program (DWARF 5, 6.2.5.2) and the extended ones.
DW_LNS_COPY, DW_LNS_ADVANCE_PC, DW_LNS_ADVANCE_LINE, DW_LNS_SET_FILE = 1, 2, 3, 4
DW_LNS_CONST_ADD_PC, DW_LNS_FIXED_ADVANCE_PC = 8, 9
DW_LNE_END_SEQUENCE, DW_LNE_SET_ADDRESS, DW_LNE_DEFINE_FILE = 1, 2, 3


@dataclass(frozen=True, slots=True)
class ProgramHeader:
    """What the opcodes of one line program need from its header."""

    minimum_instruction_length: int
    line_base: int
    line_range: int
    opcode_base: int
    standard_opcode_lengths: tuple[int, ...]


def _uleb(data: bytes, at: int, end: int) -> tuple[int, int]:
    """(value, next offset) of the unsigned LEB128 at `at`; at most 10 bytes are read."""
    value = shift = 0
    stop = min(end, at + 10)
    while at < stop:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7
    return value, stop


def _sleb(data: bytes, at: int, end: int) -> tuple[int, int]:
    value = shift = 0
    stop = min(end, at + 10)
    byte = 0
    while at < stop:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            break
    if byte & 0x40:
        value -= 1 << shift
    return value, at


def decode_line_program(
    data: bytes,
    start: int,
    end: int,
    header: ProgramHeader,
    names: list[str],
    rows: tuple[array[int], array[int], array[int]],
    max_rows: int,
) -> bool:
    """Run one line program (data[start:end]) and append a row (address, file, line) for each
    row it emits. The file is 1 + its index into `names` (which gains the files
    DW_LNE_define_file adds), 0 past a sequence's end or for an index `names` does not have.

    perftop's own decoder, not pyelftools': pyelftools keeps a LineProgramEntry and a
    LineState object per row (about 3 objects for each, 2.6 million for pyenv's libpython),
    and a full collection of the cyclic collector then walked them all, holding the GIL for up
    to 0.8 s of CPU (4.5 s of wall time on a busy box) while the screen waited. These are
    three arrays. The loop is bounded by the program's bytes (every step reads at least one)
    and by `max_rows`; False when there were more rows than that."""
    addresses, files, lines = rows
    step = header.minimum_instruction_length
    line_base, line_range, opcode_base = header.line_base, header.line_range, header.opcode_base
    lengths = header.standard_opcode_lengths
    const_add = step * ((255 - opcode_base) // line_range)
    address, file, line = 0, 1, 1
    at = start
    while at < end:
        opcode = data[at]
        at += 1
        if opcode >= opcode_base:
            adjusted = opcode - opcode_base
            address += step * (adjusted // line_range)
            line += line_base + adjusted % line_range
            addresses.append(address & 0xFFFFFFFFFFFFFFFF)
            files.append(file + 1 if 0 <= file < len(names) else 0)
            lines.append(line & 0xFFFFFFFF)
            if len(addresses) > max_rows:
                return False
        elif opcode == DW_LNS_COPY:
            addresses.append(address & 0xFFFFFFFFFFFFFFFF)
            files.append(file + 1 if 0 <= file < len(names) else 0)
            lines.append(line & 0xFFFFFFFF)
            if len(addresses) > max_rows:
                return False
        elif opcode == DW_LNS_ADVANCE_PC:
            value, at = _uleb(data, at, end)
            address += step * value
        elif opcode == DW_LNS_ADVANCE_LINE:
            value, at = _sleb(data, at, end)
            line += value
        elif opcode == DW_LNS_SET_FILE:
            file, at = _uleb(data, at, end)
        elif opcode == DW_LNS_CONST_ADD_PC:
            address += const_add
        elif opcode == DW_LNS_FIXED_ADVANCE_PC:
            if at + 2 > end:
                break
            address += data[at] | data[at + 1] << 8
            at += 2
        elif opcode == 0:
            length, at = _uleb(data, at, end)
            if length == 0 or at + length > end:
                at += length
                continue
            sub, operands, at = data[at], at + 1, at + length
            if sub == DW_LNE_END_SEQUENCE:
                addresses.append(address & 0xFFFFFFFFFFFFFFFF)
                files.append(0)
                lines.append(0)
                address, file, line = 0, 1, 1
                if len(addresses) > max_rows:
                    return False
            elif sub == DW_LNE_SET_ADDRESS:
                address = int.from_bytes(data[operands:at], "little")
            elif sub == DW_LNE_DEFINE_FILE and len(names) < MAX_FILES:
                nul = data.find(b"\0", operands, at)
                if nul >= 0:
                    names.append(data[operands:nul].decode("utf-8", "replace")[:MAX_PATH])
        else:  # other standard opcodes: skip their LEB128 operands (set_column, set_isa, ...)
            for _ in range(lengths[opcode - 1] if opcode - 1 < len(lengths) else 0):
                _, at = _uleb(data, at, end)
    return True


# The forms a DWARF 5 line program header's entries are written in (DWARF 5, 7.5.6), and what
# an entry's value is (6.2.4.1).
DW_FORM_BLOCK, DW_FORM_DATA1, DW_FORM_DATA2, DW_FORM_DATA4, DW_FORM_DATA8 = (
    0x09,
    0x0B,
    0x05,
    0x06,
    0x07,
)
DW_FORM_DATA16, DW_FORM_STRING, DW_FORM_STRP, DW_FORM_UDATA, DW_FORM_LINE_STRP = (
    0x1E,
    0x08,
    0x0E,
    0x0F,
    0x1F,
)
FIXED_FORMS = {
    DW_FORM_DATA1: 1,
    DW_FORM_DATA2: 2,
    DW_FORM_DATA4: 4,
    DW_FORM_DATA8: 8,
    DW_FORM_DATA16: 16,
}
DW_LNCT_PATH, DW_LNCT_DIRECTORY_INDEX = 1, 2


class BadProgram(Exception):
    """A line program header perftop cannot read: that program is left out."""


@dataclass(frozen=True, slots=True)
class LineProgram:
    """One line program of .debug_line: where its opcodes are, and its file table."""

    offset: int  # of its header in .debug_line, what a unit's DW_AT_stmt_list names
    version: int
    header: ProgramHeader
    directories: list[str]
    files: list[tuple[str, int]]  # (name, directory index), in the program's own numbering
    start: int
    end: int


def _cstring(data: bytes, at: int, end: int) -> tuple[str, int]:
    nul = data.find(b"\0", at, end)
    if nul < 0:
        raise BadProgram("unterminated string")
    return data[at:nul].decode("utf-8", "replace")[:MAX_PATH], nul + 1


def _offset_string(strings: bytes, offset: int) -> str:
    if not 0 <= offset < len(strings):
        raise BadProgram("string offset out of its section")
    return _cstring(strings, offset, len(strings))[0]


def _entries(
    data: bytes, at: int, end: int, offset_size: int, strings: dict[int, bytes]
) -> tuple[list[tuple[str, int]], int]:
    """A DWARF 5 directory or file table: (path, directory index) of each entry."""
    if at >= end:
        raise BadProgram("truncated entry format")
    format_count = data[at]
    at += 1
    formats = []
    for _ in range(format_count):
        content, at = _uleb(data, at, end)
        form, at = _uleb(data, at, end)
        formats.append((content, form))
    count, at = _uleb(data, at, end)
    if count > MAX_FILES:
        raise BadProgram("too many entries")
    entries = []
    for _ in range(count):
        path, directory = "", 0
        for content, form in formats:
            value: int | str
            if form == DW_FORM_STRING:
                value, at = _cstring(data, at, end)
            elif form in (DW_FORM_LINE_STRP, DW_FORM_STRP):
                if at + offset_size > end:
                    raise BadProgram("truncated entry")
                where = int.from_bytes(data[at : at + offset_size], "little")
                at += offset_size
                value = _offset_string(strings.get(form, b""), where)
            elif form == DW_FORM_UDATA:
                value, at = _uleb(data, at, end)
            elif form in FIXED_FORMS:
                size = FIXED_FORMS[form]
                value = int.from_bytes(data[at : at + size], "little")
                at += size
            elif form == DW_FORM_BLOCK:
                size, at = _uleb(data, at, end)
                value, at = 0, at + size
            else:
                raise BadProgram(f"form {form:#x} in a line program header")
            if at > end:
                raise BadProgram("truncated entry")
            if content == DW_LNCT_PATH and isinstance(value, str):
                path = value
            elif content == DW_LNCT_DIRECTORY_INDEX and isinstance(value, int):
                directory = value
        entries.append((path, directory))
    return entries, at


def _line_program(data: bytes, offset: int, strings: dict[int, bytes]) -> LineProgram:
    """The header of the line program at `offset` of .debug_line (DWARF 2 to 5)."""
    end = len(data)
    if offset + 4 > end:
        raise BadProgram("truncated length")
    length = int.from_bytes(data[offset : offset + 4], "little")
    at, offset_size = offset + 4, 4
    if length == 0xFFFFFFFF:
        length = int.from_bytes(data[at : at + 8], "little")
        at, offset_size = at + 8, 8
    unit_end = at + length
    if unit_end > end or length < 2:
        raise BadProgram("length past the section")
    version = int.from_bytes(data[at : at + 2], "little")
    at += 2
    if not 2 <= version <= 5:
        raise BadProgram(f"version {version}")
    if version >= 5:
        at += 2  # address_size, segment_selector_size
    header_length = int.from_bytes(data[at : at + offset_size], "little")
    at += offset_size
    program_start = at + header_length
    fixed = 5 if version >= 4 else 4
    if program_start > unit_end or at + fixed > unit_end:
        raise BadProgram("header past its unit")
    step = data[at]
    at += 1
    if version >= 4:
        if data[at] != 1:
            raise BadProgram("VLIW op_index addressing")  # not a machine perftop runs on
        at += 1
    at += 1  # default_is_stmt: perftop keeps every row
    line_base = data[at] - 256 if data[at] >= 128 else data[at]
    line_range, opcode_base = data[at + 1], data[at + 2]
    at += 3
    if line_range == 0 or opcode_base == 0 or at + opcode_base - 1 > program_start:
        raise BadProgram("opcode parameters")
    lengths = tuple(data[at : at + opcode_base - 1])
    at += opcode_base - 1
    header = ProgramHeader(step, line_base, line_range, opcode_base, lengths)
    if version >= 5:
        directory_entries, at = _entries(data, at, program_start, offset_size, strings)
        directories = [path for path, _ in directory_entries]
        files, at = _entries(data, at, program_start, offset_size, strings)
    else:
        directories = [""]  # 0: the compilation directory, filled in by the caller
        while True:
            name, at = _cstring(data, at, program_start)
            if not name:
                break
            directories.append(name)
            if len(directories) > MAX_FILES:
                raise BadProgram("too many directories")
        files = [("", 0)]  # numbered from 1
        while True:
            name, at = _cstring(data, at, program_start)
            if not name:
                break
            directory, at = _uleb(data, at, program_start)
            _, at = _uleb(data, at, program_start)  # modification time
            _, at = _uleb(data, at, program_start)  # length
            files.append((name, directory))
            if len(files) > MAX_FILES:
                raise BadProgram("too many files")
    return LineProgram(offset, version, header, directories, files, program_start, unit_end)


def _paths(program: LineProgram, comp_dir: str) -> list[str]:
    """The program's file table as paths, indexed as its rows name them."""
    directories = list(program.directories)
    if program.version < 5:
        directories[0] = comp_dir
    else:
        comp_dir = directories[0] if directories else ""
    names = []
    for name, index in program.files:
        if not name:
            names.append("")
            continue
        directory = directories[index] if 0 <= index < len(directories) else ""
        if directory and not os.path.isabs(directory) and comp_dir:
            directory = os.path.join(comp_dir, directory)
        path = name if os.path.isabs(name) else os.path.join(directory, name)
        names.append(os.path.normpath(path)[:MAX_PATH])
    return names


def _compilation_directories(elf: ELFFile) -> dict[int, str]:
    """DW_AT_comp_dir of each unit, by the offset of its line program (DW_AT_stmt_list). Only
    DWARF 4 and older need it (DWARF 5 puts it first in the program's directories): reading a
    unit's first DIE parses its whole abbreviation table, which for a big binary is most of the
    time and tens of thousands of objects."""
    found = {}
    dwarf = elf.get_dwarf_info()
    for unit in dwarf.iter_CUs():
        top = unit.get_top_DIE()
        statements = top.attributes.get("DW_AT_stmt_list")
        if statements is not None:
            found[statements.value] = _attribute(
                getattr(top.attributes.get("DW_AT_comp_dir"), "value", "")
            )
    return found


def read_line_table(stream: BinaryIO) -> LineTable | None:
    """The line table of an open ELF file, or None when it has none (or too large a one)."""
    addresses, files, lines = array("Q"), array("I"), array("I")
    # One file table for the whole binary: each program's file indexes are shifted into it.
    names: list[str] = [""]
    try:
        elf = ELFFile(stream)
        section = elf.get_section_by_name(".debug_line")
        if section is None or section["sh_size"] > MAX_LINE_PROGRAM_BYTES:
            return None
        if not _debug_sections_bounded(elf):
            return None
        data = section.data()
        strings = {}
        for form, name in ((DW_FORM_LINE_STRP, ".debug_line_str"), (DW_FORM_STRP, ".debug_str")):
            string_section = elf.get_section_by_name(name)
            if string_section is not None:
                strings[form] = string_section.data()
        programs = []
        offset = 0
        while offset < len(data):
            try:
                program = _line_program(data, offset, strings)
            except BadProgram:
                break  # its length may be wrong too: nothing after it can be trusted
            programs.append(program)
            offset = program.end
        comp_dirs = _compilation_directories(elf) if any(p.version < 5 for p in programs) else {}
        for program in programs:
            own = _paths(program, comp_dirs.get(program.offset, ""))
            first = len(files)
            if not decode_line_program(
                data,
                program.start,
                program.end,
                program.header,
                own,
                (addresses, files, lines),
                MAX_LINE_ROWS,
            ):
                return None
            # Index 0 of the shared table is "no file"; a program's file i (stored as i + 1)
            # is names[base + i].
            base = len(names) - 1
            for row in range(first, len(files)):
                index = files[row]
                if index:
                    files[row] = base + index
            names.extend(own)
            if len(names) > MAX_FILES:
                return None
    except Exception:  # hostile or truncated DWARF: pyelftools raises many kinds
        return None
    if not addresses:
        return None
    return LineTable.from_rows(addresses, files, lines, names)
