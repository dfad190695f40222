"""Where in a function its samples landed: per-function histograms of the leaf address.

A separate structure beside the stacks, not a field of Frame: frames are hashed millions of
times an interval and keep one per function; the address inside it is only needed by the
annotate view, and only for the leaf frame (where the sample's own time was spent).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # samples.py imports this module: the Interval holds the histograms
    from perftop.model.samples import FunctionKey

# Distinct offsets kept per function and process; samples at further offsets are counted in
# `OffsetHistogram.overflow`, never dropped (a function larger than this is rare: 4096
# instruction starts is ~16 KiB of code, and for Python 4096 distinct lines).
MAX_OFFSETS_PER_FUNCTION = 4096


class CodeKind(StrEnum):
    NATIVE = "native"  # offsets are bytes from the function's ELF symbol
    KERNEL = "kernel"  # bytes from the kallsyms symbol
    PYTHON = "python"  # offsets are source line numbers


@dataclass(frozen=True, slots=True)
class CodeSite:
    """Where a function's code can be read again, to annotate it.

    `paths` open the very file the process runs, tried in order (/proc/PID/map_files/..., then
    /proc/PID/root/...; a Python file under /proc/PID/root); `display_path` is the path as the
    process sees it. `start` and `end` bound the function: ELF virtual addresses for native
    code, kernel addresses for the kernel, line numbers for Python (end 0: not known).
    `unavailable` says why the code cannot be read at all (a JIT, a deleted binary, ...)."""

    kind: CodeKind
    paths: tuple[str, ...]
    display_path: str
    start: int
    end: int
    unavailable: str = ""
    note: str = ""  # what the user should know about the code shown (deleted, stripped, ...)


@dataclass(frozen=True, slots=True)
class OffsetHistogram:
    """Samples of one function (of one process) by offset into it, for samples where it was
    the leaf. Weights are floats: the decaying accumulation fades them as it fades stacks."""

    site: CodeSite
    counts: Mapping[int, float]  # offset -> samples
    overflow: float = 0.0  # samples at offsets beyond MAX_OFFSETS_PER_FUNCTION
    unplaced: float = 0.0  # samples of the function whose address was not known

    @property
    def total(self) -> float:
        return sum(self.counts.values()) + self.overflow + self.unplaced


HistogramKey = tuple[int, "FunctionKey"]  # (pid, function)
LeafHistograms = Mapping[HistogramKey, OffsetHistogram]
