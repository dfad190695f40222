"""The cyclic collector's settings (perftop.system.memory.freeze_long_lived_objects), each
checked in a fresh process so other tests' objects and settings do not count."""

from __future__ import annotations

import subprocess
import sys

PROBE = r"""
import gc, sys
import perftop.ui.app  # the screen's modules: what a real session has alive from the start
from perftop.system.memory import freeze_long_lived_objects

if sys.argv[1] == "tuned":
    freeze_long_lived_objects()
full = []


def count_full(phase, info):
    if phase == "stop" and info["generation"] == 2:
        full.append(1)


gc.callbacks.append(count_full)
tracked = len(gc.get_objects())
kept = None
for interval in range(20):  # an interval's stacks: tracked containers that live one interval
    kept = [(interval, [n], {"n": n}) for n in range(30_000)]
print(tracked, len(full))
"""


def probe(mode: str) -> tuple[int, int]:
    """(objects the collector tracks after start-up, full collections over 20 intervals)."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    )
    tracked, full = done.stdout.split()
    return int(tracked), int(full)


def test_start_up_objects_are_frozen_and_full_collections_are_rare() -> None:
    default_tracked, default_full = probe("default")
    tuned_tracked, tuned_full = probe("tuned")
    # What the tuning is for: Python's thresholds collect everything repeatedly.
    assert default_tracked > 20_000 and default_full >= 5, (default_tracked, default_full)
    assert tuned_tracked < 1_000, tuned_tracked  # modules, classes, functions: out of the walk
    assert tuned_full * 5 <= default_full, (tuned_full, default_full)
