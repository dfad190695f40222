"""Name a (code object, instruction) pair from a Python process: qualname, file and line.

The BPF walker will hand over raw addresses, so the code object behind one may have been freed
and its memory reused by another by the time we look. Every cache hit is therefore re-checked
against a fingerprint of the object's header (one small read): the pointers to its name,
qualname, filename and line table plus its first line number. A new code object at an old
address has new string and line-table objects, so the fingerprint differs and it is read afresh.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from perftop.python.linetable import LineIndex
from perftop.python.memory import MemoryReader, MemoryReadError, unpack_i32, unpack_pointer
from perftop.python.objects import ObjectReadError, read_bytes, read_string
from perftop.python.runtime import PythonRuntime

# Location tables are ~1 byte per instruction: typing.py's module code, a big one, has 5.7 KiB;
# more than this is a fake or a generated monster, and its frames go without lines.
MAX_LINETABLE_BYTES = 32 * 1024

# Code objects remembered per process. A big application runs a few thousand functions; past
# this the least recently used entries go, so memory stays bounded whatever the target does.
MAX_CACHED_CODES_PER_PID = 8192
# Processes with cached code; callers forget pids on exit, this only bounds a caller that does not.
MAX_CACHED_PIDS = 1024


class CodeReadError(Exception):
    """The address does not hold a readable code object."""


@dataclass(frozen=True, slots=True)
class PythonFrame:
    """One named Python frame. Text is exactly what the target holds (capped), unsanitized."""

    qualname: str
    filename: str
    first_line: int
    line: int | None
    """The instruction's line, or None when the location table says it has none."""


@dataclass(frozen=True, slots=True)
class CodeIdentity:
    """The fields whose change means the address now holds a different code object."""

    name: int
    qualname: int
    filename: int
    linetable: int
    first_line: int


@dataclass(frozen=True, slots=True)
class CodeInfo:
    identity: CodeIdentity
    qualname: str
    filename: str
    lines: LineIndex | None
    """None when the table could not be read: frames then have no line."""

    def frame_at(self, byte_offset: int | None) -> PythonFrame:
        line = None
        if byte_offset is not None and self.lines is not None:
            line = self.lines.line_at(byte_offset)
        return PythonFrame(self.qualname, self.filename, self.identity.first_line, line)


@dataclass(slots=True)
class CacheStatistics:
    hits: int = 0
    misses: int = 0
    stale: int = 0
    """Hits whose fingerprint no longer matched: the address had been reused."""


class CodeReader:
    """Reads and caches code objects of many processes, keyed by (pid, address)."""

    def __init__(self, max_per_pid: int = MAX_CACHED_CODES_PER_PID) -> None:
        self._max_per_pid = max_per_pid
        self._by_pid: dict[int, OrderedDict[int, CodeInfo]] = {}
        self.statistics = CacheStatistics()

    def frame(
        self,
        memory: MemoryReader,
        runtime: PythonRuntime,
        code_address: int,
        instruction_address: int | None,
    ) -> PythonFrame:
        """The frame for `code_address` executing at `instruction_address` (the frame's
        `prev_instr`/`instr_ptr`; None or 0 when unknown). CodeReadError if it is not a code
        object."""
        info = self.code(memory, runtime, code_address)
        offset = None
        if instruction_address:  # 0 (NULL) is as unknown as None
            offset = instruction_address - (code_address + runtime.offsets.code_code_adaptive)
        return info.frame_at(offset)

    def code(self, memory: MemoryReader, runtime: PythonRuntime, code_address: int) -> CodeInfo:
        identity = read_identity(memory, runtime, code_address)
        cached_for_pid = self._by_pid.get(runtime.pid)
        if cached_for_pid is None:
            cached_for_pid = self._by_pid[runtime.pid] = OrderedDict()
            if len(self._by_pid) > MAX_CACHED_PIDS:
                del self._by_pid[next(iter(self._by_pid))]  # the longest-known pid
        cached = cached_for_pid.get(code_address)
        if cached is not None:
            if cached.identity == identity:
                self.statistics.hits += 1
                cached_for_pid.move_to_end(code_address)
                return cached
            self.statistics.stale += 1
        self.statistics.misses += 1
        info = read_code(memory, runtime, identity)
        cached_for_pid[code_address] = info
        cached_for_pid.move_to_end(code_address)
        while len(cached_for_pid) > self._max_per_pid:
            cached_for_pid.popitem(last=False)
        return info

    def cached(self, pid: int, code_address: int) -> CodeInfo | None:
        """The code object as last read, without reading."""
        cached_for_pid = self._by_pid.get(pid)
        return cached_for_pid.get(code_address) if cached_for_pid is not None else None

    def cached_frame(
        self, runtime: PythonRuntime, code_address: int, instruction_address: int | None
    ) -> PythonFrame | None:
        """The frame as last read, without reading: for a process that has just exited, whose
        code objects were checked when it was last read (the interval before) and can no
        longer be reused by anything."""
        cached_for_pid = self._by_pid.get(runtime.pid)
        info = cached_for_pid.get(code_address) if cached_for_pid is not None else None
        if info is None:
            return None
        offset = None
        if instruction_address:
            offset = instruction_address - (code_address + runtime.offsets.code_code_adaptive)
        return info.frame_at(offset)

    def forget_pid(self, pid: int) -> None:
        """Drop a process's entries: call it when the process exits or execs."""
        self._by_pid.pop(pid, None)

    def cached_count(self, pid: int) -> int:
        return len(self._by_pid.get(pid, ()))


def read_identity(memory: MemoryReader, runtime: PythonRuntime, code_address: int) -> CodeIdentity:
    """One read of the code object's header; CodeReadError unless it looks like a code object."""
    offsets = runtime.offsets
    try:
        header = memory.read(code_address, offsets.code_header_size)
    except MemoryReadError as error:
        raise CodeReadError(str(error)) from error
    object_type = unpack_pointer(header, offsets.object_type)
    if runtime.code_type is not None and object_type != runtime.code_type:
        raise CodeReadError(f"object at {code_address:#x} is not a code object")
    identity = CodeIdentity(
        name=unpack_pointer(header, offsets.code_name),
        qualname=unpack_pointer(header, offsets.code_qualname),
        filename=unpack_pointer(header, offsets.code_filename),
        linetable=unpack_pointer(header, offsets.code_linetable),
        first_line=unpack_i32(header, offsets.code_firstlineno),
    )
    if identity.name == 0 or identity.filename == 0:
        raise CodeReadError(f"code object at {code_address:#x} has no name or filename")
    return identity


def read_code(memory: MemoryReader, runtime: PythonRuntime, identity: CodeIdentity) -> CodeInfo:
    offsets = runtime.offsets
    try:
        name_address = identity.qualname or identity.name
        qualname = read_string(memory, name_address, offsets, runtime.str_type)
        filename = read_string(memory, identity.filename, offsets, runtime.str_type)
    except (MemoryReadError, ObjectReadError) as error:
        raise CodeReadError(str(error)) from error
    try:
        linetable = read_bytes(
            memory, identity.linetable, offsets, MAX_LINETABLE_BYTES, runtime.bytes_type
        )
        lines: LineIndex | None = LineIndex.from_table(linetable, identity.first_line)
    except (MemoryReadError, ObjectReadError):
        lines = None
    return CodeInfo(identity, qualname, filename, lines)
