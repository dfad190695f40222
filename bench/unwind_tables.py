"""Unwind-table build cost: perftop's own decoder against pyelftools, cold and cached.

    .venv/bin/python bench/unwind_tables.py [BINARY ...]

For each binary: pyelftools 0.33 listing every CFI entry and decoding each FDE (caught per
FDE: it fails on libc's DW_CFA_GNU_args_size entry), perftop.unwind building the whole table
without a cache, and perftop.unwind reading it back from a fresh cache directory. CPU seconds
(`time.process_time`), the best of three, so a busy machine inflates them less than wall time.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from elftools.dwarf.callframe import FDE
from elftools.elf.elffile import ELFFile

from perftop.unwind.cache import build_unwind_info, load_unwind_info

DEFAULT_BINARIES = ["/usr/bin/python3.11", "/lib/x86_64-linux-gnu/libc.so.6"]


def best_of_three(work: Callable[[], str]) -> tuple[float, str]:
    best = float("inf")
    detail = ""
    for _ in range(3):
        started = time.process_time()
        detail = work()
        best = min(best, time.process_time() - started)
    return best, detail


def pyelftools_decode(path: str) -> str:
    with open(path, "rb") as file:
        entries = list(ELFFile(file).get_dwarf_info().EH_CFI_entries())
        rows = failed = fdes = 0
        for entry in entries:
            if not isinstance(entry, FDE):
                continue
            fdes += 1
            try:
                rows += len(entry.get_decoded().table)
            except Exception:  # pyelftools raises ValueError, KeyError, ...
                failed += 1
    return f"{fdes:,} FDEs, {rows:,} DWARF rows, {failed} FDE(s) failed"


def own_build(path: str) -> str:
    info = build_unwind_info(Path(path))
    return (
        f"{len(info.functions):,} functions, {len(info.table):,} rows "
        f"({len(info.table.packed):,} bytes), {len(info.errors)} error(s)"
    )


def own_cached(path: str, cache_root: Path) -> str:
    info = load_unwind_info(Path(path), cache_root)
    assert info.from_cache, info.cache_problem
    return f"{len(info.table):,} rows from cache"


def main(binaries: list[str]) -> None:
    for path in binaries:
        print(path)
        seconds, detail = best_of_three(lambda path=path: pyelftools_decode(path))
        print(f"  pyelftools decode      {seconds:6.3f} s  {detail}")
        seconds, detail = best_of_three(lambda path=path: own_build(path))
        print(f"  perftop.unwind cold    {seconds:6.3f} s  {detail}")
        with tempfile.TemporaryDirectory() as cache_root:
            load_unwind_info(Path(path), Path(cache_root))  # fill the cache
            seconds, detail = best_of_three(lambda path=path: own_cached(path, Path(cache_root)))
        print(f"  perftop.unwind cached  {seconds:6.3f} s  {detail}")


if __name__ == "__main__":
    main(sys.argv[1:] or DEFAULT_BINARIES)
