"""Function starts from FDEs, so an address in a stripped binary can be named `gzip+0x4860`.

Every function the compiler emitted unwind info for has an FDE whose start is the function's
first byte; Debian's stripped python3.11 has 10,221 of them. Attributing a sample to its FDE's
start folds all the instruction addresses of one function into one row.
"""

from __future__ import annotations

import bisect
import struct
from array import array
from collections.abc import Iterable
from dataclasses import dataclass

from perftop.unwind.eh_frame import Fde

FUNCTION_FORMAT = struct.Struct("<QQ")  # start, size: as stored in the cache file


@dataclass(frozen=True, slots=True)
class FunctionStarts:
    """Sorted, non-overlapping function ranges in the ELF's virtual addresses."""

    starts: array[int]
    sizes: array[int]

    @classmethod
    def from_fdes(cls, fdes: Iterable[Fde]) -> FunctionStarts:
        return cls.from_ranges((fde.start, fde.size) for fde in fdes)

    @classmethod
    def from_ranges(cls, ranges: Iterable[tuple[int, int]]) -> FunctionStarts:
        starts: array[int] = array("Q")
        sizes: array[int] = array("Q")
        covered_until = 0
        for start, size in sorted(ranges):
            # An FDE inside the previous one (seen when .debug_frame repeats a function under
            # another start) would make the bisect below land on the inner one.
            if size == 0 or start < covered_until:
                continue
            starts.append(start)
            sizes.append(size)
            covered_until = start + size
        return cls(starts, sizes)

    def __len__(self) -> int:
        return len(self.starts)

    def function_start(self, pc: int) -> tuple[int, int] | None:
        """(start, size) of the function containing `pc`, or None in a gap."""
        index = bisect.bisect_right(self.starts, pc) - 1
        if index < 0 or pc >= self.starts[index] + self.sizes[index]:
            return None
        return self.starts[index], self.sizes[index]

    def pack(self) -> bytes:
        return b"".join(
            FUNCTION_FORMAT.pack(start, size)
            for start, size in zip(self.starts, self.sizes, strict=True)
        )

    @classmethod
    def unpack(cls, packed: bytes) -> FunctionStarts:
        if len(packed) % FUNCTION_FORMAT.size:
            raise ValueError("function table is not a whole number of entries")
        values = memoryview(packed).cast("Q")
        starts = array("Q", values[0::2])
        sizes = array("Q", values[1::2])
        if any(
            starts[index] + sizes[index] > starts[index + 1] for index in range(len(starts) - 1)
        ):
            raise ValueError("function ranges are not sorted and disjoint")
        return cls(starts, sizes)
