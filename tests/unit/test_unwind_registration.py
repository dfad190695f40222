"""How a process's executable mappings go into the kernel's trie, and how the unwinder in use
is reported."""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import replace

from perftop.formats.output import format_json, header_line
from perftop.model.samples import Interval, SamplerCost
from perftop.profile.view import build_view
from perftop.sampling.bcc.unwind_tables import mapping_key, range_prefixes
from perftop.viewmodel.controls import ViewOptions
from perftop.viewmodel.header import cost_pieces, filter_pieces, fitted_cost_pieces, pieces_width
from tests.unit.factories import stack, user


def snapshot() -> Interval:
    return Interval(
        timestamp=0.0,
        interval_s=1.0,
        event="cpu-clock",
        frequency_hz=99,
        lost={},
        cpus=(),
        stacks=(stack(user("main")),),
        processes={},
    )


def covered(blocks: list[tuple[int, int]]) -> list[tuple[int, int]]:
    return [(start, start + (1 << (64 - bits))) for start, bits in blocks]


def test_a_range_becomes_aligned_blocks_that_tile_it_exactly() -> None:
    rng = random.Random(7)
    for _ in range(200):
        start = rng.randrange(0, 1 << 47) & ~0xFFF
        end = start + rng.randrange(1, 1 << 24) * 0x1000
        blocks = range_prefixes(start, end)
        spans = covered(blocks)
        assert spans[0][0] == start and spans[-1][1] == end
        assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
        for block_start, block_end in spans:
            size = block_end - block_start
            assert size & (size - 1) == 0 and block_start % size == 0  # aligned power of two
        assert len(blocks) <= 2 * 64


def test_trie_keys_are_the_tgid_then_the_address_big_endian() -> None:
    key = mapping_key(42, 0x7F0000001000, 52)
    assert key.prefixlen == 32 + 52 and key.tgid == 42
    assert bytes(key)[8:] == (0x7F0000001000).to_bytes(8, "big")


def test_the_unwinder_in_use_is_in_the_json_and_the_headers() -> None:
    table = replace(snapshot(), unwind="table")
    refused = replace(snapshot(), unwind="fp (table walker refused)")
    assert json.loads(format_json(build_view(table)))["unwind"] == "table"
    assert "frame pointers" not in header_line(build_view(table))
    assert "user stacks by frame pointers (table walker refused)" in header_line(
        build_view(refused)
    )
    options = ViewOptions()
    pieces = [piece.text for piece in filter_pieces(options, refused)]
    assert "frame-pointer stacks: table walker refused" in pieces
    assert not any("frame-pointer" in piece.text for piece in filter_pieces(options, table))


def test_the_tables_memory_is_in_the_cost_bar() -> None:
    interval = replace(
        snapshot(), cost=SamplerCost(unwind_rows_used=65536, unwind_rows_size=524288)
    )
    texts = [piece.text for piece in cost_pieces(interval)]
    assert "unwind tables 1.0M of 8.0M" in texts


def test_the_lost_causes_are_those_of_the_figure_shown() -> None:
    lost = {"counts_map_full": 3, "unwind_incomplete": 40, "python_stack_missing": 5}
    interval = replace(snapshot(), lost=lost)
    texts = [piece.text for piece in cost_pieces(interval)]
    assert "lost 3 (counts_map_full 3)" in texts, texts


def test_at_most_three_lost_causes_are_listed_biggest_first() -> None:
    lost = {"a_lost": 1, "b_lost": 50, "c_lost": 7, "d_lost": 20}
    texts = [piece.text for piece in cost_pieces(replace(snapshot(), lost=lost))]
    assert "lost 78 (b_lost 50, d_lost 20, c_lost 7, …)" in texts, texts


def test_the_maps_fill_stays_on_a_bar_too_narrow_for_every_lost_cause() -> None:
    """Three long causes pushed "maps 100% counts" off a 160-column bar; the causes go first."""
    lost = {"counts_map_full": 51234, "native_stack_map_full": 40321, "stack_map_full": 30123}
    cost = SamplerCost(
        12.3,
        12_345_678.0,
        12345.0,
        2,
        2,
        2,
        2,
        3.0,
        3.0,
        unwind_rows_used=65536,
        unwind_rows_size=524288,
    )
    interval = replace(snapshot(), lost=lost, cost=cost, headers="/usr/src/linux-headers-6.1")
    wide = [piece.text for piece in fitted_cost_pieces(interval, 200)]
    assert any(
        text.startswith("lost 121678 (counts_map_full 51234, native_stack_map_full 40321, stack")
        for text in wide
    )
    narrow = [piece.text for piece in fitted_cost_pieces(interval, 160)]
    assert "maps 100% counts, 100% stacks" in narrow, narrow
    assert "unwind tables 1.0M of 8.0M" in narrow
    assert (
        pieces_width(
            [p for p in fitted_cost_pieces(interval, 160) if not p.text.startswith("headers")]
        )
        <= 160
    )
    assert "lost 121678 (counts_map_full 51234, …)" in narrow
    assert "maps 100%/100%" in [piece.text for piece in fitted_cost_pieces(interval, 100)]
