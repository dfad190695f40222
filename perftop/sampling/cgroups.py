"""The cgroups of an interval: the ids the kernel put in the count keys turned into paths and
names, with each cgroup's own CPU figures (cpu.stat deltas, cpu.max) over the same interval.

A live source owns one CgroupCatalog and calls `describe` once per drain, right after the flip,
so the cpu.stat readings date the same instant as the interval's end. Runs on the sampler thread
only (the resolver and the meter are not thread-safe).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from perftop.model.samples import CgroupInfo
from perftop.system.cgroup_cpu import CgroupCpuMeter
from perftop.system.cgroup_names import CgroupKind, CgroupName, ContainerNames, describe_cgroup
from perftop.system.cgroup_selection import parse_cgroup_paths
from perftop.system.cgroups import (
    Cgroup2Mount,
    CgroupResolver,
    CgroupsUnavailable,
    cgroup_directory,
    find_cgroup2_mount,
    is_same_or_descendant,
)

# A cgroup sampled in one of the last few intervals keeps being measured, so it has a cpu.stat
# delta the interval it shows up again (a first reading has none), and its row fades with it.
KEEP_MEASURING_INTERVALS = 5
# At most this many cgroups read per interval (two small files each, ~20 µs): a host with
# thousands of busy containers gets figures for the hottest ones.
MAX_MEASURED = 256
# Names cached per path: paths are few and stable; a churning host is bounded by this.
MAX_NAMES = 4096


class CgroupCatalog:
    """Cgroup ids -> CgroupInfo per interval; `unavailable` says why not when there is no
    cgroup2 mount (cgroup v1 only), and then every interval's cgroups are empty."""

    def __init__(
        self,
        found: Cgroup2Mount | CgroupsUnavailable | None = None,
        container_names: ContainerNames | None = None,
    ) -> None:
        found = find_cgroup2_mount() if found is None else found
        self.mount: Path | None = found.path if isinstance(found, Cgroup2Mount) else None
        self.unavailable = found.reason if isinstance(found, CgroupsUnavailable) else ""
        self._resolver = CgroupResolver(self.mount) if self.mount is not None else None
        self._meter = CgroupCpuMeter(self.mount) if self.mount is not None else None
        self._container_names = container_names or ContainerNames()
        self._names: dict[str, CgroupName] = {}
        # path -> (its id, intervals since it was last sampled)
        self._recent: dict[str, tuple[int, int]] = {}

    def directories(self, paths: Sequence[str]) -> list[Path]:
        """The directories of cgroup paths, for the kernel filter."""
        if self.mount is None:
            return []
        return [cgroup_directory(self.mount, path) for path in paths]

    def describe(
        self, sampled_ids: Iterable[int], also: Sequence[str] = ()
    ) -> dict[int, CgroupInfo]:
        """The cgroups of the ids sampled in this interval, plus those sampled lately and the
        paths in `also` (the filtered cgroups), each with its figures since the last call."""
        resolver, meter = self._resolver, self._meter
        if resolver is None or meter is None:
            return {}
        # Once per interval: removed cgroups are noticed (and age out) with no new id.
        resolver.refresh_if_due()
        sampled: dict[str, int] = {}
        for cgroup_id in set(sampled_ids):
            if not cgroup_id:
                continue
            path = resolver.path_of(cgroup_id)  # walks when the id is new
            if path is not None:
                sampled[path] = cgroup_id
        recent = {
            path: (cgroup_id, age + 1)
            for path, (cgroup_id, age) in self._recent.items()
            if age + 1 < KEEP_MEASURING_INTERVALS and not resolver.is_removed(cgroup_id)
        }
        for path in also:
            filtered_id = resolver.id_of(path)
            if filtered_id is not None:
                recent[path] = (filtered_id, 0)
        recent.update((path, (cgroup_id, 0)) for path, cgroup_id in sampled.items())
        if also:  # filtered: cgroups the filter leaves out get no rows of 0 samples
            recent = {
                path: entry
                for path, entry in recent.items()
                if any(is_same_or_descendant(path, kept) for kept in also)
            }
        if len(recent) > MAX_MEASURED:  # the most recently sampled first
            kept = sorted(recent.items(), key=lambda item: item[1][1])[:MAX_MEASURED]
            recent = dict(kept)
        self._recent = recent
        names = {path: self._name(path) for path in recent}
        usages = meter.measure(recent, {path: name.label for path, name in names.items()})
        infos: dict[int, CgroupInfo] = {}
        for path, (cgroup_id, _) in recent.items():
            name, usage = names[path], usages[path]
            infos[cgroup_id] = CgroupInfo(
                cgroup_id=cgroup_id,
                path=path,
                name=name.label,
                container=_container(name),
                usage_percent=usage.usage_percent,
                throttled_usec=usage.throttled_usec,
                quota=usage.quota,
                removed=resolver.is_removed(cgroup_id),
            )
        return infos

    def _name(self, path: str) -> CgroupName:
        name = self._names.get(path)
        if name is None:
            if len(self._names) >= MAX_NAMES:
                self._names.clear()
            name = self._names[path] = describe_cgroup(path, self._container_names)
        return name


def _container(name: CgroupName) -> str | None:
    """A container's own name where its runtime's files give one, else its short id."""
    if name.kind is not CgroupKind.CONTAINER or name.container is None:
        return None
    return name.container_name or name.container.short_id


def cgroup_filter_paths(text: str, live: bool) -> tuple[str, ...]:
    """The screen's `c` prompt read as --cgroup reads it (ValueError with the one line to show),
    so the UI asks the sampling layer, never the machine's /sys itself."""
    return parse_cgroup_paths(text, live=live)
