"""Decide whether a process runs CPython, where its `_PyRuntime` is, and which offsets apply.

Ways to find `_PyRuntime`, tried per candidate binary (the executable, then any mapped
libpython): the dynamic symbol table, `.symtab` when the binary is not stripped, and the
`.PyRuntime` section (3.11+ put `_PyRuntime` alone at its start). Debian's stripped, non-PIE
`/usr/bin/python3.11` still exports `_PyRuntime`, `Py_Version` and the type objects in `.dynsym`
and has the section; pyenv's builds link a shared libpython that has all three ways.

The version comes from `_Py_DebugOffsets` when the runtime starts with its cookie (3.13+), else
from the `Py_Version` constant (exported since 3.11, read from the target's memory), else from
the file name. Everything read from the target is treated as possibly fake.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from perftop.python.elf import ET_EXEC, ElfError, ElfImage, read_elf
from perftop.python.memory import MemoryReader, MemoryReadError, ProcessMemory, read_u64
from perftop.python.offsets import (
    DEBUG_OFFSETS_3_13_SIZE,
    TABLE_OFFSETS,
    OffsetsError,
    PythonOffsets,
    debug_offsets_version,
    parse_debug_offsets,
)

RUNTIME_SYMBOL = "_PyRuntime"
RUNTIME_SECTION = ".PyRuntime"
VERSION_SYMBOL = "Py_Version"
TYPE_SYMBOLS = ("PyCode_Type", "PyUnicode_Type", "PyBytes_Type")
_WANTED_SYMBOLS = (RUNTIME_SYMBOL, VERSION_SYMBOL, *TYPE_SYMBOLS)
_LIBPYTHON = re.compile(r"libpython3\.(\d+)[a-z]*\.so")
_NAMED_VERSION = re.compile(r"python3\.(\d+)")
_PAGE_MASK = ~0xFFF


@dataclass(frozen=True, slots=True)
class Mapping:
    start: int
    end: int
    permissions: str
    file_offset: int
    path: str


@dataclass(frozen=True, slots=True)
class PythonRuntime:
    """A CPython process perftop can walk: where its runtime is and how to read it."""

    pid: int
    version_hex: int
    runtime_address: int
    offsets: PythonOffsets
    binary_path: str
    load_bias: int
    runtime_found_by: str
    """"dynsym", "symtab" or "section": which way located `_PyRuntime`."""
    version_found_by: str
    """"debug offsets", "Py_Version" or "file name"."""
    code_type: int | None
    """Run-time address of `PyCode_Type`, when exported: frames must point at its instances."""
    str_type: int | None
    bytes_type: int | None

    @property
    def version(self) -> tuple[int, int, int]:
        return (
            self.version_hex >> 24,
            (self.version_hex >> 16) & 0xFF,
            (self.version_hex >> 8) & 0xFF,
        )


@dataclass(frozen=True, slots=True)
class UnsupportedPython:
    """CPython, or something claiming to be, that perftop cannot walk; `reason` says why."""

    pid: int
    reason: str


@dataclass(frozen=True, slots=True)
class NotPython:
    pid: int
    reason: str


Detection = PythonRuntime | UnsupportedPython | NotPython


def detect_python(pid: int) -> Detection:
    """Classify `pid`. Never raises for a process that lies; a vanished process is NotPython."""
    try:
        mappings = read_mappings(pid)
        executable = os.readlink(f"/proc/{pid}/exe")
    except OSError as error:
        return NotPython(pid, f"cannot read /proc/{pid}: {error.strerror}")
    for path, open_paths in _candidate_binaries(pid, executable, mappings):
        image = _first_readable(open_paths)
        if image is None:
            continue
        located = _locate_runtime(image)
        if located is None:
            continue
        link_address, found_by = located
        bias = load_bias(image, path, mappings)
        if bias is None:
            return UnsupportedPython(pid, f"cannot find the load address of {path}")
        try:
            with ProcessMemory(pid) as memory:
                return _describe(pid, memory, image, path, bias, link_address + bias, found_by)
        except MemoryReadError as error:
            return UnsupportedPython(pid, f"cannot read the runtime of {path}: {error}")
    return NotPython(pid, "no _PyRuntime in the executable or a mapped libpython")


def read_mappings(pid: int) -> tuple[Mapping, ...]:
    mappings = []
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) < 5:
                continue
            start, _, end = fields[0].partition("-")
            path = fields[5].rstrip("\n") if len(fields) == 6 else ""
            mappings.append(
                Mapping(int(start, 16), int(end, 16), fields[1], int(fields[2], 16), path)
            )
    return tuple(mappings)


def load_bias(image: ElfImage, path: str, mappings: tuple[Mapping, ...]) -> int | None:
    """Run-time minus link-time address for `path`: 0 for a non-PIE executable, else taken from
    the first mapping whose file offset is where a load segment starts (page-aligned)."""
    if image.object_type == ET_EXEC:
        return 0
    for mapping in sorted((m for m in mappings if m.path == path), key=lambda m: m.start):
        for segment in image.load_segments:
            if segment.file_offset & _PAGE_MASK == mapping.file_offset:
                return mapping.start - (segment.virtual_address & _PAGE_MASK)
    return None


def _candidate_binaries(
    pid: int, executable: str, mappings: tuple[Mapping, ...]
) -> list[tuple[str, tuple[str, ...]]]:
    """(path as mapped, paths to try opening) for the executable and each mapped libpython.
    Opening through /proc reaches the very file the process mapped, even across mount
    namespaces; `map_files` needs CAP_SYS_ADMIN, so the process's root is the fallback."""
    candidates: list[tuple[str, tuple[str, ...]]] = [(executable, (f"/proc/{pid}/exe",))]
    seen = {executable}
    for mapping in mappings:
        name = os.path.basename(mapping.path)
        if mapping.path not in seen and _LIBPYTHON.match(name):
            seen.add(mapping.path)
            map_file = f"/proc/{pid}/map_files/{mapping.start:x}-{mapping.end:x}"
            candidates.append((mapping.path, (map_file, f"/proc/{pid}/root{mapping.path}")))
    return candidates


def _first_readable(paths: tuple[str, ...]) -> ElfImage | None:
    for path in paths:
        try:
            return read_elf(path, _WANTED_SYMBOLS)
        except ElfError:
            continue
    return None


def _locate_runtime(image: ElfImage) -> tuple[int, str] | None:
    symbol = image.symbols.get(RUNTIME_SYMBOL)
    if symbol is not None:
        return symbol
    section = image.section(RUNTIME_SECTION)
    if section is not None and section.address:
        return section.address, "section"
    return None


def _describe(
    pid: int,
    memory: MemoryReader,
    image: ElfImage,
    path: str,
    bias: int,
    runtime_address: int,
    found_by: str,
) -> Detection:
    head = memory.read(runtime_address, 16)
    version_hex = debug_offsets_version(head)
    version_found_by = "debug offsets"
    if version_hex is None:
        version_hex, version_found_by = _version_without_cookie(memory, image, path, bias)
    if version_hex is None:
        return UnsupportedPython(pid, f"{path}: CPython version unknown")
    major, minor = version_hex >> 24, (version_hex >> 16) & 0xFF
    if major != 3:
        return UnsupportedPython(pid, f"{path}: version {version_hex:#x} is not CPython 3")
    try:
        if minor in TABLE_OFFSETS:
            offsets = TABLE_OFFSETS[minor]
        elif minor == 13:
            offsets = parse_debug_offsets(memory.read(runtime_address, DEBUG_OFFSETS_3_13_SIZE))
        else:
            return UnsupportedPython(pid, f"CPython 3.{minor}: interpreter frames not supported")
    except OffsetsError as error:
        return UnsupportedPython(pid, f"CPython 3.{minor}: {error}")
    if offsets.minor != minor:
        return UnsupportedPython(pid, f"CPython 3.{minor}: version and offsets disagree")

    def run_time(name: str) -> int | None:
        symbol = image.symbols.get(name)
        return symbol[0] + bias if symbol is not None else None

    return PythonRuntime(
        pid=pid,
        version_hex=version_hex,
        runtime_address=runtime_address,
        offsets=offsets,
        binary_path=path,
        load_bias=bias,
        runtime_found_by=found_by,
        version_found_by=version_found_by,
        code_type=run_time("PyCode_Type"),
        str_type=run_time("PyUnicode_Type"),
        bytes_type=run_time("PyBytes_Type"),
    )


def _version_without_cookie(
    memory: MemoryReader, image: ElfImage, path: str, bias: int
) -> tuple[int | None, str]:
    symbol = image.symbols.get(VERSION_SYMBOL)
    if symbol is not None:
        try:
            return read_u64(memory, symbol[0] + bias), "Py_Version"
        except MemoryReadError:
            pass
    named = _LIBPYTHON.search(path) or _NAMED_VERSION.search(os.path.basename(path))
    if named is not None:
        return 0x03000000 | int(named.group(1)) << 16, "file name"
    return None, "none"
