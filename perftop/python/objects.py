"""Read `str` and `bytes` objects out of a CPython process, bounded and validated.

A `str` is trusted only as far as its header says something a real compact string would: the
`compact` bit set, kind 1, 2 or 4, `ascii` only with kind 1, a length that is not negative. The
text is capped (a hostile process can claim a length of 2**62) and decoded with replacement, so
the caller always gets a `str` of bounded size and never an exception other than the two below.
"""

from __future__ import annotations

from perftop.python.memory import MemoryReader, unpack_i64, unpack_pointer, unpack_u32
from perftop.python.offsets import PythonOffsets

# Names and file paths longer than this are cut and end with TRUNCATED_MARK. Real qualnames are
# well under 200 characters; paths can be long but 1 KiB covers any sane one.
MAX_STRING_CHARS = 1024
TRUNCATED_MARK = "…"

_KIND_MASK = 0x1C
_KIND_SHIFT = 2
_COMPACT_BIT = 0x20
_ASCII_BIT = 0x40
_ENCODING_BY_KIND = {1: "latin-1", 2: "utf-16-le", 4: "utf-32-le"}


class ObjectReadError(Exception):
    """A pointer that does not lead to an object of the expected shape."""


def read_string(
    memory: MemoryReader,
    address: int,
    offsets: PythonOffsets,
    expected_type: int | None = None,
    max_chars: int = MAX_STRING_CHARS,
) -> str:
    """The text of the compact `str` at `address`, cut to `max_chars` characters.

    `expected_type` is the target's `PyUnicode_Type` address when the binary exports it; an
    object of another type is rejected rather than decoded.
    """
    if address == 0:
        raise ObjectReadError("NULL string pointer")
    header = memory.read(address, offsets.unicode_compact_data)
    if expected_type is not None and unpack_pointer(header, offsets.object_type) != expected_type:
        raise ObjectReadError(f"object at {address:#x} is not a str")
    state = unpack_u32(header, offsets.unicode_state)
    length = unpack_i64(header, offsets.unicode_length)
    kind = (state & _KIND_MASK) >> _KIND_SHIFT
    is_ascii = bool(state & _ASCII_BIT)
    if not state & _COMPACT_BIT:
        raise ObjectReadError(f"str at {address:#x} is not compact")
    if kind not in _ENCODING_BY_KIND or (is_ascii and kind != 1):
        raise ObjectReadError(f"str at {address:#x} has invalid kind {kind}")
    if length < 0:
        raise ObjectReadError(f"str at {address:#x} has negative length")
    chars = min(length, max_chars)
    data_start = offsets.unicode_ascii_data if is_ascii else offsets.unicode_compact_data
    raw = memory.read(address + data_start, chars * kind) if chars else b""
    text = raw.decode("ascii" if is_ascii else _ENCODING_BY_KIND[kind], "replace")
    return text + TRUNCATED_MARK if length > chars else text


def read_bytes(
    memory: MemoryReader,
    address: int,
    offsets: PythonOffsets,
    max_bytes: int,
    expected_type: int | None = None,
) -> bytes:
    """The contents of the `bytes` object at `address`; ObjectReadError if over `max_bytes`."""
    if address == 0:
        raise ObjectReadError("NULL bytes pointer")
    header = memory.read(address, offsets.bytes_data)
    if expected_type is not None and unpack_pointer(header, offsets.object_type) != expected_type:
        raise ObjectReadError(f"object at {address:#x} is not bytes")
    size = unpack_i64(header, offsets.bytes_size)
    if not 0 <= size <= max_bytes:
        raise ObjectReadError(f"bytes at {address:#x} claims {size} bytes (cap {max_bytes})")
    return memory.read(address + offsets.bytes_data, size) if size else b""
