"""How a process's executable mappings go into the kernel's trie, and how the unwinder in use
is reported."""

from __future__ import annotations

import ctypes as ct
import itertools
import json
import random
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from perftop.formats.output import format_json, header_line
from perftop.model.samples import Interval, SamplerCost
from perftop.profile.view import build_view
from perftop.sampling.bcc import unwind_tables
from perftop.sampling.bcc.abi import MappingKey
from perftop.sampling.bcc.unwind_tables import UnwindTables, mapping_key, range_prefixes
from perftop.unwind import walk
from perftop.unwind.cache import load_unwind_info
from perftop.unwind.elf import open_elf
from perftop.unwind.table import build_table
from perftop.unwind.walk import ExecutableMapping, executable_mappings
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


class _MissKey(ct.Structure):
    _fields_ = (("tgid", ct.c_uint32), ("kind", ct.c_uint32))


class FakeMaps:
    """The kernel's side of UnwindTables: the trie as a dict, each write recorded, and the
    misses the walk would have stored."""

    def __init__(self) -> None:
        self.trie: dict[bytes, bytes] = {}
        self.writes: list[MappingKey] = []
        self.missed: dict[int, int] = {}  # tgid -> the address no table covered
        self.unwind_rows = SimpleNamespace(map_fd=1)
        self.unwind_mappings = SimpleNamespace(map_fd=2)
        self.unwind_misses = SimpleNamespace(map_fd=3, keys=self.miss_keys)

    def miss_keys(self) -> list[_MissKey]:
        keys = [_MissKey(tgid, 0) for tgid in self.missed]
        return keys

    def bpf_update_elem(self, fd: int, key: Any, value: Any, flags: int) -> int:
        self.trie[bytes(key._obj)] = bytes(value._obj)
        self.writes.append(MappingKey.from_buffer_copy(bytes(key._obj)))
        return 0

    def bpf_delete_elem(self, fd: int, key: Any) -> int:
        if fd == 3:
            self.missed.pop(key._obj.tgid, None)
        else:
            self.trie.pop(bytes(key._obj), None)
        return 0

    def bpf_lookup_elem(self, fd: int, key: Any, out: Any) -> int:
        out._obj.value = self.missed[key._obj.tgid]
        return 0

    def bpf_update_batch(self, fd: int, keys: Any, values: Any, done: Any) -> int:
        return 0


def address_of(key: MappingKey) -> int:
    return int.from_bytes(key.address.to_bytes(8, "little"), "big")


@pytest.fixture
def registering(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[tuple[FakeMaps, UnwindTables, list[subprocess.Popen[bytes]]]]:
    """Two processes of one program and an UnwindTables writing to FakeMaps (tables built
    into a cache of the test's own)."""
    fake = FakeMaps()
    monkeypatch.setattr(unwind_tables, "lib", fake)
    monkeypatch.setattr(
        unwind_tables, "load_unwind_info", lambda path: load_unwind_info(path, tmp_path)
    )
    processes = [subprocess.Popen(["sleep", "30"]) for _ in range(2)]
    time.sleep(0.1)
    tables = UnwindTables(fake, 1 << 20)  # type: ignore[arg-type]
    try:
        yield fake, tables, processes
    finally:
        tables.close()
        for process in processes:
            process.kill()
            process.wait()


def mapping_of(pid: int, name: str) -> ExecutableMapping:
    maps = executable_mappings(Path(f"/proc/{pid}/maps").read_text())
    return next(mapping for mapping in maps if name in mapping.path)


def miss(fake: FakeMaps, tables: UnwindTables, pid: int, address: int) -> None:
    fake.missed[pid] = address
    tables.take_misses()
    assert tables.wait_idle(10.0)


def test_a_missed_file_adds_its_own_ranges_and_rewrites_nothing_else(
    registering: tuple[FakeMaps, UnwindTables, list[subprocess.Popen[bytes]]],
) -> None:
    """Given a registered process whose libc is walked by its table, when the walk misses in
    ld.so, then ld.so's ranges are written and nothing else (the process's other entries were
    rewritten on each miss, a second of CPU a round for a big process)."""
    fake, tables, (process, _) = registering
    tables.observe([process.pid])
    assert tables.wait_idle(10.0)
    libc = mapping_of(process.pid, "libc")
    miss(fake, tables, process.pid, libc.start + 0x100)
    entries = set(fake.trie)
    assert len(entries) > 1  # the whole process, and libc's blocks
    fake.writes.clear()
    loader = mapping_of(process.pid, "ld-linux")
    miss(fake, tables, process.pid, loader.start + 0x100)
    assert fake.writes
    assert all(loader.start <= address_of(key) < loader.end for key in fake.writes)
    assert entries < set(fake.trie)  # libc's and the process's entries stay


def test_a_file_and_the_vdso_are_read_once_for_every_process_that_maps_them(
    registering: tuple[FakeMaps, UnwindTables, list[subprocess.Popen[bytes]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given two processes of one program, when the walk misses in libc and in the vDSO of
    each, then libc's ELF headers are read once (its load bias in the second comes from the
    segments kept) and the vDSO's table is built once (it was built again for each process,
    and on each of its misses)."""
    fake, tables, processes = registering
    built: list[object] = []
    opened: list[Path] = []

    def counted_build(*args: Any) -> Any:
        built.append(args)
        return build_table(*args)

    def counted_open(path: Path) -> Any:
        opened.append(path)
        return open_elf(path)

    monkeypatch.setattr(walk, "build_table", counted_build)
    monkeypatch.setattr(unwind_tables, "build_table", counted_build, raising=False)
    monkeypatch.setattr(unwind_tables, "open_elf", counted_open)
    for process in processes:
        tables.observe([process.pid])
        assert tables.wait_idle(10.0)
        miss(fake, tables, process.pid, mapping_of(process.pid, "libc").start + 0x100)
        miss(fake, tables, process.pid, mapping_of(process.pid, "[vdso]").start + 0x10)
    written = {address_of(key) for key in fake.writes}
    for process in processes:
        for name in ("libc", "[vdso]"):
            mapping = mapping_of(process.pid, name)
            assert any(mapping.start <= address < mapping.end for address in written), name
    assert len(built) == 1
    assert [path.name for path in opened] == [
        mapping_of(processes[0].pid, "libc").path.rpartition("/")[2]
    ]


def test_a_process_whose_mappings_did_not_change_is_rechecked_without_its_stat(
    registering: tuple[FakeMaps, UnwindTables, list[subprocess.Popen[bytes]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every registered process is looked at again each second: with its maps as they were,
    its entries stand, and its /proc/PID/stat (slow for a process of many threads: the
    kernel sums every thread's times) is not read."""
    fake, tables, (process, _) = registering
    stat_reads: list[int] = []
    start_time = unwind_tables.process_start_time

    def counted(pid: int) -> int | None:
        stat_reads.append(pid)
        return start_time(pid)

    monkeypatch.setattr(unwind_tables, "process_start_time", counted)
    monkeypatch.setattr(unwind_tables, "RECHECK_S", 0.0)
    tables.observe([process.pid])
    assert tables.wait_idle(10.0)
    assert stat_reads == [process.pid]
    fake.writes.clear()
    for _ in range(3):
        tables.observe([process.pid])
        assert tables.wait_idle(10.0)
    assert stat_reads == [process.pid] and not fake.writes
