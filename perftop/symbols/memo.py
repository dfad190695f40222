"""A bounded memo that keeps what is still in use, for caches filled every interval.

Clearing a full cache at once (what perftop did) drops the hot entries with the cold and then
grows back to the bound: in the soak, RSS kept climbing for minutes while the caches refilled,
and a big bound made the climb last past any warm-up. Here entries go into a young generation;
when it holds half the bound it becomes the old generation and the previous old one is dropped.
A hit in the old generation moves the entry back to the young one. So at most `bound` entries are
held, the entries used in the last stretch survive each turnover, and a hit costs a dict lookup
(no LRU bookkeeping per hit).

`age()`, called once per interval, turns the generations over too: what is held is then what the
last two intervals used, however big or small that is, and the bound only caps a pathological
interval. (Sized by the bound alone, a bound small enough to be reached quickly in the soak was
too small for 50k distinct stacks an interval, which were then symbolized again every second.)
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Generations(Generic[K, V]):
    def __init__(self, bound: int) -> None:
        self._half = max(1, bound // 2)
        self._young: dict[K, V] = {}
        self._old: dict[K, V] = {}

    def __len__(self) -> int:
        return len(self._young) + len(self._old)

    def get(self, key: K) -> V | None:
        value = self._young.get(key)
        if value is None:
            value = self._old.pop(key, None)
            if value is not None:
                self.put(key, value)
        return value

    def put(self, key: K, value: V) -> None:
        if len(self._young) >= self._half:
            self._old = self._young
            self._young = {}
        self._young[key] = value

    def age(self) -> None:
        """End of an interval: what was not used in it or the one before goes."""
        self._old = self._young
        self._young = {}

    def clear(self) -> None:
        self._young = {}
        self._old = {}
