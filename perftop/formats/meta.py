"""What a profile file says about the sampling behind its stacks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from perftop.model.samples import ProcessMapping


@dataclass(frozen=True, slots=True)
class ProfileMeta:
    event: str = "cpu-clock"
    frequency_hz: int = 99
    duration_s: float = 0.0
    start_time: float = 0.0  # wall clock, seconds since the epoch
    # pid -> where it mapped the binaries of its native frames (Interval.mappings): pprof's
    # Mappings and its Locations' addresses.
    mappings: Mapping[int, tuple[ProcessMapping, ...]] = field(default_factory=dict)
    # The one process the profile is of (a zoom into it, or -p with one PID): its program is
    # the profile's main binary. None for a profile of several processes, which has none.
    main_pid: int | None = None
    # Folded stacks: each stack under a `comm-pid` root, so same-named processes stay apart.
    process_roots: bool = False

    @property
    def clock(self) -> bool:
        """A clock event: periods are nanoseconds of CPU time."""
        return self.event in ("cpu-clock", "task-clock")

    @property
    def nominal_period(self) -> int:
        """The period a sample stands for when its own is not known: 1e9/frequency ns for a
        clock, one event otherwise."""
        return round(1e9 / self.frequency_hz) if self.clock and self.frequency_hz else 1
