"""The few ELF facts unwinding needs, read with `struct` from an mmap: sections, segments, notes.

pyelftools would do, but opening a file with it costs ~10 ms of Python object building before a
byte is decoded; these are three fixed-layout tables. Only 64-bit little-endian ELF (x86-64) is
read; anything else raises `ElfError`.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

_ELF_HEADER = struct.Struct("<16sHHIQQQIHHHHHH")
_SECTION_HEADER = struct.Struct("<IIQQQQIIQQ")
_PROGRAM_HEADER = struct.Struct("<IIQQQQQQ")
_NOTE_HEADER = struct.Struct("<III")

_PT_LOAD = 1
_PF_X = 1
_NT_GNU_BUILD_ID = 3
_SHT_NOBITS = 8
EM_X86_64 = 62


class ElfError(Exception):
    """Not an ELF file this package can read (truncated, 32-bit, big-endian, garbled tables)."""


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    address: int  # sh_addr: the virtual address the section is loaded at (0 if not loaded)
    offset: int  # sh_offset in the file
    size: int
    present_in_file: bool  # False for SHT_NOBITS (.bss): no bytes to read


@dataclass(frozen=True, slots=True)
class LoadSegment:
    virtual_address: int
    file_offset: int
    file_size: int
    memory_size: int
    executable: bool


@dataclass(frozen=True, slots=True)
class ElfImage:
    """An ELF file's bytes and its parsed tables; `data` is an mmap kept open by the image."""

    path: Path
    data: mmap.mmap | bytes
    machine: int
    entry_point: int
    sections: tuple[Section, ...]
    segments: tuple[LoadSegment, ...]

    def section(self, name: str) -> Section | None:
        for section in self.sections:
            if section.name == name:
                return section
        return None

    def section_bytes(self, section: Section) -> bytes:
        if not section.present_in_file:
            return b""
        end = section.offset + section.size
        if end > len(self.data):
            raise ElfError(f"{self.path}: section {section.name} runs past the end of the file")
        return bytes(self.data[section.offset : end])

    def is_executable_address(self, address: int) -> bool:
        return any(
            segment.executable
            and segment.virtual_address <= address < segment.virtual_address + segment.memory_size
            for segment in self.segments
        )

    def close(self) -> None:
        if isinstance(self.data, mmap.mmap):
            self.data.close()


def open_elf(path: Path) -> ElfImage:
    with open(path, "rb") as file:
        try:
            data: mmap.mmap | bytes = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file cannot be mapped
            data = b""
    try:
        return parse_elf(path, data)
    except BaseException:
        if isinstance(data, mmap.mmap):
            data.close()
        raise


def parse_elf(path: Path, data: mmap.mmap | bytes) -> ElfImage:
    try:
        header = _ELF_HEADER.unpack_from(data, 0)
    except struct.error:
        raise ElfError(f"{path}: too short for an ELF header") from None
    ident: bytes = header[0]
    if ident[:4] != b"\x7fELF" or ident[4] != 2 or ident[5] != 1:
        raise ElfError(f"{path}: not a 64-bit little-endian ELF file")
    machine, entry = header[2], header[4]
    program_offset, section_offset = header[5], header[6]
    program_size, program_count = header[9], header[10]
    section_size, section_count, names_index = header[11], header[12], header[13]
    try:
        segments = _read_segments(data, program_offset, program_size, program_count)
        sections = _read_sections(data, section_offset, section_size, section_count, names_index)
    except (struct.error, IndexError, UnicodeDecodeError) as error:
        raise ElfError(f"{path}: garbled ELF tables ({error})") from None
    return ElfImage(path, data, machine, entry, sections, segments)


def _read_segments(
    data: mmap.mmap | bytes, offset: int, entry_size: int, count: int
) -> tuple[LoadSegment, ...]:
    segments = []
    for index in range(count):
        fields = _PROGRAM_HEADER.unpack_from(data, offset + index * entry_size)
        kind, flags, file_offset, virtual_address, _, file_size, memory_size, _ = fields
        if kind == _PT_LOAD:
            executable = bool(flags & _PF_X)
            segments.append(
                LoadSegment(virtual_address, file_offset, file_size, memory_size, executable)
            )
    return tuple(segments)


def _read_sections(
    data: mmap.mmap | bytes, offset: int, entry_size: int, count: int, names_index: int
) -> tuple[Section, ...]:
    if count == 0:
        return ()
    raw = [_SECTION_HEADER.unpack_from(data, offset + index * entry_size) for index in range(count)]
    names_offset, names_size = raw[names_index][4], raw[names_index][5]
    names = bytes(data[names_offset : names_offset + names_size])
    sections = []
    for fields in raw:
        name_start = fields[0]
        name_end = names.find(b"\0", name_start)
        name = names[name_start : name_end if name_end >= 0 else None].decode()
        kind, address, file_offset, size = fields[1], fields[3], fields[4], fields[5]
        sections.append(Section(name, address, file_offset, size, kind != _SHT_NOBITS))
    return tuple(sections)


def gnu_build_id(image: ElfImage) -> bytes | None:
    """The GNU build id (usually 20 bytes of SHA-1) from `.note.gnu.build-id`, if any."""
    section = image.section(".note.gnu.build-id")
    if section is None:
        return None
    notes = image.section_bytes(section)
    position = 0
    while position + _NOTE_HEADER.size <= len(notes):
        name_size, descriptor_size, kind = _NOTE_HEADER.unpack_from(notes, position)
        name_start = position + _NOTE_HEADER.size
        descriptor_start = name_start + _align4(name_size)
        descriptor_end = descriptor_start + descriptor_size
        if descriptor_end > len(notes):
            return None
        if kind == _NT_GNU_BUILD_ID and notes[name_start : name_start + name_size] == b"GNU\0":
            return notes[descriptor_start:descriptor_end] or None
        position = descriptor_start + _align4(descriptor_size)
    return None


def _align4(size: int) -> int:
    return (size + 3) & ~3
