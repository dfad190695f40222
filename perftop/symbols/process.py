"""User-space symbols of one process: its mappings, the ELF files behind them, its perf map.

Files are opened through `/proc/PID/map_files/`, which reaches exactly the file that is mapped
even when it was deleted or replaced since, or lives in another mount namespace (a container
with its own libraries); `/proc/PID/root/PATH` is the fallback.

Without root the kernel guards each of these (checked on 6.x): /proc/PID/maps of another user's
process needs CAP_PERFMON, its /proc/PID/root CAP_SYS_PTRACE, and map_files CAP_CHECKPOINT_RESTORE
(or CAP_SYS_ADMIN) plus, for another user's process, CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH.
A refusal is reported as such, never as "process gone" or "deleted".
"""

from __future__ import annotations

import bisect
import io
import os
import time
from collections.abc import Callable
from functools import lru_cache

from perftop.model.annotate import CodeKind, CodeSite
from perftop.model.reasons import Unresolved
from perftop.model.samples import NativeCode, ProcessMapping
from perftop.symbols.elf import ElfCache, SymbolTable, read_symbol_table
from perftop.symbols.perfmap import PerfMapReader
from perftop.symbols.user import Resolution
from perftop.system.procfs import Mapping, read_maps

# Why annotate has less than a symbol's disassembly to show.
_JIT_CODE = "JIT code: generated in memory, no file on disk to disassemble"
_NO_BOUNDS = "stripped binary: no symbol or .eh_frame entry bounds the function"
_FDE_BOUNDS = "stripped binary: the function's bounds come from .eh_frame"
_DELETED_NOTE = (
    "binary deleted since it was mapped: read through /proc/PID/map_files while the process lives"
)

MAPS_RELOAD_S = 1.0  # a process that dlopen()s a library is re-read at most this often


@lru_cache(maxsize=1)
def vdso_table() -> SymbolTable | None:
    """The vDSO is the same in every process of this kernel: read perftop's own copy."""
    for mapping in read_maps("self") or []:
        if mapping.is_vdso:
            try:
                with open("/proc/self/mem", "rb") as memory:
                    memory.seek(mapping.start)
                    image = memory.read(mapping.end - mapping.start)
            except OSError:
                return None
            return read_symbol_table(io.BytesIO(image), len(image), "[vdso]")
    return None


class NativeResolver:
    """Implements symbols.UserResolver for one live process."""

    def __init__(self, pid: int, elf_cache: ElfCache) -> None:
        self._pid = pid
        self._elf_cache = elf_cache
        self._perf_map = PerfMapReader(pid)
        self._maps: list[Mapping] | None = None
        self._starts: list[int] = []
        self._loaded_at = float("-inf")
        self._tables: dict[Mapping, SymbolTable | None] = {}
        self._unreachable: dict[
            Mapping, Unresolved
        ] = {}  # why a mapping's file could not be opened
        self._maps_denied = False
        # The mappings that frames were resolved in, as pprof's Mappings say them.
        self._used: dict[Mapping, ProcessMapping] = {}
        self._used_tuple: tuple[ProcessMapping, ...] = ()
        self._load_maps()

    def _load_maps(self) -> None:
        self._loaded_at = time.monotonic()
        try:
            maps, denied = read_maps(self._pid), False
        except PermissionError:
            maps, denied = None, True
        if maps is None and self._maps is not None:
            return  # gone since: keep what we knew, its files may still be readable
        self._maps, self._maps_denied = maps, denied
        self._starts = [mapping.start for mapping in maps or []]
        live = set(maps or [])
        self._tables = {m: t for m, t in self._tables.items() if m in live}
        self._unreachable = {m: r for m, r in self._unreachable.items() if m in live}
        if any(m not in live for m in self._used):
            self._used = {m: used for m, used in self._used.items() if m in live}
            self._used_tuple = tuple(self._used.values())

    def _mapping(self, address: int) -> Mapping | None:
        for attempt in range(2):
            index = bisect.bisect_right(self._starts, address) - 1
            if self._maps and index >= 0 and address < self._maps[index].end:
                return self._maps[index]
            if attempt == 0 and time.monotonic() - self._loaded_at >= MAPS_RELOAD_S:
                self._load_maps()
            else:
                break
        return None

    def _table(self, mapping: Mapping) -> SymbolTable | None:
        # A mapping's file cannot change while it is mapped: look it up once per mapping.
        if mapping in self._tables:
            return self._tables[mapping]
        exact = f"/proc/{self._pid}/map_files/{mapping.start:x}-{mapping.end:x}"
        path = mapping.file_path
        table = self._elf_cache.table(exact, path)
        if table is None:
            inside = f"/proc/{self._pid}/root{path}"
            # A deleted mapping's path names another file now (an upgrade renamed a new binary
            # over it): its symbols would be wrong ones, so only map_files may be used.
            if not mapping.is_deleted:
                table = self._elf_cache.table(inside, path)
            if table is None and _permission_denied(exact):
                elsewhere = mapping.is_deleted or not _permission_denied(inside)
                self._unreachable[mapping] = (
                    Unresolved.MAP_FILES_DENIED if elsewhere else Unresolved.ROOT_DENIED
                )
        self._tables[mapping] = table
        return table

    def place(self, address: int) -> tuple[tuple[int, int, int, int], str, int] | None:
        """(the file's identity, the path it is mapped from, the offset into it): what
        `resolve` names a file-backed address by, when the file's symbols were read. The
        path is in it because the frame's module is named by it (one inode can be reached by
        two paths, in two mount namespaces)."""
        mapping = self._mapping(address)
        if mapping is None or not mapping.is_file_backed:
            return None
        table = self._table(mapping)
        if table is None or table.identity is None:
            return None
        self._note_used(mapping, table.build_id)  # as resolve would: pprof's Mappings
        return (table.identity, mapping.file_path, address - mapping.start + mapping.offset)

    def resolve(self, address: int) -> Resolution:
        mapping = self._mapping(address)
        if mapping is None:
            if self._maps is None:
                gone = Unresolved.MAPS_DENIED if self._maps_denied else Unresolved.GONE
                return Resolution(None, address, None, gone)
            return Resolution(None, address, None, Unresolved.NOT_MAPPED)
        if mapping.is_file_backed or mapping.is_vdso:
            table = vdso_table() if mapping.is_vdso else self._table(mapping)
            module = mapping.file_path
            file_offset = address - mapping.start + mapping.offset
            build_id = table.build_id if table is not None else ""
            self._note_used(mapping, build_id)
            if table is None:
                unreachable = self._unreachable.get(mapping, Unresolved.UNREADABLE)
                native = NativeCode(module, "", file_offset)
                return Resolution(None, file_offset, module, unreachable, native)
            vaddr = table.vaddr_of(file_offset)
            found = table.lookup(vaddr) if vaddr is not None else None
            if found is not None:
                assert vaddr is not None
                native = _native_code(table, module, vaddr - found[1], file_offset - found[1])
                bounds = table.function_range(vaddr)
                site = self._site(mapping, bounds, "") if bounds else None
                return Resolution(
                    found[0], found[1], module, None, native, site=site, function_offset=found[1]
                )
            reason = table.error or (Unresolved.STRIPPED if not table.has_symbols else None)
            start = table.function_start(vaddr) if vaddr is not None else None
            start_offset = table.file_offset_of(start) if start is not None else None
            site, inside = None, None
            if start_offset is not None and start is not None and vaddr is not None:
                # Named by its function's start: one row per function, not per address.
                file_offset = start_offset
                native = _native_code(table, module, start, start_offset)
                bounds = table.fde_range(vaddr) or (start, 0)
                site, inside = self._site(mapping, bounds, _FDE_BOUNDS), vaddr - start
            else:
                native = NativeCode(module, table.build_id, file_offset)
                if vaddr is not None:
                    # No symbol and no FDE: the frame is this address alone.
                    site = self._site(mapping, (vaddr, 0), "", _NO_BOUNDS)
                    inside = 0
            reason = reason or Unresolved.NO_COVERING_SYMBOL
            return Resolution(
                None, file_offset, module, reason, native, site=site, function_offset=inside
            )
        found = self._perf_map.lookup(address)
        if found is not None:
            jit = CodeSite(
                CodeKind.NATIVE, (), f"perf-{self._pid}.map", address - found[1], 0, _JIT_CODE
            )
            return Resolution(
                found[0],
                found[1],
                f"perf-{self._pid}.map",
                None,
                site=jit,
                function_offset=found[1],
            )
        module = mapping.path or "[anon]"
        anonymous = CodeSite(CodeKind.NATIVE, (), module, address, 0, _JIT_CODE)
        reason = self._perf_map.problem or Unresolved.JIT
        return Resolution(None, address, module, reason, site=anonymous, function_offset=0)

    def _site(
        self, mapping: Mapping, bounds: tuple[int, int], note: str, unavailable: str = ""
    ) -> CodeSite:
        """Where annotate reads this mapping's code: the mapped file itself, as symbols do."""
        exact = f"/proc/{self._pid}/map_files/{mapping.start:x}-{mapping.end:x}"
        paths: tuple[str, ...] = (exact,)
        if mapping.is_deleted:
            note = _DELETED_NOTE
        else:
            paths += (f"/proc/{self._pid}/root{mapping.file_path}",)
        return CodeSite(
            CodeKind.NATIVE, paths, mapping.file_path, bounds[0], bounds[1], unavailable, note
        )

    def _note_used(self, mapping: Mapping, build_id: str) -> None:
        if mapping not in self._used:
            self._used[mapping] = ProcessMapping(
                mapping.file_path, build_id, mapping.start, mapping.end, mapping.offset
            )
            self._used_tuple = tuple(self._used.values())

    def mappings(self) -> tuple[ProcessMapping, ...]:
        """Where this process mapped the binaries its resolved frames are in."""
        return self._used_tuple

    def close(self) -> None:
        self._maps = None


def _native_code(table: SymbolTable, path: str, start: int, start_offset: int) -> NativeCode:
    """A function starting at ELF address `start`, at `start_offset` in the file; its source
    line is where its first instruction's line-table row says (the function's opening)."""
    place = table.source_line(start)
    if place is None:
        return NativeCode(path, table.build_id, start_offset)
    return NativeCode(path, table.build_id, start_offset, place[0], place[1])


def _permission_denied(path: str) -> bool:
    try:
        os.stat(path)
    except PermissionError:
        return True
    except OSError:
        return False
    return False


def resolver_factory(elf_cache: ElfCache | None = None) -> Callable[[int], NativeResolver]:
    """One resolver per process, all sharing one cache of ELF symbol tables."""
    cache = elf_cache or ElfCache()

    def make(pid: int) -> NativeResolver:
        return NativeResolver(pid, cache)

    return make
