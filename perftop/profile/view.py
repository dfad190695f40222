"""One interval + the user's filters -> the View every consumer reads, aggregated once."""

from __future__ import annotations

from perftop.model.samples import Interval, StackSample
from perftop.model.stats import ProcessStat, View, ViewFilter
from perftop.profile.aggregate import (
    cgroup_info,
    cgroup_stats,
    filter_stacks,
    function_stats,
    percent,
    process_stats,
)

EVERYTHING = ViewFilter()


def build_view(interval: Interval, view_filter: ViewFilter = EVERYTHING) -> View:
    """Apply the PID and text filters, then the zooms, and aggregate once.

    The processes are those that passed the PID and text filters, with shares of their samples:
    a zoom into a process picks one of them without hiding the others (the processes table
    still lists them). A zoom into a cgroup narrows everything to that cgroup's stacks, the
    processes too; the cgroups stay those of the filtered stacks, so the cgroup rows still list
    the others. The stacks, functions and samples are the zoomed process's when zoomed, so the
    functions table, the call-stack pane, the flame graph and the exports agree.
    """
    stacks = interval.stacks
    if view_filter.pids or view_filter.text:
        stacks = filter_stacks(stacks, pids=view_filter.pids, text=view_filter.text)
    # Cgroup v1 only: the kernel's ids are all the unmounted v2 root's, and name nothing.
    known = None if interval.cgroups_unavailable else interval.cgroups
    cgroups = (
        ()
        if known is None
        else cgroup_stats(stacks, known, measured=not (view_filter.pids or view_filter.text))
    )
    if view_filter.zoom_cgroup is not None:
        stacks = stacks_of_cgroup(stacks, interval, view_filter.zoom_cgroup)
    unzoomed = stacks
    if interval.preview:
        processes = preview_processes(interval)
    else:
        processes = process_stats(stacks, interval.processes, known)
    if view_filter.zoom_pid is not None:
        stacks = filter_stacks(stacks, pids=(view_filter.zoom_pid,))
    return View(
        interval=interval,
        filter=view_filter,
        stacks=stacks,
        samples=sum(stack.samples for stack in stacks),
        unzoomed_stacks=unzoomed,
        processes=processes,
        functions=function_stats(stacks),
        cgroups=cgroups,
    )


def stacks_of_cgroup(
    stacks: tuple[StackSample, ...], interval: Interval, path: str
) -> tuple[StackSample, ...]:
    """The stacks of one cgroup row: every id with that path (removed and made again: two)."""
    ids = set()
    for cgroup_id in {stack.cgroup_id for stack in stacks}:
        info = cgroup_info(cgroup_id, interval.cgroups)
        if info is not None and info.path == path:
            ids.add(cgroup_id)
    return filter_stacks(stacks, cgroup_ids=ids)


def preview_processes(interval: Interval) -> tuple[ProcessStat, ...]:
    """psutil's processes before the first samples, busiest first, shares of their CPU%."""
    infos = interval.processes.values()
    total = sum(info.cpu_percent for info in infos)
    rows = [
        ProcessStat(info.pid, info.name, 0, percent(info.cpu_percent, total), info)
        for info in infos
    ]
    rows.sort(key=lambda row: (-row.info.cpu_percent, row.pid))
    return tuple(rows)
