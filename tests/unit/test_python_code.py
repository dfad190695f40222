"""Naming code objects from fake memory: the cache answers only while the object is the same."""

from __future__ import annotations

from dataclasses import replace

import pytest

import perftop.python.code as code_module
from perftop.python.code import CodeReader, CodeReadError
from perftop.python.offsets import PYTHON_3_12
from perftop.python.runtime import PythonRuntime
from tests.unit.python_fakes import (
    BYTES_TYPE,
    CODE_TYPE,
    STR_TYPE,
    FakeMemory,
    fake_bytes,
    fake_code_header,
    fake_str,
)

OFFSETS = PYTHON_3_12
RUNTIME = PythonRuntime(
    pid=4242,
    version_hex=0x030C01F0,
    runtime_address=0x1000,
    offsets=OFFSETS,
    binary_path="/usr/lib/libpython3.12.so",
    load_bias=0,
    runtime_found_by="dynsym",
    version_found_by="Py_Version",
    code_type=CODE_TYPE,
    str_type=STR_TYPE,
    bytes_type=BYTES_TYPE,
)
CODE = 0x7F00_0010_0000
# One-line-form entries (code 11: line + 1, two column bytes), 2 code units each.
LINETABLE = bytes([0x80 | 11 << 3 | 1, 0, 0]) * 3


def place_code(memory: FakeMemory, base: int, qualname: str, first_line: int) -> None:
    """A code object at CODE whose strings and table live at `base`."""
    memory.put(base, fake_str(OFFSETS, qualname))
    memory.put(base + 0x200, fake_str(OFFSETS, f"{qualname}.py"))
    memory.put(base + 0x400, fake_bytes(OFFSETS, LINETABLE))
    memory.put(
        CODE,
        fake_code_header(
            OFFSETS,
            name=base,
            qualname=base,
            filename=base + 0x200,
            linetable=base + 0x400,
            first_line=first_line,
        ),
    )


def test_a_code_object_is_named_with_its_line() -> None:
    memory = FakeMemory()
    place_code(memory, 0x7F00_0020_0000, "Worker.run", 10)
    bytecode = CODE + OFFSETS.code_code_adaptive
    frame = CodeReader().frame(memory, RUNTIME, CODE, bytecode + 4)
    assert (frame.qualname, frame.filename, frame.first_line, frame.line) == (
        "Worker.run",
        "Worker.run.py",
        10,
        12,  # byte 4 is in the second 4-byte entry: 10 + 1 + 1
    )


def test_a_fresh_frame_is_on_its_first_line_and_an_unknown_ip_has_no_line() -> None:
    memory = FakeMemory()
    place_code(memory, 0x7F00_0020_0000, "f", 10)
    reader = CodeReader()
    assert reader.frame(memory, RUNTIME, CODE, CODE + OFFSETS.code_code_adaptive - 2).line == 10
    assert reader.frame(memory, RUNTIME, CODE, None).line is None


def test_a_cache_hit_costs_one_header_read() -> None:
    memory = FakeMemory()
    place_code(memory, 0x7F00_0020_0000, "f", 1)
    reader = CodeReader()
    reader.frame(memory, RUNTIME, CODE, None)
    memory.reads.clear()
    reader.frame(memory, RUNTIME, CODE, None)
    assert memory.reads == [(CODE, OFFSETS.code_header_size)]
    assert (reader.statistics.hits, reader.statistics.misses) == (1, 1)


def test_a_reused_address_is_read_afresh() -> None:
    memory = FakeMemory()
    reader = CodeReader()
    place_code(memory, 0x7F00_0020_0000, "old_function", 5)
    assert reader.frame(memory, RUNTIME, CODE, None).qualname == "old_function"
    place_code(memory, 0x7F00_0030_0000, "new_function", 5)  # freed, then reused
    assert reader.frame(memory, RUNTIME, CODE, None).qualname == "new_function"
    assert reader.statistics.stale == 1


def test_the_cache_is_bounded_per_pid_and_forgotten_per_pid() -> None:
    memory = FakeMemory()
    reader = CodeReader(max_per_pid=3)
    for index in range(5):
        base = 0x7F00_0100_0000 + index * 0x1000
        memory.put(base, fake_str(OFFSETS, f"f{index}"))
        memory.put(base + 0x200, fake_str(OFFSETS, "m.py"))
        code = base + 0x800
        memory.put(
            code,
            fake_code_header(
                OFFSETS, name=base, qualname=base, filename=base + 0x200, linetable=0, first_line=1
            ),
        )
        assert reader.frame(memory, RUNTIME, code, None).qualname == f"f{index}"
    assert reader.cached_count(RUNTIME.pid) == 3
    reader.forget_pid(RUNTIME.pid)
    assert reader.cached_count(RUNTIME.pid) == 0


@pytest.mark.parametrize("problem", ["wrong type", "no name", "unmapped"])
def test_what_is_not_a_code_object_raises_code_read_error(problem: str) -> None:
    memory = FakeMemory()
    base = 0x7F00_0020_0000
    memory.put(base, fake_str(OFFSETS, "f"))
    if problem != "unmapped":
        memory.put(
            CODE,
            fake_code_header(
                OFFSETS,
                name=0 if problem == "no name" else base,
                qualname=base,
                filename=base,
                linetable=0,
                first_line=1,
                type_address=0xBAD0 if problem == "wrong type" else CODE_TYPE,
            ),
        )
    with pytest.raises(CodeReadError):
        CodeReader().frame(memory, RUNTIME, CODE, None)


def test_the_number_of_cached_pids_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(code_module, "MAX_CACHED_PIDS", 2)
    memory = FakeMemory()
    place_code(memory, 0x7F00_0020_0000, "f", 1)
    reader = CodeReader()
    for pid in (1, 2, 3):
        reader.frame(memory, replace(RUNTIME, pid=pid), CODE, None)
    assert [reader.cached_count(pid) for pid in (1, 2, 3)] == [0, 1, 1]


def test_a_null_instruction_pointer_means_no_line_not_the_first_line() -> None:
    memory = FakeMemory()
    place_code(memory, 0x7F00_0020_0000, "f", 10)
    assert CodeReader().frame(memory, RUNTIME, CODE, 0).line is None
