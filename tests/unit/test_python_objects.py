"""str and bytes objects read from fake memory: real layouts decode, lies are refused or capped."""

from __future__ import annotations

import pytest

from perftop.python.memory import MAX_READ_BYTES, MemoryReadError
from perftop.python.objects import (
    MAX_STRING_CHARS,
    ObjectReadError,
    read_bytes,
    read_string,
)
from perftop.python.offsets import PYTHON_3_11, PYTHON_3_12, PythonOffsets
from tests.unit.python_fakes import ASCII, COMPACT, STR_TYPE, FakeMemory, fake_bytes, fake_str

ADDRESS = 0x7F00_0000_1000
LAYOUTS = pytest.mark.parametrize("offsets", [PYTHON_3_11, PYTHON_3_12], ids=["3.11", "3.12"])


@LAYOUTS
@pytest.mark.parametrize(
    "text",
    ["", "inner_spin", "\x1b[31m[bold]x", "café", "Ωμέγα", "ok_😀_ok", "\x00nul"],
    ids=["empty", "ascii", "markup", "latin-1", "ucs-2", "ucs-4", "nul"],
)
def test_every_compact_kind_decodes_to_the_same_text(offsets: PythonOffsets, text: str) -> None:
    memory = FakeMemory()
    memory.put(ADDRESS, fake_str(offsets, text))
    assert read_string(memory, ADDRESS, offsets, STR_TYPE) == text


@LAYOUTS
def test_a_huge_claimed_length_is_capped_and_marked(offsets: PythonOffsets) -> None:
    memory = FakeMemory()
    memory.put(ADDRESS, fake_str(offsets, "x" * 2000, claimed_length=1 << 62))
    text = read_string(memory, ADDRESS, offsets)
    assert text == "x" * MAX_STRING_CHARS + "…"
    assert max(size for _, size in memory.reads) <= MAX_STRING_CHARS * 4


@LAYOUTS
@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (1 << 2 | ASCII, "not compact"),
        (3 << 2 | COMPACT, "invalid kind"),
        (0 << 2 | COMPACT, "invalid kind"),
        (2 << 2 | COMPACT | ASCII, "invalid kind"),  # ascii strings are always kind 1
    ],
)
def test_headers_no_compact_string_has_are_refused(
    offsets: PythonOffsets, state: int, reason: str
) -> None:
    memory = FakeMemory()
    memory.put(ADDRESS, fake_str(offsets, "name", state=state))
    with pytest.raises(ObjectReadError, match=reason):
        read_string(memory, ADDRESS, offsets)


def test_a_negative_length_is_refused() -> None:
    memory = FakeMemory()
    memory.put(ADDRESS, fake_str(PYTHON_3_12, "name", claimed_length=-5))
    with pytest.raises(ObjectReadError, match="negative"):
        read_string(memory, ADDRESS, PYTHON_3_12)


def test_an_object_of_another_type_is_refused_when_the_type_is_known() -> None:
    memory = FakeMemory()
    memory.put(ADDRESS, fake_str(PYTHON_3_12, "name", type_address=0xDEAD0))
    with pytest.raises(ObjectReadError, match="not a str"):
        read_string(memory, ADDRESS, PYTHON_3_12, STR_TYPE)
    assert read_string(memory, ADDRESS, PYTHON_3_12, None) == "name"


def test_invalid_code_units_are_replaced_not_raised() -> None:
    memory = FakeMemory()
    raw = bytearray(fake_str(PYTHON_3_12, "ok_😀"))
    data = PYTHON_3_12.unicode_compact_data
    raw[data + 12 : data + 16] = (0x110000).to_bytes(4, "little")  # past the last code point
    memory.put(ADDRESS, bytes(raw))
    assert read_string(memory, ADDRESS, PYTHON_3_12) == "ok_\ufffd"


def test_unmapped_and_null_strings_raise_the_typed_errors() -> None:
    with pytest.raises(ObjectReadError):
        read_string(FakeMemory(), 0, PYTHON_3_12)
    with pytest.raises(MemoryReadError):
        read_string(FakeMemory(), ADDRESS, PYTHON_3_12)
    with pytest.raises(MemoryReadError):
        read_string(FakeMemory(), 1 << 60, PYTHON_3_12)  # kernel half


def test_bytes_within_the_cap_are_read_and_above_it_refused() -> None:
    memory = FakeMemory()
    memory.put(ADDRESS, fake_bytes(PYTHON_3_11, b"\x80\x81table"))
    assert read_bytes(memory, ADDRESS, PYTHON_3_11, 64) == b"\x80\x81table"
    memory.put(ADDRESS + 0x1000, fake_bytes(PYTHON_3_11, b"x", claimed_size=1 << 40))
    with pytest.raises(ObjectReadError, match="cap"):
        read_bytes(memory, ADDRESS + 0x1000, PYTHON_3_11, MAX_READ_BYTES)
