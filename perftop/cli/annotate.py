"""`perftop --batch --annotate SYMBOL`: the function annotated, each interval."""

from __future__ import annotations

import json

from perftop.annotate.cache import CodeCache
from perftop.model.samples import FunctionKey, Interval
from perftop.profile.leaf_offsets import function_histogram
from perftop.sanitize import printable
from perftop.viewmodel.annotate import annotate, annotation_json, annotation_text


def find_function(interval: Interval, wanted: str) -> FunctionKey | None:
    """The function named `wanted` with the most leaf samples: an exact symbol first, else
    one whose symbol starts with it (a Python function's "name (file.py:12)", a C++ name
    without its arguments)."""
    totals: dict[FunctionKey, float] = {}
    for (_, function), histogram in interval.leaf_offsets.items():
        totals[function] = totals.get(function, 0.0) + histogram.total
    for matches in (
        [key for key in totals if key[0] == wanted],
        [key for key in totals if key[0].startswith(wanted)],
    ):
        if matches:
            return max(matches, key=lambda key: (totals[key], key))
    return None


class BatchAnnotator:
    def __init__(self, symbol: str, *, json: bool) -> None:
        self._symbol = symbol
        self._json = json
        self._cache = CodeCache()

    def interval(self, interval: Interval) -> str:
        function = find_function(interval, self._symbol)
        if function is None:
            if self._json:
                empty: dict[str, object] = {"symbol": self._symbol, "module": None}
                return json.dumps({**empty, "instructions": [], "reason": "no samples"}) + "\n"
            return f"Annotate {printable(self._symbol)}: no samples in this interval\n"
        histogram = function_histogram(interval.leaf_offsets, function)
        assert histogram is not None
        code = self._cache.code(histogram.site, frozenset(histogram.counts))
        annotation = annotate(function, histogram, code)
        if self._json:
            return json.dumps(annotation_json(annotation), ensure_ascii=False) + "\n"
        return annotation_text(annotation) + "\n"
