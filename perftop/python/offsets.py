"""The struct offsets a CPython frame walker needs, per interpreter version.

3.11 and 3.12 publish nothing, so their offsets are a table: each figure was printed by a small C
program with `offsetof` against pyenv 3.11.7's and 3.12.1's internal headers (`Py_BUILD_CORE`), and
the live tests walk Debian's 3.11.2 and pyenv's 3.11.7/3.12.1 with them. 3.13 carries
`_Py_DebugOffsets` at the start of `_PyRuntime` (cookie `xdebugpy`); its layout is read here
field by field and validated, since a patch release can add fields and a fake runtime can say
anything.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

DEBUG_COOKIE = b"xdebugpy"

# Owner value of the shim frame CPython 3.12/3.13 pushes when C code calls into the eval loop
# (FRAME_OWNED_BY_CSTACK); it has no Python code worth showing.
OWNER_CSTACK = 3


class OffsetsError(Exception):
    """The interpreter's layout is unknown or its published offsets fail validation."""


@dataclass(frozen=True, slots=True)
class PythonOffsets:
    """Byte offsets into CPython's structs for one minor version (x86-64, GIL build)."""

    minor: int
    runtime_interpreters_head: int
    interpreter_threads_head: int
    thread_next: int
    thread_native_thread_id: int
    thread_current_frame: int
    """3.13+: `tstate.current_frame`; 3.11/3.12: `tstate.cframe`, then `cframe_current_frame`."""
    cframe_current_frame: int | None
    frame_code: int
    """`f_code` (3.11/3.12) or `f_executable` (3.13)."""
    frame_previous: int
    frame_instruction: int
    """`prev_instr` (3.11/3.12) or `instr_ptr` (3.13); minus `co_code_adaptive` it is the byte
    offset CPython itself hands `PyCode_Addr2Line`."""
    frame_owner: int
    owner_cstack: int | None
    """Owner value of C-stack shim frames to skip; 3.11 has no such frames."""
    code_filename: int
    code_name: int
    code_qualname: int
    code_firstlineno: int
    code_linetable: int
    code_code_adaptive: int
    object_type: int
    bytes_size: int
    bytes_data: int
    unicode_length: int
    unicode_state: int
    unicode_ascii_data: int
    """Characters of a compact ASCII string start here (sizeof PyASCIIObject)."""
    unicode_compact_data: int
    """Characters of a compact non-ASCII string start here (sizeof PyCompactUnicodeObject)."""

    @property
    def frame_header_size(self) -> int:
        """Bytes to read for one `_PyInterpreterFrame`: up to and including its owner byte."""
        pointers_end = max(self.frame_code, self.frame_previous, self.frame_instruction) + 8
        return max(pointers_end, self.frame_owner + 1)

    @property
    def code_header_size(self) -> int:
        """Bytes of a code object before its bytecode: every field we read lies in them."""
        return self.code_code_adaptive


PYTHON_3_11 = PythonOffsets(
    minor=11,
    runtime_interpreters_head=40,
    interpreter_threads_head=16,
    thread_next=8,
    thread_native_thread_id=160,
    thread_current_frame=56,
    cframe_current_frame=8,
    frame_code=32,
    frame_previous=48,
    frame_instruction=56,
    frame_owner=69,
    owner_cstack=None,
    code_filename=112,
    code_name=120,
    code_qualname=128,
    code_firstlineno=72,
    code_linetable=136,
    code_code_adaptive=184,
    object_type=8,
    bytes_size=16,
    bytes_data=32,
    unicode_length=16,
    unicode_state=32,
    unicode_ascii_data=48,
    unicode_compact_data=72,
)

PYTHON_3_12 = PythonOffsets(
    minor=12,
    runtime_interpreters_head=40,
    interpreter_threads_head=72,
    thread_next=8,
    thread_native_thread_id=144,
    thread_current_frame=56,
    cframe_current_frame=0,
    frame_code=0,
    frame_previous=8,
    frame_instruction=56,
    frame_owner=70,
    owner_cstack=OWNER_CSTACK,
    code_filename=112,
    code_name=120,
    code_qualname=128,
    code_firstlineno=68,
    code_linetable=136,
    code_code_adaptive=192,
    object_type=8,
    bytes_size=16,
    bytes_data=32,
    unicode_length=16,
    unicode_state=32,
    unicode_ascii_data=40,
    unicode_compact_data=56,
)

TABLE_OFFSETS: dict[int, PythonOffsets] = {11: PYTHON_3_11, 12: PYTHON_3_12}

# The 3.13 `_Py_DebugOffsets` layout (Include/internal/pycore_runtime.h of 3.13.0): after the
# cookie, every field is a u64; these are the word indices of the ones we use, and of each nested
# struct's `size` so every offset can be checked against the size of the struct it indexes.
_DEBUG_WORDS_3_13 = {
    "version": 1,
    "free_threaded": 2,
    "runtime_size": 3,
    "runtime_interpreters_head": 5,
    "interpreter_size": 6,
    "interpreter_threads_head": 9,
    "thread_size": 19,
    "thread_next": 21,
    "thread_current_frame": 23,
    "thread_native_thread_id": 25,
    "frame_size": 28,
    "frame_previous": 29,
    "frame_executable": 30,
    "frame_instr_ptr": 31,
    "frame_owner": 33,
    "code_size": 34,
    "code_filename": 35,
    "code_name": 36,
    "code_qualname": 37,
    "code_linetable": 38,
    "code_firstlineno": 39,
    "code_code_adaptive": 43,
    "object_size": 44,
    "object_type": 45,
    "bytes_size_of": 64,
    "bytes_size": 65,
    "bytes_data": 66,
    "unicode_size_of": 67,
    "unicode_state": 68,
    "unicode_length": 69,
    "unicode_ascii_size": 70,
}
DEBUG_OFFSETS_3_13_SIZE = 73 * 8

# Which nested struct each offset indexes, to check offset < sizeof(struct).
_BOUNDED_BY = {
    "runtime_interpreters_head": "runtime_size",
    "interpreter_threads_head": "interpreter_size",
    "thread_next": "thread_size",
    "thread_current_frame": "thread_size",
    "thread_native_thread_id": "thread_size",
    "frame_previous": "frame_size",
    "frame_executable": "frame_size",
    "frame_instr_ptr": "frame_size",
    "frame_owner": "frame_size",
    "code_filename": "code_size",
    "code_name": "code_size",
    "code_qualname": "code_size",
    "code_linetable": "code_size",
    "code_firstlineno": "code_size",
    "code_code_adaptive": "code_size",
    "object_type": "object_size",
    "bytes_size": "bytes_size_of",
    "bytes_data": "bytes_size_of",
    "unicode_state": "unicode_size_of",
    "unicode_length": "unicode_size_of",
}
# Sizes a real CPython struct cannot exceed: `_PyRuntimeState` is 0x452b8 bytes in 3.13.0 (the
# `.PyRuntime` section), PyInterpreterState ~100 KiB; anything larger is a fake.
_MAX_STRUCT_SIZE = 1 << 20
_MAX_CODE_HEADER = 512


def debug_offsets_version(raw: bytes) -> int | None:
    """PY_VERSION_HEX from the start of `_PyRuntime`, or None when the cookie is absent."""
    if len(raw) < 16 or raw[:8] != DEBUG_COOKIE:
        return None
    version: int = struct.unpack_from("<Q", raw, 8)[0]
    return version


def parse_debug_offsets(raw: bytes) -> PythonOffsets:
    """Offsets from a 3.13 `_Py_DebugOffsets`, validated; OffsetsError says what failed."""
    version = debug_offsets_version(raw)
    if version is None:
        raise OffsetsError("no _Py_DebugOffsets cookie")
    major, minor = version >> 24, (version >> 16) & 0xFF
    if (major, minor) != (3, 13):
        raise OffsetsError(f"_Py_DebugOffsets of {major}.{minor} has an unknown layout")
    if len(raw) < DEBUG_OFFSETS_3_13_SIZE:
        raise OffsetsError("_Py_DebugOffsets truncated")
    words = struct.unpack_from(f"<{DEBUG_OFFSETS_3_13_SIZE // 8 - 1}Q", raw, 8)
    field = {name: words[index - 1] for name, index in _DEBUG_WORDS_3_13.items()}
    if field["free_threaded"] == 1:
        raise OffsetsError("free-threaded build: interpreter frames not supported")
    if field["free_threaded"] != 0:
        raise OffsetsError(f"_Py_DebugOffsets.free_threaded={field['free_threaded']} invalid")
    for name, bound in _BOUNDED_BY.items():
        if not 0 < field[bound] <= _MAX_STRUCT_SIZE or field[name] >= field[bound]:
            raise OffsetsError(f"_Py_DebugOffsets.{name}={field[name]} outside its struct")
    if field["code_code_adaptive"] > _MAX_CODE_HEADER or field["unicode_ascii_size"] > 256:
        raise OffsetsError("_Py_DebugOffsets code or string header implausibly large")
    return PythonOffsets(
        minor=13,
        runtime_interpreters_head=field["runtime_interpreters_head"],
        interpreter_threads_head=field["interpreter_threads_head"],
        thread_next=field["thread_next"],
        thread_native_thread_id=field["thread_native_thread_id"],
        thread_current_frame=field["thread_current_frame"],
        cframe_current_frame=None,
        frame_code=field["frame_executable"],
        frame_previous=field["frame_previous"],
        frame_instruction=field["frame_instr_ptr"],
        frame_owner=field["frame_owner"],
        owner_cstack=OWNER_CSTACK,
        code_filename=field["code_filename"],
        code_name=field["code_name"],
        code_qualname=field["code_qualname"],
        code_firstlineno=field["code_firstlineno"],
        code_linetable=field["code_linetable"],
        code_code_adaptive=field["code_code_adaptive"],
        object_type=field["object_type"],
        bytes_size=field["bytes_size"],
        bytes_data=field["bytes_data"],
        unicode_length=field["unicode_length"],
        unicode_state=field["unicode_state"],
        unicode_ascii_data=field["unicode_ascii_size"],
        # Not published: PyCompactUnicodeObject is PyASCIIObject plus utf8_length and utf8
        # (56 = 40 + 16 by offsetof in 3.13.0's headers).
        unicode_compact_data=field["unicode_ascii_size"] + 16,
    )
