"""The events perftop can sample on, as perf names them."""

from __future__ import annotations

from dataclasses import dataclass

# From include/uapi/linux/perf_event.h.
PERF_TYPE_HARDWARE = 0
PERF_TYPE_SOFTWARE = 1


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    type: int
    config: int
    description: str

    @property
    def hardware(self) -> bool:
        return self.type == PERF_TYPE_HARDWARE


EVENTS: dict[str, Event] = {
    event.name: event
    for event in (
        Event("cpu-clock", PERF_TYPE_SOFTWARE, 0, "CPU clock timer (software, always there)"),
        Event("task-clock", PERF_TYPE_SOFTWARE, 1, "clock while a task runs (software)"),
        Event("cycles", PERF_TYPE_HARDWARE, 0, "CPU cycles (hardware PMU)"),
        Event("instructions", PERF_TYPE_HARDWARE, 1, "instructions retired (hardware PMU)"),
        Event("cache-references", PERF_TYPE_HARDWARE, 2, "last-level cache accesses (PMU)"),
        Event("cache-misses", PERF_TYPE_HARDWARE, 3, "last-level cache misses (hardware PMU)"),
        Event("branch-instructions", PERF_TYPE_HARDWARE, 4, "branches retired (hardware PMU)"),
        Event("branch-misses", PERF_TYPE_HARDWARE, 5, "mispredicted branches (hardware PMU)"),
    )
}

DEFAULT_EVENT = "cpu-clock"
FALLBACK_EVENT = "cpu-clock"  # what to suggest when an event is missing: it always works


def unavailable_message(event: str, reason: str) -> str:
    """The one line a user sees when an event cannot be sampled."""
    if event == FALLBACK_EVENT:  # the fallback itself refused: suggesting it would be a loop
        return f"event '{event}' cannot be sampled here: {reason}; run `perftop doctor`"
    return f"event '{event}' cannot be sampled here: {reason}; use -e {FALLBACK_EVENT} instead"
