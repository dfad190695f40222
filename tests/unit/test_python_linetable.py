"""The location-table decoder against CPython's own decoding of real code objects."""

from __future__ import annotations

import argparse
import asyncio.base_events
import dis
import functools
import itertools
import json.decoder
import sys
import types
import typing
from collections.abc import Iterator

import pytest

from perftop.python.linetable import LineIndex, line_for_offset, line_ranges

# The format decoded here is 3.11+'s; the test interpreter must speak it.
pytestmark = pytest.mark.skipif(sys.version_info < (3, 11), reason="needs a 3.11+ interpreter")


def code_objects(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield from code_objects(constant)


@functools.cache
def compiled_modules() -> tuple[types.CodeType, ...]:
    codes: list[types.CodeType] = []
    for module in (argparse, asyncio.base_events, dis, json.decoder, typing):
        path = module.__file__
        assert path is not None
        with open(path) as source:
            codes.extend(code_objects(compile(source.read(), path, "exec")))
    return tuple(codes)


def expected_lines(code: types.CodeType) -> dict[int, int | None]:
    lines: dict[int, int | None] = {}
    for start, end, line in code.co_lines():
        for offset in range(start, end, 2):
            lines[offset] = line
    return lines


def test_every_instruction_line_matches_co_lines_in_real_modules() -> None:
    checked = 0
    for code in compiled_modules():
        index = LineIndex.from_table(code.co_linetable, code.co_firstlineno)
        for offset, line in expected_lines(code).items():
            assert index.line_at(offset) == line, (code.co_qualname, offset)
            checked += 1
    assert checked > 50_000  # argparse, asyncio, dis, json, typing: ~100,000 instructions


def test_lines_match_co_positions_per_code_unit() -> None:
    for code in compiled_modules():
        index = LineIndex.from_table(code.co_linetable, code.co_firstlineno)
        for unit, position in enumerate(code.co_positions()):
            assert index.line_at(unit * 2) == position[0], (code.co_qualname, unit)


def test_the_linear_decoder_agrees_with_the_index() -> None:
    for code in compiled_modules()[::50]:
        index = LineIndex.from_table(code.co_linetable, code.co_firstlineno)
        for offset in range(-2, len(code.co_code) + 4, 2):
            assert line_for_offset(code.co_linetable, code.co_firstlineno, offset) == index.line_at(
                offset
            )


def test_ranges_cover_the_bytecode_exactly() -> None:
    def sample(values: list[int]) -> int:
        total = 0
        for value in values:
            if value > 1000:
                total += value * 2
            else:
                total -= 1
        return total

    code = sample.__code__
    ranges = list(line_ranges(code.co_linetable, code.co_firstlineno))
    assert ranges[0][0] == 0
    assert ranges[-1][1] == len(code.co_code)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))


def test_a_frame_that_has_not_started_is_on_its_first_line() -> None:
    code = test_a_frame_that_has_not_started_is_on_its_first_line.__code__
    assert line_for_offset(code.co_linetable, code.co_firstlineno, -2) == code.co_firstlineno


def test_an_offset_past_the_table_has_no_line() -> None:
    code = test_an_offset_past_the_table_has_no_line.__code__
    assert line_for_offset(code.co_linetable, code.co_firstlineno, 10**6) is None


def test_no_location_entries_have_no_line() -> None:
    # code 15 (no location), one code unit; then a one-line form (code 11: line + 1), 1 unit.
    table = bytes([0x80 | 15 << 3, 0x80 | 11 << 3, 0, 0])
    assert list(line_ranges(table, 7)) == [(0, 2, None), (2, 4, 8)]


def test_long_form_and_negative_deltas() -> None:
    # long form (14), 2 units: line delta -3 as svarint (3 << 1 | 1 = 7), end 0, cols 1 and 2.
    table = bytes([0x80 | 14 << 3 | 1, 7, 0, 1, 2])
    assert list(line_ranges(table, 10)) == [(0, 4, 7)]
    # no-columns form (13): +100 as a two-chunk varint (200 = 0b11_001000: 0x48, 0x03).
    table = bytes([0x80 | 13 << 3, 0x48, 0x03])
    assert list(line_ranges(table, 1)) == [(0, 2, 101)]


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x00" * 64,  # no entry-start bit
        bytes([0x80 | 14 << 3]) + b"\x7f" * 4096,  # a varint that never ends
        bytes([0x80 | 11 << 3]),  # operands missing
        bytes(range(256)) * 16,
    ],
)
def test_garbage_tables_end_quietly(garbage: bytes) -> None:
    ranges = list(line_ranges(garbage, 1))
    assert len(ranges) <= len(garbage)
    assert line_for_offset(garbage, 1, 4) in {None, *(line for _, _, line in ranges)}
