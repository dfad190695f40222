"""Code read once per function: objdump of a function takes tens of milliseconds, and the
annotate view asks again every interval."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

from perftop.annotate.code import UNBOUNDED_TAIL, FunctionCode, read_function_code
from perftop.model.annotate import CodeSite

MAX_FUNCTIONS = 64  # a FunctionCode is at most a few hundred KiB of text (MAX_FUNCTION_BYTES)


class CodeCache:
    """Bounded (least recently used out), safe to share between threads."""

    def __init__(self, max_functions: int = MAX_FUNCTIONS) -> None:
        self._max = max_functions
        self._entries: OrderedDict[Hashable, FunctionCode] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(site: CodeSite, offsets: frozenset[int]) -> Hashable:
        # A function whose end is not known is read as far as its samples go: a sample further
        # on reads it again.
        bounded = site.end > site.start
        return site, None if bounded else max(offsets, default=0) // UNBOUNDED_TAIL

    def cached(self, site: CodeSite, offsets: frozenset[int]) -> FunctionCode | None:
        key = self.key(site, offsets)
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def code(self, site: CodeSite, offsets: frozenset[int]) -> FunctionCode:
        found = self.cached(site, offsets)
        if found is not None:
            return found
        code = read_function_code(site, offsets)
        with self._lock:
            self._entries[self.key(site, offsets)] = code
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return code
