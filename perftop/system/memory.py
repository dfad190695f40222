"""glibc heap settings for a long-running process: freed memory goes back to the system.

Two things made perftop's RSS climb in steps that never came down (the soak showed them):
- The BPF compile (clang, inside libbcc) leaves tens of MB free but held in the heap.
- glibc raises its mmap threshold each time a large mmapped block is freed (a dynamic threshold,
  up to 32 MiB), after which large short-lived buffers (an ELF symbol table being read, a perf map
  file) come from the heap, and the heap seldom shrinks. A fixed threshold keeps them in mmap,
  which is returned on free.
"""

from __future__ import annotations

import ctypes
import gc

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter numbers (malloc.h)
MMAP_THRESHOLD_BYTES = 256 << 10
# The cyclic collector's thresholds (Python's are 700, 10, 10). An interval allocates tens of
# thousands of tuples that live about a second (stacks, call-tree nodes); they outlive two young
# collections and reach the oldest generation, and at 10 a full collection ran twice a second
# under a heavy load, each 100-340 ms of held GIL (a keypress that waited behind one took as
# long). At 100 it runs a tenth as often. The young thresholds stay Python's: the batch soak makes
# ~200 objects of cyclic garbage a second, all collected young; with 50,000 young it piled up
# between collections (the soak's RSS swung 4 MB and climbed 394 KiB/min).
GC_THRESHOLDS = (700, 10, 100)

_libc: ctypes.CDLL | None = None


def _glibc() -> ctypes.CDLL | None:
    global _libc
    if _libc is None:
        try:
            # The process's own symbols, where libc already is: find_library("c") would run
            # ldconfig (a child process before the first screen).
            libc = ctypes.CDLL(None)
            libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            libc.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):  # not glibc: nothing to tune
            return None
        _libc = libc
    return _libc


def keep_large_blocks_in_mmap() -> bool:
    """Fix the mmap threshold (this also turns off its dynamic growth). True if applied."""
    libc = _glibc()
    return bool(libc and libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1)


def release_free_memory() -> bool:
    """Give the heap's free pages back to the system (malloc_trim). True if any were."""
    libc = _glibc()
    return bool(libc and libc.malloc_trim(0))


def freeze_long_lived_objects() -> None:
    """Collect once, then move every object alive now out of the cyclic collector's reach
    (gc.freeze). Called once start-up is over: the modules, classes and functions imported,
    libbcc's tables, the screen's widgets live as long as the process, and a full collection
    walked them all again each time."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
