"""Bounded, read-only reads of another process's memory.

Everything perftop learns about a Python process comes through here, and the process may lie: a
fake `_PyRuntime` can hand us any pointer and any length. So every read has a size cap, every
address is checked against the user half of the address space, and failures are one typed error.
The target is never written, never ptrace-attached and never stopped: `pread` on `/proc/PID/mem`
needs only ptrace-read permission (root, or the same user with yama scope 0) and leaves
`TracerPid` at 0.
"""

from __future__ import annotations

import os
import struct
from typing import Protocol

# No single read is larger than this. The biggest legitimate read is a line table (kept under
# `MAX_LINETABLE_BYTES` in code.py); everything else is a struct header or a capped string.
MAX_READ_BYTES = 64 * 1024

# x86-64 user space ends below 2**47 (2**56 with 5-level paging); anything above is a kernel or
# non-canonical address, which a fake runtime may hand us.
USER_SPACE_END = 1 << 56

_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")


class MemoryReadError(Exception):
    """A read the target's memory could not satisfy: unmapped, out of range, or too large."""


class MemoryReader(Protocol):
    """The one seam between the Python readers and a process: tests hand in fake memory."""

    def read(self, address: int, size: int) -> bytes:
        """Exactly `size` bytes at `address`, or MemoryReadError."""
        ...


def check_span(address: int, size: int) -> None:
    if size < 0 or size > MAX_READ_BYTES:
        raise MemoryReadError(f"read of {size} bytes refused (cap {MAX_READ_BYTES})")
    if address <= 0 or address + size > USER_SPACE_END:
        raise MemoryReadError(f"address {address:#x} is outside user space")


class ProcessMemory:
    """`/proc/PID/mem`, opened read-only once and read with `pread`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        try:
            self._fd: int | None = os.open(f"/proc/{pid}/mem", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as error:
            raise MemoryReadError(f"cannot open memory of pid {pid}: {error.strerror}") from error

    def read(self, address: int, size: int) -> bytes:
        check_span(address, size)
        if self._fd is None:
            raise MemoryReadError("memory reader is closed")
        if size == 0:
            return b""
        try:
            data = os.pread(self._fd, size, address)
        except (OSError, OverflowError) as error:
            raise MemoryReadError(f"cannot read {size} bytes at {address:#x}: {error}") from error
        if len(data) != size:
            raise MemoryReadError(f"short read at {address:#x}: {len(data)} of {size} bytes")
        return data

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> ProcessMemory:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def read_u64(memory: MemoryReader, address: int) -> int:
    value: int = _U64.unpack(memory.read(address, 8))[0]
    return value


def read_pointer(memory: MemoryReader, address: int) -> int:
    """A pointer field; NULL and non-user values come back as 0 so callers test one thing."""
    value = read_u64(memory, address)
    return value if 0 < value < USER_SPACE_END else 0


def unpack_u64(data: bytes, offset: int) -> int:
    value: int = _U64.unpack_from(data, offset)[0]
    return value


def unpack_i64(data: bytes, offset: int) -> int:
    value: int = _I64.unpack_from(data, offset)[0]
    return value


def unpack_u32(data: bytes, offset: int) -> int:
    value: int = _U32.unpack_from(data, offset)[0]
    return value


def unpack_i32(data: bytes, offset: int) -> int:
    value: int = _I32.unpack_from(data, offset)[0]
    return value


def unpack_pointer(data: bytes, offset: int) -> int:
    value = unpack_u64(data, offset)
    return value if 0 < value < USER_SPACE_END else 0
