"""Fake process memory and hand-built CPython objects for the pure perftop.python tests."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from perftop.python.memory import MemoryReadError, check_span
from perftop.python.offsets import PythonOffsets

STR_TYPE = 0x5000_0000
BYTES_TYPE = 0x5000_1000
CODE_TYPE = 0x5000_2000

KIND_SHIFT = 2
COMPACT = 0x20
ASCII = 0x40


@dataclass
class FakeMemory:
    """Regions of bytes at addresses; a read must fall inside one region, as in a real process
    where the neighbouring page may be unmapped."""

    regions: dict[int, bytes] = field(default_factory=dict)
    reads: list[tuple[int, int]] = field(default_factory=list)

    def put(self, address: int, data: bytes) -> int:
        self.regions[address] = data
        return address

    def read(self, address: int, size: int) -> bytes:
        check_span(address, size)
        self.reads.append((address, size))
        for start, data in self.regions.items():
            if start <= address and address + size <= start + len(data):
                return data[address - start : address - start + size]
        raise MemoryReadError(f"unmapped {address:#x}+{size}")


def fake_str(
    offsets: PythonOffsets,
    text: str,
    *,
    type_address: int = STR_TYPE,
    state: int | None = None,
    claimed_length: int | None = None,
) -> bytes:
    """A compact str as CPython lays it out, with the kind it would choose for `text`."""
    widest = max((ord(ch) for ch in text), default=0)
    kind = 1 if widest < 0x100 else 2 if widest < 0x10000 else 4
    is_ascii = widest < 0x80
    if state is None:
        state = (kind << KIND_SHIFT) | COMPACT | (ASCII if is_ascii else 0)
    encoding = {1: "latin-1", 2: "utf-16-le", 4: "utf-32-le"}[kind]
    data = text.encode(encoding)
    header_size = offsets.unicode_ascii_data if is_ascii else offsets.unicode_compact_data
    header = bytearray(header_size)
    struct.pack_into("<QQ", header, 0, 1, type_address)
    struct.pack_into("<q", header, offsets.unicode_length, claimed_length or len(text))
    struct.pack_into("<I", header, offsets.unicode_state, state)
    body = bytes(header) + data + b"\0" * kind
    return body + b"\0" * max(0, offsets.unicode_compact_data - len(body))


def fake_bytes(offsets: PythonOffsets, data: bytes, *, claimed_size: int | None = None) -> bytes:
    header = bytearray(offsets.bytes_data)
    struct.pack_into("<QQ", header, 0, 1, BYTES_TYPE)
    struct.pack_into(
        "<q", header, offsets.bytes_size, len(data) if claimed_size is None else claimed_size
    )
    return bytes(header) + data + b"\0"


def fake_code_header(
    offsets: PythonOffsets,
    *,
    name: int,
    qualname: int,
    filename: int,
    linetable: int,
    first_line: int,
    type_address: int = CODE_TYPE,
) -> bytes:
    header = bytearray(offsets.code_header_size + 64)
    struct.pack_into("<QQ", header, 0, 1, type_address)
    for offset, value in (
        (offsets.code_name, name),
        (offsets.code_qualname, qualname),
        (offsets.code_filename, filename),
        (offsets.code_linetable, linetable),
    ):
        struct.pack_into("<Q", header, offset, value)
    struct.pack_into("<i", header, offsets.code_firstlineno, first_line)
    return bytes(header)
