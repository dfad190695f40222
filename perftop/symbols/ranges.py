"""Address ranges with names, packed into arrays and one bytes object.

A symbol table held as lists of ints and strs costs about 200 bytes a symbol: libLLVM's 36,000
functions took 7.5 MB, read in one go the first time a sample landed in it, which showed in the
soak as a step in perftop's RSS. Packed, a symbol costs 20 bytes plus its name's bytes, and a name
becomes a str only when a sample lands in it.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterable


class PackedSymbols:
    """Ranges [start, end) sorted by start, each with a name (stored as UTF-8 bytes)."""

    __slots__ = ("_blob", "_offsets", "ends", "starts")

    def __init__(self, entries: Iterable[tuple[int, int, bytes]] = ()) -> None:
        """`entries`: (start, end, name), sorted by start."""
        self.starts = array("Q")
        self.ends = array("Q")
        self._offsets = array("I", [0])
        names = []
        position = 0
        for start, end, name in entries:
            self.starts.append(start)
            self.ends.append(end)
            names.append(name)
            position += len(name)
            self._offsets.append(position)
        self._blob = b"".join(names)

    def __len__(self) -> int:
        return len(self.starts)

    def name(self, index: int) -> str:
        raw = self._blob[self._offsets[index] : self._offsets[index + 1]]
        return raw.decode("utf-8", errors="replace")

    @property
    def names(self) -> list[str]:
        """Every name (for tests and tools: this builds them all)."""
        return [self.name(index) for index in range(len(self))]

    def find(self, address: int, look_back: int = 1) -> int | None:
        """The index of the last range starting at or before `address` that contains it,
        looking back over at most `look_back` ranges (symbols may nest: an alias inside a
        larger function)."""
        index = bisect.bisect_right(self.starts, address) - 1
        for candidate in range(index, max(index - look_back, -1), -1):
            if self.starts[candidate] <= address < self.ends[candidate]:
                return candidate
        return None

    def nbytes(self) -> int:
        """The memory the packed data takes (not counting the object headers)."""
        arrays = (self.starts, self.ends, self._offsets)
        return len(self._blob) + sum(a.itemsize * len(a) for a in arrays)
