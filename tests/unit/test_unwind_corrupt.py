"""Damaged `.eh_frame` data gives a partial table or a clean `ElfError`, never another
exception and never a hang."""

from __future__ import annotations

import random
import signal
import struct
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest

from perftop.unwind.eh_frame import read_call_frame_info
from perftop.unwind.elf import ElfError, parse_elf
from perftop.unwind.table import TableBuild, build_table
from tests.unit.unwind_support import shared_chain


@pytest.fixture(scope="module")
def chain_bytes() -> bytes:
    return shared_chain().read_bytes()


@pytest.fixture
def no_hang() -> Iterator[None]:
    """Turn a decoder that loops forever into a test failure after 20 s."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError("decoding did not finish")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(20)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def eh_frame_span(content: bytes) -> tuple[int, int]:
    image = parse_elf(Path("chain"), content)
    section = image.section(".eh_frame")
    assert section is not None
    return section.offset, section.size


def decode(content: bytes) -> TableBuild:
    image = parse_elf(Path("damaged"), content)
    return build_table(read_call_frame_info(image), image.is_executable_address)


def test_the_undamaged_binary_decodes_without_errors(chain_bytes: bytes) -> None:
    built = decode(chain_bytes)

    assert built.errors == () and built.fde_count >= 12


def test_a_garbage_entry_length_keeps_the_entries_before_it(chain_bytes: bytes) -> None:
    offset, _ = eh_frame_span(chain_bytes)
    intact = read_call_frame_info(parse_elf(Path("chain"), chain_bytes))
    damaged = bytearray(chain_bytes)
    fifth_entry = _entry_offsets(chain_bytes, offset)[5]
    struct.pack_into("<I", damaged, offset + fifth_entry, 0x7FFFFFF0)

    info = read_call_frame_info(parse_elf(Path("damaged"), bytes(damaged)))

    assert len(info.errors) == 1 and "runs past the end" in info.errors[0]
    assert 0 < len(info.fdes) < len(intact.fdes)


def test_an_advance_beyond_the_fde_costs_that_fde_only(chain_bytes: bytes) -> None:
    offset, _ = eh_frame_span(chain_bytes)
    intact = decode(chain_bytes)
    info = read_call_frame_info(parse_elf(Path("chain"), chain_bytes))
    victim = next(fde for fde in info.fdes if len(fde.instructions) >= 5 and fde.size < 0x1000)
    position = victim.instructions_address - _section_address(chain_bytes) + offset
    damaged = bytearray(chain_bytes)
    damaged[position : position + 5] = b"\x04\x00\x00\x01\x00"  # DW_CFA_advance_loc4 64 KiB

    built = decode(bytes(damaged))

    assert len(built.errors) == 1 and "beyond the FDE's end" in built.errors[0]
    assert built.fde_count == intact.fde_count - 1


def test_a_truncated_file_is_a_clean_elf_error(chain_bytes: bytes) -> None:
    offset, size = eh_frame_span(chain_bytes)

    for cut in (0, 10, 63, offset + size // 2, len(chain_bytes) - 1):
        try:
            built = decode(chain_bytes[:cut])
        except ElfError:
            continue
        assert built.errors, f"cut at {cut} decoded as if whole"


def test_random_byte_flips_never_raise_or_hang(chain_bytes: bytes, no_hang: None) -> None:
    offset, size = eh_frame_span(chain_bytes)
    intact = decode(chain_bytes).table.packed
    outcomes = {"clean error": 0, "partial or changed": 0, "unchanged": 0}

    for seed in range(300):
        generator = random.Random(seed)
        damaged = bytearray(chain_bytes)
        for _ in range(generator.choice((1, 2, 8))):
            damaged[offset + generator.randrange(size)] = generator.randrange(256)
        try:
            built = decode(bytes(damaged))
        except ElfError:
            outcomes["clean error"] += 1
            continue
        if built.errors or built.table.packed != intact:
            outcomes["partial or changed"] += 1
        else:
            outcomes["unchanged"] += 1  # e.g. a flipped padding byte

    assert outcomes["partial or changed"] > 100, outcomes


def _section_address(content: bytes) -> int:
    image = parse_elf(Path("chain"), content)
    section = image.section(".eh_frame")
    assert section is not None
    return section.address


def _entry_offsets(content: bytes, section_offset: int) -> list[int]:
    offsets = []
    position = 0
    while True:
        length = struct.unpack_from("<I", content, section_offset + position)[0]
        if length == 0:
            return offsets
        offsets.append(position)
        position += 4 + length
