"""One interval + the user's filters -> the View every consumer reads, aggregated once."""

from __future__ import annotations

from perftop.model.samples import Interval
from perftop.model.stats import ProcessStat, View, ViewFilter
from perftop.profile.aggregate import filter_stacks, function_stats, percent, process_stats

EVERYTHING = ViewFilter()


def build_view(interval: Interval, view_filter: ViewFilter = EVERYTHING) -> View:
    """Apply the PID and text filters, then the zoom, and aggregate once.

    The processes are those that passed the PID and text filters, with shares of their samples:
    a zoom picks one of them without hiding the others (the processes table still lists them).
    The stacks, functions and samples are the zoomed process's when zoomed, so the functions
    table, the call-stack pane, the flame graph and the exports agree.
    """
    stacks = interval.stacks
    if view_filter.pids or view_filter.text:
        stacks = filter_stacks(stacks, pids=view_filter.pids, text=view_filter.text)
    unzoomed = stacks
    if interval.preview:
        processes = preview_processes(interval)
    else:
        processes = process_stats(stacks, interval.processes)
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
    )


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
