"""A cgroup's own CPU figures: `cpu.stat` deltas over a measured interval, and `cpu.max`.

From Documentation/admin-guide/cgroup-v2.rst: `cpu.stat` always has `usage_usec`, `user_usec` and
`system_usec` (the core accounts them even without the cpu controller, as on a hybrid mount where
cpu is bound to v1); `nr_periods`, `nr_throttled` and `throttled_usec` appear only when the cpu
controller is enabled for the cgroup, as does `cpu.max` ("$MAX $PERIOD", "max" for no limit).
So each figure is None where its file or key is absent, never zero.

Rates are divided by the measured interval between the two readings, not the nominal one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from perftop.system.cgroups import cgroup_directory

MICROSECONDS_PER_SECOND = 1_000_000


@dataclass(frozen=True, slots=True)
class CpuStat:
    """Cumulative counters from one read of `cpu.stat`."""

    usage_usec: int
    nr_throttled: int | None
    throttled_usec: int | None


def parse_cpu_stat(text: str) -> CpuStat | None:
    """`cpu.stat` text ("key value" lines) -> counters; None without a usable `usage_usec`.
    Unknown keys (newer kernels add some) are ignored."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        try:
            values[key] = int(value)
        except ValueError:
            continue
    usage = values.get("usage_usec")
    if usage is None or usage < 0:
        return None
    return CpuStat(usage, values.get("nr_throttled"), values.get("throttled_usec"))


def parse_cpu_max(text: str) -> float | None:
    """`cpu.max` ("$MAX $PERIOD") -> the quota in CPUs (50000 100000 is 0.5), None for "max" (no
    limit) or text that is not that shape."""
    fields = text.split()
    if not fields or fields[0] == "max":
        return None
    try:
        quota_usec = int(fields[0])
        period_usec = int(fields[1]) if len(fields) > 1 else 100_000  # the kernel's default
    except ValueError:
        return None
    if quota_usec <= 0 or period_usec <= 0:
        return None
    return quota_usec / period_usec


@dataclass(frozen=True, slots=True)
class CgroupCpuReading:
    """One read of a cgroup's files at a monotonic time."""

    cgroup: str
    taken_at: float
    cpu_stat: CpuStat | None
    quota: float | None


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None  # absent (controller off), or the cgroup was removed: not an error


def read_cgroup_cpu(
    mount: Path, cgroup: str, clock: Callable[[], float] = time.monotonic
) -> CgroupCpuReading:
    directory = cgroup_directory(mount, cgroup)
    # The time is taken beside the counter it dates, so the interval measures what was counted.
    taken_at = clock()
    stat_text = _read_text(directory / "cpu.stat")
    max_text = _read_text(directory / "cpu.max")
    return CgroupCpuReading(
        cgroup,
        taken_at,
        None if stat_text is None else parse_cpu_stat(stat_text),
        None if max_text is None else parse_cpu_max(max_text),
    )


@dataclass(frozen=True, slots=True)
class CgroupCpuUsage:
    """A cgroup's own CPU figures over one interval. `usage_percent` is of one CPU, like top (two
    busy CPUs are 200); `throttled_usec` is time throttled during the interval; `quota` is in CPUs
    (None: no limit, or no cpu controller)."""

    cgroup: str
    name: str
    usage_percent: float | None
    throttled_usec: int | None
    quota: float | None


def _counter_delta(before: int | None, after: int | None) -> int | None:
    # A smaller value means a different cgroup now has this path (removed and recreated).
    if before is None or after is None or after < before:
        return None
    return after - before


def usage_between(
    before: CgroupCpuReading, after: CgroupCpuReading, name: str | None = None
) -> CgroupCpuUsage:
    """The figures between two readings of the same cgroup."""
    elapsed = after.taken_at - before.taken_at
    usage_percent: float | None = None
    throttled_usec: int | None = None
    if before.cpu_stat is not None and after.cpu_stat is not None and elapsed > 0:
        used = _counter_delta(before.cpu_stat.usage_usec, after.cpu_stat.usage_usec)
        if used is not None:
            usage_percent = 100.0 * used / (elapsed * MICROSECONDS_PER_SECOND)
        throttled_usec = _counter_delta(
            before.cpu_stat.throttled_usec, after.cpu_stat.throttled_usec
        )
    return CgroupCpuUsage(
        after.cgroup,
        after.cgroup if name is None else name,
        usage_percent,
        throttled_usec,
        after.quota,
    )


class CgroupCpuMeter:
    """Reads the cgroups it is asked about once per interval and gives each one's figures since
    the previous call. A cgroup seen for the first time has no delta yet (None figures); one that
    is no longer asked about is forgotten."""

    def __init__(self, mount: Path, clock: Callable[[], float] = time.monotonic) -> None:
        self.mount = mount
        self._clock = clock
        self._previous: dict[str, CgroupCpuReading] = {}

    def measure(
        self, cgroups: Iterable[str], names: Mapping[str, str] | None = None
    ) -> dict[str, CgroupCpuUsage]:
        readings = {cgroup: read_cgroup_cpu(self.mount, cgroup, self._clock) for cgroup in cgroups}
        usages: dict[str, CgroupCpuUsage] = {}
        for cgroup, reading in readings.items():
            name = None if names is None else names.get(cgroup)
            previous = self._previous.get(cgroup)
            if previous is None:
                usages[cgroup] = CgroupCpuUsage(
                    cgroup, cgroup if name is None else name, None, None, reading.quota
                )
            else:
                usages[cgroup] = usage_between(previous, reading, name)
        self._previous = readings
        return usages


def unknown_cgroup(cgroup_id: int) -> str:
    """The row key of an id no walk could name (outside our cgroup namespace, or created and
    removed between walks): not a path, since paths start with "/"."""
    return f"cgroup id {cgroup_id}"


def samples_by_path(
    samples_by_id: Mapping[int, int], path_of: Callable[[int], str | None]
) -> dict[str, int]:
    """Sample counts keyed by cgroup id (as the BPF count key carries them) folded into counts by
    path; `path_of` is `CgroupResolver.path_of`. Ids with no path keep a row each."""
    counts: dict[str, int] = {}
    for cgroup_id, samples in samples_by_id.items():
        path = path_of(cgroup_id)
        key = unknown_cgroup(cgroup_id) if path is None else path
        counts[key] = counts.get(key, 0) + samples
    return counts


@dataclass(frozen=True, slots=True)
class CgroupRow:
    """One cgroup in an interval: its share of the samples beside its own CPU figures."""

    cgroup: str
    name: str
    samples: int
    percent: float
    usage_percent: float | None
    throttled_usec: int | None
    quota: float | None


def cgroup_rows(
    samples_by_cgroup: Mapping[str, int],
    usages: Mapping[str, CgroupCpuUsage],
    names: Mapping[str, str] | None = None,
) -> tuple[CgroupRow, ...]:
    """Per-cgroup sample counts merged with the cgroups' own figures, hottest first (most samples,
    then most CPU by cpu.stat, then path so the order is stable). `percent` is of all samples in
    the interval. A cgroup with figures but no samples gets a row with 0 samples: its cpu.stat saw
    CPU the sampler did not (filtered, or too short-lived)."""
    total = sum(count for count in samples_by_cgroup.values() if count > 0)
    rows: list[CgroupRow] = []
    for cgroup in samples_by_cgroup.keys() | usages.keys():
        samples = max(samples_by_cgroup.get(cgroup, 0), 0)
        usage = usages.get(cgroup)
        name = (names or {}).get(cgroup) or (usage.name if usage is not None else cgroup)
        rows.append(
            CgroupRow(
                cgroup=cgroup,
                name=name,
                samples=samples,
                percent=100.0 * samples / total if total else 0.0,
                usage_percent=None if usage is None else usage.usage_percent,
                throttled_usec=None if usage is None else usage.throttled_usec,
                quota=None if usage is None else usage.quota,
            )
        )
    rows.sort(key=lambda row: (-row.samples, -(row.usage_percent or 0.0), row.cgroup))
    return tuple(rows)
