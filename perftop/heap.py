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
import ctypes.util

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter numbers (malloc.h)
MMAP_THRESHOLD_BYTES = 256 << 10

_libc: ctypes.CDLL | None = None


def _glibc() -> ctypes.CDLL | None:
    global _libc
    if _libc is None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
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
