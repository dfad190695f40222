"""How long each run of the cyclic garbage collector held the GIL, for the benchmarks.

A collection runs on whichever thread allocated last and holds the GIL throughout: a full one
over a big heap is a pause of the UI thread (160-365 ms were seen, issue 15). With
PERFTOP_GC_LOG=FILE set, every collection that took at least `MIN_LOGGED_MS` appends a line
`generation wall-ms cpu-ms collected` to FILE; bench/responsiveness.py reads the worst. The CPU
time (of the collecting thread) is the collector's own work; the wall time adds whatever else
the machine ran meanwhile, which on a loaded 2-CPU box is most of it.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from typing import IO

ENV_VAR = "PERFTOP_GC_LOG"
MIN_LOGGED_MS = 1.0


class CollectorLog:
    """A gc.callbacks hook timing each collection; lines go to `out` as they happen."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self._started = (0.0, 0.0)

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = (time.perf_counter(), time.thread_time())
            return
        wall = 1000.0 * (time.perf_counter() - self._started[0])
        cpu = 1000.0 * (time.thread_time() - self._started[1])
        if wall >= MIN_LOGGED_MS:
            self._out.write(f"{info['generation']} {wall:.2f} {cpu:.2f} {info['collected']}\n")

    def close(self) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)
        self._out.close()


def log_collections_if_asked() -> CollectorLog | None:
    """Start logging collections when PERFTOP_GC_LOG names a file (appended to)."""
    path = os.environ.get(ENV_VAR)
    if not path:
        return None
    try:
        out = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115  # closed by close()
    except OSError as error:
        print(f"perftop: {ENV_VAR}: {error.strerror or error}; not logging", file=sys.stderr)
        return None
    log = CollectorLog(out)
    gc.callbacks.append(log)
    return log
