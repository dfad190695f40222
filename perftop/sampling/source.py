"""The seam between whatever produces intervals and whoever shows them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from perftop.model.errors import SourceError as SourceError  # defined below formats/
from perftop.model.samples import Interval


class EventUnavailable(SourceError):
    """The chosen event cannot be sampled here; the source stays on its current event."""


class IntervalSource(Protocol):
    """Produces one raw Interval per interval, never aggregated. Control calls may come from
    another thread; they take effect at the next interval, and failures are reported in that
    interval's notices."""

    @property
    def event(self) -> str: ...

    @property
    def frequency_hz(self) -> int: ...

    @property
    def live(self) -> bool:
        """False for a recording: no kernel controls, no probes."""
        ...

    def events(self) -> Mapping[str, str | None]:
        """Every event perftop knows -> None when this machine can sample it, else the reason."""
        ...

    def next_interval(self) -> Interval | None:
        """Block for one interval and return it; None when the source is exhausted."""
        ...

    def set_pid_filter(self, pids: Sequence[int]) -> None: ...

    def set_cgroup_filter(self, paths: Sequence[str]) -> None:
        """Count only the tasks in these cgroup v2 paths and below them; () for every task."""
        ...

    def set_event(self, event: str) -> None: ...

    def set_frequency(self, hz: int) -> None: ...

    def set_stack_mode(self, mode: str) -> None: ...

    def set_python_frames(self, walk: bool) -> None:
        """Walk CPython processes' Python frames (True) or show their eval loop's C frames."""
        ...

    def interrupt(self) -> None:
        """Make a blocked `next_interval` return None at once (the app is leaving)."""
        ...

    def close(self) -> None: ...
