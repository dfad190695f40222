"""Packed symbol tables: same answers as before, a fraction of the memory, bounded caches."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

from perftop.symbols.elf import ElfCache, read_symbol_table
from perftop.symbols.perfmap import parse_perf_map
from perftop.symbols.ranges import PackedSymbols

LIBC = "/usr/lib/x86_64-linux-gnu/libc.so.6"


def test_find_returns_the_innermost_containing_range() -> None:
    symbols = PackedSymbols(
        [(0x1000, 0x1100, b"outer"), (0x1010, 0x1020, b"alias"), (0x2000, 0x2010, b"\xffbad")]
    )
    assert symbols.find(0x1015, look_back=8) == 1  # the alias, nested in outer
    assert symbols.find(0x1050, look_back=8) == 0  # past the alias: outer again
    assert symbols.find(0x1050) is None  # without looking back, the alias's end stops it
    assert symbols.find(0x0FFF) is None and symbols.find(0x2010) is None
    assert symbols.name(2) == "\ufffdbad"  # invalid UTF-8 from a file: replaced, not raised
    assert symbols.names == ["outer", "alias", "\ufffdbad"]


def test_a_library_table_is_small_and_answers_as_before() -> None:
    with open(LIBC, "rb") as stream:
        size = Path(LIBC).stat().st_size
        tracemalloc.start()
        table = read_symbol_table(stream, size, LIBC)
        kept, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    count = len(table.symbols)
    assert count > 1000
    names = table.symbols.names
    name_bytes = sum(len(name.encode()) for name in names)
    # 20 bytes a symbol plus its name; lists of ints and strs took ~200 bytes a symbol.
    assert table.symbols.nbytes() <= 21 * count + name_bytes
    assert kept < 60 * count + name_bytes + (64 << 10)
    start = table.symbols.starts[names.index("malloc")]
    assert table.lookup(start + 1) == ("malloc", 1)


def test_perf_map_is_packed_too() -> None:
    perf_map = parse_perf_map(b"2000 10 second\n1000 10 first\nnot a line\n")
    assert perf_map.names == ["first", "second"]
    assert perf_map.lookup(0x2005) == ("second", 5)
    assert perf_map.lookup(0x1010) is None


def test_elf_cache_is_bounded_by_bytes(tmp_path: Path) -> None:
    one = ElfCache().table(LIBC)
    assert one is not None
    cache = ElfCache(max_bytes=int(one.symbols.nbytes() * 2.5))
    for index in range(4):
        copy = tmp_path / f"libc{index}.so"
        shutil.copy(LIBC, copy)
        cache.table(str(copy))
    assert len(cache) == 2
    assert cache.nbytes <= one.symbols.nbytes() * 2.5


MMAP_PROBE = """
import ctypes, sys
from perftop.system.memory import keep_large_blocks_in_mmap, release_free_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "tuned":
    assert keep_large_blocks_in_mmap()
for _ in range(3):
    before = libc.mallinfo2().hblkhd
    block = bytearray(8 << 20)
    print((libc.mallinfo2().hblkhd - before) >> 20)
    del block
release_free_memory()
"""


def mmapped_mib(mode: str) -> list[int]:
    """MiB mmapped for each of three 8 MiB blocks made and freed in turn, in a fresh process
    (free heap space left by other tests would serve the blocks whatever the threshold)."""
    done = subprocess.run(
        [sys.executable, "-c", MMAP_PROBE, mode], capture_output=True, text=True, check=True
    )
    return [int(line) for line in done.stdout.split()]


def test_large_blocks_stay_in_mmap_after_tuning() -> None:
    """glibc's default raises the mmap threshold when an mmapped block is freed, so the next
    block of that size comes from the heap (and stays there). Tuned, every one is mmapped."""
    assert mmapped_mib("default") == [8, 0, 0]  # what the tuning is for
    assert mmapped_mib("tuned") == [8, 8, 8]
