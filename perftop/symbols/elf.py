"""Function symbols of ELF files, read by perftop itself.

pyelftools parses the headers; the symbol tables themselves are unpacked with `struct` (orders of
magnitude faster than pyelftools' per-symbol objects on a large C++ binary). Every file here was
written by someone else and may be hostile: sizes are checked against the file, reads are capped,
and any parse failure means "no symbols", never a crash.
"""

from __future__ import annotations

import bisect
import ctypes
import ctypes.util
import io
import lzma
import mmap
import os
import stat
import struct
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

from elftools.elf.elffile import ELFFile
from elftools.elf.sections import NoteSection

from perftop.model.reasons import Unresolved
from perftop.symbols.lines import LineTable, read_line_table
from perftop.symbols.ranges import PackedSymbols
from perftop.unwind.cache import cached_function_starts
from perftop.unwind.eh_frame import CfiError, read_call_frame_info
from perftop.unwind.elf import ElfError as UnwindElfError
from perftop.unwind.elf import parse_elf
from perftop.unwind.functions import FunctionStarts

STT_FUNC = 2
STT_GNU_IFUNC = 10
SHF_EXECINSTR = 0x4
R_X86_64_IRELATIVE = 37
MAX_PLT_BYTES = 4 << 20  # a PLT larger than this (a million imports) is not named
MAX_TABLE_BYTES = 256 << 20  # a symbol or string table larger than this is not read
DEBUG_ROOT = "/usr/lib/debug"


@dataclass(slots=True)
class SymbolTable:
    """Function symbols by ELF virtual address, and how file offsets map to addresses."""

    symbols: PackedSymbols = field(default_factory=PackedSymbols)
    # (p_offset, p_filesz, p_vaddr) of each PT_LOAD segment
    segments: list[tuple[int, int, int]] = field(default_factory=list)
    error: Unresolved | None = None  # why the file could not be read
    # Without .symtab: the file, to read where each function starts from .eh_frame's FDEs (a
    # stripped binary's static functions are in no symbol table, but every one has an FDE).
    # Read on the first address no symbol covers: most libraries never need it.
    fde_source: str | None = None
    function_starts: FunctionStarts | None = None
    build_id: str = ""  # GNU build id in hex, "" when the file has none
    # With .debug_line: the file, to read its line table from on the first source_line call.
    line_source: str | None = None
    lines: LineTable | None = None
    # The file's (device, inode, size, mtime) when ElfCache read it: which file these are the
    # symbols of, the same in every process that maps it.
    identity: tuple[int, int, int, int] | None = None

    @property
    def has_symbols(self) -> bool:
        return len(self.symbols) > 0

    def vaddr_of(self, file_offset: int) -> int | None:
        for p_offset, p_filesz, p_vaddr in self.segments:
            if p_offset <= file_offset < p_offset + max(p_filesz, 1):
                return file_offset - p_offset + p_vaddr
        return None

    def lookup(self, vaddr: int) -> tuple[str, int] | None:
        """(symbol, offset into it) for the innermost function containing `vaddr`."""
        # Symbols can nest (a local alias inside a larger function): look back a little.
        index = self.symbols.find(vaddr, look_back=8)
        if index is None:
            return None
        # Demangled on first use: most of a big C++ library's symbols are never hit.
        return demangle(self.symbols.name(index)), vaddr - self.symbols.starts[index]

    def function_range(self, vaddr: int) -> tuple[int, int] | None:
        """[start, end) of the innermost symbol containing `vaddr` (what annotate reads)."""
        index = self.symbols.find(vaddr, look_back=8)
        if index is None:
            return None
        return self.symbols.starts[index], self.symbols.ends[index]

    def fde_range(self, vaddr: int) -> tuple[int, int] | None:
        """[start, end) of the FDE covering `vaddr`, once `function_start` has read them."""
        if self.function_starts is None:
            return None
        found = self.function_starts.function_start(vaddr)
        return (found[0], found[0] + found[1]) if found is not None else None

    def function_start(self, vaddr: int) -> int | None:
        """The start of the function whose FDE covers `vaddr`, when no symbol does."""
        if self.function_starts is None:
            if self.fde_source is None:
                return None
            source, self.fde_source = self.fde_source, None
            # The unwinder cached them by build id when it built the binary's table.
            self.function_starts = cached_function_starts(self.build_id)
            if self.function_starts is None:
                opened = _open_regular(source)
                if opened is None:
                    return None
                stream, _ = opened
                with stream:
                    self.function_starts = _function_starts(stream, source)
            if self.function_starts is None:
                return None
        found = self.function_starts.function_start(vaddr)
        return found[0] if found is not None else None

    def source_line(self, vaddr: int) -> tuple[str, int] | None:
        """(source file, line) of the code at `vaddr`, from DWARF, when the file has it."""
        if self.lines is None:
            if self.line_source is None:
                return None
            source, self.line_source = self.line_source, None
            opened = _open_regular(source)
            if opened is None:
                return None
            stream, _ = opened
            with stream:
                self.lines = read_line_table(stream)
            if self.lines is None:
                return None
        return self.lines.line_of(vaddr)

    def file_offset_of(self, vaddr: int) -> int | None:
        for p_offset, p_filesz, p_vaddr in self.segments:
            if p_vaddr <= vaddr < p_vaddr + max(p_filesz, 1):
                return vaddr - p_vaddr + p_offset
        return None


def _read_section(stream: BinaryIO, offset: int, size: int, file_size: int) -> bytes:
    if size > MAX_TABLE_BYTES or offset + size > file_size:
        raise ValueError("section outside the file or too large")
    stream.seek(offset)
    return stream.read(size)


def _function_symbols(
    elf: ELFFile, stream: BinaryIO, file_size: int
) -> list[tuple[int, int, bytes]]:
    """(address, size, name) of each function: names stay bytes (no str is built per symbol)."""
    symbols: list[tuple[int, int, bytes]] = []
    for section_name in (".symtab", ".dynsym"):
        section = elf.get_section_by_name(section_name)
        if section is None or section.header.sh_type == "SHT_NOBITS":
            continue
        strtab = elf.get_section(section.header.sh_link)
        table = _read_section(stream, section.header.sh_offset, section.header.sh_size, file_size)
        strings = _read_section(stream, strtab.header.sh_offset, strtab.header.sh_size, file_size)
        little = elf.little_endian
        if elf.elfclass == 64:
            layout = struct.Struct("<IBBHQQ" if little else ">IBBHQQ")
            fields = (
                (n, i, sh, v, sz)
                for n, i, _, sh, v, sz in layout.iter_unpack(table[: len(table) // 24 * 24])
            )
        else:
            layout = struct.Struct("<IIIBBH" if little else ">IIIBBH")
            fields = (
                (n, i, sh, v, sz)
                for n, v, sz, i, _, sh in layout.iter_unpack(table[: len(table) // 16 * 16])
            )
        for name_offset, info, shndx, value, size in fields:
            if info & 0xF not in (STT_FUNC, STT_GNU_IFUNC) or shndx == 0 or value == 0:
                continue
            end = strings.find(b"\0", name_offset)
            if end < 0:
                continue
            symbols.append((value, size, strings[name_offset:end]))
        if symbols:
            break  # .symtab is a superset of .dynsym when present
    return symbols


def _dynamic_names(
    elf: ELFFile, stream: BinaryIO, file_size: int, section_index: int
) -> list[bytes]:
    """Names of a dynamic symbol table by index (what relocations refer to)."""
    section = elf.get_section(section_index)
    if section.header.sh_type not in ("SHT_DYNSYM", "SHT_SYMTAB"):
        return []
    strtab = elf.get_section(section.header.sh_link)
    table = _read_section(stream, section.header.sh_offset, section.header.sh_size, file_size)
    strings = _read_section(stream, strtab.header.sh_offset, strtab.header.sh_size, file_size)
    layout = struct.Struct("<I20x" if elf.little_endian else ">I20x")
    names = []
    for (name_offset,) in layout.iter_unpack(table[: len(table) // 24 * 24]):
        end = strings.find(b"\0", name_offset)
        names.append(strings[name_offset:end] if end >= 0 else b"")
    return names


def _relocated_slots(
    elf: ELFFile, stream: BinaryIO, file_size: int, named: dict[int, bytes]
) -> dict[int, bytes]:
    """GOT slot address -> the imported function's name, from .rela.plt (JUMP_SLOT) and
    .rela.dyn (GLOB_DAT, what `.plt.got` stubs jump through). An IRELATIVE slot (libc calling
    its own IFUNCs: strlen, memcpy) has no symbol, only the resolver's address: it is named
    by the function symbol there (`named`), where objdump says `*ABS*+0x9f550`."""
    slots: dict[int, bytes] = {}
    layout = struct.Struct("<QQq" if elf.little_endian else ">QQq")
    for section_name in (".rela.plt", ".rela.dyn"):
        section = elf.get_section_by_name(section_name)
        if section is None or section.header.sh_type != "SHT_RELA" or not section.header.sh_link:
            continue
        names = _dynamic_names(elf, stream, file_size, section.header.sh_link)
        table = _read_section(stream, section.header.sh_offset, section.header.sh_size, file_size)
        for offset, info, addend in layout.iter_unpack(table[: len(table) // 24 * 24]):
            index = info >> 32
            if 0 < index < len(names) and names[index]:
                slots.setdefault(offset, names[index])
            elif index == 0 and info & 0xFFFFFFFF == R_X86_64_IRELATIVE and addend in named:
                slots.setdefault(offset, named[addend])
    return slots


def _plt_order(elf: ELFFile, stream: BinaryIO, file_size: int) -> list[bytes]:
    """Names of .rela.plt's entries in order: the PLT's stubs follow it one by one."""
    section = elf.get_section_by_name(".rela.plt")
    if section is None or section.header.sh_type != "SHT_RELA" or not section.header.sh_link:
        return []
    names = _dynamic_names(elf, stream, file_size, section.header.sh_link)
    table = _read_section(stream, section.header.sh_offset, section.header.sh_size, file_size)
    layout = struct.Struct("<QQq" if elf.little_endian else ">QQq")
    return [
        names[info >> 32] if info >> 32 < len(names) else b""
        for _, info, _ in layout.iter_unpack(table[: len(table) // 24 * 24])
    ]


def _plt_symbols(
    elf: ELFFile, stream: BinaryIO, file_size: int, functions: list[tuple[int, int, bytes]]
) -> list[tuple[int, int, bytes]]:
    """`name@plt` for each PLT stub, as perf and objdump name them. No symbol table covers a
    stub, so without these every call through the PLT was charged to whatever symbol precedes
    .plt (`_init`, 5-16% of a shared-library Python).

    x86-64 stubs are read, not counted: each one jumps through its GOT slot (`ff 25 disp32`,
    RIP-relative, after an `endbr64`/`bnd` prefix in IBT layouts), and the slot's relocation
    names the function. That covers classic `.plt`, IBT's `.plt` + `.plt.sec`, and `.plt.got`
    alike. aarch64 stubs follow .rela.plt in order after a 32-byte header."""
    if elf.elfclass != 64:
        return []
    machine = elf.header.e_machine
    symbols: list[tuple[int, int, bytes]] = []
    if machine == "EM_X86_64":
        named = {address: name for address, _, name in functions}
        slots = _relocated_slots(elf, stream, file_size, named)
        order: list[bytes] | None = None
        for section_name in (".plt", ".plt.sec", ".plt.got"):
            section = elf.get_section_by_name(section_name)
            if section is None or section.header.sh_type != "SHT_PROGBITS":
                continue
            header = section.header
            if header.sh_size > MAX_PLT_BYTES:
                continue
            code = _read_section(stream, header.sh_offset, header.sh_size, file_size)
            entry = header.sh_entsize if header.sh_entsize in (8, 16) else 16
            # .plt starts with the lazy binder's 16-byte header (PLT0), named by no one.
            first = 16 if section_name == ".plt" else 0
            for offset in range(first, len(code) - entry + 1, entry):
                stub = code[offset : offset + entry]
                address = header.sh_addr + offset
                name = None
                jump = stub.find(b"\xff\x25")
                if 0 <= jump <= entry - 6:
                    (displacement,) = struct.unpack_from("<i", stub, jump + 2)
                    name = slots.get(address + jump + 6 + displacement)
                if name is None and section_name == ".plt" and stub.find(b"\x68") >= 0:
                    # IBT's lazy .plt entries push their .rela.plt index instead.
                    push = stub.find(b"\x68")
                    if push <= entry - 5:
                        if order is None:
                            order = _plt_order(elf, stream, file_size)
                        (index,) = struct.unpack_from("<I", stub, push + 1)
                        name = order[index] if index < len(order) else None
                if name:
                    symbols.append((address, entry, name + b"@plt"))
    elif machine == "EM_AARCH64":
        section = elf.get_section_by_name(".plt")
        if section is not None and section.header.sh_type == "SHT_PROGBITS":
            order = _plt_order(elf, stream, file_size)
            start = section.header.sh_addr + 32
            end = section.header.sh_addr + section.header.sh_size
            for index, name in enumerate(order):
                address = start + 16 * index
                if address + 16 > end:
                    break
                if name:
                    symbols.append((address, 16, name + b"@plt"))
    return symbols


def _executable_sections(elf: ELFFile) -> list[tuple[int, int]]:
    """[start, end) of each executable section, sorted: where a zero-size symbol must stop."""
    sections = []
    for section in elf.iter_sections():
        header = section.header
        if header.sh_flags & SHF_EXECINSTR and header.sh_size:
            sections.append((header.sh_addr, header.sh_addr + header.sh_size))
    sections.sort()
    return sections


def _mini_debug_info_symbols(
    elf: ELFFile, stream: BinaryIO, file_size: int
) -> list[tuple[int, int, bytes]]:
    """Function symbols from `.gnu_debugdata` (MiniDebugInfo: an xz-compressed ELF holding the
    .symtab entries .dynsym lacks, as Fedora ships them). Capped, decompression included."""
    section = elf.get_section_by_name(".gnu_debugdata")
    if section is None or section.header.sh_type == "SHT_NOBITS":
        return []
    compressed = _read_section(stream, section.header.sh_offset, section.header.sh_size, file_size)
    try:
        decompressor = lzma.LZMADecompressor()
        content = decompressor.decompress(compressed, max_length=MAX_TABLE_BYTES)
        if not decompressor.eof:
            return []  # larger than any table we read, or truncated
        inner = io.BytesIO(content)
        return _function_symbols(ELFFile(inner), inner, len(content))
    except Exception:  # damaged: the binary's own symbols still count
        return []


def _function_starts(stream: BinaryIO, path: str) -> FunctionStarts | None:
    """FDE ranges of the executable sections (~0.1 s for python3.11's 10,221 FDEs)."""
    try:
        with mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as data:
            image = parse_elf(Path(path or "binary"), data)
            try:
                info = read_call_frame_info(image)
                return FunctionStarts.from_fdes(
                    fde for fde in info.fdes if image.is_executable_address(fde.start)
                )
            finally:
                image.close()
    except (OSError, ValueError, UnwindElfError, CfiError):
        return None


def _build_id(elf: ELFFile) -> str:
    note_section = elf.get_section_by_name(".note.gnu.build-id")
    if isinstance(note_section, NoteSection):
        for note in note_section.iter_notes():
            if note["n_type"] == "NT_GNU_BUILD_ID":
                build_id = str(note["n_desc"])
                # Hex digits only: the note is the file's to say, and hostile files lie.
                if 0 < len(build_id) <= 128 and all(c in "0123456789abcdef" for c in build_id):
                    return build_id
    return ""


def _debug_file_candidates(elf: ELFFile, path: str, build_id: str) -> list[str]:
    candidates = []
    if build_id:
        candidates.append(f"{DEBUG_ROOT}/.build-id/{build_id[:2]}/{build_id[2:]}.debug")
    link = elf.get_section_by_name(".gnu_debuglink")
    if link is not None:
        data = link.data()
        name = data[: data.find(b"\0")].decode("utf-8", errors="replace")
        if name and "/" not in name:
            directory = os.path.dirname(path)
            candidates += [f"{DEBUG_ROOT}{directory}/{name}", f"{directory}/.debug/{name}"]
    return candidates


def _open_regular(path: str) -> tuple[BinaryIO, os.stat_result] | None:
    """Open without blocking on a FIFO or following a planted device; regular files only."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        return None
    return os.fdopen(fd, "rb"), info


def read_symbol_table(
    stream: BinaryIO, file_size: int, path: str = "", source: str | None = None
) -> SymbolTable:
    """Symbols of an open ELF file (plus its separate debug file when one is installed).
    `source` is a path that opens the same file again, for its FDEs when they are needed."""
    table = SymbolTable()
    sections: list[tuple[int, int]] = []
    try:
        elf = ELFFile(stream)
        sections = _executable_sections(elf)
        for segment in elf.iter_segments():
            if segment.header.p_type == "PT_LOAD":
                header = segment.header
                table.segments.append((header.p_offset, header.p_filesz, header.p_vaddr))
        table.build_id = _build_id(elf)
        if elf.get_section_by_name(".debug_line") is not None:
            table.line_source = source
        symbols = _function_symbols(elf, stream, file_size)
        has_symtab = elf.get_section_by_name(".symtab") is not None
        if not has_symtab:
            mini = _mini_debug_info_symbols(elf, stream, file_size)
            if mini:
                symbols += mini
                has_symtab = True
        if not has_symtab:
            for candidate in _debug_file_candidates(elf, path, table.build_id):
                opened = _open_regular(candidate)
                if opened is None:
                    continue
                debug_stream, info = opened
                with debug_stream:
                    debug_symbols = _function_symbols(
                        ELFFile(debug_stream), debug_stream, info.st_size
                    )
                if debug_symbols:
                    symbols = debug_symbols
                    break
        if not has_symtab:
            table.fde_source = source
        try:
            symbols += _plt_symbols(elf, stream, file_size, symbols)
        except Exception:  # a damaged PLT or relocation table: the other symbols still count
            pass
    except Exception:  # hostile or truncated ELF: pyelftools raises many kinds
        table.error = Unresolved.UNREADABLE_ELF
        return table
    symbols.sort()
    section_starts = [start for start, _ in sections]

    def section_end(address: int) -> int | None:
        index = bisect.bisect_right(section_starts, address) - 1
        if index >= 0 and address < sections[index][1]:
            return sections[index][1]
        return None

    def ranges() -> Iterator[tuple[int, int, bytes]]:
        for index, (start, size, name) in enumerate(symbols):
            if size:
                end = start + size
            else:
                # Zero-size symbols (hand-written assembly) reach to the next symbol, as perf
                # does, but never past their own section: `_init` (in .init) must not absorb
                # the .plt after it.
                last = index + 1 == len(symbols)
                end = start + 1 if last else symbols[index + 1][0]
                limit = section_end(start)
                if limit is not None:
                    end = limit if last else min(end, limit)
            yield start, end, name

    table.symbols = PackedSymbols(ranges())
    return table


class ElfCache:
    """Symbol tables shared by every process mapping the same file, keyed by the file's
    identity (device, inode, size, mtime) so a replaced binary is read again. Bounded by files
    and by bytes; the least recently used table goes first."""

    def __init__(self, max_files: int = 128, max_bytes: int = 64 << 20) -> None:
        self._tables: OrderedDict[tuple[int, int, int, int], SymbolTable] = OrderedDict()
        self._max_files = max_files
        self._max_bytes = max_bytes
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._tables)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def table(self, path: str, display_path: str = "") -> SymbolTable | None:
        opened = _open_regular(path)
        if opened is None:
            return None
        stream, info = opened
        with stream:
            key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
            found = self._tables.get(key)
            if found is not None:
                self._tables.move_to_end(key)
                return found
            found = read_symbol_table(stream, info.st_size, display_path or path, source=path)
        found.identity = key
        self._tables[key] = found
        self._bytes += found.symbols.nbytes()
        while len(self._tables) > 1 and (
            len(self._tables) > self._max_files or self._bytes > self._max_bytes
        ):
            _, oldest = self._tables.popitem(last=False)
            self._bytes -= oldest.symbols.nbytes()
        return found


_libstdcxx: ctypes.CDLL | None = None
_libc = ctypes.CDLL(None)
_libc.free.argtypes = [ctypes.c_void_p]


def demangle(name: str) -> str:
    """C++ names through libstdc++'s own demangler (what c++filt and BCC use)."""
    # Only mangled names go through the cache: caching every C name too filled it slowly with
    # the long tail of symbols seen (the soak's RSS crept for minutes).
    return _demangle(name) if name.startswith("_Z") else name


@lru_cache(maxsize=8192)
def _demangle(name: str) -> str:
    global _libstdcxx
    if _libstdcxx is None:
        library = ctypes.util.find_library("stdc++") or "libstdc++.so.6"
        try:
            _libstdcxx = ctypes.CDLL(library)
        except OSError:
            return name
        _libstdcxx.__cxa_demangle.restype = ctypes.c_void_p
        _libstdcxx.__cxa_demangle.argtypes = [
            ctypes.c_char_p,
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.POINTER(ctypes.c_int),
        ]
    status = ctypes.c_int(0)
    result = _libstdcxx.__cxa_demangle(
        name.encode("utf-8", "replace"), None, None, ctypes.byref(status)
    )
    if not result or status.value != 0:
        return name
    try:
        text = ctypes.string_at(result)
    finally:
        _libc.free(result)
    return text.decode("utf-8", errors="replace")
