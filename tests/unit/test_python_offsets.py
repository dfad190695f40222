"""The offsets tables, checked against a live interpreter's own memory where the test runs on
that version, and the 3.13 `_Py_DebugOffsets` parser against pyenv's libpython and fakes."""

from __future__ import annotations

import ctypes
import struct
import sys
import threading
from types import FrameType

import pytest

from perftop.python.elf import read_elf
from perftop.python.offsets import (
    DEBUG_OFFSETS_3_13_SIZE,
    PYTHON_3_11,
    PYTHON_3_12,
    TABLE_OFFSETS,
    OffsetsError,
    parse_debug_offsets,
)
from tests.python.conftest import pyenv_python

# PyFrameObject.f_frame (after PyObject_HEAD and f_back) in 3.11 and 3.12; only this test needs it.
FRAME_OBJECT_F_FRAME = 24

running_3_11 = pytest.mark.skipif(
    sys.version_info[:2] != (3, 11), reason="reads this interpreter's memory with the 3.11 table"
)


def word(address: int) -> int:
    value: int = struct.unpack("<Q", ctypes.string_at(address, 8))[0]
    return value


def interpreter_frame(frame: FrameType) -> int:
    return word(id(frame) + FRAME_OBJECT_F_FRAME)


@running_3_11
def test_code_object_offsets_match_this_interpreter() -> None:
    def never_called(argument: int) -> int:
        return argument + 1

    code = never_called.__code__
    offsets = TABLE_OFFSETS[sys.version_info[1]]
    assert word(id(code) + offsets.code_filename) == id(code.co_filename)
    assert word(id(code) + offsets.code_name) == id(code.co_name)
    assert word(id(code) + offsets.code_qualname) == id(code.co_qualname)
    assert word(id(code) + offsets.code_linetable) == id(code.co_linetable)
    first_line = struct.unpack("<i", ctypes.string_at(id(code) + offsets.code_firstlineno, 4))[0]
    assert first_line == code.co_firstlineno
    # Never run, so not yet specialised: the adaptive copy still equals co_code.
    bytecode = ctypes.string_at(id(code) + offsets.code_code_adaptive, len(code.co_code))
    assert bytecode == code.co_code
    assert word(id(code) + offsets.object_type) == id(type(code))


@running_3_11
def test_string_and_bytes_offsets_match_this_interpreter() -> None:
    offsets = TABLE_OFFSETS[sys.version_info[1]]
    ascii_text = "perftop_" + str(threading.get_ident())
    latin_text = "café_" + str(threading.get_ident())
    assert word(id(ascii_text) + offsets.unicode_length) == len(ascii_text)
    data = ctypes.string_at(id(ascii_text) + offsets.unicode_ascii_data, len(ascii_text))
    assert data == ascii_text.encode()
    state = word(id(latin_text) + offsets.unicode_state) & 0xFF
    assert (state >> 2 & 7, bool(state & 0x20), bool(state & 0x40)) == (1, True, False)
    data = ctypes.string_at(id(latin_text) + offsets.unicode_compact_data, len(latin_text))
    assert data == latin_text.encode("latin-1")
    blob = b"line table " + bytes([threading.get_ident() & 0xFF])
    assert word(id(blob) + offsets.bytes_size) == len(blob)
    assert ctypes.string_at(id(blob) + offsets.bytes_data, len(blob)) == blob


@running_3_11
def test_runtime_thread_and_frame_offsets_match_this_interpreter() -> None:
    offsets = TABLE_OFFSETS[sys.version_info[1]]
    runtime = ctypes.addressof(ctypes.c_char.in_dll(ctypes.pythonapi, "_PyRuntime"))
    ctypes.pythonapi.PyInterpreterState_Get.restype = ctypes.c_void_p
    ctypes.pythonapi.PyThreadState_Get.restype = ctypes.c_void_p
    interpreter = ctypes.pythonapi.PyInterpreterState_Get()
    thread = ctypes.pythonapi.PyThreadState_Get()
    assert word(runtime + offsets.runtime_interpreters_head) == interpreter

    candidate, seen = word(interpreter + offsets.interpreter_threads_head), 0
    while candidate not in (0, thread) and seen < 64:
        candidate, seen = word(candidate + offsets.thread_next), seen + 1
    assert candidate == thread
    assert word(thread + offsets.thread_native_thread_id) == threading.get_native_id()

    # Read the current frame with memmove, a C call: a Python helper would be the current frame.
    this_frame = sys._getframe()
    assert offsets.cframe_current_frame is not None
    buffer = ctypes.c_uint64()
    ctypes.memmove(ctypes.addressof(buffer), thread + offsets.thread_current_frame, 8)
    ctypes.memmove(ctypes.addressof(buffer), buffer.value + offsets.cframe_current_frame, 8)
    current = buffer.value
    assert current == interpreter_frame(this_frame)
    assert word(current + offsets.frame_code) == id(this_frame.f_code)
    caller = this_frame.f_back
    assert caller is not None
    assert word(current + offsets.frame_previous) == interpreter_frame(caller)
    instruction = word(current + offsets.frame_instruction)
    bytecode_start = id(this_frame.f_code) + offsets.code_code_adaptive
    assert 0 <= instruction - bytecode_start < len(this_frame.f_code.co_code)


def test_tables_differ_where_cpython_changed_the_structs() -> None:
    assert (PYTHON_3_11.frame_code, PYTHON_3_12.frame_code) == (32, 0)
    assert (PYTHON_3_11.owner_cstack, PYTHON_3_12.owner_cstack) == (None, 3)
    assert PYTHON_3_11.frame_header_size == 70  # owner byte at 69
    assert PYTHON_3_12.frame_header_size == 71


# offsetof() against pyenv 3.13.0's internal headers (a C program with Py_BUILD_CORE).
OFFSETOF_3_13_0 = {
    "runtime_interpreters_head": 632,
    "interpreter_threads_head": 7344,
    "thread_next": 8,
    "thread_native_thread_id": 160,
    "thread_current_frame": 72,
    "frame_code": 0,
    "frame_previous": 8,
    "frame_instruction": 56,
    "frame_owner": 70,
    "code_filename": 112,
    "code_name": 120,
    "code_qualname": 128,
    "code_firstlineno": 68,
    "code_linetable": 136,
    "code_code_adaptive": 200,
    "unicode_length": 16,
    "unicode_state": 32,
    "unicode_ascii_data": 40,
    "unicode_compact_data": 56,
    "bytes_size": 16,
    "bytes_data": 32,
}


def debug_offsets_from_file(version: str) -> bytes:
    library = pyenv_python(version).parent.parent / "lib" / f"libpython{version[:4]}.so.1.0"
    if not library.exists():
        pytest.skip(f"{library} not installed")
    section = read_elf(str(library), ()).section(".PyRuntime")
    assert section is not None
    with open(library, "rb") as file:
        file.seek(section.file_offset)
        return file.read(DEBUG_OFFSETS_3_13_SIZE)


def test_debug_offsets_of_pyenv_3_13_match_offsetof() -> None:
    offsets = parse_debug_offsets(debug_offsets_from_file("3.13.0"))
    assert {name: getattr(offsets, name) for name in OFFSETOF_3_13_0} == OFFSETOF_3_13_0
    assert offsets.cframe_current_frame is None and offsets.owner_cstack == 3


def real_3_13_words() -> list[int]:
    raw = debug_offsets_from_file("3.13.0")
    return list(struct.unpack_from(f"<{DEBUG_OFFSETS_3_13_SIZE // 8 - 1}Q", raw, 8))


def pack(words: list[int], cookie: bytes = b"xdebugpy") -> bytes:
    return cookie + struct.pack(f"<{len(words)}Q", *words)


@pytest.mark.parametrize(
    ("word_index", "value", "message"),
    [
        (0, 0x030E00F0, "unknown layout"),  # a 3.14 cookie: its struct is laid out differently
        (1, 1, "free-threaded"),
        (1, 0xFFFF, "free_threaded"),
        (24, 1 << 40, "thread_native_thread_id"),  # past sizeof(PyThreadState)
        (18, 0, "thread_next"),  # sizeof(PyThreadState) of 0
    ],
)
def test_debug_offsets_that_fail_validation_are_refused(
    word_index: int, value: int, message: str
) -> None:
    words = real_3_13_words()
    words[word_index] = value
    with pytest.raises(OffsetsError, match=message):
        parse_debug_offsets(pack(words))


def test_debug_offsets_without_cookie_or_truncated_are_refused() -> None:
    words = real_3_13_words()
    with pytest.raises(OffsetsError, match="cookie"):
        parse_debug_offsets(pack(words, cookie=b"xdebugpz"))
    with pytest.raises(OffsetsError, match="truncated"):
        parse_debug_offsets(pack(words)[:100])


def test_debian_python_has_the_section_but_no_cookie() -> None:
    image = read_elf("/usr/bin/python3.11", ())
    section = image.section(".PyRuntime")
    assert section is not None
    with open("/usr/bin/python3.11", "rb") as file:
        file.seek(section.file_offset)
        assert file.read(8) != b"xdebugpy"
