"""Per-function histograms of leaf offsets: built per interval, faded in the accumulation,
summed over the processes a view shows."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from perftop.model.annotate import (
    MAX_OFFSETS_PER_FUNCTION,
    CodeSite,
    HistogramKey,
    LeafHistograms,
    OffsetHistogram,
)
from perftop.model.samples import FunctionKey


@dataclass(slots=True)
class _Counts:
    site: CodeSite
    counts: dict[int, float] = field(default_factory=dict)
    overflow: float = 0.0
    unplaced: float = 0.0

    def add(self, offset: int | None, weight: float, limit: int) -> None:
        if offset is None:
            self.unplaced += weight
        elif offset in self.counts:
            self.counts[offset] += weight
        elif len(self.counts) < limit:
            self.counts[offset] = weight
        else:
            self.overflow += weight

    def frozen(self) -> OffsetHistogram:
        return OffsetHistogram(self.site, dict(self.counts), self.overflow, self.unplaced)


class HistogramBuilder:
    """Adds samples of one interval (or of several, faded) into bounded histograms."""

    def __init__(self, limit: int = MAX_OFFSETS_PER_FUNCTION) -> None:
        self._limit = limit
        self._functions: dict[HistogramKey, _Counts] = {}

    def __len__(self) -> int:
        return len(self._functions)

    def add(
        self, pid: int, function: FunctionKey, site: CodeSite, offset: int | None, weight: float
    ) -> None:
        key = (pid, function)
        entry = self._functions.get(key)
        if entry is None:
            entry = self._functions[key] = _Counts(site)
        entry.add(offset, weight, self._limit)

    def add_histograms(self, histograms: LeafHistograms) -> None:
        for (pid, function), histogram in histograms.items():
            for offset, weight in histogram.counts.items():
                self.add(pid, function, histogram.site, offset, weight)
            entry = self._functions.get((pid, function))
            if entry is None:
                entry = self._functions[(pid, function)] = _Counts(histogram.site)
            entry.overflow += histogram.overflow
            entry.unplaced += histogram.unplaced

    def fade(self, keep: float, floor: float = 0.5) -> None:
        """Multiply every weight by `keep`; offsets and functions that fall under `floor`
        samples go, as the decaying stacks drop a chain under one sample."""
        for key, entry in list(self._functions.items()):
            entry.counts = {
                offset: weight * keep
                for offset, weight in entry.counts.items()
                if weight * keep >= floor
            }
            entry.overflow = entry.overflow * keep if entry.overflow * keep >= floor else 0.0
            entry.unplaced = entry.unplaced * keep if entry.unplaced * keep >= floor else 0.0
            if not entry.counts and not entry.overflow and not entry.unplaced:
                del self._functions[key]

    def clear(self) -> None:
        self._functions.clear()

    def histograms(self) -> dict[HistogramKey, OffsetHistogram]:
        return {key: entry.frozen() for key, entry in self._functions.items()}


def function_histogram(
    histograms: LeafHistograms, function: FunctionKey, pids: Iterable[int] | None = None
) -> OffsetHistogram | None:
    """One function's histogram summed over `pids` (every process when None). Processes of
    one binary share offsets; the site is the busiest process's (the one to read code from)."""
    wanted = None if pids is None else set(pids)
    found = [
        histogram
        for (pid, key), histogram in histograms.items()
        if key == function and (wanted is None or pid in wanted)
    ]
    if not found:
        return None
    if len(found) == 1:
        return found[0]
    found.sort(key=lambda histogram: -histogram.total)
    counts: dict[int, float] = {}
    for histogram in found:
        for offset, weight in histogram.counts.items():
            counts[offset] = counts.get(offset, 0.0) + weight
    return OffsetHistogram(
        found[0].site,
        counts,
        sum(histogram.overflow for histogram in found),
        sum(histogram.unplaced for histogram in found),
    )
